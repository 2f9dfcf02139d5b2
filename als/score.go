package als

import "fmt"

// Scoring many users against many items (batch recommendation) is a
// matrix–matrix product S = X·Yᵀ followed by a top-K scan of each row of S.
// The product goes by blocks: a block of items is packed once into panels
// of ScorePanel items (PackItems), each panel holding, for every factor c,
// the c-th factor of its items side by side; ScoreBlock then multiplies a
// block of user rows by a packed block, the vector kernels broadcasting one
// user factor and multiplying it into a whole row of a panel at a time, with
// a tile of users × items held in registers. ScoreBlockAbove also compares
// the tile, while it is in registers, with a threshold per user (the score
// a user's running top K needs to beat) and marks the few scores above it
// in a bit mask, so that the top-K scan never reads the others.
//
// Like the training kernels, the hot loop sits behind a function variable
// (scoreBlock) that an architecture file points at vector code at start-up
// (score_amd64.go; COFACTOR_KERNEL=go|avx2|avx512 forces a path no higher
// than the CPU supports, as for the training kernels, but is read on its
// own: setKernel does not switch these). scoreBlockGo is the reference.
var (
	scoreBlock = scoreBlockGo
	// scoreKernelName names the scoring kernels in use: "go", "avx2" or
	// "avx512".
	scoreKernelName = "go"
)

// ScorePanel is the number of items in a panel of a packed item block. An
// item block packed by PackItems starts a new panel every ScorePanel items,
// so the panels of items [j0, …) of a packed block start at element
// PackedLen(k, j0) when j0 is a multiple of ScorePanel. It is also the
// number of bits in a word of the hits of ScoreBlockAbove: one word per
// panel.
const ScorePanel = 64

// PackedLen returns the length of n items of k factors packed by
// PackItems: whole panels, the last one padded with zero items.
func PackedLen(k, n int) int {
	return (n + ScorePanel - 1) / ScorePanel * ScorePanel * k
}

// PackItems packs rows [lo, hi) of the row-major item matrix y (k columns)
// for ScoreBlock and returns the packed block, PackedLen(k, hi-lo) elements
// stored in dst if it has the capacity (else in a new slice). Item lo+j is
// element j%ScorePanel of row c of panel j/ScorePanel: the packed block
// holds, for panel p and factor c, at offset (p·k + c)·ScorePanel, factor
// c of ScorePanel consecutive items. Items past hi in the last panel are 0.
func PackItems(dst []float32, y []float32, k, lo, hi int) []float32 {
	if k <= 0 || lo < 0 || hi < lo || len(y) < hi*k {
		panic(fmt.Sprintf("als: PackItems: bad arguments k=%d lo=%d hi=%d len(y)=%d", k, lo, hi, len(y)))
	}
	n := hi - lo
	size := PackedLen(k, n)
	if cap(dst) < size {
		dst = make([]float32, size)
	}
	dst = dst[:size]
	y = y[lo*k : hi*k]
	for p := 0; p*ScorePanel < n; p++ {
		pan := dst[p*ScorePanel*k : (p+1)*ScorePanel*k]
		w := min(ScorePanel, n-p*ScorePanel)
		for j := 0; j < w; j++ {
			row := y[(p*ScorePanel+j)*k : (p*ScorePanel+j+1)*k]
			for c, v := range row {
				pan[c*ScorePanel+j] = v
			}
		}
		if w < ScorePanel {
			for c := 0; c < k; c++ {
				clear(pan[c*ScorePanel+w : (c+1)*ScorePanel])
			}
		}
	}
	return dst
}

// ScoreBlock computes the scores of m users against n packed items:
//
//	dst[i·ldd + j] = Σ_c x[(r0+i)·k + c] · y_j[c]   for i < m, j < n
//
// where x is the row-major user matrix (k columns) and y_j is item j of
// packed, a block made by PackItems with the same k (or a suffix of one
// starting at a panel boundary). dst needs (m−1)·ldd + n elements, x rows
// up to r0+m and packed PackedLen(k, n) elements; nothing outside those is
// read or written. Elements of dst between rows (columns n ≤ j < ldd) are
// left alone. The vector kernels accumulate with fused multiply-adds, so
// their sums may differ from the reference's in the last bits.
func ScoreBlock(dst []float32, ldd int, x []float32, k, r0, m int, packed []float32, n int) {
	scoreBlockChecked("ScoreBlock", dst, ldd, x, k, r0, m, packed, n, nil, nil)
}

// HitWords is the number of words in a row of the hits of ScoreBlockAbove
// for n items: one bit per item, one word per panel.
func HitWords(n int) int { return (n + ScorePanel - 1) / ScorePanel }

// ScoreBlockAbove is ScoreBlock for a top-K scan: it also marks the
// scores above a threshold per user, and stores only the scores the scan
// needs. With w = HitWords(n), bit b of hits[i·w + p] is set if and only
// if user i's score of item p·ScorePanel + b is above thr[i] (never for a
// NaN score, nor for the padding past n). The scores of marked items are
// stored in dst like ScoreBlock's; the others may or may not be (the
// kernels skip the stores of a user's panel, or part of one, without
// marks). thr needs m elements and hits m·w. With thr[i] the score user
// i's running top K has to beat, the marked items are the only candidates;
// the compares are done while the scores are in registers.
func ScoreBlockAbove(dst []float32, ldd int, x []float32, k, r0, m int, packed []float32, n int, thr []float32, hits []uint64) {
	if m > 0 && n > 0 && (len(thr) < m || len(hits) < m*HitWords(n)) {
		panic(fmt.Sprintf("als: ScoreBlockAbove: %d×%d scores need len(thr) ≥ %d and len(hits) ≥ %d; have %d and %d",
			m, n, m, m*HitWords(n), len(thr), len(hits)))
	}
	scoreBlockChecked("ScoreBlockAbove", dst, ldd, x, k, r0, m, packed, n, thr, hits)
}

// scoreBlockChecked checks the arguments of ScoreBlock (thr nil) or
// ScoreBlockAbove and runs the kernel on slices cut to what it may touch.
func scoreBlockChecked(fn string, dst []float32, ldd int, x []float32, k, r0, m int, packed []float32, n int, thr []float32, hits []uint64) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || r0 < 0 || ldd < n {
		panic(fmt.Sprintf("als: %s: bad arguments k=%d r0=%d ldd=%d n=%d", fn, k, r0, ldd, n))
	}
	nd, nx, np := (m-1)*ldd+n, (r0+m)*k, PackedLen(k, n)
	if len(dst) < nd || len(x) < nx || len(packed) < np {
		panic(fmt.Sprintf("als: %s: %d×%d scores at k=%d need len(dst) ≥ %d, len(x) ≥ %d, len(packed) ≥ %d; have %d, %d, %d",
			fn, m, n, k, nd, nx, np, len(dst), len(x), len(packed)))
	}
	if thr != nil {
		thr, hits = thr[:m], hits[:m*HitWords(n)]
	} else {
		hits = nil
	}
	scoreBlock(dst[:nd], ldd, x[r0*k:nx], k, m, packed[:np], n, thr, hits)
}

// scoreBlockGo is the reference kernel: ScoreBlockAbove (ScoreBlock when
// thr is nil; with thr, a panel's scores are stored if one is marked) on
// checked arguments, x holding exactly the m user rows,
// packed exactly the panels of n items, dst exactly (m−1)·ldd + n
// elements, thr m and hits m·HitWords(n). Each score is summed in factor
// order, like Recommend's.
func scoreBlockGo(dst []float32, ldd int, x []float32, k, m int, packed []float32, n int, thr []float32, hits []uint64) {
	var acc [ScorePanel]float32
	w := HitWords(n)
	for j0 := 0; j0 < n; j0 += ScorePanel {
		pan := packed[j0*k : (j0+ScorePanel)*k]
		nj := min(ScorePanel, n-j0)
		for i := 0; i < m; i++ {
			acc = [ScorePanel]float32{}
			for c, xc := range x[i*k : (i+1)*k] {
				row := (*[ScorePanel]float32)(pan[c*ScorePanel : (c+1)*ScorePanel])
				for j := range acc {
					acc[j] += xc * row[j]
				}
			}
			if thr != nil {
				var bits uint64
				t := thr[i]
				for j, s := range acc[:nj] {
					if s > t {
						bits |= 1 << j
					}
				}
				hits[i*w+j0/ScorePanel] = bits
				if bits == 0 {
					continue
				}
			}
			copy(dst[i*ldd+j0:i*ldd+j0+nj], acc[:nj])
		}
	}
}

// setScoreKernelGo installs the pure-Go scoring kernels.
func setScoreKernelGo() {
	scoreBlock = scoreBlockGo
	scoreKernelName = "go"
}
