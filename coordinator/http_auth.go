package coordinator

import (
	"net/http"
	"strings"

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
	if n.peerTLS != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = n.peerTLS.Clone() // transports write to theirs
		n.peerTransport = t
	}
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
	c.UseTLS(n.peerTLS)
	return c
}
