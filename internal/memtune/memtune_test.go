package memtune

import (
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
