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
		// @SNAPSHOT selectors; Ref names the store without them.
		{"@latest", StoreURI{Kind: StoreCluster, Snapshot: "latest"}, "nats@latest", "nats:s1"},
		{"nats@job1-it0003", StoreURI{Kind: StoreCluster, Snapshot: "job1-it0003"}, "nats@job1-it0003", "nats:s1"},
		{"dir:models@s9", StoreURI{Kind: StoreDir, Dir: "models", Snapshot: "s9"}, "dir:models@s9", "dir:models/s1"},
		{"dir:/srv/m@latest", StoreURI{Kind: StoreDir, Dir: "/srv/m", Snapshot: "latest"}, "dir:/srv/m@latest", "dir:/srv/m/s1"},
		{"dir:a@b/", StoreURI{Kind: StoreDir, Dir: "a@b/"}, "dir:a@b/", "dir:a@b//s1"},
		{"dir:a@b/c@d", StoreURI{Kind: StoreDir, Dir: "a@b/c", Snapshot: "d"}, "dir:a@b/c@d", "dir:a@b/c/s1"},
		{"models/m@s9", StoreURI{Kind: StoreDir, Dir: "models/m", Bare: true, Snapshot: "s9"}, "dir:models/m@s9", "dir:models/m/s1"},
		{"nats://h:4222/movies@s2", StoreURI{Kind: StoreNATS, Servers: "nats://h:4222", Model: "movies", Snapshot: "s2"}, "nats://h:4222/movies@s2", "nats://h:4222/movies#s1"},
		{"nats://h:4222/@latest", StoreURI{Kind: StoreNATS, Servers: "nats://h:4222", Snapshot: "latest"}, "nats://h:4222/@latest", "nats://h:4222#s1"},
		{"nats://u:p@h:4222/m", StoreURI{Kind: StoreNATS, Servers: "nats://u:p@h:4222", Model: "m"}, "nats://u:p@h:4222/m", "nats://u:p@h:4222/m#s1"},
		{"nats://a:1/m@s2,nats://b:2/m", StoreURI{Kind: StoreNATS, Servers: "nats://a:1,nats://b:2", Model: "m", Snapshot: "s2"}, "nats://a:1,nats://b:2/m@s2", "nats://a:1,nats://b:2/m#s1"},
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
	for _, bad := range []string{"dir:", "http://h:1", "nats://", "nats://h:1?x=1", "nats://h:1#f", "nats://h:1/a/b", "nats://a:1/m,nats://b:2/n", "s3://bucket",
		"dir:x@", "nats@", "@", "dir:@s1", "nats://h:1/m@", "nats://h:1/m@a b", "nats://a:1/m@s1,nats://b:2/m@s2", "x@..", "http://h@s1"} {
		if u, err := ParseStoreURI(bad); !errors.Is(err, ErrURI) {
			t.Errorf("%q: %+v, %v; want ErrURI", bad, u, err)
		}
	}
}

// FuzzParseStoreURI: the parser never panics, refuses with ErrURI, and
// what it accepts reads back from its canonical form unchanged.
func FuzzParseStoreURI(f *testing.F) {
	for _, s := range []string{"", "nats", "dir:/x", "x", "nats://h:1/m", "tls://a:1,nats://b:2/m", "nats://u:p@h:1", "http://x", "dir:m@s1", "nats://h:1/m@latest", "@latest", "a@b/c@d"} {
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
