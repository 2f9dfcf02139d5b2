package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{"127.0.0.1", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{":8080", false},
		{"10.1.2.3:8080", false},
		{"192.168.0.1:9000", false},
		{"name-that-does-not-resolve.invalid:8080", false},
	} {
		if got := Loopback(context.Background(), c.addr); got != c.want {
			t.Errorf("Loopback(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestCheckExposure: protected mode refuses a listener beyond loopback
// with something missing (a usage error naming the flag, the address,
// what is missing and --insecure), lets a secured one or a loopback one
// start, and --insecure lets any start.
func TestCheckExposure(t *testing.T) {
	t.Parallel()
	open := Exposure{Flag: "--http-addr", Addr: "0.0.0.0:8080", Missing: []string{"--http-tls-cert", "--admin-token-file"}}
	secured := Exposure{Flag: "--http-addr", Addr: "0.0.0.0:8080"}
	local := Exposure{Flag: "--raft-addr", Addr: "127.0.0.1:7000", Missing: []string{"--raft-tls-cert"}}
	raft := Exposure{Flag: "--raft-addr", Addr: "10.0.0.5:7000", Missing: []string{"--raft-tls-cert", "--raft-tls-key", "--raft-tls-ca"}}
	for _, c := range []struct {
		name     string
		insecure bool
		ls       []Exposure
		refused  []string // what the message names; nil: started
	}{
		{"open http", false, []Exposure{open}, []string{"--http-addr 0.0.0.0:8080", "--http-tls-cert", "--admin-token-file", "--insecure", "security init"}},
		{"open raft", false, []Exposure{secured, raft}, []string{"--raft-addr 10.0.0.5:7000", "--raft-tls-ca"}},
		{"both open", false, []Exposure{open, raft}, []string{"--http-addr", "--raft-addr"}},
		{"secured", false, []Exposure{secured}, nil},
		{"loopback", false, []Exposure{local}, nil},
		{"insecure", true, []Exposure{open, raft}, nil},
	} {
		err := CheckExposure(context.Background(), c.insecure, nil, c.ls...)
		if c.refused == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrExposed) || ExitCode(err) != ExitUsage {
			t.Errorf("%s: %v (exit %d), want ErrExposed and exit 2", c.name, err, ExitCode(err))
			continue
		}
		for _, w := range c.refused {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", c.name, err, w)
			}
		}
	}
}

func TestHTTPServerFlagsExposure(t *testing.T) {
	t.Parallel()
	o := HTTPServerFlags{}
	if e := o.Exposure("--http-addr", ":1", true); strings.Join(e.Missing, " ") != "--http-tls-cert --admin-token-file" {
		t.Errorf("coordinator without anything: missing %v", e.Missing)
	}
	if e := o.Exposure("--http-addr", ":1", false); strings.Join(e.Missing, " ") != "--http-tls-cert --read-token-file" {
		t.Errorf("serve without anything: missing %v", e.Missing)
	}
	o = HTTPServerFlags{Cert: "c.pem", Key: "k.pem", AdminTokens: []string{"x"}}
	if e := o.Exposure("--http-addr", ":1", true); len(e.Missing) != 0 {
		t.Errorf("coordinator with HTTPS and an admin token: missing %v", e.Missing)
	}
	// serve checks read tokens: an admin token is not one it accepts.
	if e := o.Exposure("--http-addr", ":1", false); strings.Join(e.Missing, " ") != "--read-token-file" {
		t.Errorf("serve with an admin token only: missing %v", e.Missing)
	}
}
