package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport"
)

// ReadyTimeout bounds how long [Start] waits for the
// server to accept connections.
const ReadyTimeout = 10 * time.Second

// Options configures an embedded nats-server.
type Options struct {
	// Host to listen on; "" means 127.0.0.1.
	Host string
	// Port to listen on; 0 means a random free port (the server's -1).
	Port int
	// JetStream enables JetStream (needed by [transport.Blobs]).
	JetStream bool
	// StoreDir is the JetStream storage directory, required with
	// JetStream. Tests use t.TempDir().
	StoreDir string
	// MaxPayload is the largest message the server accepts; 0 means the
	// server's default (1 MiB). At most 64 MiB.
	MaxPayload int32
	// NoListen runs the server in-process only (no TCP listener): clients
	// must use [Server.Connect].
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
	Users []User
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

// User is one user of an embedded server: a name and password, or
// an NKey public key ("U...") instead.
type User struct {
	User, Password string
	NKey           string
	// Permissions restricts the user; nil allows everything.
	Permissions *transport.Permissions
}

// serverPermissions converts p into nats-server's form.
func serverPermissions(p *transport.Permissions) *server.Permissions {
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

// Server is a nats-server running inside this process.
type Server struct {
	srv      *server.Server
	noListen bool
}

// Start starts a nats-server and waits until it accepts
// connections (at most ReadyTimeout; a fatal start-up error such as
// a port in use fails at once). The caller must call Shutdown.
func Start(opts Options) (*Server, error) {
	if opts.JetStream && opts.StoreDir == "" {
		return nil, errors.New("embedded nats-server: JetStream needs a StoreDir")
	}
	if opts.MaxPayload < 0 || opts.MaxPayload > transport.MaxFramePayload {
		return nil, fmt.Errorf("embedded nats-server: max payload %d not in 0..%d", opts.MaxPayload, transport.MaxFramePayload)
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
			return nil, fmt.Errorf("embedded nats-server: %w", err)
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
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	// The logger is installed even without opts.Logger: it is how a fatal
	// start-up error (port in use, bad store directory) is noticed at once
	// instead of after ReadyTimeout.
	logger := &serverLog{l: opts.Logger, fatal: make(chan string, 1)}
	debug := opts.Logger != nil && opts.Logger.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(logger, debug, false, false)
	srv.Start()
	deadline := time.Now().Add(ReadyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		var why string
		select {
		case why = <-logger.fatal:
		default:
			if time.Now().After(deadline) {
				why = fmt.Sprintf("not ready for connections within %v", ReadyTimeout)
			}
		}
		if why != "" {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats-server on %s:%d: %s", host, opts.Port, why)
		}
	}
	return &Server{srv: srv, noListen: opts.NoListen}, nil
}

// ClientURL returns the URL TCP clients connect to, or "" when the server
// does not listen (NoListen).
func (e *Server) ClientURL() string {
	if e.noListen {
		return ""
	}
	return e.srv.ClientURL()
}

// Server returns the underlying nats-server, for what this package does
// not wrap (monitoring, JetStream account info).
func (e *Server) Server() *server.Server { return e.srv }

// Connect opens an in-process client connection to the server (no TCP:
// lower latency and no port needed), with or without NoListen. opts are
// applied after the in-process option. Such a connection cannot reconnect
// once the server has shut down.
func (e *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: in-process connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. Calling it
// again does nothing.
func (e *Server) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
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
