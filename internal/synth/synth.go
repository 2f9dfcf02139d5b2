// Package synth generates synthetic rating sets with a known low-rank
// truth: ratings x_u·y_i + N(0, σ²) for explicit data, or interaction
// strengths driven by x_u·y_i for implicit data, over user and item
// popularity that is skewed like real catalogues (log-normal user activity,
// Zipf item popularity).
//
// # Determinism
//
// Every random draw comes from a generator seeded by (seed, user) or
// (seed, item), so the output is a pure function of the Config: the same
// flags give the same bytes, whatever the number of threads.
package synth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// Config describes a synthetic set.
type Config struct {
	Users, Items int
	Ratings      int64 // exact number of (user, item) pairs
	Rank         int   // rank of the truth
	Noise        float64
	Seed         uint64
	Implicit     bool
	// ZipfExponent shapes item popularity: item i (in a seeded random
	// order) is drawn with weight 1/(i+1)^ZipfExponent.
	ZipfExponent float64
	Threads      int
}

// DefaultConfig is a MovieLens-100K-sized explicit set.
func DefaultConfig() Config {
	return Config{Users: 1000, Items: 1700, Ratings: 100_000, Rank: 10, Noise: 0.5, Seed: 1, ZipfExponent: 0.8}
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("synth: invalid configuration")

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Users < 1 || c.Users > math.MaxInt32:
		return fmt.Errorf("%w: users %d outside 1..%d", ErrConfig, c.Users, math.MaxInt32)
	case c.Items < 1 || c.Items > math.MaxInt32:
		return fmt.Errorf("%w: items %d outside 1..%d", ErrConfig, c.Items, math.MaxInt32)
	case c.Ratings < 1:
		return fmt.Errorf("%w: ratings %d must be ≥ 1", ErrConfig, c.Ratings)
	case c.Ratings > int64(c.Users)*int64(c.Items)/2:
		return fmt.Errorf("%w: %d ratings is more than half of the %d×%d matrix", ErrConfig, c.Ratings, c.Users, c.Items)
	case c.Rank < 1 || c.Rank > 1024:
		return fmt.Errorf("%w: rank %d outside 1..1024", ErrConfig, c.Rank)
	case !(c.Noise >= 0) || math.IsInf(c.Noise, 0):
		return fmt.Errorf("%w: noise %g must be a finite number ≥ 0", ErrConfig, c.Noise)
	case !(c.ZipfExponent >= 0) || c.ZipfExponent > 5:
		return fmt.Errorf("%w: zipf exponent %g outside 0..5", ErrConfig, c.ZipfExponent)
	}
	return nil
}

// Set is a generator for one Config: the truth factors, popularity and
// per-user activity, computed once.
type Set struct {
	cfg    Config
	items  [][]float64 // truth item factors
	order  []int32     // popularity rank → item
	cdf    []float64   // cumulative popularity by rank
	counts []int32     // ratings per user
}

// New prepares a generator.
func New(cfg Config) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Set{cfg: cfg}
	scale := math.Pow(float64(cfg.Rank), -0.25) // x·y then has unit variance
	s.items = make([][]float64, cfg.Items)
	for i := range s.items {
		s.items[i] = factor(rng(cfg.Seed, 2, uint64(i)), cfg.Rank, scale)
	}
	s.order = make([]int32, cfg.Items)
	for i := range s.order {
		s.order[i] = int32(i)
	}
	rng(cfg.Seed, 3, 0).Shuffle(len(s.order), func(a, b int) { s.order[a], s.order[b] = s.order[b], s.order[a] })
	s.cdf = make([]float64, cfg.Items)
	var acc float64
	for r := range s.cdf {
		acc += math.Pow(float64(r+1), -cfg.ZipfExponent)
		s.cdf[r] = acc
	}
	s.counts = activity(cfg)
	return s, nil
}

// activity splits cfg.Ratings over users in proportion to log-normal
// weights, each user getting at least minPer (20, as in MovieLens, or half
// the mean when that is smaller) and at most half the items.
func activity(cfg Config) []int32 {
	minPer := max(min(20, cfg.Ratings/int64(cfg.Users)/2), 1)
	w := make([]float64, cfg.Users)
	var sum float64
	for u := range w {
		w[u] = math.Exp(0.8 * rng(cfg.Seed, 4, uint64(u)).NormFloat64())
		sum += w[u]
	}
	maxPer := int64(max(cfg.Items/2, 1))
	counts := make([]int32, cfg.Users)
	var total int64
	for u := range counts {
		c := int64(math.Floor(float64(cfg.Ratings) * w[u] / sum))
		c = max(min(c, maxPer), minPer)
		counts[u] = int32(c)
		total += c
	}
	// Settle the rounding difference one rating at a time, heaviest
	// users first (a fixed order, so the result is deterministic).
	byWeight := make([]int, cfg.Users)
	for u := range byWeight {
		byWeight[u] = u
	}
	sort.SliceStable(byWeight, func(a, b int) bool { return w[byWeight[a]] > w[byWeight[b]] })
	for total != cfg.Ratings {
		changed := false
		for _, u := range byWeight {
			if total < cfg.Ratings && int64(counts[u]) < maxPer {
				counts[u]++
				total++
				changed = true
			} else if total > cfg.Ratings && int64(counts[u]) > minPer {
				counts[u]--
				total--
				changed = true
			}
			if total == cfg.Ratings {
				break
			}
		}
		if !changed { // cannot happen after Validate's density bound
			break
		}
	}
	return counts
}

func rng(seed uint64, stream, i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x6a09e667f3bcc909*(stream+1), i*0x9e3779b97f4a7c15+stream))
}

func factor(r *rand.Rand, k int, scale float64) []float64 {
	f := make([]float64, k)
	for c := range f {
		f[c] = r.NormFloat64() * scale
	}
	return f
}

// User generates user u's ratings (0-based indices) in ascending item
// order, appending to items and ratings.
func (s *Set) User(u int, items []int32, ratings []float32) ([]int32, []float32) {
	cfg := s.cfg
	r := rng(cfg.Seed, 1, uint64(u))
	x := factor(r, cfg.Rank, math.Pow(float64(cfg.Rank), -0.25))
	n := int(s.counts[u])
	start := len(items)
	if n > cfg.Items/8 {
		items = s.heavyUser(r, x, n, items)
	} else {
		chosen := make(map[int32]struct{}, n)
		total := s.cdf[len(s.cdf)-1]
		for len(chosen) < n {
			rank := sort.SearchFloat64s(s.cdf, r.Float64()*total)
			it := s.order[min(rank, len(s.order)-1)]
			if _, dup := chosen[it]; dup {
				continue
			}
			if cfg.Implicit && r.Float64() > s.affinity(x, it) {
				continue
			}
			chosen[it] = struct{}{}
			items = append(items, it)
		}
	}
	slices.Sort(items[start:])
	for _, it := range items[start:] {
		v := dot(x, s.items[it]) + cfg.Noise*r.NormFloat64()
		if cfg.Implicit {
			v = math.Max(1, math.Round(math.Exp(v))) // a count
		}
		ratings = append(ratings, float32(v))
	}
	return items, ratings
}

// affinity is the probability that an implicit user interacts with an item
// drawn by popularity: sigmoid(2·x·y), so interactions carry the truth.
func (s *Set) affinity(x []float64, it int32) float64 {
	return 1 / (1 + math.Exp(-2*dot(x, s.items[it])))
}

// heavyUser draws n distinct items for a user who rates a large share of
// the catalogue, where rejection sampling would spin: weighted sampling
// without replacement by exponential keys (Efraimidis–Spirakis), exact and
// O(items·log items).
func (s *Set) heavyUser(r *rand.Rand, x []float64, n int, items []int32) []int32 {
	type keyed struct {
		key float64
		it  int32
	}
	keys := make([]keyed, len(s.order))
	prev := 0.0
	for rank, it := range s.order {
		w := s.cdf[rank] - prev
		prev = s.cdf[rank]
		if s.cfg.Implicit {
			w *= s.affinity(x, it)
		}
		keys[rank] = keyed{math.Log(1-r.Float64()) / w, it}
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		switch {
		case a.key > b.key:
			return -1
		case a.key < b.key:
			return 1
		}
		return int(a.it) - int(b.it)
	})
	for _, k := range keys[:n] {
		items = append(items, k.it)
	}
	return items
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// usersPerChunk is the unit of parallel generation.
const usersPerChunk = 256

// inOrder runs produce(c) for chunks c = 0..n-1 on up to threads goroutines
// and hands the results to consume in chunk order, with at most 2·threads
// results waiting. It stops at the first consume error or when ctx ends.
func inOrder[T any](ctx context.Context, threads, n int, produce func(c int) T, consume func(T) error) error {
	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	results := make([]chan T, n)
	for c := range results {
		results[c] = make(chan T, 1)
	}
	sem := make(chan struct{}, 2*threads)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := 0; c < n; c++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				results[c] <- produce(c)
			}(c)
		}
	}()
	var err error
	for c := 0; c < n && err == nil; c++ {
		select {
		case r := <-results[c]:
			err = consume(r)
			<-sem
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	wg.Wait()
	return err
}

func (s *Set) chunks() int { return (s.cfg.Users + usersPerChunk - 1) / usersPerChunk }

// Each generates the ratings user by user, in parallel, and calls fn for
// every user in order with 0-based indices; items ascend. The slices are
// only valid during the call.
func (s *Set) Each(ctx context.Context, fn func(u int, items []int32, ratings []float32) error) error {
	type chunk struct {
		lo      int
		ptr     []int
		items   []int32
		ratings []float32
	}
	return inOrder(ctx, s.cfg.Threads, s.chunks(), func(c int) chunk {
		ch := chunk{lo: c * usersPerChunk, ptr: []int{0}}
		for u := ch.lo; u < min(ch.lo+usersPerChunk, s.cfg.Users); u++ {
			ch.items, ch.ratings = s.User(u, ch.items, ch.ratings)
			ch.ptr = append(ch.ptr, len(ch.items))
		}
		return ch
	}, func(ch chunk) error {
		for j := 0; j+1 < len(ch.ptr); j++ {
			a, b := ch.ptr[j], ch.ptr[j+1]
			if err := fn(ch.lo+j, ch.items[a:b], ch.ratings[a:b]); err != nil {
				return err
			}
		}
		return nil
	})
}

// WriteCSV writes the set as CSV with the header user,item,rating and
// 1-based integer IDs, users in order, each user's items ascending.
func (s *Set) WriteCSV(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString("user,item,rating\n"); err != nil {
		return err
	}
	err := inOrder(ctx, s.cfg.Threads, s.chunks(), func(c int) []byte {
		return s.formatUsers(c*usersPerChunk, min((c+1)*usersPerChunk, s.cfg.Users))
	}, func(b []byte) error {
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func (s *Set) formatUsers(lo, hi int) []byte {
	var buf []byte
	var items []int32
	var ratings []float32
	for u := lo; u < hi; u++ {
		items, ratings = s.User(u, items[:0], ratings[:0])
		for j, it := range items {
			buf = strconv.AppendInt(buf, int64(u)+1, 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(it)+1, 10)
			buf = append(buf, ',')
			if s.cfg.Implicit {
				buf = strconv.AppendInt(buf, int64(ratings[j]), 10)
			} else {
				buf = strconv.AppendFloat(buf, float64(ratings[j]), 'f', 4, 32)
			}
			buf = append(buf, '\n')
		}
	}
	return buf
}
