package coordinator

import (
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

func TestMemoryNeeds(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 5}},
		BlockBytes: []int64{100, 200, 300}, BlockRows: []int64{6, 4, 5}}
	a := &Assignment{Users: []string{"a", "b"}, Items: []string{"a"}}
	got := memoryNeeds(sum, a, sizing{Rank: 8}) // a row is 32 bytes
	want := []memoryNeed{
		// a: user block 0 (6 rows) and item block 0 (5 rows); the user
		// phase holds 2 × 6 + 5 rows and fetches 3, the item phase holds
		// 6 + 2 × 5 and fetches 10: the item phase is heavier.
		{Worker: "a", Blocks: 400, Factors: (6 + 2*5) * 32, Fetched: 10 * 32},
		// b: user block 1 only; its user phase holds 2 × 4 and fetches 4.
		{Worker: "b", Blocks: 200, Factors: 2 * 4 * 32, Fetched: 4 * 32},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("need %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Without row counts (an older worker's summary), rows are split evenly.
	sum.BlockRows = nil
	if got := memoryNeeds(sum, a, sizing{Rank: 8}); got[1].Factors != 2*5*32 {
		t.Errorf("b's factors without row counts: %d, want %d", got[1].Factors, 2*5*32)
	}
}

func TestCheckMemory(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 5}},
		BlockBytes: []int64{100, 200, 300}, BlockRows: []int64{6, 4, 5}}
	a := &Assignment{Users: []string{"a", "b"}, Items: []string{"a"}}
	// a needs 400 + 512 + 320 = 1232 bytes; b needs 200 + 256 + 128 = 584.
	for _, tc := range []struct {
		name    string
		offered map[string]int64
		want    []string // in the error; nil: fits
	}{
		{"no limits", map[string]int64{}, nil},
		{"exact fit", map[string]int64{"a": 1232, "b": 584}, nil},
		{"a short by one", map[string]int64{"a": 1231, "b": 584}, []string{"worker a needs 1232 bytes", "offers 1231", "blocks 400 B + factors 512 B + fetched rows 320 B"}},
		{"both short", map[string]int64{"a": 1000, "b": 500}, []string{"worker a needs 1232", "worker b needs 584 bytes", "offers 500"}},
	} {
		err := checkMemory(sum, a, sizing{Rank: 8}, tc.offered)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: fits, want refused", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

// TestMemoryNeedsLargestBlock: a worker with several blocks of a side
// gathers for one at a time, so its fetched rows are its largest block's.
func TestMemoryNeedsLargestBlock(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 6, UserBlocks: 1, ItemBlocks: 3},
		UserNeeds: [][]int64{{1, 1, 1}}, ItemNeeds: [][]int64{{7}, {9}, {4}},
		BlockBytes: []int64{100, 10, 20, 30}, BlockRows: []int64{4, 2, 2, 2}}
	a := &Assignment{Users: []string{"a"}, Items: []string{"a", "b", "a"}}
	got := memoryNeeds(sum, a, sizing{Rank: 8})
	if got[0].Worker != "a" || got[0].Fetched != 7*32 {
		t.Errorf("a: %+v, want fetched rows of its larger item block, 7 × 32 bytes", got[0])
	}
	if got[1].Worker != "b" || got[1].Fetched != 9*32 {
		t.Errorf("b: %+v, want fetched 9 × 32 bytes", got[1])
	}
}

func TestAutoBlocks(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		workers               int
		users, items, ratings int64
		wantUsers, wantItems  int
	}{
		{"Netflix-shaped 8M, 3 workers", 3, 480189, 17770, 6399670, 3, 33},
		{"more items than users", 3, 17770, 480189, 6399670, 33, 3},
		{"none reaches the share, the finest halves the gather", 3, 480189, 17770, 10000000, 3, 36},
		{"Netflix-shaped 100M, 4 workers: dense, no gain", 4, 480189, 17770, 80000000, 4, 4},
		{"MovieLens 100k: dense, no gain", 3, 943, 1682, 80000, 3, 3},
		{"sparse: one block a worker suffices", 2, 1000000, 100000, 1000000, 2, 2},
		{"three a worker reach the share", 2, 1000000, 100000, 3000000, 2, 6},
		{"one worker", 1, 480189, 17770, 6399670, 1, 1},
		{"no workers counted as one", 0, 480189, 17770, 6399670, 1, 1},
		{"empty", 3, 0, 0, 0, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, q := autoBlocks(tc.workers, tc.users, tc.items, tc.ratings)
			if p != tc.wantUsers || q != tc.wantItems {
				t.Errorf("autoBlocks(%d, %d, %d, %d) = %d×%d, want %d×%d", tc.workers, tc.users, tc.items, tc.ratings, p, q, tc.wantUsers, tc.wantItems)
			}
		})
	}
}

// TestMemoryNeedsInPlaceAndGather: an in-place job holds the solved side
// once, and a worker that bounds its gathers fetches at most its bound
// and one streamed segment in the item phase, never more than the whole
// gather.
func TestMemoryNeedsInPlaceAndGather(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 50000}},
		BlockBytes: []int64{100, 200, 300}, BlockRows: []int64{6, 4, 5}}
	a := &Assignment{Users: []string{"a", "b"}, Items: []string{"a"}}
	row := int64(8 * 4)
	segment := int64(als.SegmentRows) * row
	for _, tc := range []struct {
		name    string
		sz      sizing
		factors int64
		fetched int64
	}{
		{"copies, whole", sizing{Rank: 8}, (6 + 2*5) * row, 50005 * row},
		{"in place, whole", sizing{Rank: 8, InPlace: true}, (6 + 5) * row, 50005 * row},
		{"in place, bounded", sizing{Rank: 8, InPlace: true, Gather: map[string]int64{"a": 1 << 10}}, (6 + 5) * row, 1<<10 + segment},
		{"bound above the whole gather", sizing{Rank: 8, Gather: map[string]int64{"a": 1 << 30}}, (6 + 2*5) * row, 50005 * row},
		{"another worker's bound", sizing{Rank: 8, Gather: map[string]int64{"b": 1 << 10}}, (6 + 2*5) * row, 50005 * row},
	} {
		got := memoryNeeds(sum, a, tc.sz)[0]
		if got.Worker != "a" || got.Factors != tc.factors || got.Fetched != tc.fetched {
			t.Errorf("%s: %+v, want factors %d, fetched %d", tc.name, got, tc.factors, tc.fetched)
		}
	}
}
