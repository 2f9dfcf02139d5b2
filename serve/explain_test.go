package serve

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// explainSpec is a random model whose users have training ratings, with
// the layout of the given variant.
func explainSpec(seed uint64, biases, implicit, nonnegative bool) spec {
	const users, items, k = 12, 40, 4
	width := k
	if biases {
		width = k + 2
	}
	sp := randomSpec(seed, users, items, width, false)
	sp.biases, sp.implicit, sp.nonnegative = biases, implicit, nonnegative
	sp.lambda, sp.alpha = 0.1, 2
	if implicit {
		sp.lambda = 1
	}
	if biases {
		sp.mean = 3.5
		for u := 0; u < users; u++ {
			sp.x[u*width+k+1] = 1 // [x, b, 1]
		}
		for i := 0; i < items; i++ {
			sp.y[i*width+k] = 1 // [y, 1, c]
		}
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for u := 0; u < users; u++ {
		var seen []int32
		var vals []float32
		for i := 0; i < items; i++ {
			if rng.IntN(4) == 0 || u == i {
				seen = append(seen, int32(i))
				vals = append(vals, float32(1+rng.IntN(9))/2)
			}
		}
		sp.seen = append(sp.seen, seen)
		sp.seenValues = append(sp.seenValues, vals)
	}
	return sp
}

// MUST SHOW: for every model variant, each explained item's contributions
// plus remainder equal its score; the remainder is the base plus the
// contributions not shown; the items are the top K of the recomputed row.
func TestExplainSums(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name                          string
		biases, implicit, nonnegative bool
	}{
		{"explicit", false, false, false},
		{"biases", true, false, false},
		{"implicit", false, true, false},
		{"nonnegative", false, false, true},
		{"biases+nonnegative", true, false, true},
	} {
		m := explainSpec(3, v.biases, v.implicit, v.nonnegative).model(t)
		ix, err := NewIndex(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		for u := int32(0); u < int32(len(m.UserIDs)); u++ {
			const k, top = 6, 3
			f := Filter{ExcludeSeen: true}
			got, err := ix.Explain(u, k, top, f)
			if err != nil {
				t.Fatalf("%s user %d: %v", v.name, u, err)
			}
			var yty []float64
			if v.implicit {
				yty = make([]float64, m.Rank*m.Rank)
				als.Gram(m.Y, m.Rank, 1, yty)
			}
			var rated []float32
			for _, it := range m.Seen(u) {
				rated = append(rated, m.ItemRow(it)...)
			}
			ex, err := als.NewExplainer(ModelConfig(m), rated, m.SeenValues(u), yty, m.Mean())
			if err != nil {
				t.Fatal(err)
			}
			want := Recommend(m, ex.Row(), k, Filter{Exclude: m.Seen(u)})
			if len(got) != len(want) {
				t.Fatalf("%s user %d: %d items, want %d", v.name, u, len(got), len(want))
			}
			contrib := make([]float64, len(m.Seen(u)))
			for n, e := range got {
				if e.Item != want[n].Item || e.Score != want[n].Score {
					t.Fatalf("%s user %d: item %d is %+v, the recomputed row ranks %+v", v.name, u, n, e.Scored, want[n])
				}
				if len(e.Contributions) != min(top, len(m.Seen(u))) {
					t.Fatalf("%s user %d: %d contributions", v.name, u, len(e.Contributions))
				}
				sum := e.Remainder
				for c, con := range e.Contributions {
					sum += con.Contribution
					if c > 0 && con.Contribution > e.Contributions[c-1].Contribution {
						t.Fatalf("%s user %d: contributions not largest first: %+v", v.name, u, e.Contributions)
					}
					if !slices.Contains(m.Seen(u), con.Item) {
						t.Fatalf("%s user %d: item %d is not a training item", v.name, u, con.Item)
					}
				}
				if math.Abs(float64(sum-e.Score)) > 1e-5*(1+math.Abs(float64(e.Score))) {
					t.Errorf("%s user %d item %d: contributions + remainder = %g, score %g", v.name, u, e.Item, sum, e.Score)
				}
				base := ex.Contributions(m.ItemRow(e.Item), contrib)
				rest := base
				for j, c := range contrib {
					if !slices.ContainsFunc(e.Contributions, func(x Contribution) bool { return x.Item == m.Seen(u)[j] }) {
						rest += c
					}
				}
				if math.Abs(rest-float64(e.Remainder)) > 1e-3*(1+math.Abs(rest)) {
					t.Errorf("%s user %d item %d: remainder %g, base and other contributions %g", v.name, u, e.Item, e.Remainder, rest)
				}
			}
		}
	}
}

func TestExplainNeedsRatings(t *testing.T) {
	t.Parallel()
	sp := explainSpec(4, false, false, false)
	sp.seenValues = nil
	m := sp.model(t)
	if _, err := Explain(m, 0, 3, 2, Filter{}); !errors.Is(err, ErrNoRatings) {
		t.Errorf("a snapshot without ratings: %v, want ErrNoRatings", err)
	}
	h := newTestServer(t, m)
	var ans errorAnswer
	if code := getJSON(t, h, "/v1/recommend?user=u0&explain=true", &ans); code != http.StatusBadRequest {
		t.Errorf("HTTP status %d (%s), want 400", code, ans.Error)
	}
}

// TestBiasedScoresAndSimilarity: with biases every score adds the global
// mean, and similarity reads the factors without the bias columns.
func TestBiasedScoresAndSimilarity(t *testing.T) {
	t.Parallel()
	// Rank 2 plus biases. Users [x, b, 1], items [y, 1, c].
	sp := spec{rank: 4, users: ids("u", 4), items: ids("i", 3), lambda: 0.1, biases: true, mean: 3,
		x: []float32{
			1, 0, 0.5, 1,
			2, 0, -9, 1, // same direction as u0, a very different bias
			0, 1, 0.5, 1,
			1, 1, 0.5, 1,
		},
		y: []float32{
			1, 0, 1, 0.25,
			0, 1, 1, -0.5,
			1, 1, 1, 9,
		}}
	m := sp.model(t)
	got := RecommendUser(m, 0, 3, Filter{})
	// u0·i = 1 + 0.5 + c: i0 1.75, i1 0, i2 10.5; plus μ = 3.
	want := []Scored{{2, 13.5}, {0, 4.75}, {1, 3}}
	if !slices.Equal(got, want) {
		t.Errorf("recommend %v, want %v", got, want)
	}
	// Cosine over (x1, x2) only: u1 is parallel to u0 (1), u3 at 45°, u2 at 90°.
	sim := SimilarUsers(m, 0, 3)
	if len(sim) != 3 || sim[0].Item != 1 || math.Abs(float64(sim[0].Score)-1) > 1e-6 || sim[1].Item != 3 ||
		math.Abs(float64(sim[1].Score)-math.Sqrt(0.5)) > 1e-6 || sim[2].Item != 2 || sim[2].Score != 0 {
		t.Errorf("similar users %v", sim)
	}
	ix, err := NewIndex(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ix.SimilarUsers(0, 3), sim) {
		t.Errorf("the index's similar users %v differ from %v", ix.SimilarUsers(0, 3), sim)
	}
	// Items: i2 = (1, 1) is at 45° from both others, i0 ⟂ i1.
	if s := ix.Similar(0, 2); s[0].Item != 2 || math.Abs(float64(s[0].Score)-math.Sqrt(0.5)) > 1e-6 || s[1].Score != 0 {
		t.Errorf("similar items %v", s)
	}
	// A fold-in of a model with biases returns a row of its layout.
	x, err := ix.FoldIn([]Rating{{Item: 0, Value: 5}, {Item: 1, Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != 4 || x[3] != 1 {
		t.Errorf("fold-in row %v: want 4 values ending in the constant 1", x)
	}
}

func TestSimilarUsersHTTP(t *testing.T) {
	t.Parallel()
	sp := spec{rank: 2, users: ids("u", 3), items: ids("i", 2), lambda: 0.1,
		x: []float32{1, 0, 3, 0.1, 0, 1}, y: []float32{1, 0, 0, 1}}
	h := newTestServer(t, sp.model(t))
	var ans SimilarUsersAnswer
	if code := getJSON(t, h, "/v1/similar_users?user=u0&k=1", &ans); code != http.StatusOK || len(ans.Users) != 1 || ans.Users[0].User != "u1" || ans.User != "u0" {
		t.Errorf("status %d, answer %+v", code, ans)
	}
	var e errorAnswer
	if code := getJSON(t, h, "/v1/similar_users?user=nobody", &e); code != http.StatusNotFound {
		t.Errorf("unknown user: status %d", code)
	}
}

func TestRecommendExplainHTTP(t *testing.T) {
	t.Parallel()
	m := explainSpec(5, true, false, false).model(t)
	h := newTestServer(t, m)
	var ans Recommendation
	if code := getJSON(t, h, "/v1/recommend?user=u2&k=4&explain=1&explain_top=2&exclude_seen=true", &ans); code != http.StatusOK || len(ans.Items) != 4 {
		t.Fatalf("status %d, answer %+v", code, ans)
	}
	for _, it := range ans.Items {
		if len(it.Contributions) != 2 || it.Remainder == nil {
			t.Fatalf("item %+v: want 2 contributions and a remainder", it)
		}
		sum := *it.Remainder
		for _, c := range it.Contributions {
			sum += c.Contribution
		}
		if math.Abs(float64(sum-it.Score)) > 1e-5*(1+math.Abs(float64(it.Score))) {
			t.Errorf("item %s: parts add to %g, score %g", it.Item, sum, it.Score)
		}
	}
	var plain Recommendation
	getJSON(t, h, "/v1/recommend?user=u2&k=4", &plain)
	if plain.Items[0].Contributions != nil || plain.Items[0].Remainder != nil {
		t.Errorf("an answer without explain carries an explanation: %+v", plain.Items[0])
	}
	var e errorAnswer
	if code := getJSON(t, h, "/v1/recommend?user=u2&explain_top=2", &e); code != http.StatusBadRequest {
		t.Errorf("explain_top without explain: status %d", code)
	}
}

// newTestServer serves m as snapshot "s1" over httptest.
func newTestServer(t *testing.T, m *checkpoint.Model) *httptest.Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(m, "s1"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// getJSON GETs path and decodes the answer into v; it returns the status.
func getJSON(t *testing.T, ts *httptest.Server, path string, v any) int {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}
