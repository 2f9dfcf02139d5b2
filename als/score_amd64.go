//go:build amd64

package als

import (
	"os"

	"golang.org/x/sys/cpu"
)

// Assembly scoring kernels (score_amd64.s), on arguments checked by
// scoreBlockChecked. thr nil: no compares, hits is not touched.

// scoreBlockAVX512 works on panels of ScorePanel items and groups of 4
// users: 4×64 scores in 16 registers. It needs AVX512BW for the 64-bit
// masks of the hits.
//
//go:noescape
func scoreBlockAVX512(dst *float32, ldd int, x *float32, k, m int, packed *float32, n int, thr *float32, hits *uint64)

// scoreBlockAVX2 works on 16-item quarters of a panel and groups of 4
// users: 4×16 scores in 8 registers.
//
//go:noescape
func scoreBlockAVX2(dst *float32, ldd int, x *float32, k, m int, packed *float32, n int, thr *float32, hits *uint64)

// haveScoreAVX512 is what scoreBlockAVX512 needs.
var haveScoreAVX512 = haveAVX512 && cpu.X86.HasAVX512BW

func init() {
	best := kernelPaths()
	name := best[len(best)-1]
	if forced := os.Getenv(kernelEnv); forced != "" {
		// Like the training kernels: a forced path is honoured only when
		// the CPU has it.
		for _, p := range best {
			if p == forced {
				name = forced
			}
		}
	}
	if !setScoreKernel(name) {
		setScoreKernel("avx2")
	}
}

// setScoreKernel installs the named scoring kernels and reports whether
// this CPU supports them (on false nothing changes).
func setScoreKernel(name string) bool {
	switch {
	case name == "go":
		setScoreKernelGo()
	case name == "avx2" && haveAVX2:
		scoreBlock = scoreBlockAVX2Go
		scoreKernelName = name
	case name == "avx512" && haveScoreAVX512:
		scoreBlock = scoreBlockAVX512Go
		scoreKernelName = name
	default:
		return false
	}
	return true
}

// scoreChunk bounds the multiply-adds of one assembly call (which cannot
// be preempted) to about a millisecond of work: larger blocks are cut into
// groups of rows.
const scoreChunk = 1 << 26

// scoreBlockAsm runs an assembly kernel on checked arguments.
func scoreBlockAsm(kernel func(dst *float32, ldd int, x *float32, k, m int, packed *float32, n int, thr *float32, hits *uint64),
	dst []float32, ldd int, x []float32, k, m int, packed []float32, n int, thr []float32, hits []uint64) {
	rows := max(1, scoreChunk/(k*PackedLen(1, n)))
	w := HitWords(n)
	for i := 0; i < m; i += rows {
		r := min(rows, m-i)
		var tp *float32
		var hp *uint64
		if thr != nil {
			tp, hp = &thr[i], &hits[i*w]
		}
		kernel(&dst[i*ldd], ldd, &x[i*k], k, r, &packed[0], n, tp, hp)
	}
}

func scoreBlockAVX512Go(dst []float32, ldd int, x []float32, k, m int, packed []float32, n int, thr []float32, hits []uint64) {
	scoreBlockAsm(scoreBlockAVX512, dst, ldd, x, k, m, packed, n, thr, hits)
}

func scoreBlockAVX2Go(dst []float32, ldd int, x []float32, k, m int, packed []float32, n int, thr []float32, hits []uint64) {
	scoreBlockAsm(scoreBlockAVX2, dst, ldd, x, k, m, packed, n, thr, hits)
}
