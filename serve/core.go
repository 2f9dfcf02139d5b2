package serve

import (
	"math"
	"sync"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// Scored is one recommended item: its row in the snapshot and its score.
type Scored struct {
	Item  int32
	Score float32
}

// Filter narrows the items a query may return. Item rows outside the
// model are ignored.
type Filter struct {
	// Exclude lists items never to return.
	Exclude []int32
	// Restrict, when not nil, lists the only items that may be returned
	// (an empty, non-nil list returns nothing). Exclude still applies.
	Restrict []int32
	// ExcludeSeen drops the user's training items (Model.Seen). It applies
	// to queries for a user of the snapshot (RecommendUser); a snapshot
	// without seen items (not a job's final one) has nothing to drop.
	ExcludeSeen bool
}

// chunkItems is how many items are scored into the scratch buffer before
// they are offered to the top-K heap: the buffer stays in L1.
const chunkItems = 512

// scratch is one query's reusable space.
type scratch struct {
	scores []float32
	// mark[i] == gen: item i is excluded; == gen+1: item i was already
	// offered (Restrict may name an item twice). gen grows by two per
	// query, so marks of earlier queries never match and mark is never
	// cleared (until gen wraps).
	mark []uint32
	gen  uint32
	top  topK
}

var scratchPool = sync.Pool{New: func() any { return &scratch{scores: make([]float32, chunkItems)} }}

func getScratch(nItems int) *scratch {
	sc := scratchPool.Get().(*scratch)
	if len(sc.mark) < nItems {
		sc.mark, sc.gen = make([]uint32, nItems), 0
	}
	if sc.gen >= math.MaxUint32-4 {
		clear(sc.mark)
		sc.gen = 0
	}
	sc.gen += 2
	return sc
}

// source computes the scores of a query.
type source struct {
	kind   sourceKind
	x      []float32 // the query row
	y      []float32 // item factors, row-major
	k      int
	norms  []float32 // item norms (byCosine)
	qnorm  float32   // the query item's norm (byCosine)
	counts []int32   // item rating counts (byCount)
	offset float32   // added to every dot product (byDot): a model's global mean
}

type sourceKind int

const (
	byDot sourceKind = iota
	byCosine
	byCount
)

// fill writes the scores of items lo, lo+1, … into dst.
func (s *source) fill(dst []float32, lo int) {
	if s.kind == byCount {
		for j, c := range s.counts[lo : lo+len(dst)] {
			dst[j] = float32(c)
		}
		return
	}
	dotRows(dst, s.x, s.y[lo*s.k:(lo+len(dst))*s.k])
	if s.offset != 0 {
		for j := range dst {
			dst[j] += s.offset
		}
	}
	if s.kind == byCosine {
		for j, n := range s.norms[lo : lo+len(dst)] {
			if d := n * s.qnorm; d > 0 {
				dst[j] /= d
			} else {
				dst[j] = 0
			}
		}
	}
}

// rank returns the k best of n items by src's scores under f, also
// skipping the items in extra. Ties go to the lower item index; NaN
// scores are never returned.
func rank(src *source, n, k int, f Filter, extra []int32) []Scored {
	if k <= 0 || n == 0 {
		return []Scored{}
	}
	sc := getScratch(n)
	defer scratchPool.Put(sc)
	g := sc.gen
	excluding := false
	for _, list := range [2][]int32{f.Exclude, extra} {
		for _, i := range list {
			if uint(i) < uint(n) {
				sc.mark[i] = g
				excluding = true
			}
		}
	}
	top := &sc.top
	top.reset(min(k, n))
	if f.Restrict != nil {
		var one [1]float32
		for _, i := range f.Restrict {
			if uint(i) >= uint(n) || sc.mark[i] == g || sc.mark[i] == g+1 {
				continue
			}
			sc.mark[i] = g + 1
			src.fill(one[:], int(i))
			if s := one[0]; s == s {
				top.offer(Scored{Item: i, Score: s})
			}
		}
		return top.result()
	}
	for lo := 0; lo < n; lo += chunkItems {
		buf := sc.scores[:min(chunkItems, n-lo)]
		src.fill(buf, lo)
		for j, s := range buf {
			// Items come in index order, so a tie with the worst kept
			// pair loses: only a strictly higher score gets in.
			if top.full() && !(s > top.heap[0].Score) {
				continue
			}
			i := int32(lo + j)
			if excluding && sc.mark[i] == g {
				continue
			}
			if s == s {
				top.offer(Scored{Item: i, Score: s})
			}
		}
	}
	return top.result()
}

// Recommend returns the k items with the highest score x·y_i for the user
// factors userRow (len Rank), best first, ties to the lower item index.
// f.ExcludeSeen does not apply (a bare row has no training items; put a
// folded-in user's rated items in f.Exclude). Recommend allocates only
// its result.
func Recommend(m *checkpoint.Model, userRow []float32, k int, f Filter) []Scored {
	src := source{kind: byDot, x: userRow[:m.Rank], y: m.Y, k: m.Rank, offset: m.Mean()}
	return rank(&src, len(m.ItemIDs), k, f, nil)
}

// RecommendUser is Recommend for user row u of the snapshot; with
// f.ExcludeSeen it drops the user's training items. u must be a row of m.
func RecommendUser(m *checkpoint.Model, u int32, k int, f Filter) []Scored {
	src := source{kind: byDot, x: m.UserRow(u), y: m.Y, k: m.Rank, offset: m.Mean()}
	var seen []int32
	if f.ExcludeSeen {
		seen = m.Seen(u)
	}
	return rank(&src, len(m.ItemIDs), k, f, seen)
}

// Popular returns the k items with the most training ratings
// (Model.ItemCounts), ties to the lower item index, under f. The score of
// each is its rating count. It is the answer for a user the model knows
// nothing about: one without ratings, or an ID the snapshot lacks.
func Popular(m *checkpoint.Model, k int, f Filter) []Scored {
	src := source{kind: byCount, counts: m.ItemCounts}
	return rank(&src, len(m.ItemIDs), k, f, nil)
}

// Similar returns the k items most similar to item row i by the cosine of
// their factor rows (a model with biases: of their factors, without the
// bias columns), best first, ties to the lower index, never i itself. An
// item whose row is zero has similarity 0 to every item. Similar computes
// every item's norm; an Index computes them once.
func Similar(m *checkpoint.Model, i int32, k int) []Scored {
	return newLatent(m.Y, m.Rank, m.Manifest.FactorRank()).similar(i, k)
}

// SimilarUsers is Similar for users: the k users whose factor rows have
// the highest cosine with user row u's, never u itself.
func SimilarUsers(m *checkpoint.Model, u int32, k int) []Scored {
	return newLatent(m.X, m.Rank, m.Manifest.FactorRank()).similar(u, k)
}

// latent is one side's factors without bias columns, with their norms:
// what cosine similarity reads.
type latent struct {
	f     []float32 // rows × k, row-major
	k     int
	norms []float32
}

// newLatent keeps the first k of every row of f (stride width): f itself
// when k = width, else a compact copy.
func newLatent(f []float32, width, k int) *latent {
	l := &latent{f: f, k: k}
	if k != width {
		n := len(f) / width
		l.f = make([]float32, 0, n*k)
		for r := 0; r < n; r++ {
			l.f = append(l.f, f[r*width:r*width+k]...)
		}
	}
	l.norms = make([]float32, len(l.f)/k)
	for r := range l.norms {
		var s float64
		for _, v := range l.f[r*k : r*k+k] {
			s += float64(v) * float64(v)
		}
		l.norms[r] = float32(math.Sqrt(s))
	}
	return l
}

func (l *latent) similar(r int32, k int) []Scored {
	src := source{kind: byCosine, x: l.f[int(r)*l.k : int(r+1)*l.k], y: l.f, k: l.k, norms: l.norms, qnorm: l.norms[r]}
	self := [1]int32{r}
	return rank(&src, len(l.norms), k, Filter{}, self[:])
}
