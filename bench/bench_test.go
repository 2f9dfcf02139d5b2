package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

func f(v float64) *float64 { return &v }

func TestResultRowTimeToTarget(t *testing.T) {
	d := &dataset{Name: "x", Target: 0.62}
	res := &job.Result{Iterations: 4, Solver: "cholesky", SecondsPerIteration: 1, TestRMSE: f(0.60),
		History: []job.Iteration{
			{Iteration: 1, TestRMSE: f(0.70), Seconds: 1.0},
			{Iteration: 2, TestRMSE: f(0.619), Seconds: 1.1},
			{Iteration: 3, TestRMSE: f(0.61), Seconds: 1.2},
			{Iteration: 4, TestRMSE: f(0.60), Seconds: 1.3},
		}}
	for _, tc := range []struct {
		name   string
		target float64
		iter   int
		time   float64
	}{
		{"second iteration", 0.62, 2, 10 - 1.2 - 1.3},
		{"last iteration", 0.605, 4, 10},
		{"never", 0.5, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.Target = tc.target
			r := resultRow("s", d, false, 2, res, 10*time.Second, 5e6)
			if r.TargetIter != tc.iter {
				t.Fatalf("target iteration %d, want %d", r.TargetIter, tc.iter)
			}
			if tc.iter == 0 {
				if r.TimeToTarget != nil {
					t.Fatalf("time to target %v for a target never reached", *r.TimeToTarget)
				}
				return
			}
			if d := *r.TimeToTarget - tc.time; d > 1e-9 || d < -1e-9 {
				t.Fatalf("time to target %.3f, want %.3f", *r.TimeToTarget, tc.time)
			}
			if r.PeakRSSMB != 5 {
				t.Fatalf("peak RSS %.1f MB, want 5", r.PeakRSSMB)
			}
		})
	}
}

func TestSplitFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "all.csv")
	var sb strings.Builder
	sb.WriteString("user,item,rating\n")
	const n = 20000
	for i := range n {
		sb.WriteString(strings.Join([]string{strconv.Itoa(i % 700), strconv.Itoa(i), "1.5"}, ",") + "\n")
	}
	if err := os.WriteFile(in, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	train, test := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	if err := splitFile(in, train, test, 0.2); err != nil {
		t.Fatal(err)
	}
	nTrain, err := countLines(train)
	if err != nil {
		t.Fatal(err)
	}
	nTest, err := countLines(test)
	if err != nil {
		t.Fatal(err)
	}
	if nTrain+nTest != n {
		t.Fatalf("%d + %d lines, want %d", nTrain, nTest, n)
	}
	if frac := float64(nTest) / n; frac < 0.18 || frac > 0.22 {
		t.Fatalf("test fraction %.3f, want about 0.2", frac)
	}
	// The split is a function of the pair: a second split is identical.
	train2, test2 := filepath.Join(dir, "train2.csv"), filepath.Join(dir, "test2.csv")
	if err := splitFile(in, train2, test2, 0.2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(test)
	b, _ := os.ReadFile(test2)
	if string(a) != string(b) || !strings.HasPrefix(string(a), "user,item,rating\n") {
		t.Fatal("two splits of the same file differ, or the header is missing")
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--dataset", "ml-small,20m,100m", "--workers", "1,2,4"}, true},
		{[]string{"--dataset", "nope"}, false},
		{[]string{"--systems", "spark"}, false},
		{[]string{"--threads", "0"}, false},
		{[]string{"--workers", "1,x"}, false},
	} {
		_, err := parseFlags(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("parseFlags(%q): error %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}
