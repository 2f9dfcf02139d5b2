package partition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
)

// Builder collects ratings as they are scanned, with provisional indices
// in order of first appearance. Its Add method is a RecordFunc.
type Builder struct {
	Users, Items *Dict
	U, I         []int32
	R            []float32
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{Users: NewDict(), Items: NewDict()}
}

// MaxRatings bounds one input's rating count: indices into a CSR row
// pointer are int64, but dense row and column indices are int32.
const MaxRatings = math.MaxInt32

// errTooMany is returned by Add past MaxRatings distinct IDs or ratings.
var errTooMany = errors.New("partition: more than 2^31-1 ratings or IDs")

// Add records one rating. It has the RecordFunc signature.
func (b *Builder) Add(user, item []byte, r float32) error {
	if len(b.R) >= MaxRatings {
		return errTooMany
	}
	b.U = append(b.U, b.Users.Add(user))
	b.I = append(b.I, b.Items.Add(item))
	b.R = append(b.R, r)
	return nil
}

// Len is the number of ratings added.
func (b *Builder) Len() int { return len(b.R) }

// ReadFile scans the ratings file at path into a new Builder. Errors name
// the file as path was given.
func ReadFile(ctx context.Context, path string, opts ScanOptions) (*Builder, ScanStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ScanStats{}, err
	}
	defer f.Close()
	if opts.Name == "" {
		opts.Name = path
	}
	b := NewBuilder()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		// Reserving avoids regrowth copies.
		n := estimateLines(f, 0, fi.Size())
		b.U, b.I, b.R = make([]int32, 0, n), make([]int32, 0, n), make([]float32, 0, n)
	}
	st, err := Scan(ctx, f, opts, b.Add)
	if err != nil {
		return nil, st, err
	}
	return b, st, nil
}

// CSR is a sparse matrix in compressed sparse row form: row r holds
// columns Col[Ptr[r]:Ptr[r+1]] (ascending) with values Val[...].
type CSR struct {
	Ptr []int64
	Col []int32
	Val []float32
}

// Rows is the number of rows.
func (c CSR) Rows() int { return max(len(c.Ptr)-1, 0) }

// NNZ is the number of stored entries.
func (c CSR) NNZ() int64 {
	if len(c.Ptr) == 0 {
		return 0
	}
	return c.Ptr[len(c.Ptr)-1]
}

// Dataset is a training set in canonical form plus the test set mapped onto
// it. Only users and items with at least one training rating exist.
type Dataset struct {
	Users, Items *Dict
	ByUser       CSR // rows: users; Col: item indices
	ByItem       CSR // rows: items; Col: user indices
	// Duplicates counts (user, item) pairs given more than once in the
	// training input (and, for a fraction split, in its test part); the
	// last one given is kept.
	Duplicates int64
	Test       TestSet
}

// TestSet is held-out ratings in the Dataset's indices, sorted by user and
// item.
type TestSet struct {
	U, I []int32
	R    []float32
	// Total counts the test ratings read (after duplicates are dropped);
	// Skipped of them name a user or item absent from training and are
	// not in U, I, R.
	Total, Skipped int64
	// Duplicates in a separate test file (last one kept).
	Duplicates int64
}

// SplitOptions choose how a test set is held out of a single input.
type SplitOptions struct {
	// TestFraction of the (user, item) pairs goes to the test set, chosen
	// by a hash of (Seed, user ID, item ID): the split does not depend on
	// input order, and every copy of a duplicated pair lands on one side.
	TestFraction float64
	Seed         uint64
	// Folds > 0 cuts the pairs into Folds hash folds instead (the same
	// hash, cut into equal ranges) and holds out fold Fold (0-based): the
	// folds of one seed partition the input, for cross-validation.
	// TestFraction must then be 0.
	Folds, Fold int
}

// splits reports whether the options hold a test part out of the input.
func (o SplitOptions) splits() bool { return o.TestFraction > 0 || o.Folds > 0 }

// inTest reports whether a pair of hash h is a test pair.
func (o SplitOptions) inTest(h uint64) bool {
	if o.Folds > 0 {
		// The fold index is floor((h >> 11) · Folds / 2⁵³), exactly.
		fold, _ := bits.Mul64(h>>11, uint64(o.Folds)<<11)
		return fold == uint64(o.Fold)
	}
	return h>>11 < o.testLimit()
}

// NewDataset builds a Dataset from train. The test set is test when it is
// not nil (then opt.TestFraction must be 0), otherwise opt.TestFraction of
// train. train is consumed: its slices are reused.
func NewDataset(train, test *Builder, opt SplitOptions) (*Dataset, error) {
	if !(opt.TestFraction >= 0 && opt.TestFraction < 1) {
		return nil, fmt.Errorf("partition: test fraction %g outside [0, 1)", opt.TestFraction)
	}
	if test != nil && opt.splits() {
		return nil, errors.New("partition: a test file and a test fraction cannot both be given")
	}
	if opt.Folds < 0 || (opt.Folds > 0 && (opt.Fold < 0 || opt.Fold >= opt.Folds || opt.TestFraction > 0)) {
		return nil, fmt.Errorf("partition: fold %d of %d folds (with test fraction %g)", opt.Fold, opt.Folds, opt.TestFraction)
	}
	var tu, ti []int32
	var tr []float32
	if opt.splits() {
		train, tu, ti, tr = splitByHash(train, opt)
	}
	if len(train.R) == 0 {
		return nil, fmt.Errorf("%w: the training part is empty", ErrEmpty)
	}
	// Canonical indices for the users and items that have training ratings.
	threads := runtime.GOMAXPROCS(0)
	userMap, users := canonicalMap(train.Users, train.U)
	itemMap, items := canonicalMap(train.Items, train.I)
	remapThreads(train.U, userMap, threads)
	remapThreads(train.I, itemMap, threads)
	ds := &Dataset{Users: users, Items: items}
	big := len(train.R) >= releaseBytes/12
	if big {
		// The parsers' garbage goes back to the system before the largest
		// allocation of the load: its pieces are too small to hold the
		// sorted arrays, so they would stay resident beside them. (Forced
		// collections cost a few milliseconds: the ratings' arrays hold no
		// pointers to mark.)
		debug.FreeOSMemory()
	}
	ds.ByUser, ds.Duplicates = buildCSR(users.Len(), train.U, train.I, train.R, threads)
	// The triplets are consumed: dropping them before the transpose keeps
	// them and both orientations from being live at once (12 of the 28
	// bytes a rating would take at this peak).
	train.U, train.I, train.R = nil, nil, nil
	if big {
		// Collect them before the next arrays are allocated: the heap
		// would otherwise grow on top of them (the collector's goal still
		// counts them live), and that is the loader's peak.
		runtime.GC()
	}

	// The test set is mapped before the transpose, so that its passes
	// run beside one orientation of the training ratings, not two.
	switch {
	case test != nil:
		um := mapByID(test.Users, users)
		im := mapByID(test.Items, items)
		ds.Test = mapTest(test.U, test.I, test.R, um, im, users.Len(), items.Len(), threads)
		test.U, test.I, test.R = nil, nil, nil
	case opt.splits():
		// Both parts came from one input: its duplicates are one count.
		ds.Test = mapTest(tu, ti, tr, userMap, itemMap, users.Len(), items.Len(), threads)
		ds.Duplicates += ds.Test.Duplicates
		ds.Test.Duplicates = 0
	}
	if big {
		// The provisional user indices and the test part's first copies
		// are garbage: handed back to the system, the transpose's arrays
		// do not land on fresh pages beside them.
		debug.FreeOSMemory()
	}
	ds.ByItem = transposeThreads(ds.ByUser, items.Len(), threads)
	return ds, nil
}

// splitByHash moves the test fraction of b's ratings into the returned
// slices, keeping the rest in b (in input order).
func splitByHash(b *Builder, opt SplitOptions) (*Builder, []int32, []int32, []float32) {
	uh := idHashes(b.Users, opt.Seed, 'u')
	ih := idHashes(b.Items, opt.Seed, 'i')
	// Reserved at its expected size (the hash makes the count binomial:
	// 8 standard deviations cover it but for inputs of few distinct
	// pairs, which then regrow), the test part leaves no regrowth garbage
	// of up to its own size beside the whole input at the loader's
	// fullest moment.
	all := float64(len(b.R))
	f := opt.TestFraction
	if opt.Folds > 0 {
		f = 1 / float64(opt.Folds)
	}
	want := int(all*f + 8*math.Sqrt(all*f*(1-f)) + 1024)
	tu, ti, tr := make([]int32, 0, want), make([]int32, 0, want), make([]float32, 0, want)
	keep := 0
	for j := range b.R {
		h := pairHash(uh[b.U[j]], ih[b.I[j]])
		if opt.inTest(h) {
			tu = append(tu, b.U[j])
			ti = append(ti, b.I[j])
			tr = append(tr, b.R[j])
			continue
		}
		b.U[keep], b.I[keep], b.R[keep] = b.U[j], b.I[j], b.R[j]
		keep++
	}
	// The test part's items and ratings move into the room the training
	// part left at the end of its arrays (in input order, as read): the
	// training CSR, which keeps those arrays, then holds no unused
	// capacity, and the copies above are garbage before the CSRs are
	// built. The capacities stop either part's appends at the other.
	n := len(b.R)
	copy(b.I[keep:n], ti)
	copy(b.R[keep:n], tr)
	ti, tr = b.I[keep:n:n], b.R[keep:n:n]
	b.U, b.I, b.R = b.U[:keep], b.I[:keep:keep], b.R[:keep:keep]
	return b, tu, ti, tr
}

func idHashes(d *Dict, seed uint64, tag byte) []uint64 {
	hs := make([]uint64, d.Len())
	for i, s := range d.IDs() {
		hs[i] = idHash(s, seed, tag)
	}
	return hs
}

// idHash is the split's hash of one ID: FNV-1a over the tag and the bytes,
// mixed with the seed.
func idHash[T string | []byte](s T, seed uint64, tag byte) uint64 {
	f := uint64(0xcbf29ce484222325) ^ uint64(tag)
	for j := 0; j < len(s); j++ {
		f ^= uint64(s[j])
		f *= 0x100000001b3
	}
	return mix64(f ^ mix64(seed))
}

// pairHash combines the hashes of a user and an item into the pair's.
func pairHash(uh, ih uint64) uint64 { return mix64(uh ^ (ih<<32 | ih>>32)) }

// testLimit is the bound under which a pair's hash (>> 11) is a test pair.
func (o SplitOptions) testLimit() uint64 { return uint64(o.TestFraction * (1 << 53)) }

// InTest reports whether the pair (user, item) is held out as a test
// pair: the rule NewDataset applies, decided from the pair alone.
func (o SplitOptions) InTest(user, item []byte) bool {
	if !o.splits() {
		return false
	}
	return o.inTest(pairHash(idHash(user, o.Seed, 'u'), idHash(item, o.Seed, 'i')))
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// canonicalMap returns, for each provisional index of d, its canonical
// index among the IDs that occur in used (-1 for the others), and the
// canonical dictionary.
func canonicalMap(d *Dict, used []int32) ([]int32, *Dict) {
	keep := make([]bool, d.Len())
	for _, i := range used {
		keep[i] = true
	}
	order := d.canonical(keep)
	m := make([]int32, d.Len())
	for i := range m {
		m[i] = -1
	}
	ids := make([]string, len(order))
	for n, old := range order {
		m[old] = int32(n)
		ids[n] = d.ids[old]
	}
	nd, _ := DictFromIDs(ids) // IDs of a Dict are distinct
	return m, nd
}

func remap(xs []int32, m []int32) {
	for j, x := range xs {
		xs[j] = m[x]
	}
}

// mapByID maps the indices of d onto canonical's (-1: absent).
func mapByID(d, canonical *Dict) []int32 {
	m := make([]int32, d.Len())
	for i, s := range d.IDs() {
		if c, ok := canonical.LookupString(s); ok {
			m[i] = c
		} else {
			m[i] = -1
		}
	}
	return m
}

// mapTest removes duplicate pairs from raw test triplets (last one kept,
// counted in Duplicates), maps them onto canonical indices, and drops (and
// counts in Skipped) those with a user or item absent from training.
// um and im map the raw indices onto canonical ones (-1: absent); nUsers
// and nItems are the canonical counts. It consumes u, i and r: the
// TestSet's arrays are theirs. Its sort runs on up to threads goroutines.
//
// One sort does it all: the absent IDs are numbered after the canonical
// ones (extendMap), so that the pairs map one to one and their duplicates
// are those of the raw pairs, and a pair to drop sorts into a row from
// nUsers on or to the end of its row. (Sorting the raw indices first and
// the canonical ones again, the mapping sorted every row twice; the
// canonical order is usually the input's, so rows now rarely need a
// sort at all.)
func mapTest(u, i []int32, r []float32, um, im []int32, nUsers, nItems, threads int) TestSet {
	ue, nu := extendMap(um, nUsers)
	ie, _ := extendMap(im, nItems)
	remap(u, ue)
	remap(i, ie)
	csr, dups := buildCSR(nu, u, i, r, threads)
	ts := TestSet{Duplicates: dups, Total: csr.NNZ()}
	// u is free once buildCSR returns: it takes the kept pairs' users.
	out := 0
	for row := range nUsers {
		for p := csr.Ptr[row]; p < csr.Ptr[row+1] && csr.Col[p] < int32(nItems); p++ {
			u[out], csr.Col[out], csr.Val[out] = int32(row), csr.Col[p], csr.Val[p]
			out++
		}
	}
	ts.Skipped = ts.Total - int64(out)
	ts.U, ts.I, ts.R = u[:out:out], csr.Col[:out:out], csr.Val[:out:out]
	if cap(u) > out+out/8 {
		// Slack (a small split's reservation) or many pairs dropped:
		// copies, so that the job does not hold the rest for its life.
		ts.U, ts.I, ts.R = slices.Clone(ts.U), slices.Clone(ts.I), slices.Clone(ts.R)
	}
	return ts
}

// buildCSR sorts triplets into CSR form by row, columns ascending within a
// row, and drops duplicate (row, col) pairs keeping the one given last. It
// consumes its arguments: the CSR's columns and values are cols and vals,
// permuted in place, and rows is overwritten. Sorting in place, the
// loader's largest step holds the triplets (12 bytes a rating) rather
// than the triplets and a sorted copy (20).
//
// The ratings are moved and the rows sorted on up to threads goroutines
// (permute, packRows).
func buildCSR(nRows int, rows, cols []int32, vals []float32, threads int) (CSR, int64) {
	ptr := make([]int64, nRows+1)
	for _, r := range rows {
		ptr[r+1]++
	}
	for r := 0; r < nRows; r++ {
		ptr[r+1] += ptr[r]
	}
	// A stable counting sort (input order kept within a row): rows[j]
	// becomes rating j's position in the sorted order, and the ratings
	// are moved there in place (permute).
	fill := slices.Clone(ptr[:nRows])
	for j, r := range rows {
		rows[j] = int32(fill[r])
		fill[r]++
	}
	permute(rows, cols, vals, permuteShift, threads)
	dups := packRows(ptr, cols, vals, threads)
	out := ptr[nRows]
	return CSR{Ptr: ptr, Col: cols[:out:out], Val: vals[:out:out]}, dups
}

// transpose returns the CSR of m's transpose, which has nCols rows. Rows of
// the result list m's rows in ascending order.
func transpose(m CSR, nCols int) CSR {
	ptr := make([]int64, nCols+1)
	for _, c := range m.Col {
		ptr[c+1]++
	}
	for c := 0; c < nCols; c++ {
		ptr[c+1] += ptr[c]
	}
	col := make([]int32, len(m.Col))
	val := make([]float32, len(m.Val))
	fill := slices.Clone(ptr[:nCols])
	for r := 0; r < m.Rows(); r++ {
		for p := m.Ptr[r]; p < m.Ptr[r+1]; p++ {
			c := m.Col[p]
			q := fill[c]
			col[q], val[q] = int32(r), m.Val[p]
			fill[c] = q + 1
		}
	}
	return CSR{Ptr: ptr, Col: col, Val: val}
}
