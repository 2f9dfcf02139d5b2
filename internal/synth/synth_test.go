package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func generate(t *testing.T, cfg Config) []byte {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteCSV(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSameConfigSameBytes(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		cfg := Config{Users: 700, Items: 300, Ratings: 20_000, Rank: 4, Noise: 0.2, Seed: 3, ZipfExponent: 0.8, Implicit: implicit}
		cfg.Threads = 1
		a := generate(t, cfg)
		cfg.Threads = 4
		b := generate(t, cfg)
		if sha256.Sum256(a) != sha256.Sum256(b) {
			t.Errorf("implicit=%v: output depends on the thread count", implicit)
		}
		cfg.Seed = 4
		if c := generate(t, cfg); bytes.Equal(a, c) {
			t.Errorf("implicit=%v: a different seed gave the same output", implicit)
		}
	}
}

func TestShape(t *testing.T) {
	t.Parallel()
	cfg := Config{Users: 500, Items: 200, Ratings: 30_000, Rank: 3, Noise: 0, Seed: 1, ZipfExponent: 1}
	out := generate(t, cfg)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if lines[0] != "user,item,rating" {
		t.Fatalf("header %q", lines[0])
	}
	if n := len(lines) - 1; n != 30_000 {
		t.Fatalf("%d ratings, want 30000", n)
	}
	pairs := map[string]bool{}
	perUser := map[string]int{}
	perItem := map[string]int{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		key := f[0] + "/" + f[1]
		if pairs[key] {
			t.Fatalf("pair %s twice", key)
		}
		pairs[key] = true
		perUser[f[0]]++
		perItem[f[1]]++
	}
	if len(perUser) != 500 {
		t.Errorf("%d users have ratings, want all 500", len(perUser))
	}
	minU := 1 << 30
	for _, c := range perUser {
		minU = min(minU, c)
	}
	if minU < 20 {
		t.Errorf("a user has %d ratings, want ≥ 20", minU)
	}
	// Zipf: the most popular item has far more ratings than the median.
	var counts []int
	for _, c := range perItem {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	if med, top := counts[len(counts)/2], counts[len(counts)-1]; top < 4*med {
		t.Errorf("top item %d ratings, median %d: not skewed", top, med)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Users: 0, Items: 5, Ratings: 1, Rank: 1}, "users 0 outside"},
		{Config{Users: 5, Items: 5, Ratings: 13, Rank: 1}, "more than half"},
		{Config{Users: 5, Items: 5, Ratings: 3, Rank: 0}, "rank 0 outside"},
		{Config{Users: 5, Items: 5, Ratings: 3, Rank: 1, Noise: -1}, "noise -1"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestHeavyUsersAndImplicitCounts(t *testing.T) {
	t.Parallel()
	// Dense enough that some users need more than an eighth of the items.
	cfg := Config{Users: 50, Items: 80, Ratings: 1900, Rank: 2, Seed: 5, ZipfExponent: 0.8, Implicit: true}
	out := generate(t, cfg)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")[1:]
	if len(lines) != 1900 {
		t.Fatalf("%d ratings", len(lines))
	}
	for _, l := range lines {
		var u, i, c int
		if _, err := fmt.Sscanf(l, "%d,%d,%d", &u, &i, &c); err != nil || c < 1 {
			t.Fatalf("line %q: not a positive count", l)
		}
	}
}
