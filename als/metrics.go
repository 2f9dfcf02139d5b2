package als

import (
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Errors returns the root-mean-square and mean absolute error of the
// predictions mean + x_u·y_i against ratings r over the triplets (u[j],
// i[j], r[j]). x and y are row-major with k columns (a model with biases:
// its stored rows, k = Config.Width(), and its global mean; else mean 0).
// It returns NaN for no triplets.
func Errors(u, i []int32, r []float32, x, y []float32, k int, mean float32) (rmse, mae float64) {
	if len(r) == 0 {
		return math.NaN(), math.NaN()
	}
	var sse, sae float64
	for j, rv := range r {
		xu := x[int(u[j])*k : int(u[j])*k+k]
		yi := y[int(i[j])*k : int(i[j])*k+k]
		var p float32
		for c, a := range xu {
			p += a * yi[c]
		}
		e := float64(rv) - float64(mean) - float64(p)
		sse += e * e
		sae += math.Abs(e)
	}
	n := float64(len(r))
	return math.Sqrt(sse / n), sae / n
}

// RankingInput is what Ranking evaluates.
type RankingInput struct {
	X, Y []float32 // user and item factors, row-major
	Rank int
	// Train lists each user's training items (Col only; Val is ignored);
	// they are excluded from the user's ranking.
	Train Rows
	// Test lists each user's held-out items. Users without any are skipped.
	Test Rows
	// Cutoff is K of the @K metrics.
	Cutoff int
	// Popular ranks by popularity instead of the factors: an item's score
	// is the number of users whose training items hold it (X, Y and Rank
	// are then ignored, and NItems gives the catalogue's size). It is the
	// most-popular baseline.
	Popular bool
	// NItems is the number of items when Popular is set.
	NItems  int
	Threads int
}

// RankingResult holds the ranking metrics, each averaged over the users
// evaluated (docs/algorithms.md, "Evaluation").
type RankingResult struct {
	Precision float64 // precision@K: hits / K
	Recall    float64 // recall@K: hits / |relevant|
	MAP       float64 // MAP@K: Σ_{i≤K} precision@i·rel(i) / min(K, |relevant|)
	NDCG      float64 // NDCG@K with binary gains, ideal over min(K, |relevant|)
	// AUC is the fraction of (relevant, non-relevant candidate) pairs
	// whose relevant item scores higher (ties count half), averaged over
	// the AUCUsers users that have a non-relevant candidate.
	AUC      float64
	AUCUsers int
	// Coverage is the fraction of the catalogue (all items) that appears
	// in at least one evaluated user's top K.
	Coverage float64
	// Users is the number of users evaluated: those with at least one
	// relevant item (a held-out item that is not among their training
	// items).
	Users int
}

// userMetrics are one user's figures.
type userMetrics struct {
	ok                       bool
	prec, rec, ap, ndcg, auc float64
	aucOK                    bool
}

// Ranking scores every item for each test user (x_u·y_i, or popularity),
// drops the user's training items (the rest are the user's candidates),
// takes the top K (ties broken by lower item index) and averages the
// metrics of RankingResult over users. A user's relevant items are their
// held-out items that are candidates; users without one are not
// evaluated. Per-user results are summed in user order, so the figures do
// not depend on the thread count.
func Ranking(in RankingInput) RankingResult {
	nUsers := in.Test.Len()
	k, nItems := in.Rank, in.NItems
	var pop []float32
	if in.Popular {
		pop = itemPopularity(in.Train, nItems)
	} else if k > 0 {
		nItems = len(in.Y) / k
	}
	cut := in.Cutoff
	if cut <= 0 || nItems == 0 || nUsers == 0 {
		return RankingResult{}
	}
	discount := make([]float64, cut)
	for p := range discount {
		discount[p] = 1 / math.Log2(float64(p)+2)
	}
	per := make([]userMetrics, nUsers)
	threads := max(in.Threads, 1)
	covered := make([][]bool, threads)
	var next atomic.Int64
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores := make([]float32, nItems)
			stamp := make([]int32, nItems) // stamp[i] == u+1: item i is excluded for user u
			held := make([]int32, nItems)  // held[i] == u+1: item i is relevant for user u
			top := newTopK(cut)
			cov := make([]bool, nItems)
			covered[t] = cov
			var rel []float32
			for {
				u := int(next.Add(1) - 1)
				if u >= nUsers {
					return
				}
				tlo, thi := in.Test.Ptr[u], in.Test.Ptr[u+1]
				if tlo == thi {
					continue
				}
				mark := int32(u + 1)
				if u < in.Train.Len() {
					for _, it := range in.Train.Col[in.Train.Ptr[u]:in.Train.Ptr[u+1]] {
						stamp[it] = mark
					}
				}
				// A held-out item also in training is not a candidate, so
				// it cannot be relevant.
				nRel := 0
				for _, it := range in.Test.Col[tlo:thi] {
					if stamp[it] != mark && held[it] != mark {
						held[it] = mark
						nRel++
					}
				}
				if nRel == 0 {
					continue
				}
				if pop != nil {
					copy(scores, pop)
				} else {
					xu := in.X[u*k : u*k+k]
					for i := 0; i < nItems; i++ {
						yi := in.Y[i*k : i*k+k]
						var s float32
						for c, a := range xu {
							s += a * yi[c]
						}
						scores[i] = s
					}
				}
				top.reset()
				rel = rel[:0]
				for i, s := range scores {
					if stamp[i] != mark {
						top.offer(int32(i), s)
						if held[i] == mark {
							rel = append(rel, s)
						}
					}
				}
				m := &per[u]
				m.ok = true
				m.auc, m.aucOK = userAUC(scores, stamp, held, mark, rel)
				var hits int
				var dcg, idcg, ap float64
				for p, it := range top.sorted() {
					cov[it] = true
					if held[it] == mark {
						hits++
						dcg += discount[p]
						ap += float64(hits) / float64(p+1)
					}
				}
				for p := 0; p < min(nRel, cut); p++ {
					idcg += discount[p]
				}
				m.prec = float64(hits) / float64(cut)
				m.rec = float64(hits) / float64(nRel)
				m.ap = ap / float64(min(nRel, cut))
				m.ndcg = dcg / idcg
			}
		}()
	}
	wg.Wait()
	var res RankingResult
	for _, m := range per {
		if !m.ok {
			continue
		}
		res.Users++
		res.Precision += m.prec
		res.Recall += m.rec
		res.MAP += m.ap
		res.NDCG += m.ndcg
		if m.aucOK {
			res.AUCUsers++
			res.AUC += m.auc
		}
	}
	if res.Users > 0 {
		n := float64(res.Users)
		res.Precision /= n
		res.Recall /= n
		res.MAP /= n
		res.NDCG /= n
	}
	if res.AUCUsers > 0 {
		res.AUC /= float64(res.AUCUsers)
	}
	nCovered := 0
	for i := 0; i < nItems; i++ {
		for _, cov := range covered {
			if cov[i] {
				nCovered++
				break
			}
		}
	}
	res.Coverage = float64(nCovered) / float64(nItems)
	return res
}

// userAUC is the fraction of (relevant, non-relevant candidate) pairs in
// the right order, ties counting half: rel holds the relevant items'
// scores, candidates are the items not stamped with mark, relevant ones
// are held with mark. It reports false when the user has no non-relevant
// candidate. It sorts rel.
func userAUC(scores []float32, stamp, held []int32, mark int32, rel []float32) (float64, bool) {
	slices.Sort(rel)
	m := len(rel)
	var right float64
	var others int64
	for i, s := range scores {
		if stamp[i] == mark || held[i] == mark {
			continue
		}
		others++
		// Relevant scores above s are pairs in the right order; equal
		// ones count half.
		lo, _ := slices.BinarySearch(rel, s)
		hi := lo
		for hi < m && rel[hi] == s {
			hi++
		}
		right += float64(m-hi) + 0.5*float64(hi-lo)
	}
	if others == 0 {
		return 0, false
	}
	return right / (float64(m) * float64(others)), true
}

// itemPopularity counts, for each of n items, the rows of train holding
// it.
func itemPopularity(train Rows, n int) []float32 {
	pop := make([]float32, n)
	if train.Len() == 0 {
		return pop
	}
	for _, it := range train.Col[train.Ptr[0]:train.Ptr[train.Len()]] {
		if int(it) < n {
			pop[it]++
		}
	}
	return pop
}

// topK keeps the K best (score, index) pairs seen: higher score first, lower
// index first among equal scores. It is a min-heap on that order.
type topK struct {
	k     int
	items []int32
	score []float32
}

func newTopK(k int) *topK {
	return &topK{k: k, items: make([]int32, 0, k), score: make([]float32, 0, k)}
}

func (t *topK) reset() { t.items, t.score = t.items[:0], t.score[:0] }

// worse reports whether entry a ranks below entry b.
func (t *topK) worse(a, b int) bool {
	if t.score[a] != t.score[b] {
		return t.score[a] < t.score[b]
	}
	return t.items[a] > t.items[b]
}

func (t *topK) swap(a, b int) {
	t.items[a], t.items[b] = t.items[b], t.items[a]
	t.score[a], t.score[b] = t.score[b], t.score[a]
}

func (t *topK) offer(item int32, s float32) {
	if len(t.items) < t.k {
		t.items = append(t.items, item)
		t.score = append(t.score, s)
		for c := len(t.items) - 1; c > 0; {
			p := (c - 1) / 2
			if !t.worse(c, p) {
				break
			}
			t.swap(c, p)
			c = p
		}
		return
	}
	// Replace the root (the worst kept) if the new entry ranks above it.
	if s < t.score[0] || (s == t.score[0] && item > t.items[0]) {
		return
	}
	t.items[0], t.score[0] = item, s
	t.down(0, len(t.items))
}

func (t *topK) down(p, n int) {
	for {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && t.worse(c+1, c) {
			c++
		}
		if !t.worse(c, p) {
			return
		}
		t.swap(c, p)
		p = c
	}
}

// sorted returns the kept items best first. The heap is unusable until reset.
func (t *topK) sorted() []int32 {
	n := len(t.items)
	for end := n - 1; end > 0; end-- {
		t.swap(0, end)
		t.down(0, end)
	}
	// Each pass moved the worst remaining entry to the end: best first.
	return t.items[:n]
}

// Recommend returns the n items with the highest score x·y_i (row-major
// items y, k = len(x) columns), best first, skipping the item indices in
// exclude (any order). Ties go to the lower item index.
func Recommend(x, y []float32, exclude []int32, n int) (items []int32, scores []float32) {
	k := len(x)
	if k == 0 || n <= 0 {
		return nil, nil
	}
	skip := make(map[int32]struct{}, len(exclude))
	for _, it := range exclude {
		skip[it] = struct{}{}
	}
	top := newTopK(n)
	for i := 0; i < len(y)/k; i++ {
		if _, ok := skip[int32(i)]; ok {
			continue
		}
		yi := y[i*k : i*k+k]
		var s float32
		for c, a := range x {
			s += a * yi[c]
		}
		top.offer(int32(i), s)
	}
	m := len(top.items)
	items = top.sorted()
	return items, top.score[:m]
}

// BlockErrors sums the squared and absolute errors of the ratings in rows
// (Col indexing other, like UpdateBlock's) against the predictions mean +
// x_r·other_c of the rows' factors x and the other side's rows (k values
// each: Config.Width), and counts them. Blocks' sums add up to Errors over
// the union of their ratings.
func BlockErrors(rows Rows, x, other []float32, k int, mean float32) (sse, sae float64, n int64) {
	for r := 0; r < rows.Len(); r++ {
		xr := x[r*k : r*k+k]
		for p := rows.Ptr[r]; p < rows.Ptr[r+1]; p++ {
			c := int(rows.Col[p])
			sse, sae = addError(sse, sae, rows.Val[p], mean, dotRow(xr, other[c*k:c*k+k]))
		}
		n += rows.Ptr[r+1] - rows.Ptr[r]
	}
	return sse, sae, n
}

// dotRow is x·y in float32, summed in order: BlockErrors and
// BlockErrorsThreads share it so that they round alike.
func dotRow(x, y []float32) float32 {
	y = y[:len(x)]
	var d float32
	for i, a := range x {
		d += a * y[i]
	}
	return d
}

// addError adds the error of rating v against the prediction mean + d.
func addError(sse, sae float64, v, mean, d float32) (float64, float64) {
	e := float64(v) - float64(mean) - float64(d)
	return sse + e*e, sae + math.Abs(e)
}

// errorsRound is how many ratings BlockErrorsThreads predicts before it
// sums their errors: 128 KiB of predictions.
const errorsRound = 1 << 15

// BlockErrorsThreads is BlockErrors with the predictions computed by up to
// threads goroutines. The errors are summed by one, in BlockErrors's
// order, so the result is BlockErrors's to the last bit — what a block's
// owner reports does not depend on how many threads it has. (A test set's
// predictions are a serial pass as long as a quarter of a rank-64
// iteration's row solves otherwise.)
func BlockErrorsThreads(rows Rows, x, other []float32, k int, mean float32, threads int) (sse, sae float64, n int64) {
	nr := rows.Len()
	if nr == 0 {
		return 0, 0, 0
	}
	lo, hi := rows.Ptr[0], rows.Ptr[nr]
	if threads <= 1 || hi-lo < 2*errorsRound {
		return BlockErrors(rows, x, other, k, mean)
	}
	d := make([]float32, errorsRound)
	// rowOf is the row of rating p, at or after row r.
	rowOf := func(p int64, r int) int {
		for rows.Ptr[r+1] <= p {
			r++
		}
		return r
	}
	r := 0 // the row of the round's first rating
	for p0 := lo; p0 < hi; p0 += errorsRound {
		p1 := min(p0+errorsRound, hi)
		r = rowOf(p0, r)
		var wg sync.WaitGroup
		step := (p1 - p0 + int64(threads) - 1) / int64(threads)
		for q0 := p0; q0 < p1; q0 += step {
			q1 := min(q0+step, p1)
			wg.Add(1)
			go func(q0, q1 int64) {
				defer wg.Done()
				row := rowAt(rows.Ptr, r, q0)
				for p := q0; p < q1; p++ {
					row = rowOf(p, row)
					c := int(rows.Col[p])
					d[p-p0] = dotRow(x[row*k:row*k+k], other[c*k:c*k+k])
				}
			}(q0, q1)
		}
		wg.Wait()
		for p := p0; p < p1; p++ {
			sse, sae = addError(sse, sae, rows.Val[p], mean, d[p-p0])
		}
	}
	return sse, sae, hi - lo
}

// rowAt is the row of rating p, searched from row r on: the last row
// whose ratings start at or before p (rows without ratings skipped).
func rowAt(ptr []int64, r int, p int64) int {
	n := len(ptr) - 1
	// The first row after r whose start is beyond p, less one.
	return r + sort.Search(n-r, func(i int) bool { return ptr[r+i+1] > p })
}
