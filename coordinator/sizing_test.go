package coordinator

import (
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/wire"
)

func TestMemoryNeeds(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 5}},
		BlockBytes: []int64{100, 200, 300}, BlockRows: []int64{6, 4, 5}}
	a := &Assignment{Users: []string{"a", "b"}, Items: []string{"a"}}
	got := memoryNeeds(sum, a, 8) // a row is 32 bytes
	want := []memoryNeed{
		// a: user block 0 and item block 0; fetches 3 rows in the user
		// phase, 10 in the item phase.
		{Worker: "a", Blocks: 400, Factors: 2 * (6 + 5) * 32, Fetched: 10 * 32},
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
	if got := memoryNeeds(sum, a, 8); got[1].Factors != 2*5*32 {
		t.Errorf("b's factors without row counts: %d, want %d", got[1].Factors, 2*5*32)
	}
}

func TestCheckMemory(t *testing.T) {
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 5}},
		BlockBytes: []int64{100, 200, 300}, BlockRows: []int64{6, 4, 5}}
	a := &Assignment{Users: []string{"a", "b"}, Items: []string{"a"}}
	// a needs 400 + 704 + 320 = 1424 bytes; b needs 200 + 256 + 128 = 584.
	for _, tc := range []struct {
		name    string
		offered map[string]int64
		want    []string // in the error; nil: fits
	}{
		{"no limits", map[string]int64{}, nil},
		{"exact fit", map[string]int64{"a": 1424, "b": 584}, nil},
		{"a short by one", map[string]int64{"a": 1423, "b": 584}, []string{"worker a needs 1424 bytes", "offers 1423", "blocks 400 B + factors 704 B + fetched rows 320 B"}},
		{"both short", map[string]int64{"a": 1000, "b": 500}, []string{"worker a needs 1424", "worker b needs 584 bytes", "offers 500"}},
	} {
		err := checkMemory(sum, a, 8, tc.offered)
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
