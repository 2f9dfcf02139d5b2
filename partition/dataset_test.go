package partition

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func builderOf(t *testing.T, triplets ...string) *Builder {
	t.Helper()
	b := NewBuilder()
	for j := 0; j+2 < len(triplets); j += 3 {
		r, err := strconv.ParseFloat(triplets[j+2], 32)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add([]byte(triplets[j]), []byte(triplets[j+1]), float32(r)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// dense returns the dataset's training ratings as "user/item=rating" in
// external IDs, sorted, which is what must not depend on input order.
func dense(ds *Dataset) []string {
	var out []string
	m := ds.ByUser
	for u := 0; u < m.Rows(); u++ {
		for p := m.Ptr[u]; p < m.Ptr[u+1]; p++ {
			out = append(out, fmt.Sprintf("%s/%s=%g", ds.Users.ID(int32(u)), ds.Items.ID(m.Col[p]), m.Val[p]))
		}
	}
	return out
}

func TestNewDatasetDuplicatesLastWins(t *testing.T) {
	t.Parallel()
	b := builderOf(t, "u1", "a", "1", "u2", "a", "2", "u1", "a", "5", "u1", "b", "3", "u1", "a", "4")
	ds, err := NewDataset(b, nil, SplitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Duplicates != 2 {
		t.Errorf("duplicates = %d, want 2", ds.Duplicates)
	}
	want := []string{"u1/a=4", "u1/b=3", "u2/a=2"}
	if got := dense(ds); !slices.Equal(got, want) {
		t.Errorf("ratings = %v, want %v", got, want)
	}
}

func TestCanonicalOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"numeric", []string{"10", "2", "1", "33"}, []string{"1", "2", "10", "33"}},
		{"strings", []string{"bob", "alice", "Carol"}, []string{"Carol", "alice", "bob"}},
		{"leading zero makes it bytewise", []string{"7", "07", "10"}, []string{"07", "10", "7"}},
		{"negative is not numeric", []string{"-1", "2", "10"}, []string{"-1", "10", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder()
			for _, id := range tc.ids {
				b.Add([]byte(id), []byte("item"), 1)
			}
			ds, err := NewDataset(b, nil, SplitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ds.Users.IDs(); !slices.Equal(got, tc.want) {
				t.Errorf("order = %v, want %v", got, tc.want)
			}
		})
	}
}

// randomTriplets returns n ratings over nu users and ni items, with some
// duplicate pairs, as parallel string slices.
func randomTriplets(seed uint64, n, nu, ni int) (u, i []string, r []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for j := 0; j < n; j++ {
		u = append(u, strconv.Itoa(rng.IntN(nu)))
		i = append(i, "m"+strconv.Itoa(rng.IntN(ni)))
		r = append(r, float32(rng.IntN(10)+1)/2)
	}
	return u, i, r
}

func TestDatasetIndependentOfInputOrder(t *testing.T) {
	t.Parallel()
	u, i, r := randomTriplets(1, 3000, 80, 50)
	// Distinct pairs only: with duplicates, "last wins" depends on order
	// by definition.
	seen := map[string]bool{}
	var pu, pi []string
	var pr []float32
	for j := range r {
		if key := u[j] + "/" + i[j]; !seen[key] {
			seen[key] = true
			pu, pi, pr = append(pu, u[j]), append(pi, i[j]), append(pr, r[j])
		}
	}
	build := func(perm []int) *Dataset {
		b := NewBuilder()
		for _, j := range perm {
			b.Add([]byte(pu[j]), []byte(pi[j]), pr[j])
		}
		ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.2, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	perm := make([]int, len(pr))
	for j := range perm {
		perm[j] = j
	}
	a := build(perm)
	rand.New(rand.NewPCG(2, 2)).Shuffle(len(perm), func(x, y int) { perm[x], perm[y] = perm[y], perm[x] })
	b := build(perm)
	if !slices.Equal(dense(a), dense(b)) {
		t.Error("training set depends on input order")
	}
	if !slices.Equal(a.Users.IDs(), b.Users.IDs()) || !slices.Equal(a.Items.IDs(), b.Items.IDs()) {
		t.Error("dictionaries depend on input order")
	}
	if !slices.Equal(a.Test.U, b.Test.U) || !slices.Equal(a.Test.I, b.Test.I) || !slices.Equal(a.Test.R, b.Test.R) {
		t.Error("test set depends on input order")
	}
	frac := float64(a.Test.Total) / float64(len(pr))
	if frac < 0.15 || frac > 0.25 {
		t.Errorf("test fraction %.3f, want about 0.2", frac)
	}
	if a.ByUser.NNZ()+a.Test.Total != int64(len(pr)) {
		t.Errorf("train %d + test %d != %d ratings", a.ByUser.NNZ(), a.Test.Total, len(pr))
	}
}

func TestSplitKeepsDuplicatesTogether(t *testing.T) {
	t.Parallel()
	b := NewBuilder()
	for j := 0; j < 400; j++ {
		id := []byte(strconv.Itoa(j))
		b.Add(id, []byte("x"), 1)
		b.Add([]byte("anchor"), id, 1) // keeps every item warm
		b.Add(id, []byte("x"), 2)      // a duplicate of the first
	}
	ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Duplicates != 400 {
		t.Errorf("duplicates = %d, want 400 (each pair counted once, wherever it landed)", ds.Duplicates)
	}
	// No pair may be both in training and in the test set.
	x, _ := ds.Items.LookupString("x")
	for j, u := range ds.Test.U {
		if ds.Test.I[j] != x {
			continue
		}
		row := ds.ByUser.Col[ds.ByUser.Ptr[u]:ds.ByUser.Ptr[u+1]]
		if slices.Contains(row, x) {
			t.Fatalf("user %s's pair with x is in both parts", ds.Users.ID(u))
		}
		if ds.Test.R[j] != 2 {
			t.Fatalf("test rating %g, want the last copy's 2", ds.Test.R[j])
		}
	}
}

func TestTestFileMapping(t *testing.T) {
	t.Parallel()
	train := builderOf(t, "1", "a", "4", "2", "b", "3", "2", "a", "1")
	test := builderOf(t, "1", "b", "5", "3", "a", "2", "1", "zz", "1", "2", "a", "2", "2", "a", "3")
	ds, err := NewDataset(train, test, SplitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Test.Skipped != 2 || ds.Test.Duplicates != 1 || ds.Test.Total != 4 {
		t.Errorf("skipped %d duplicates %d total %d, want 2 1 4", ds.Test.Skipped, ds.Test.Duplicates, ds.Test.Total)
	}
	var got []string
	for j := range ds.Test.R {
		got = append(got, fmt.Sprintf("%s/%s=%g", ds.Users.ID(ds.Test.U[j]), ds.Items.ID(ds.Test.I[j]), ds.Test.R[j]))
	}
	if want := []string{"1/b=5", "2/a=3"}; !slices.Equal(got, want) {
		t.Errorf("test = %v, want %v", got, want)
	}
	if _, err := NewDataset(builderOf(t, "1", "a", "1"), builderOf(t, "1", "a", "1"), SplitOptions{TestFraction: 0.1}); err == nil {
		t.Error("a test file and a fraction together were accepted")
	}
}

func TestTransposeAndOnlyWarmIDs(t *testing.T) {
	t.Parallel()
	u, i, r := randomTriplets(5, 2000, 60, 40)
	b := NewBuilder()
	for j := range r {
		b.Add([]byte(u[j]), []byte(i[j]), r[j])
	}
	ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for row := 0; row < ds.ByUser.Rows(); row++ {
		if ds.ByUser.Ptr[row] == ds.ByUser.Ptr[row+1] {
			t.Fatalf("user %s has no training rating but is in the dictionary", ds.Users.ID(int32(row)))
		}
	}
	seen := map[[2]int32]float32{}
	for row := 0; row < ds.ByUser.Rows(); row++ {
		cols := ds.ByUser.Col[ds.ByUser.Ptr[row]:ds.ByUser.Ptr[row+1]]
		if !slices.IsSorted(cols) {
			t.Fatalf("row %d not sorted", row)
		}
		for p := ds.ByUser.Ptr[row]; p < ds.ByUser.Ptr[row+1]; p++ {
			seen[[2]int32{int32(row), ds.ByUser.Col[p]}] = ds.ByUser.Val[p]
		}
	}
	n := 0
	for it := 0; it < ds.ByItem.Rows(); it++ {
		cols := ds.ByItem.Col[ds.ByItem.Ptr[it]:ds.ByItem.Ptr[it+1]]
		if !slices.IsSorted(cols) || len(cols) == 0 {
			t.Fatalf("item row %d unsorted or empty", it)
		}
		for p := ds.ByItem.Ptr[it]; p < ds.ByItem.Ptr[it+1]; p++ {
			if v, ok := seen[[2]int32{ds.ByItem.Col[p], int32(it)}]; !ok || v != ds.ByItem.Val[p] {
				t.Fatalf("item %d user %d: not the transpose", it, ds.ByItem.Col[p])
			}
			n++
		}
	}
	if n != len(seen) {
		t.Fatalf("transpose has %d entries, want %d", n, len(seen))
	}
}

func TestBalancedBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		counts []int64
		parts  int
		want   []int32
	}{
		{[]int64{5, 5, 5, 5}, 2, []int32{0, 2, 4}},
		{[]int64{5, 5, 5, 5}, 4, []int32{0, 1, 2, 3, 4}},
		{[]int64{5, 5}, 7, []int32{0, 1, 2}},            // clamped to the row count
		{[]int64{100, 1, 1, 1}, 2, []int32{0, 1, 4}},    // one heavy row
		{[]int64{1, 1, 1, 100}, 3, []int32{0, 2, 3, 4}}, // the heavy row alone
		{[]int64{3}, 1, []int32{0, 1}},
	}
	for _, tc := range tests {
		ptr := []int64{0}
		for _, c := range tc.counts {
			ptr = append(ptr, ptr[len(ptr)-1]+c)
		}
		if got := BalancedBounds(ptr, tc.parts); !slices.Equal(got, tc.want) {
			t.Errorf("BalancedBounds(%v, %d) = %v, want %v", tc.counts, tc.parts, got, tc.want)
		}
	}
}

func TestLayoutRouting(t *testing.T) {
	t.Parallel()
	u, i, r := randomTriplets(11, 5000, 200, 120)
	b := NewBuilder()
	for j := range r {
		b.Add([]byte(u[j]), []byte(i[j]), r[j])
	}
	ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.2, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	testPairs := map[[2]int32]float32{}
	for j := range ds.Test.R {
		testPairs[[2]int32{ds.Test.U[j], ds.Test.I[j]}] = ds.Test.R[j]
	}
	for _, pq := range [][2]int{{1, 1}, {3, 5}, {7, 7}, {1000, 2}} {
		l, err := NewLayout(ds, pq[0], pq[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, side := range []Side{Users, Items} {
			global := ds.ByUser
			if side == Items {
				global = ds.ByItem
			}
			otherBounds := l.Bounds(side.Other())
			next := int32(0)
			for _, blk := range l.Blocks(side) {
				if blk.Start != next || blk.Len() == 0 {
					t.Fatalf("%v %v block %d starts at %d with %d rows", pq, side, blk.Index, blk.Start, blk.Len())
				}
				next = blk.End()
				if !slices.IsSorted(blk.Needed) || len(slices.Compact(slices.Clone(blk.Needed))) != len(blk.Needed) {
					t.Fatalf("block %d: Needed not strictly ascending", blk.Index)
				}
				if blk.NeededCount() != len(blk.Needed) {
					t.Fatalf("block %d: NeededCount %d, %d needed", blk.Index, blk.NeededCount(), len(blk.Needed))
				}
				if dropped := (&Block{NeedPtr: blk.NeedPtr}); dropped.NeededCount() != len(blk.Needed) {
					t.Fatalf("block %d: NeededCount without Needed %d, want %d", blk.Index, dropped.NeededCount(), len(blk.Needed))
				}
				for q := 0; q+1 < len(otherBounds); q++ {
					for _, g := range blk.NeededFrom(q) {
						if g < otherBounds[q] || g >= otherBounds[q+1] {
							t.Fatalf("block %d routes row %d to block %d [%d,%d)", blk.Index, g, q, otherBounds[q], otherBounds[q+1])
						}
					}
				}
				// The block's rows, translated back through Needed, are
				// the global rows.
				for row := 0; row < blk.Len(); row++ {
					g := int(blk.Start) + row
					want := global.Col[global.Ptr[g]:global.Ptr[g+1]]
					var got []int32
					for p := blk.Rows.Ptr[row]; p < blk.Rows.Ptr[row+1]; p++ {
						got = append(got, blk.Needed[blk.Rows.Col[p]])
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%v %v row %d: %v, want %v", pq, side, g, got, want)
					}
				}
			}
			if int(next) != global.Rows() {
				t.Fatalf("blocks cover %d of %d rows", next, global.Rows())
			}
			// What block q sends to block p is what p needs from q.
			for _, q := range l.Blocks(side) {
				for _, p := range l.Blocks(side.Other()) {
					var got []int32
					for _, r := range q.SendTo(p.Index) {
						got = append(got, q.Start+r)
					}
					if want := p.NeededFrom(q.Index); !slices.Equal(got, want) && len(got)+len(want) > 0 {
						t.Fatalf("%v: %v block %d sends %v to block %d, which needs %v", pq, side, q.Index, got, p.Index, want)
					}
				}
				if !slices.Equal(q.IDs, l.idsOf(ds, side)[q.Start:q.End()]) {
					t.Fatalf("block %d IDs", q.Index)
				}
			}
			// Test ratings land in the user blocks, through Needed.
			n := 0
			for _, blk := range l.Blocks(side) {
				if side == Items {
					if blk.Test.NNZ() != 0 {
						t.Fatalf("item block %d holds test ratings", blk.Index)
					}
					continue
				}
				for row := 0; row < blk.Len(); row++ {
					for p := blk.Test.Ptr[row]; p < blk.Test.Ptr[row+1]; p++ {
						key := [2]int32{blk.Start + int32(row), blk.Needed[blk.Test.Col[p]]}
						if v, ok := testPairs[key]; !ok || v != blk.Test.Val[p] {
							t.Fatalf("test rating %v in block %d is not in the test set", key, blk.Index)
						}
						n++
					}
				}
			}
			if side == Users && n != len(testPairs) {
				t.Fatalf("blocks hold %d test ratings, want %d", n, len(testPairs))
			}
		}
	}
}

func (l *Layout) idsOf(ds *Dataset, s Side) []string {
	if s == Items {
		return ds.Items.IDs()
	}
	return ds.Users.IDs()
}

// TestHashFoldsPartitionTheInput: the K folds of one seed hold out every
// pair exactly once, each about 1/K of them.
func TestHashFoldsPartitionTheInput(t *testing.T) {
	t.Parallel()
	const k, n = 3, 3000
	hits := map[string]int{}
	for fold := 0; fold < k; fold++ {
		opt := SplitOptions{Seed: 7, Folds: k, Fold: fold}
		held := 0
		for j := 0; j < n; j++ {
			u, i := []byte(strconv.Itoa(j%97)), []byte(strconv.Itoa(j))
			if opt.InTest(u, i) {
				hits[string(u)+"|"+string(i)]++
				held++
			}
		}
		if held < n/k-150 || held > n/k+150 {
			t.Errorf("fold %d holds out %d of %d pairs", fold, held, n)
		}
	}
	if len(hits) != n {
		t.Errorf("%d of %d pairs are held out by some fold", len(hits), n)
	}
	for p, c := range hits {
		if c != 1 {
			t.Fatalf("pair %s is held out by %d folds", p, c)
		}
	}
	if _, err := NewDataset(NewBuilder(), nil, SplitOptions{Folds: 2, Fold: 2}); err == nil {
		t.Error("fold 2 of 2 accepted")
	}
}

// A fraction split against a map of the last value of every pair: the
// test part moves into the tail of the training arrays and is then mapped
// in place, so both parts share storage; neither may see the other's
// ratings, and the training CSR must not be able to grow into the test
// part.
func TestSplitMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		users, items, n int
		opt             SplitOptions
	}{
		{40, 30, 2_000, SplitOptions{TestFraction: 0.2, Seed: 3}},
		{500, 80, 20_000, SplitOptions{TestFraction: 0.5, Seed: 4}},
		{3000, 900, 30_000, SplitOptions{Folds: 5, Fold: 2, Seed: 5}},
	} {
		b := NewBuilder()
		train, test := map[[2]string]float32{}, map[[2]string]float32{}
		for j := range tc.n {
			u, i := strconv.Itoa(rng.IntN(tc.users)), "i"+strconv.Itoa(rng.IntN(tc.items))
			v := float32(j)
			if err := b.Add([]byte(u), []byte(i), v); err != nil {
				t.Fatal(err)
			}
			if tc.opt.InTest([]byte(u), []byte(i)) {
				test[[2]string{u, i}] = v
			} else {
				train[[2]string{u, i}] = v
			}
		}
		ds, err := NewDataset(b, nil, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		if cap(ds.ByUser.Col) != len(ds.ByUser.Col) || cap(ds.ByUser.Val) != len(ds.ByUser.Val) {
			t.Fatalf("%+v: the training CSR has room to grow into the test part", tc.opt)
		}
		got := map[[2]string]float32{}
		for r := range ds.ByUser.Rows() {
			for p := ds.ByUser.Ptr[r]; p < ds.ByUser.Ptr[r+1]; p++ {
				got[[2]string{ds.Users.ID(int32(r)), ds.Items.ID(ds.ByUser.Col[p])}] = ds.ByUser.Val[p]
			}
		}
		if !maps.Equal(got, train) {
			t.Fatalf("%+v: training part differs from the reference (%d pairs, want %d)", tc.opt, len(got), len(train))
		}
		want, skipped := map[[2]string]float32{}, int64(0)
		for k, v := range test {
			_, uok := ds.Users.LookupString(k[0])
			_, iok := ds.Items.LookupString(k[1])
			if uok && iok {
				want[k] = v
			} else {
				skipped++
			}
		}
		got = map[[2]string]float32{}
		for j := range ds.Test.R {
			got[[2]string{ds.Users.ID(ds.Test.U[j]), ds.Items.ID(ds.Test.I[j])}] = ds.Test.R[j]
		}
		if !maps.Equal(got, want) || ds.Test.Skipped != skipped || ds.Test.Total != int64(len(test)) {
			t.Fatalf("%+v: test part %d pairs (%d skipped of %d), want %d (%d of %d)", tc.opt, len(got), ds.Test.Skipped, ds.Test.Total, len(want), skipped, len(test))
		}
		if int(ds.Duplicates) != tc.n-len(train)-len(test) {
			t.Fatalf("%+v: %d duplicates, want %d", tc.opt, ds.Duplicates, tc.n-len(train)-len(test))
		}
	}
}
