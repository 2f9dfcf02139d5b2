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
	rmse, mae := Errors([]int32{0, 0, 1, 1}, []int32{0, 1, 0, 1}, []float32{2, 3, 2, -1}, x, y, 2, 0)
	if want := math.Sqrt((1 + 0 + 0 + 4) / 4.0); math.Abs(rmse-want) > 1e-12 {
		t.Errorf("rmse %g, want %g", rmse, want)
	}
	if want := 3 / 4.0; math.Abs(mae-want) > 1e-12 {
		t.Errorf("mae %g, want %g", mae, want)
	}
	// With a global mean of 1 the predictions are 2, 4, 3, 2.
	rmse, mae = Errors([]int32{0, 0, 1, 1}, []int32{0, 1, 0, 1}, []float32{2, 3, 2, -1}, x, y, 2, 1)
	if want := math.Sqrt((0 + 1 + 1 + 9) / 4.0); math.Abs(rmse-want) > 1e-12 || math.Abs(mae-5/4.0) > 1e-12 {
		t.Errorf("with mean 1: rmse %g, mae %g, want %g, 1.25", rmse, mae, want)
	}
	if r, _ := Errors(nil, nil, nil, x, y, 2, 0); !math.IsNaN(r) {
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

// TestRankingHandWorked checks every metric against examples worked by
// hand (the derivations are in the comments).
func TestRankingHandWorked(t *testing.T) {
	t.Parallel()
	ndcgU0 := (1 / math.Log2(3)) / (1 + 1/math.Log2(3))
	cases := []struct {
		name string
		in   RankingInput
		want RankingResult
	}{{
		// Six items scored 6, 5, 4, 3, 2, 1 (rank 1, x = 1), K = 3.
		//  user 0: trained on {0}, held out {2, 5}. Candidates 1..5; top 3 =
		//    [1 2 3]: one hit at position 2. precision 1/3, recall 1/2,
		//    MAP (1/2)/min(3,2) = 1/4, NDCG (1/log2 3)/(1 + 1/log2 3).
		//    AUC: relevant scores {4, 1} against non-relevant {5, 3, 2}:
		//    4>3, 4>2 right, the other four wrong: 2/6.
		//  user 1: trained on nothing, held out {0}: top 3 = [0 1 2], hit at
		//    1: precision 1/3, recall 1, MAP 1, NDCG 1, AUC 5/5 = 1.
		//  user 2: held out {1}, which is a training item: not evaluated.
		//  user 3: nothing held out: not evaluated.
		//  user 4: trained on {0..4}, held out {5}: the only candidate; top
		//    = [5]: precision 1/3, recall 1, MAP 1, NDCG 1; no non-relevant
		//    candidate, so no AUC.
		// Coverage: {1,2,3} ∪ {0,1,2} ∪ {5} = 5 of 6 items.
		name: "six items",
		in: RankingInput{
			X: []float32{1, 1, 1, 1, 1}, Y: []float32{6, 5, 4, 3, 2, 1}, Rank: 1, Cutoff: 3,
			Train: Rows{Ptr: []int64{0, 1, 1, 3, 3, 8}, Col: []int32{0, 1, 2, 0, 1, 2, 3, 4}},
			Test:  Rows{Ptr: []int64{0, 2, 3, 4, 4, 5}, Col: []int32{2, 5, 0, 1, 5}},
		},
		want: RankingResult{
			Precision: 1.0 / 3, Recall: 2.5 / 3, MAP: 2.25 / 3, NDCG: (ndcgU0 + 2) / 3,
			AUC: (1.0/3 + 1) / 2, AUCUsers: 2, Coverage: 5.0 / 6, Users: 3,
		},
	}, {
		// Three items all scored 1, K = 1, user 0 holds out {1}, held out
		// twice (a duplicate counts once). The tie goes to item 0: no hit.
		// AUC: item 1 ties both non-relevant candidates: (½+½)/2.
		name: "ties",
		in: RankingInput{
			X: []float32{1}, Y: []float32{1, 1, 1}, Rank: 1, Cutoff: 1,
			Test: Rows{Ptr: []int64{0, 2}, Col: []int32{1, 1}},
		},
		want: RankingResult{AUC: 0.5, AUCUsers: 1, Coverage: 1.0 / 3, Users: 1},
	}, {
		// Popularity: users 0, 1, 2 trained on {0, 1}, {1}, {1, 2}: counts
		// 1, 3, 1, 0. User 3 holds out {2}; K = 2: top = [1 0] (0 wins the
		// tie with 2): no hit. AUC: against 0 (tie, ½), 1 (wrong), 3 (right)
		// = 1.5/3. Coverage 2/4.
		name: "popular",
		in: RankingInput{
			Popular: true, NItems: 4, Cutoff: 2,
			Train: Rows{Ptr: []int64{0, 2, 3, 5}, Col: []int32{0, 1, 1, 1, 2}},
			Test:  Rows{Ptr: []int64{0, 0, 0, 0, 1}, Col: []int32{2}},
		},
		want: RankingResult{AUC: 0.5, AUCUsers: 1, Coverage: 0.5, Users: 1},
	}}
	for _, c := range cases {
		for _, threads := range []int{1, 3} {
			in := c.in
			in.Threads = threads
			got := Ranking(in)
			w := c.want
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"precision", got.Precision, w.Precision}, {"recall", got.Recall, w.Recall}, {"map", got.MAP, w.MAP},
				{"ndcg", got.NDCG, w.NDCG}, {"auc", got.AUC, w.AUC}, {"coverage", got.Coverage, w.Coverage},
			} {
				if math.Abs(f.got-f.want) > 1e-12 {
					t.Errorf("%s, %d threads: %s %g, want %g", c.name, threads, f.name, f.got, f.want)
				}
			}
			if got.Users != w.Users || got.AUCUsers != w.AUCUsers {
				t.Errorf("%s, %d threads: users %d (AUC %d), want %d (%d)", c.name, threads, got.Users, got.AUCUsers, w.Users, w.AUCUsers)
			}
		}
	}
}
