package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport"
)

// ErrURI: a store URI that cannot be parsed or opened.
var ErrURI = errors.New("checkpoint: bad store URI")

// URIError is ParseStoreURI's error: the URI and what is wrong with it,
// worded to follow the URI ("names no directory"). It wraps ErrURI.
type URIError struct {
	URI, Reason string
}

func (e *URIError) Error() string { return fmt.Sprintf("%v: %q %s", ErrURI, e.URI, e.Reason) }
func (e *URIError) Unwrap() error { return ErrURI }

func uriError(uri, format string, a ...any) error {
	return &URIError{URI: uri, Reason: fmt.Sprintf(format, a...)}
}

// StoreKind says where a store URI keeps snapshots.
type StoreKind uint8

// Store kinds.
const (
	// StoreCluster is the cluster's own JetStream buckets, reached
	// through a connection the caller already has (URI "" or "nats").
	StoreCluster StoreKind = iota
	// StoreNATS is the JetStream buckets of the server(s) the URI names.
	StoreNATS
	// StoreDir is a directory on a local or shared filesystem.
	StoreDir
)

// String names the kind.
func (k StoreKind) String() string {
	switch k {
	case StoreCluster:
		return "cluster"
	case StoreNATS:
		return "nats"
	case StoreDir:
		return "dir"
	}
	return fmt.Sprintf("StoreKind(%d)", uint8(k))
}

// StoreURI is a parsed snapshot-store URI. It is the one reading of the
// store names that job specs, the coordinator, the workers and every
// command accept:
//
//	"" or nats                 the cluster's JetStream buckets (StoreCluster)
//	nats://HOST:PORT[/MODEL]   the JetStream buckets of that server; a
//	tls://HOST:PORT[/MODEL]    comma-separated list names a NATS cluster
//	dir:PATH                   a directory
//	PATH                       a directory (Bare is set)
//
// MODEL, when given, names the model a command follows or reads the
// latest snapshot of; credentials and TLS for the server are not part of
// the URI but of OpenOptions.Security.
//
// Any of these may end in @SNAPSHOT, a snapshot ID or "latest", naming
// one snapshot of the store for commands that read one (nats@ID,
// nats://HOST:PORT/MODEL@ID, nats://HOST:PORT/@latest, dir:PATH@ID). In a
// directory the selector is an '@' after the last '/'; a directory whose
// own name holds an '@' is written with a trailing '/' (dir:a@b/).
type StoreURI struct {
	Kind StoreKind
	// Servers is the NATS URL list of a StoreNATS URI, without the model.
	Servers string
	// Dir is the directory of a StoreDir URI.
	Dir string
	// Model is the model named in a nats:// URI's path ("" for none).
	Model string
	// Bare marks a directory given without "dir:". Job specs refuse it
	// (a misspelt "nats" would otherwise become a directory); commands
	// that name a store on the command line accept it.
	Bare bool
	// Snapshot is the @SNAPSHOT selector: a snapshot ID, "latest", or ""
	// when the URI names none (readers then take the model's latest).
	Snapshot string
}

// Latest is the selector of a model's newest published snapshot.
const Latest = "latest"

// ParseStoreURI reads a store URI. Its errors are *URIError.
func ParseStoreURI(s string) (StoreURI, error) {
	if strings.HasPrefix(s, "nats://") || strings.HasPrefix(s, "tls://") {
		return parseNATSURI(s)
	}
	base, snap, err := cutSnapshot(s, s)
	if err != nil {
		return StoreURI{}, err
	}
	dir, explicit := strings.CutPrefix(base, "dir:")
	var u StoreURI
	switch {
	case base == "" || base == "nats":
		u = StoreURI{Kind: StoreCluster}
	case explicit && dir == "":
		return StoreURI{}, uriError(s, "names no directory")
	case explicit:
		u = StoreURI{Kind: StoreDir, Dir: dir}
	case strings.Contains(base, "://"):
		return StoreURI{}, uriError(s, "is not a store URI (want nats, nats://HOST:PORT, tls://HOST:PORT or dir:PATH)")
	default:
		u = StoreURI{Kind: StoreDir, Dir: base, Bare: true}
	}
	u.Snapshot = snap
	return u, nil
}

// cutSnapshot splits "BASE@SNAPSHOT" at an '@' after the last '/' of s
// (uri is the whole URI, for errors).
func cutSnapshot(s, uri string) (base, snap string, err error) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 || at < strings.LastIndexByte(s, '/') {
		return s, "", nil
	}
	base, snap = s[:at], s[at+1:]
	if snap == "" {
		return "", "", uriError(uri, "names no snapshot after '@' (want @ID or @latest)")
	}
	if err := ValidID(snap); err != nil {
		return "", "", uriError(uri, "names a bad snapshot: %v", err)
	}
	return base, snap, nil
}

// parseNATSURI reads a comma-separated list of nats:// and tls:// server
// URLs, each with an optional /MODEL path; the models named must agree.
func parseNATSURI(s string) (StoreURI, error) {
	u := StoreURI{Kind: StoreNATS}
	var servers []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		pu, err := url.Parse(part)
		switch {
		case err != nil:
			return StoreURI{}, uriError(part, "does not parse: %v", err)
		case pu.Scheme != "nats" && pu.Scheme != "tls":
			return StoreURI{}, uriError(part, "has scheme %q, not nats or tls", pu.Scheme)
		case pu.Host == "":
			return StoreURI{}, uriError(part, "names no server")
		case pu.RawQuery != "" || pu.ForceQuery || pu.Fragment != "" || pu.Opaque != "":
			return StoreURI{}, uriError(part, "has a query or fragment, which a store URI does not take")
		}
		model, snap, err := cutSnapshot(strings.Trim(pu.Path, "/"), part)
		if err != nil {
			return StoreURI{}, err
		}
		if model != "" {
			if err := ValidID(model); err != nil {
				return StoreURI{}, uriError(part, "names a bad model: %v", err)
			}
			if u.Model != "" && u.Model != model {
				return StoreURI{}, uriError(s, "names two models, %s and %s", u.Model, model)
			}
			u.Model = model
		}
		if snap != "" {
			if u.Snapshot != "" && u.Snapshot != snap {
				return StoreURI{}, uriError(s, "names two snapshots, %s and %s", u.Snapshot, snap)
			}
			u.Snapshot = snap
		}
		pu.Path, pu.RawPath = "", ""
		servers = append(servers, pu.String())
	}
	u.Servers = strings.Join(servers, ",")
	return u, nil
}

// String is the URI in its canonical form, which ParseStoreURI reads back
// to the same StoreURI (except Bare: a directory is written dir:PATH).
func (u StoreURI) String() string {
	sel := ""
	if u.Snapshot != "" {
		sel = "@" + u.Snapshot
	}
	switch u.Kind {
	case StoreCluster:
		return "nats" + sel
	case StoreDir:
		return "dir:" + u.Dir + sel
	}
	if u.Model == "" && sel == "" {
		return u.Servers
	}
	parts := strings.Split(u.Servers, ",")
	parts[len(parts)-1] += "/" + u.Model + sel
	return strings.Join(parts, ",")
}

// Store is u without its snapshot selector: the store alone.
func (u StoreURI) Store() StoreURI {
	u.Snapshot = ""
	return u
}

// Ref is how a job's result names snapshot id in this store: "nats:ID"
// in the cluster's store, "dir:PATH/ID" in a directory, "URI#ID" on
// another NATS server.
func (u StoreURI) Ref(id string) string {
	switch u.Kind {
	case StoreCluster:
		return "nats:" + id
	case StoreDir:
		return "dir:" + u.Dir + "/" + id
	}
	return u.Store().String() + "#" + id
}

// OpenOptions are what opening a store may need besides its URI.
type OpenOptions struct {
	// Conn is the cluster's NATS connection, which a StoreCluster URI
	// needs. The repository does not close it.
	Conn *nats.Conn
	// Security authenticates the connection a StoreNATS URI dials
	// (credentials, NKey, TLS); zero dials a plain connection.
	Security transport.Security
	// Name is the NATS client name of that connection ("" for
	// "cofactor-checkpoint").
	Name string
}

// OpenStore opens the repository u names. A StoreNATS repository owns the
// connection it dials and closes it in Close.
func OpenStore(ctx context.Context, u StoreURI, o OpenOptions) (*Repo, error) {
	switch u.Kind {
	case StoreCluster:
		if o.Conn == nil {
			return nil, fmt.Errorf("%w: %q needs a NATS connection", ErrURI, u.String())
		}
		s, err := OpenBlobStore(ctx, o.Conn)
		if err != nil {
			return nil, err
		}
		return NewRepo(s, s), nil
	case StoreNATS:
		opts, err := o.Security.Options()
		if err != nil {
			return nil, err
		}
		name := o.Name
		if name == "" {
			name = "cofactor-checkpoint"
		}
		own, err := transport.Dial(u.Servers, name, opts...)
		if err != nil {
			return nil, err
		}
		s, err := OpenBlobStore(ctx, own)
		if err != nil {
			own.Close()
			return nil, err
		}
		r := NewRepo(s, s)
		r.close = own.Close
		return r, nil
	case StoreDir:
		d := DirStore{Root: u.Dir}
		return NewRepo(d, d), nil
	}
	return nil, fmt.Errorf("%w: store kind %v", ErrURI, u.Kind)
}

// OpenURI parses uri and opens it with nc as the cluster's connection and
// no credentials for other servers: OpenStore with OpenOptions{Conn: nc}.
func OpenURI(ctx context.Context, uri string, nc *nats.Conn) (*Repo, error) {
	u, err := ParseStoreURI(uri)
	if err != nil {
		return nil, err
	}
	return OpenStore(ctx, u, OpenOptions{Conn: nc})
}
