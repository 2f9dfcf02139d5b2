package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedReadyTimeout bounds how long [StartEmbedded] waits for the
// server to accept connections.
const EmbeddedReadyTimeout = 10 * time.Second

// EmbeddedOptions configures an embedded nats-server.
type EmbeddedOptions struct {
	// Host to listen on; "" means 127.0.0.1.
	Host string
	// Port to listen on; 0 means a random free port (the server's -1).
	Port int
	// JetStream enables JetStream (needed by [Blobs]).
	JetStream bool
	// StoreDir is the JetStream storage directory, required with
	// JetStream. Tests use t.TempDir().
	StoreDir string
	// MaxPayload is the largest message the server accepts; 0 means the
	// server's default (1 MiB). At most 64 MiB.
	MaxPayload int32
	// NoListen runs the server in-process only (no TCP listener): clients
	// must use [Embedded.Connect].
	NoListen bool
	// ServerName names the server; "" lets the server pick its ID.
	ServerName string
	// Logger receives the server's log lines; nil means no logging. Debug
	// lines are passed on when the logger is enabled at debug level; the
	// server's fatal lines are logged at error level (they do not stop the
	// process).
	Logger *slog.Logger
	// Users, when not empty, turns authorization on: only these users may
	// connect, each with its permissions.
	Users []EmbeddedUser
	// TLS, when set, makes the server require TLS with this configuration
	// (its Certificates); with ClientAuth set to
	// tls.RequireAndVerifyClientCert (and ClientCAs) clients must present
	// a certificate too.
	TLS *tls.Config
	// ConfigFile, when set, is a nats-server configuration file read
	// first (authorization, TLS, permissions); Host, Port, StoreDir and
	// ServerName above override it when set.
	ConfigFile string
}

// EmbeddedUser is one user of an embedded server: a name and password, or
// an NKey public key ("U...") instead.
type EmbeddedUser struct {
	User, Password string
	NKey           string
	// Permissions restricts the user; nil allows everything.
	Permissions *Permissions
}

// serverPermissions converts p into nats-server's form.
func serverPermissions(p *Permissions) *server.Permissions {
	if p == nil {
		return nil
	}
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.PublishAllow, Deny: p.PublishDeny},
		Subscribe: &server.SubjectPermission{Allow: p.SubscribeAllow, Deny: p.SubscribeDeny},
	}
	if p.Responses {
		// nats-server's defaults when a config says allow_responses: true.
		sp.Response = &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return sp
}

// Embedded is a nats-server running inside this process, for the
// all-in-one mode and tests.
type Embedded struct {
	srv      *server.Server
	noListen bool
}

// StartEmbedded starts a nats-server and waits until it accepts
// connections (at most EmbeddedReadyTimeout; a fatal start-up error such as
// a port in use fails at once). The caller must call Shutdown.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.JetStream && opts.StoreDir == "" {
		return nil, errors.New("transport: embedded server: JetStream needs a StoreDir")
	}
	if opts.MaxPayload < 0 || opts.MaxPayload > MaxFramePayload {
		return nil, fmt.Errorf("transport: embedded server: max payload %d not in 0..%d", opts.MaxPayload, MaxFramePayload)
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	sopts := &server.Options{}
	if opts.ConfigFile != "" {
		var err error
		if sopts, err = server.ProcessConfigFile(opts.ConfigFile); err != nil {
			return nil, fmt.Errorf("transport: embedded server: %w", err)
		}
	}
	sopts.Host, sopts.Port = host, port
	sopts.DontListen = opts.NoListen
	sopts.NoLog, sopts.NoSigs = true, true
	if opts.ServerName != "" {
		sopts.ServerName = opts.ServerName
	}
	if opts.JetStream {
		sopts.JetStream, sopts.StoreDir = true, opts.StoreDir
	}
	if opts.MaxPayload != 0 {
		sopts.MaxPayload = opts.MaxPayload
	}
	for _, u := range opts.Users {
		if u.NKey != "" {
			sopts.Nkeys = append(sopts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: serverPermissions(u.Permissions)})
			continue
		}
		sopts.Users = append(sopts.Users, &server.User{Username: u.User, Password: u.Password, Permissions: serverPermissions(u.Permissions)})
	}
	if opts.TLS != nil {
		sopts.TLSConfig, sopts.TLS = opts.TLS, true
		sopts.TLSVerify = opts.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		sopts.TLSTimeout = 2
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("transport: embedded server: %w", err)
	}
	// The logger is installed even without opts.Logger: it is how a fatal
	// start-up error (port in use, bad store directory) is noticed at once
	// instead of after EmbeddedReadyTimeout.
	logger := &serverLog{l: opts.Logger, fatal: make(chan string, 1)}
	debug := opts.Logger != nil && opts.Logger.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(logger, debug, false, false)
	srv.Start()
	deadline := time.Now().Add(EmbeddedReadyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		var why string
		select {
		case why = <-logger.fatal:
		default:
			if time.Now().After(deadline) {
				why = fmt.Sprintf("not ready for connections within %v", EmbeddedReadyTimeout)
			}
		}
		if why != "" {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("transport: embedded server on %s:%d: %s", host, opts.Port, why)
		}
	}
	return &Embedded{srv: srv, noListen: opts.NoListen}, nil
}

// ClientURL returns the URL TCP clients connect to, or "" when the server
// does not listen (NoListen).
func (e *Embedded) ClientURL() string {
	if e.noListen {
		return ""
	}
	return e.srv.ClientURL()
}

// Server returns the underlying nats-server, for what this package does
// not wrap (monitoring, JetStream account info).
func (e *Embedded) Server() *server.Server { return e.srv }

// Connect opens an in-process client connection to the server (no TCP:
// lower latency and no port needed), with or without NoListen. opts are
// applied after the in-process option. Such a connection cannot reconnect
// once the server has shut down.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("transport: in-process connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. Calling it
// again does nothing.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// DialRetryFor is how long [Dial] keeps retrying the first connection.
const DialRetryFor = 10 * time.Second

// dialRetryWait is the pause between first-connection attempts and the
// reconnect wait Dial sets.
const dialRetryWait = 250 * time.Millisecond

// Dial connects to the NATS server(s) at url (a comma-separated list is
// allowed) as client name, with defaults fit for long-running processes:
// reconnect forever (MaxReconnects(-1)) every 250 ms, and ping every 10 s
// so that a dead server is noticed within about 30 s. opts are applied
// after these defaults and override them.
//
// Dial returns only once connected: while the server refuses connections
// or cannot be reached it retries for up to DialRetryFor (10 s), then
// fails with the last error. Errors that retrying cannot fix
// (authorization, TLS, bad options) are returned at once.
func Dial(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	return dial(url, name, DialRetryFor, opts)
}

func dial(url, name string, retryFor time.Duration, opts []nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(dialRetryWait),
		nats.PingInterval(10 * time.Second),
	}, opts...)
	deadline := time.Now().Add(retryFor)
	for {
		nc, err := nats.Connect(url, all...)
		if err == nil {
			return nc, nil
		}
		if !dialRetryable(err) || time.Now().Add(dialRetryWait).After(deadline) {
			return nil, fmt.Errorf("transport: connect to %s: %w", url, err)
		}
		time.Sleep(dialRetryWait)
	}
}

func dialRetryable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) ||
		errors.As(err, &ne) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// serverLog routes nats-server log lines to an optional slog.Logger and
// reports fatal ones on a channel.
type serverLog struct {
	l     *slog.Logger
	fatal chan string
}

func (a *serverLog) log(level slog.Level, format string, v []any) {
	if a.l != nil {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (a *serverLog) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }
func (a *serverLog) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *serverLog) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *serverLog) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *serverLog) Tracef(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }

// Fatalf logs at error level; it does not stop the process.
func (a *serverLog) Fatalf(format string, v ...any) {
	a.log(slog.LevelError, format, v)
	select {
	case a.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}
