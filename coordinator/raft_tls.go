package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/internal/httpauth"
)

// TLSFiles names a certificate, its key and the CA that signed the peers'
// certificates, as PEM files.
type TLSFiles struct {
	Cert, Key, CA string
}

// Set reports whether any file is named.
func (f TLSFiles) Set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// raftHandshakeTimeout bounds a raft connection's TLS handshake, so that a
// peer that connects and says nothing holds no goroutine for long.
const raftHandshakeTimeout = 10 * time.Second

// RaftTLSConfig builds the mutual-TLS configuration of raft connections:
// this node's certificate for both ends, peers' certificates (client and
// server) verified against the CA, TLS 1.3 only (both ends are
// coordinators of the same version).
func RaftTLSConfig(f TLSFiles) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, fmt.Errorf("%w: raft TLS needs --raft-tls-cert, --raft-tls-key and --raft-tls-ca", ErrConfig)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: raft TLS certificate: %w", ErrConfig, err)
	}
	pool, err := httpauth.CertPool(f.CA)
	if err != nil {
		return nil, fmt.Errorf("%w: raft TLS: %w", ErrConfig, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// TLSStreamLayer is a raft.StreamLayer over mutual TLS: it accepts only
// peers presenting a certificate signed by the configured CA, and dials
// peers checking that their certificate names the address dialled (an IP
// SAN for an IP address, a DNS SAN for a host name).
type TLSStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

var _ raft.StreamLayer = (*TLSStreamLayer)(nil)

// NewTLSStreamLayer listens on bind with cfg (see RaftTLSConfig) and
// advertises advertise (nil: the bound address).
func NewTLSStreamLayer(bind string, advertise net.Addr, cfg *tls.Config) (*TLSStreamLayer, error) {
	if cfg == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, fmt.Errorf("%w: the raft TLS layer requires verified client certificates", ErrConfig)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if tcp, ok := advertise.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%w: raft address %s is not advertisable", ErrConfig, advertise)
	}
	return &TLSStreamLayer{ln: ln, advertise: advertise, cfg: cfg}, nil
}

// Accept waits for a connection. The TLS handshake (with the client
// certificate check) runs on the connection's first read or write, in the
// goroutine raft serves it from, bounded by raftHandshakeTimeout; a peer
// without a valid certificate is disconnected there.
func (s *TLSStreamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, s.cfg)}, nil
}

// Close stops listening.
func (s *TLSStreamLayer) Close() error { return s.ln.Close() }

// Addr is the advertised address.
func (s *TLSStreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and completes the handshake within timeout.
func (s *TLSStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	cfg := s.cfg.Clone()
	cfg.ServerName = host
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft TLS dial %s: %w", address, err)
	}
	return c, nil
}

// handshakeConn runs the server-side handshake on first use, with a
// deadline, and reports its failure on every later call.
type handshakeConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeConn) handshake() error {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(raftHandshakeTimeout))
		if err := c.Conn.Handshake(); err != nil {
			c.err = fmt.Errorf("raft TLS handshake with %s: %w", c.RemoteAddr(), err)
			c.Conn.Close()
			return
		}
		c.Conn.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *handshakeConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// errRaftTLS marks a configuration that asks for raft TLS in-memory.
var errRaftTLS = errors.New("raft TLS does not apply to an in-memory group")
