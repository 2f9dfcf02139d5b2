// Package secinit owns `cofactor security init`: it writes, into one
// directory, everything a secured cluster needs (docs/security.md) — a
// certificate authority and the certificates it signs, a separate raft CA,
// an NKey for each NATS role (or for each worker, one identity apiece),
// the nats-server configuration that grants
// the roles their subjects, and the API's admin and read tokens.
//
// Secrets (private keys, NKey seeds, tokens) are written with mode 0600,
// certificates and the server configuration (which names public keys
// only) with 0644, in a directory of mode 0700. Nothing is overwritten
// unless Config.Force is set: Init refuses before writing anything when
// one of its files exists.
package secinit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/transport"
)

// The files Init writes, relative to Config.Dir.
const (
	CACert         = "ca.pem" // signs the HTTPS and NATS certificates
	CAKey          = "ca-key.pem"
	RaftCACert     = "raft-ca.pem" // signs the raft certificate only
	RaftCAKey      = "raft-ca-key.pem"
	RaftCert       = "raft.pem" // coordinators' raft mutual TLS
	RaftKey        = "raft-key.pem"
	CoordinatorCrt = "coordinator.pem" // coordinators' HTTPS
	CoordinatorKey = "coordinator-key.pem"
	ServeCert      = "serve.pem" // cofactor serve's HTTPS
	ServeKey       = "serve-key.pem"
	NATSCert       = "nats.pem" // the NATS servers (clients and routes)
	NATSKey        = "nats-key.pem"
	NATSConfig     = "nats.conf"
	AdminToken     = "admin.token"
	ReadToken      = "read.token"
)

// NKeyFile is the NKey seed file of a NATS role: coordinator.nk, worker.nk,
// client.nk.
func NKeyFile(r natsauth.Role) string { return string(r) + ".nk" }

// WorkerNKeyFile is the NKey seed file of one worker's own identity
// (Config.Workers): worker-<ID>.nk.
func WorkerNKeyFile(id string) string { return "worker-" + id + ".nk" }

// Config is what Init writes and for which hosts.
type Config struct {
	// Dir receives the files; created (0700) if missing.
	Dir string
	// ConfigDir is where the processes find Dir (the paths nats.conf
	// names): a mount point in a container, say. Default: Dir, absolute.
	ConfigDir string
	// CoordinatorHosts, ServeHosts and NATSHosts are the names and
	// addresses the coordinators', serve's and the NATS servers'
	// certificates are valid for, besides localhost, 127.0.0.1 and ::1,
	// which every certificate names.
	CoordinatorHosts, ServeHosts, NATSHosts []string
	// NATS is the server configuration's listener, JetStream directory,
	// server name, monitoring port and cluster; Init fills in its TLS and
	// users.
	NATS natsauth.ServerConfig
	// Workers, when set, gives each of these worker IDs its own NATS
	// identity (worker-<ID>.nk, natsauth.WorkerPermissions: it receives
	// only its own commands and row requests) instead of the worker role
	// they would share (worker.nk, not written then).
	Workers []string
	// Validity of the certificates; the CAs get twice as long.
	Validity time.Duration
	// Force overwrites existing files.
	Force bool
	// KeepExisting makes Init a no-op when every file exists already (an
	// init container or a compose service run at each start); a directory
	// holding only some of them is still refused.
	KeepExisting bool
}

// DefaultConfig writes certificates valid for a year and a NATS server
// listening on every interface at 4222 with JetStream in /data/jetstream
// (the volume of deploy/compose and deploy/kubernetes).
func DefaultConfig() Config {
	return Config{
		Validity: 365 * 24 * time.Hour,
		NATS:     natsauth.ServerConfig{Host: "0.0.0.0", Port: 4222, StoreDir: "/data/jetstream"},
	}
}

// Errors.
var (
	// ErrConfig: the Config does not hold together.
	ErrConfig = errors.New("secinit: invalid configuration")
	// ErrExists: a file Init would write exists and Force is not set;
	// nothing was written.
	ErrExists = errors.New("secinit: file exists (use --force to overwrite)")
)

// Validate checks c.
func (c Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: no directory", ErrConfig)
	}
	if c.Validity < time.Hour {
		return fmt.Errorf("%w: validity %v is under an hour", ErrConfig, c.Validity)
	}
	seen := map[string]bool{}
	for _, id := range c.Workers {
		if err := transport.ValidID(id); err != nil {
			return fmt.Errorf("%w: worker %w", ErrConfig, err)
		}
		if seen[id] {
			return fmt.Errorf("%w: worker %s named twice", ErrConfig, id)
		}
		seen[id] = true
	}
	for _, h := range slices.Concat(c.CoordinatorHosts, c.ServeHosts, c.NATSHosts) {
		if h == "" || strings.ContainsAny(h, " /:,") && net.ParseIP(h) == nil {
			return fmt.Errorf("%w: host %q is not a DNS name or an IP address", ErrConfig, h)
		}
	}
	return nil
}

// Result says what Init wrote.
type Result struct {
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
	// NKeys are the roles' public NKeys (the configuration names them);
	// empty when Kept.
	NKeys map[natsauth.Role]string `json:"nkeys"`
	// WorkerNKeys are the public NKeys of Config.Workers' identities.
	WorkerNKeys map[string]string `json:"worker_nkeys,omitempty"`
	// Kept: KeepExisting found every file and wrote nothing.
	Kept bool `json:"kept,omitempty"`
}

// file is one file to write.
type file struct {
	name   string
	body   []byte
	secret bool
}

// Init writes the files of c.Dir (see the constants): all are made in
// memory first, then written, so a refusal (ErrExists) or a bad
// configuration leaves the directory as it was. A failure while writing
// may leave some files written.
func Init(c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	confDir := c.ConfigDir
	if confDir == "" {
		abs, err := filepath.Abs(c.Dir)
		if err != nil {
			return nil, err
		}
		confDir = abs
	}
	now := time.Now()
	var files []file
	add := func(name string, body []byte, secret bool) { files = append(files, file{name, body, secret}) }

	ca, err := newCA("cofactor CA", now, 2*c.Validity)
	if err != nil {
		return nil, err
	}
	raftCA, err := newCA("cofactor raft CA", now, 2*c.Validity)
	if err != nil {
		return nil, err
	}
	add(CACert, ca.certPEM, false)
	add(CAKey, ca.keyPEM, true)
	add(RaftCACert, raftCA.certPEM, false)
	add(RaftCAKey, raftCA.keyPEM, true)
	for _, leaf := range []struct {
		ca         *authority
		cn         string
		hosts      []string
		cert, key  string
		clientAuth bool
	}{
		{raftCA, "cofactor coordinator raft", c.CoordinatorHosts, RaftCert, RaftKey, true},
		{ca, "cofactor coordinator", c.CoordinatorHosts, CoordinatorCrt, CoordinatorKey, true},
		{ca, "cofactor serve", c.ServeHosts, ServeCert, ServeKey, false},
		// Routes between NATS servers are TLS clients of each other.
		{ca, "cofactor nats", c.NATSHosts, NATSCert, NATSKey, true},
	} {
		certPEM, keyPEM, err := leaf.ca.issue(leaf.cn, leaf.hosts, now, c.Validity, leaf.clientAuth)
		if err != nil {
			return nil, err
		}
		add(leaf.cert, certPEM, false)
		add(leaf.key, keyPEM, true)
	}

	res := &Result{Dir: c.Dir, NKeys: map[natsauth.Role]string{}}
	nc := c.NATS
	nc.Users = nil
	for _, r := range natsauth.Roles {
		if r == natsauth.Worker && len(c.Workers) > 0 {
			continue // one identity per worker below instead
		}
		seed, pub, err := newNKey()
		if err != nil {
			return nil, err
		}
		add(NKeyFile(r), seed, true)
		res.NKeys[r] = pub
		nc.Users = append(nc.Users, natsauth.User{Role: r, NKey: pub})
	}
	for _, id := range c.Workers {
		seed, pub, err := newNKey()
		if err != nil {
			return nil, err
		}
		add(WorkerNKeyFile(id), seed, true)
		if res.WorkerNKeys == nil {
			res.WorkerNKeys = map[string]string{}
		}
		res.WorkerNKeys[id] = pub
		nc.Users = append(nc.Users, natsauth.User{Role: natsauth.Worker, NKey: pub, WorkerID: id})
	}
	nc.TLSCert, nc.TLSKey, nc.TLSCA = filepath.Join(confDir, NATSCert), filepath.Join(confDir, NATSKey), filepath.Join(confDir, CACert)
	var conf bytes.Buffer
	if err := natsauth.WriteServerConfig(&conf, nc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	add(NATSConfig, conf.Bytes(), false)

	for _, name := range []string{AdminToken, ReadToken} {
		tok := make([]byte, 32)
		if _, err := rand.Read(tok); err != nil {
			return nil, err
		}
		add(name, []byte(hex.EncodeToString(tok)+"\n"), true)
	}

	if !c.Force {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(c.Dir, f.name)); err == nil {
				exist = append(exist, f.name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		if c.KeepExisting && len(exist) == len(files) {
			res.Kept, res.NKeys, res.WorkerNKeys = true, nil, nil
			for _, f := range files {
				res.Files = append(res.Files, f.name)
			}
			return res, nil
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrExists, filepath.Join(c.Dir, exist[0]))
		}
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.Dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(c.Dir, f.name), f.body, f.secret, c.Force); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, f.name)
	}
	return res, nil
}

// newNKey makes an NKey user: its seed file's bytes and its public key.
func newNKey() (seed []byte, pub string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	if seed, err = kp.Seed(); err != nil {
		return nil, "", err
	}
	if pub, err = kp.PublicKey(); err != nil {
		return nil, "", err
	}
	return append(seed, '\n'), pub, nil
}

// writeFile writes a file with mode 0600 (secret) or 0644, created
// exclusively unless overwrite; an overwritten file gets the mode too.
func writeFile(path string, body []byte, secret, overwrite bool) error {
	mode := os.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		// Removed first, so that the new file is created with its mode
		// (and a link in its place is not followed).
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // the umask may have narrowed it
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// authority is a CA in memory.
type authority struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM []byte
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newCA(cn string, now time.Time, validity time.Duration) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM: kp}, nil
}

// issue signs a certificate for hosts plus the loopback names, for
// server use and, with clientAuth, client use too (raft peers and NATS
// routes dial each other with it).
func (a *authority) issue(cn string, hosts []string, now time.Time, validity time.Duration, clientAuth bool) (certPEM, kPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	if clientAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}
