//go:build amd64

package serve

import (
	"os"

	"golang.org/x/sys/cpu"
)

// dotRowsAVX512 is dotRows in AVX-512 (dot_amd64.s): four rows at a time,
// sixteen columns per instruction, a masked step for the last k mod 16
// columns. It takes pointers; dotRowsFast checks the slices first.
//
//go:noescape
func dotRowsAVX512(x, y, out *float32, k, n int)

// kernelEnv forces the pure-Go scoring loop when set to "go" (the same
// variable selects the als kernels).
const kernelEnv = "COFACTOR_KERNEL"

func init() {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && os.Getenv(kernelEnv) != "go" {
		dotRows, dotKernel = dotRowsFast, "avx512"
	}
}

func dotRowsFast(out, x, y []float32) {
	k, n := len(x), len(out)
	if n == 0 {
		return
	}
	if k == 0 {
		clear(out)
		return
	}
	_ = y[n*k-1]
	dotRowsAVX512(&x[0], &y[0], &out[0], k, n)
}
