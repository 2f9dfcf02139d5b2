package als

import (
	"sync"
	"time"
)

// FMAPeak measures this CPU's float32 multiply-add rate in GFLOP/s on
// threads goroutines for about d: independent multiply-add chains on the
// widest vectors the installed kernel set uses, no memory traffic. It is
// the ceiling every kernel of the package is compared with (a tuned sgemm
// reaches 85–95% of it); benchmarks report their rate as a fraction of it,
// measured in the same run. The pure-Go kernel set reports the scalar rate.
func FMAPeak(threads int, d time.Duration) float64 {
	threads = max(threads, 1)
	// Calls of about 1 ms: an assembly loop cannot be preempted.
	const calls = 1 << 20
	run, flops := fmaPeakKernel()
	var total float64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n float64
			for time.Since(start) < d {
				run(calls)
				n += calls * flops
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total / time.Since(start).Seconds() / 1e9
}

// fmaPeakGo is the scalar probe: 8 independent float32 chains, 16 flops an
// iteration (the compiler keeps them in registers).
func fmaPeakGo(n int) {
	var a0, a1, a2, a3, a4, a5, a6, a7 float32
	x, y := float32(0.5), float32(0.25)
	for range n {
		a0 = a0*x + y
		a1 = a1*x + y
		a2 = a2*x + y
		a3 = a3*x + y
		a4 = a4*x + y
		a5 = a5*x + y
		a6 = a6*x + y
		a7 = a7*x + y
	}
	peakSink = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}

var peakSink float32
