package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// dataset is one input of the comparison and the model trained on it.
type dataset struct {
	Name string `json:"name"`
	Desc string `json:"description"`
	// Gen are `cofactor gen` flags (without --out); empty for fixed files.
	Gen []string `json:"-"`
	// Split: the harness writes a hashed 20% test split of the generated
	// file, so every system trains and tests on the same pairs. Without it
	// cofactor holds out Holdout itself (cofactor-only sets).
	Split   bool    `json:"-"`
	Holdout float64 `json:"holdout"`
	// Train and Test are set by prepare (Test empty: Holdout applies).
	Train string `json:"-"`
	Test  string `json:"-"`

	Rank       int     `json:"rank"`
	Lambda     float64 `json:"lambda"`
	Iterations int     `json:"iterations"`
	Target     float64 `json:"target_rmse"`
	// NpalsIterations > 0 runs the NumPy reference for that many iterations.
	NpalsIterations int `json:"-"`
	// Implicit adds the implicit model (rank, λ, α below) for cofactor and
	// the NumPy reference.
	Implicit       bool    `json:"-"`
	ImplicitRank   int     `json:"-"`
	ImplicitLambda float64 `json:"-"`
	ImplicitAlpha  float64 `json:"-"`
	// Big sets skip the process-per-worker cluster runs (flag --cluster-big).
	Big bool `json:"-"`
}

// shape returns the `cofactor gen` flags of a synthetic set.
func shape(users, items, ratings int64, seed int) []string {
	return []string{"--users", fmt.Sprint(users), "--items", fmt.Sprint(items), "--ratings", fmt.Sprint(ratings),
		"--rank", "16", "--noise", "0.5", "--zipf", "0.8", "--seed", fmt.Sprint(seed)}
}

const (
	mlUsers, mlItems = 138_493, 26_744     // MovieLens 20M
	nfUsers, nfItems = 480_189, 17_770     // Netflix Prize
	sharedData       = "../../shared/data" // relative to bench/
)

// datasets are the sets the harness knows, by name.
func datasets() map[string]*dataset {
	return map[string]*dataset{
		"ml-small": {
			Name: "ml-small", Desc: "ml-latest-small, fixed split-seed42 (80,669 train / 20,167 test)",
			Train: sharedData + "/ml-latest-small/split-seed42/ratings.train.csv",
			Test:  sharedData + "/ml-latest-small/split-seed42/ratings.test.csv",
			Rank:  10, Lambda: 0.1, Iterations: 15, Target: 0.89, NpalsIterations: 15,
			Implicit: true, ImplicitRank: 32, ImplicitLambda: 50, ImplicitAlpha: 1,
		},
		// The shape of allinone's BenchmarkEngine (same generator,
		// flags and seed), split 80/20 by the harness.
		"20m": {
			Name: "20m", Desc: "20M-shaped synthetic, 138,493 × 26,744, 20,000,263 ratings, 20% test",
			Gen: shape(mlUsers, mlItems, 20_000_263, 20), Split: true,
			Rank: 64, Lambda: 0.05, Iterations: 5, Target: 0.6195, NpalsIterations: 2,
		},
		// The 20M shape (all its users and items) with a quarter of the
		// ratings, small enough for the NumPy reference's loader.
		"5m": {
			Name: "5m", Desc: "20M-shaped synthetic, 138,493 × 26,744, 5,000,000 ratings, 20% test",
			Gen: shape(mlUsers, mlItems, 5_000_000, 5), Split: true,
			Rank: 64, Lambda: 0.05, Iterations: 5, Target: 0.6195, NpalsIterations: 2,
		},
		// The 20M shape as interaction counts (`cofactor gen --implicit`):
		// the implicit model refuses negative strengths.
		"20m-imp": {
			Name: "20m-imp", Desc: "20M-shaped synthetic interaction counts, 138,493 × 26,744, 20,000,263 pairs, 20% test",
			Gen: append(shape(mlUsers, mlItems, 20_000_263, 20), "--implicit"), Split: true,
			Rank: 64, Lambda: 0.05, Iterations: 3,
		},
		"100m": {
			Name: "100m", Desc: "Netflix-shaped synthetic, 480,189 × 17,770, 100M ratings, 20% test",
			Gen: shape(nfUsers, nfItems, 100_000_000, 100), Holdout: 0.2,
			Rank: 64, Lambda: 0.05, Iterations: 3, Big: true,
		},
	}
}

// scalingSets are the Netflix-shaped sets of the ratings sweep.
func scalingSet(ratings int64) *dataset {
	name := fmt.Sprintf("nf%dm", ratings/1_000_000)
	seed := 100
	if ratings != 100_000_000 {
		seed = int(ratings / 1_000_000)
	}
	return &dataset{Name: name, Gen: shape(nfUsers, nfItems, ratings, seed), Rank: 64, Lambda: 0.05, Iterations: 3}
}

// prepare generates (once; files are reused) and splits the set's data.
func prepare(ctx context.Context, cofactor, dataDir string, d *dataset) error {
	if d.Gen == nil {
		for _, p := range []string{d.Train, d.Test} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("dataset %s: %w", d.Name, err)
			}
		}
		return nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	// Sets with the same flags share a file (100m is nf100m).
	all := filepath.Join(dataDir, genName(d.Gen)+".csv")
	if _, err := os.Stat(all); err != nil {
		logf("generating %s (%s)", all, strings.Join(d.Gen, " "))
		tmp := all + ".tmp"
		if err := runTool(ctx, ".", cofactor, append([]string{"gen", "--out", tmp}, d.Gen...)...); err != nil {
			return err
		}
		if err := os.Rename(tmp, all); err != nil {
			return err
		}
	}
	if !d.Split {
		d.Train, d.Test = all, ""
		return nil
	}
	d.Train = strings.TrimSuffix(all, ".csv") + ".train.csv"
	d.Test = strings.TrimSuffix(all, ".csv") + ".test.csv"
	if _, err := os.Stat(d.Test); err == nil {
		return nil
	}
	logf("splitting %s 80/20", all)
	return splitFile(all, d.Train, d.Test, 0.2)
}

func genName(flags []string) string {
	// users_items_ratings_seed identifies a generated set.
	get := func(f string) string {
		for i := 0; i+1 < len(flags); i++ {
			if flags[i] == f {
				return flags[i+1]
			}
		}
		return "x"
	}
	name := fmt.Sprintf("gen-%s-%s-%s-s%s", get("--users"), get("--items"), get("--ratings"), get("--seed"))
	if slices.Contains(flags, "--implicit") {
		name += "-implicit"
	}
	return name
}

// inTest reports whether the pair "user,item" belongs to the test part: a
// hash of the pair, so the split does not depend on line order.
func inTest(pair []byte, fraction float64) bool {
	h := fnv.New64a()
	h.Write(pair)
	return float64(h.Sum64()%1_000_000) < fraction*1_000_000
}

// splitFile writes the lines of a CSV (header user,item,rating) into a
// training and a test file, keeping the header in both.
func splitFile(in, train, test string, fraction float64) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	r := bufio.NewReaderSize(src, 1<<20)
	outs := make([]*bufio.Writer, 2)
	files := make([]*os.File, 2)
	for i, p := range []string{train + ".tmp", test + ".tmp"} {
		if files[i], err = os.Create(p); err != nil {
			return err
		}
		defer files[i].Close()
		outs[i] = bufio.NewWriterSize(files[i], 1<<20)
	}
	header, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: header: %w", in, err)
	}
	for _, w := range outs {
		w.Write(header)
	}
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			comma := bytes.IndexByte(line, ',')
			second := -1
			if comma >= 0 {
				second = bytes.IndexByte(line[comma+1:], ',')
			}
			if second < 0 {
				return fmt.Errorf("%s: bad line %q", in, line)
			}
			out := outs[0]
			if inTest(line[:comma+1+second], fraction) {
				out = outs[1]
			}
			out.Write(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	}
	for i, p := range []string{train, test} {
		if err := outs[i].Flush(); err != nil {
			return err
		}
		if err := os.Rename(files[i].Name(), p); err != nil {
			return err
		}
	}
	return nil
}

// countLines is the number of data lines (without the header) of a file.
func countLines(p string) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n - 1, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
