//go:build linux

package als

import (
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// The kernels must not touch memory outside the slices they are given,
// even inside a vector: their tails are masked. These tests place each
// slice directly against an inaccessible page, before its start or after
// its end, so an out-of-bounds access crashes the test binary.

// guarded returns n elements of T (zeroed) whose first byte follows a
// PROT_NONE page (atEnd false) or whose last byte precedes one (atEnd
// true). free releases the mapping.
func guarded[T any](t *testing.T, n int, atEnd bool) (s []T, free func()) {
	t.Helper()
	page := os.Getpagesize()
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	dataPages := (size + page - 1) / page
	if dataPages == 0 {
		dataPages = 1
	}
	mem, err := syscall.Mmap(-1, 0, (dataPages+2)*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[(dataPages+1)*page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	off := page
	if atEnd {
		off = (dataPages+1)*page - size
	}
	if n > 0 {
		s = unsafe.Slice((*T)(unsafe.Pointer(&mem[off])), n)
	} else {
		s = []T{}
	}
	return s, func() { _ = syscall.Munmap(mem) }
}

func TestKernelsGuardPages(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		for _, atEnd := range []bool{false, true} {
			for _, k := range []int{1, 2, 3, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 34, 61, 64, 100, 128, 130, 255} {
				kp := roundUp(k, gramPad)
				for _, n := range []int{1, 7, 32} {
					c, f1 := guarded[float64](t, kp*kp, atEnd)
					x, f2 := guarded[float64](t, n*kp, atEnd)
					wx, f3 := guarded[float64](t, n*kp, atEnd)
					copy(x, panel(rng, n, k, kp))
					if n == 32 {
						// normalEq.add's panel fill, with cols and v cut to n.
						gb, f0 := guarded[float64](t, kp, atEnd)
						gc, f01 := guarded[int32](t, n, atEnd)
						gv, f02 := guarded[float32](t, n, atEnd)
						gy, f03 := guarded[float32](t, 3*k, atEnd)
						for r := range gc {
							gc[r] = int32(r % 3)
						}
						gatherRows(x, wx, gb, kp, gy, k, gc, n, gv, gv)
						gatherRows(x, wx, gb, kp, gy, k, gc, n, nil, gv)
						clear(x)
						clear(wx)
						f0()
						f01()
						f02()
						f03()
					}
					copy(wx, x)
					want := make([]float64, kp*kp)
					syrkTilesGo(want, x, wx, n, kp)
					syrkTiles(c, x, wx, n, kp)
					syrkTiles(c, x, x, n, kp)
					f1()
					f2()
					f3()
				}

				const nrows = 9
				other, f1 := guarded[float32](t, nrows*k, atEnd)
				p, f2 := guarded[float32](t, k, atEnd)
				q, f3 := guarded[float32](t, k, atEnd)
				cols, f4 := guarded[int32](t, 5, atEnd)
				w, f5 := guarded[float32](t, 5, atEnd)
				for i := range other {
					other[i] = float32(rng.NormFloat64())
				}
				for i := range p {
					p[i] = 1
				}
				copy(cols, []int32{nrows - 1, 0, 3, nrows - 1, 2})
				copy(w, []float32{1, 2, 3, 4, 5})
				want := make([]float32, k)
				gatherApplyGo(want, p, other, k, cols, w)
				gatherApply(q, p, other, k, cols, w)
				gatherApply(q, p, other, k, cols, nil)
				f1()
				f2()
				f3()
				f4()
				f5()

				sa, f8 := guarded[float64](t, kp*kp, atEnd)
				sb, f9 := guarded[float64](t, k*k, atEnd)
				sd, f10 := guarded[float64](t, k*k, atEnd)
				symFill(sd, sa, sb, k, kp, 1)
				symFill(sd, sa, nil, k, kp, 1)
				f8()
				f9()
				f10()

				a, f6 := guarded[float64](t, k*k, atEnd)
				b, f7 := guarded[float64](t, k, atEnd)
				copy(a, randSPD(rng, k))
				for i := range b {
					b[i] = 1
				}
				if err := cholSolve(a, k, b); err != nil {
					t.Fatalf("k=%d: %v", k, err)
				}
				f6()
				f7()
			}
		}
	})
}
