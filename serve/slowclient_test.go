package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MUST SHOW: slow and stalled clients cannot hold the server. While
// clients trickle their headers one byte at a time (slowloris), trickle a
// body, or send requests and never read the answers, a well-behaved client
// is answered every time, and the server closes every slow connection
// once its limit (HTTPConfig) has passed.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	m := randomSpec(1, 200, 3000, 16, false).model(t)
	srv, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Load(m, "s1"); err != nil {
		t.Fatal(err)
	}
	cfg := HTTPConfig{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond,
		WriteTimeout: 800 * time.Millisecond, IdleTimeout: time.Second, MaxHeaderBytes: 8 << 10}
	hs, err := NewHTTPServer(srv.Handler(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Count the connections the server has open.
	var open atomic.Int64
	hs.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(ln) }()
	defer func() { hs.Close(); <-served }()
	addr := ln.Addr().String()

	const slowloris, slowBody, nonReaders = 20, 5, 3
	var wg sync.WaitGroup
	closedBy := make(chan string, slowloris+slowBody+nonReaders)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return nil
		}
		return c
	}
	// trickle writes s one byte every 50 ms until the server closes the
	// connection (a write fails or the server's close is read).
	trickle := func(kind string, c net.Conn, s string) {
		defer wg.Done()
		defer c.Close()
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(gone) }()
		for i := 0; ; i = (i + 1) % len(s) {
			select {
			case <-gone:
				closedBy <- kind
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte{s[i]}); err != nil {
				<-gone
				closedBy <- kind
				return
			}
		}
	}
	for range slowloris {
		if c := dial(); c != nil {
			wg.Add(1)
			go trickle("slow headers", c, "GET /v1/recommend?user=u1 HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 100))
		}
	}
	for range slowBody {
		if c := dial(); c != nil {
			head := "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
			if _, err := c.Write([]byte(head)); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go trickle("slow body", c, `{"users": ["u1", `)
		}
	}
	// Non-readers: many requests for large answers, never read.
	for range nonReaders {
		c := dial()
		if c == nil {
			continue
		}
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			req := "GET /v1/recommend?user=u1&k=1000 HTTP/1.1\r\nHost: x\r\n\r\n"
			w := bufio.NewWriter(c)
			sent := 0
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			for ; sent < 2000; sent++ {
				if _, err := w.WriteString(req); err != nil {
					break
				}
			}
			w.Flush()
			// Wait past the write timeout, then read what the server
			// sent before it gave up: far fewer answers than asked for,
			// then its close.
			time.Sleep(cfg.WriteTimeout + 500*time.Millisecond)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			answers := 0
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Errorf("non-reader: the server kept the connection open after %d answers", answers)
						return
					}
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers++
			}
			if answers >= sent {
				t.Errorf("non-reader: all %d answers were written", answers)
			}
			closedBy <- fmt.Sprintf("non-reader after %d of %d answers", answers, sent)
		}()
	}

	// Meanwhile a well-behaved client is answered, every time.
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 50 {
		resp, err := client.Get(fmt.Sprintf("http://%s/v1/recommend?user=u%d&k=10", addr, i))
		if err != nil {
			t.Fatalf("request %d while slow clients hold connections: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	client.CloseIdleConnections()

	// Every slow connection is closed by the server, none by the test.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("slow clients still connected after 30 s (limits: %v to send headers, %v a request, %v to write)",
			cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout)
	}
	close(closedBy)
	kinds := map[string]int{}
	for k := range closedBy {
		kinds[strings.Fields(k)[0]+" "+strings.Fields(k)[1]]++
		if strings.HasPrefix(k, "non-reader") {
			t.Log(k)
		}
	}
	t.Logf("closed by the server: %v", kinds)
	if kinds["slow headers"] != slowloris || kinds["slow body"] != slowBody || kinds["non-reader after"] != nonReaders {
		t.Fatalf("closed: %v; want %d slow-header, %d slow-body and %d non-reading connections", kinds, slowloris, slowBody, nonReaders)
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Fatalf("the server still has %d connections open", n)
	}
}

// TestHTTPConfigValidate: every limit must be set.
func TestHTTPConfigValidate(t *testing.T) {
	if err := DefaultHTTPConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*HTTPConfig){
		"no header timeout":  func(c *HTTPConfig) { c.ReadHeaderTimeout = 0 },
		"no read timeout":    func(c *HTTPConfig) { c.ReadTimeout = 0 },
		"no write timeout":   func(c *HTTPConfig) { c.WriteTimeout = 0 },
		"no idle timeout":    func(c *HTTPConfig) { c.IdleTimeout = -time.Second },
		"header > read":      func(c *HTTPConfig) { c.ReadHeaderTimeout = time.Minute },
		"tiny header budget": func(c *HTTPConfig) { c.MaxHeaderBytes = 100 },
	} {
		c := DefaultHTTPConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrHTTPConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewHTTPServer(http.NotFoundHandler(), HTTPConfig{}, nil); !errors.Is(err, ErrHTTPConfig) {
		t.Errorf("zero config: %v", err)
	}
}
