package checkpoint

import (
	"errors"
	"testing"
)

func TestParseStoreURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want StoreURI
		str  string // canonical form
		ref  string // Ref("s1")
	}{
		{"", StoreURI{Kind: StoreCluster}, "nats", "nats:s1"},
		{"nats", StoreURI{Kind: StoreCluster}, "nats", "nats:s1"},
		{"dir:/srv/snaps", StoreURI{Kind: StoreDir, Dir: "/srv/snaps"}, "dir:/srv/snaps", "dir:/srv/snaps/s1"},
		{"snaps", StoreURI{Kind: StoreDir, Dir: "snaps", Bare: true}, "dir:snaps", "dir:snaps/s1"},
		{"nats://127.0.0.1:4222", StoreURI{Kind: StoreNATS, Servers: "nats://127.0.0.1:4222"}, "nats://127.0.0.1:4222", "nats://127.0.0.1:4222#s1"},
		{"nats://h:4222/", StoreURI{Kind: StoreNATS, Servers: "nats://h:4222"}, "nats://h:4222", "nats://h:4222#s1"},
		{"tls://h:4222/movies", StoreURI{Kind: StoreNATS, Servers: "tls://h:4222", Model: "movies"}, "tls://h:4222/movies", "tls://h:4222/movies#s1"},
		{"nats://a:1,nats://b:2/m", StoreURI{Kind: StoreNATS, Servers: "nats://a:1,nats://b:2", Model: "m"}, "nats://a:1,nats://b:2/m", "nats://a:1,nats://b:2/m#s1"},
		{"nats://a:1/m, nats://b:2/m", StoreURI{Kind: StoreNATS, Servers: "nats://a:1,nats://b:2", Model: "m"}, "nats://a:1,nats://b:2/m", "nats://a:1,nats://b:2/m#s1"},
	}
	for _, tt := range tests {
		got, err := ParseStoreURI(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("%q: String %q, want %q", tt.in, s, tt.str)
		}
		if r := got.Ref("s1"); r != tt.ref {
			t.Errorf("%q: Ref %q, want %q", tt.in, r, tt.ref)
		}
	}
	for _, bad := range []string{"dir:", "http://h:1", "nats://", "nats://h:1?x=1", "nats://h:1#f", "nats://h:1/a/b", "nats://a:1/m,nats://b:2/n", "s3://bucket"} {
		if u, err := ParseStoreURI(bad); !errors.Is(err, ErrURI) {
			t.Errorf("%q: %+v, %v; want ErrURI", bad, u, err)
		}
	}
}

// FuzzParseStoreURI: the parser never panics, refuses with ErrURI, and
// what it accepts reads back from its canonical form unchanged.
func FuzzParseStoreURI(f *testing.F) {
	for _, s := range []string{"", "nats", "dir:/x", "x", "nats://h:1/m", "tls://a:1,nats://b:2/m", "nats://u:p@h:1", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseStoreURI(s)
		if err != nil {
			if !errors.Is(err, ErrURI) {
				t.Fatalf("%q: error %v does not wrap ErrURI", s, err)
			}
			return
		}
		back, err := ParseStoreURI(u.String())
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", s, u.String(), err)
		}
		u.Bare = false
		if back != u {
			t.Fatalf("%q: canonical %q reads back as %+v, not %+v", s, u.String(), back, u)
		}
	})
}
