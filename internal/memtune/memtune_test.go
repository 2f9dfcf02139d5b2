package memtune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		t.Setenv("GOGC", "")
		old := debug.SetGCPercent(100)
		defer debug.SetGCPercent(old)
		if got := Apply(); got != GCPercent {
			t.Fatalf("Apply() = %d, want %d", got, GCPercent)
		}
		if got := debug.SetGCPercent(100); got != GCPercent {
			t.Fatalf("GOGC in effect %d, want %d", got, GCPercent)
		}
	})
	t.Run("environment wins", func(t *testing.T) {
		t.Setenv("GOGC", "150")
		old := debug.SetGCPercent(150)
		defer debug.SetGCPercent(old)
		if got := Apply(); got != -1 {
			t.Fatalf("Apply() = %d with GOGC set, want -1", got)
		}
		if got := debug.SetGCPercent(150); got != 150 {
			t.Fatalf("GOGC in effect %d, want the environment's 150", got)
		}
	})
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		bytes int64
		want  int64 // returned
		set   int64 // in effect afterwards
	}{
		{"set", "", 256 << 20, 256 << 20, 256 << 20},
		{"zero leaves none", "", 0, -1, noLimit},
		{"environment wins", "1GiB", 256 << 20, -1, noLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			old := debug.SetMemoryLimit(noLimit)
			defer debug.SetMemoryLimit(old)
			if got := Limit(tc.bytes); got != tc.want {
				t.Fatalf("Limit(%d) = %d, want %d", tc.bytes, got, tc.want)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.set {
				t.Fatalf("limit in effect %d, want %d", got, tc.set)
			}
		})
	}
}

// noLimit is the runtime's "no memory limit" value.
const noLimit = math.MaxInt64
