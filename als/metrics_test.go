package als

import (
	"math"
	"slices"
	"testing"
)

func TestErrors(t *testing.T) {
	t.Parallel()
	x := []float32{1, 0, 0, 2}   // two users, k=2
	y := []float32{1, 1, 3, 0.5} // two items
	// predictions: u0·i0 = 1, u0·i1 = 3, u1·i0 = 2, u1·i1 = 1
	rmse, mae := Errors([]int32{0, 0, 1, 1}, []int32{0, 1, 0, 1}, []float32{2, 3, 2, -1}, x, y, 2)
	if want := math.Sqrt((1 + 0 + 0 + 4) / 4.0); math.Abs(rmse-want) > 1e-12 {
		t.Errorf("rmse %g, want %g", rmse, want)
	}
	if want := 3 / 4.0; math.Abs(mae-want) > 1e-12 {
		t.Errorf("mae %g, want %g", mae, want)
	}
	if r, _ := Errors(nil, nil, nil, x, y, 2); !math.IsNaN(r) {
		t.Errorf("no ratings: %g, want NaN", r)
	}
}

func TestRecommendOrderAndTies(t *testing.T) {
	t.Parallel()
	x := []float32{1}
	y := []float32{0.5, 2, 2, -1, 3, 2}
	items, scores := Recommend(x, y, []int32{4}, 3)
	if !slices.Equal(items, []int32{1, 2, 5}) || !slices.Equal(scores, []float32{2, 2, 2}) {
		t.Errorf("got %v %v, want [1 2 5] [2 2 2]", items, scores)
	}
	items, _ = Recommend(x, y, nil, 10)
	if !slices.Equal(items, []int32{4, 1, 2, 5, 0, 3}) {
		t.Errorf("all: %v", items)
	}
}

func TestRanking(t *testing.T) {
	t.Parallel()
	// k=1; item scores for a user with x=1 are the item factors.
	y := []float32{5, 4, 3, 2, 1}
	x := []float32{1, 1, 1}
	in := RankingInput{
		X: x, Y: y, Rank: 1, Cutoff: 2, Threads: 2,
		// user 0 trained on item 0; user 1 on nothing; user 2 on items 0, 1
		Train: Rows{Ptr: []int64{0, 1, 1, 3}, Col: []int32{0, 0, 1}},
		// held out: user 0 {1, 4}; user 1 none; user 2 {3}
		Test: Rows{Ptr: []int64{0, 2, 2, 3}, Col: []int32{1, 4, 3}},
	}
	got := Ranking(in)
	// user 0: ranks [1, 2] → hits {1}: precision 1/2, dcg 1, idcg 1+1/log2(3)
	// user 2: ranks [2, 3] → hit 3 at position 2: precision 1/2, dcg 1/log2(3), idcg 1
	ndcg0 := 1 / (1 + 1/math.Log2(3))
	ndcg2 := 1 / math.Log2(3)
	if got.Users != 2 || math.Abs(got.Precision-0.5) > 1e-12 || math.Abs(got.NDCG-(ndcg0+ndcg2)/2) > 1e-12 {
		t.Errorf("got %+v, want users 2, precision 0.5, ndcg %g", got, (ndcg0+ndcg2)/2)
	}
}
