package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cofactor-ml/cofactor/internal/httpauth"
)

// HTTPConfig bounds what one connection may take of the HTTP server, so
// that a slow or stalled client holds a connection (a goroutine and a file
// descriptor) for a bounded time and never delays other clients.
type HTTPConfig struct {
	// ReadHeaderTimeout: a client has this long, from the moment its
	// connection is accepted or its previous answer is written, to send a
	// request's headers (a client trickling header bytes is cut off).
	ReadHeaderTimeout time.Duration
	// ReadTimeout: the whole request, headers and body (at most
	// MaxBodyBytes), must arrive within this.
	ReadTimeout time.Duration
	// WriteTimeout: the answer must be written within this, counted from
	// the end of the request's headers (a client that stops reading its
	// answers is cut off).
	WriteTimeout time.Duration
	// IdleTimeout: a kept-alive connection with no request is closed
	// after this.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// DefaultHTTPConfig returns the limits `cofactor serve` uses: 5 s for the
// headers, 10 s for a whole request, 30 s to write an answer (a batch of
// MaxBatchUsers users takes well under a second), 2 min idle, 64 KiB of
// headers.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ErrHTTPConfig is wrapped by HTTPConfig.Validate's errors.
var ErrHTTPConfig = errors.New("serve: invalid HTTP configuration")

// Validate checks that every limit is set: a zero timeout would mean none.
func (c HTTPConfig) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read header timeout", c.ReadHeaderTimeout}, {"read timeout", c.ReadTimeout}, {"write timeout", c.WriteTimeout}, {"idle timeout", c.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s %v must be positive", ErrHTTPConfig, d.name, d.v)
		}
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		return fmt.Errorf("%w: read header timeout %v exceeds the read timeout %v", ErrHTTPConfig, c.ReadHeaderTimeout, c.ReadTimeout)
	}
	if c.MaxHeaderBytes < 4<<10 {
		return fmt.Errorf("%w: max header bytes %d below 4096", ErrHTTPConfig, c.MaxHeaderBytes)
	}
	return nil
}

// NewHTTPServer returns an http.Server for h (the Server's Handler, or
// it wrapped in authentication) with c's limits. Failed TLS handshakes
// are logged at debug level, other server errors at warn level, to log.
func NewHTTPServer(h http.Handler, c HTTPConfig, log *slog.Logger) (*http.Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          httpauth.ServerErrorLog(log),
	}, nil
}
