package coordinator

import (
	"net/http"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/internal/httpauth"
)

// initSecurity prepares the API's tokens and TLS from the configuration.
func (n *Node) initSecurity() error {
	var err error
	if n.tokens, err = httpauth.NewTokens(n.cfg.AdminTokens, n.cfg.ReadTokens); err != nil {
		return err
	}
	if n.httpTLS, err = httpauth.ServerTLS(n.cfg.HTTPTLS.Cert, n.cfg.HTTPTLS.Key); err != nil {
		return err
	}
	if n.peerTLS, err = httpauth.ClientTLS(n.cfg.HTTPTLS.CA); err != nil {
		return err
	}
	// One transport for every call to other members (cluster status,
	// forwarded writes, --join, address refreshes): its connections are
	// kept alive and reused, and closed after a minute idle or when the
	// node closes. A transport per call would leave each call's
	// connection open for good.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.IdleConnTimeout = time.Minute
	t.MaxIdleConnsPerHost = 8
	if n.peerTLS != nil {
		t.TLSClientConfig = n.peerTLS.Clone() // transports write to theirs
	}
	n.peerTransport = t
	n.peerHTTP = &http.Client{Transport: t, Timeout: 2 * MaxWait}
	return nil
}

// peerScheme is the scheme of the other members' APIs: the same as this
// node's.
func (n *Node) peerScheme() string {
	if n.httpTLS != nil {
		return "https"
	}
	return "http"
}

// peerClient returns a client of another member's API at addr
// (host:port, or a URL) that carries this node's admin token and trusts
// the configured CA.
func (n *Node) peerClient(addr string) *Client {
	if !strings.Contains(addr, "://") {
		addr = n.peerScheme() + "://" + addr
	}
	c := NewClient(addr)
	if len(n.cfg.AdminTokens) > 0 {
		c.Token = n.cfg.AdminTokens[0]
	}
	c.HTTP = n.peerHTTP
	return c
}
