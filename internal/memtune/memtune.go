// Package memtune owns the garbage-collector setting of cofactor's
// processes. They hold a few large, long-lived, pointer-free arrays
// (rating blocks, factor matrices): with Go's default GOGC of 100 the heap
// may grow to twice those before a collection, which doubles a worker's
// memory for nothing — marking pointer-free arrays costs next to nothing,
// so collecting more often is cheap.
package memtune

import (
	"os"
	"runtime/debug"
)

// GCPercent is the GOGC value Apply sets: the heap may grow 20% beyond the
// live data between collections.
const GCPercent = 20

// Apply sets GCPercent unless the environment sets GOGC, which then wins.
// GOMEMLIMIT (a soft limit for the whole heap) is read by the runtime
// itself. It returns the GOGC value in effect, or -1 when the environment
// decides.
func Apply() int {
	if os.Getenv("GOGC") != "" {
		return -1
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent
}

// Limit sets a soft memory limit of bytes for the whole process (the
// runtime collects more often as the process nears it, and hands freed
// pages back sooner) unless bytes ≤ 0 or the environment sets GOMEMLIMIT,
// which then wins. A process whose live data is near the limit spends
// more time collecting; it is not stopped. It returns the limit in
// effect, or -1 when none was set here.
func Limit(bytes int64) int64 {
	if bytes <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return -1
	}
	debug.SetMemoryLimit(bytes)
	return bytes
}
