// Package tune searches a model's hyper-parameters: a grid or random
// sample of (rank, λ, α, iterations), each candidate scored on a test set
// or by K hash folds of the input, with successive halving on iterations
// stopping poor candidates early. Trials run through a Runner: a training
// in this process or a job on a cluster.
//
// # Successive halving
//
// With η > 1 and n candidates, round r = 0, 1, …, R (R = ⌊log_η n⌋)
// trains the surviving candidates for ⌈T/η^(R−r)⌉ iterations (T: each
// candidate's own iteration count) and keeps the best ⌈n_r/η⌉ of them;
// the last round trains the survivors fully. A candidate dropped early
// reports the metric of the last round it ran (and "stopped_early").
// Each round retrains from the initial factors, so a trial's figures do
// not depend on the search: retraining the best parameters gives the best
// metric again.
package tune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// Params are one candidate's hyper-parameters.
type Params struct {
	Rank       int     `json:"rank"`
	Lambda     float64 `json:"lambda"`
	Alpha      float64 `json:"alpha,omitempty"`
	Iterations int     `json:"iterations"`
}

// Apply returns spec with p's values.
func (p Params) Apply(spec job.Spec) job.Spec {
	spec.Rank, spec.Lambda, spec.Iterations = p.Rank, p.Lambda, p.Iterations
	if spec.Implicit {
		spec.Alpha = p.Alpha
	}
	return spec
}

// Trial is one candidate's outcome.
type Trial struct {
	Params  Params  `json:"params"`
	Metric  float64 `json:"metric"`
	Seconds float64 `json:"seconds"`
	// Iterations is how far the candidate was trained (below
	// Params.Iterations when successive halving stopped it).
	Iterations   int  `json:"iterations_run"`
	StoppedEarly bool `json:"stopped_early,omitempty"`
}

// Best is the winning candidate.
type Best struct {
	Params Params  `json:"params"`
	Metric float64 `json:"metric"`
}

// Result is a search's outcome (`cofactor tune --json`).
type Result struct {
	Trials []Trial `json:"trials"`
	Best   Best    `json:"best"`
	Metric string  `json:"metric"`
	// Seconds is the whole search's wall time.
	Seconds float64 `json:"seconds"`
}

// Metric names.
const (
	TestRMSE      = "test_rmse"       // explicit models: lower is better
	PrecisionAt10 = "precision_at_10" // implicit models: higher is better
	NDCGAt10      = "ndcg_at_10"
)

// DefaultMetric is the metric of a model: test RMSE for explicit ones,
// NDCG@10 for implicit ones.
func DefaultMetric(implicit bool) string {
	if implicit {
		return NDCGAt10
	}
	return TestRMSE
}

// Runner trains one spec to the end and returns its result.
type Runner func(ctx context.Context, spec job.Spec) (job.Result, error)

// Options configure Run.
type Options struct {
	// Base is the spec every trial starts from (input, test set, model).
	Base job.Spec
	// Folds > 1 scores each trial as the mean over K hash folds of the
	// input (Base.Test must be empty); else on Base's test set.
	Folds int
	// Candidates are the parameter sets to try.
	Candidates []Params
	// Metric is TestRMSE, PrecisionAt10 or NDCGAt10 ("": DefaultMetric).
	Metric string
	// Eta is successive halving's reduction factor; ≤ 1 trains every
	// candidate fully.
	Eta int
	// Parallel is how many trainings run at once (≥ 1).
	Parallel int
	Run      Runner
}

// ErrOptions: the search is not well defined. Nothing was trained.
var ErrOptions = errors.New("tune: invalid options")

// lowerIsBetter reports the metric's direction.
func lowerIsBetter(metric string) bool { return metric == TestRMSE }

// Run trains the candidates and returns every trial and the best.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Metric == "" {
		o.Metric = DefaultMetric(o.Base.Implicit)
	}
	switch {
	case len(o.Candidates) == 0:
		return nil, fmt.Errorf("%w: no candidates", ErrOptions)
	case o.Metric != TestRMSE && o.Metric != PrecisionAt10 && o.Metric != NDCGAt10:
		return nil, fmt.Errorf("%w: metric %q (want %s, %s or %s)", ErrOptions, o.Metric, TestRMSE, PrecisionAt10, NDCGAt10)
	case o.Metric == TestRMSE && o.Base.Implicit, o.Metric != TestRMSE && !o.Base.Implicit:
		return nil, fmt.Errorf("%w: metric %s does not apply to this model (explicit: %s; implicit: %s or %s)", ErrOptions, o.Metric, TestRMSE, PrecisionAt10, NDCGAt10)
	case o.Folds == 1 || o.Folds < 0:
		return nil, fmt.Errorf("%w: %d folds (want 2 or more, or 0 for the test set)", ErrOptions, o.Folds)
	case o.Run == nil:
		return nil, fmt.Errorf("%w: no runner", ErrOptions)
	}
	for _, p := range o.Candidates {
		if err := p.Apply(o.spec(0)).Validate(); err != nil {
			return nil, fmt.Errorf("%w: candidate %+v: %w", ErrOptions, p, err)
		}
	}
	start := time.Now()
	trials := make([]Trial, len(o.Candidates))
	for i, p := range o.Candidates {
		trials[i].Params = p
	}
	alive := make([]int, len(trials))
	for i := range alive {
		alive[i] = i
	}
	rounds := 0
	if o.Eta > 1 {
		for n := len(alive); n >= o.Eta; n = (n + o.Eta - 1) / o.Eta {
			rounds++
		}
	}
	for r := 0; r <= rounds; r++ {
		scale := math.Pow(float64(o.Eta), float64(rounds-r))
		err := o.parallel(ctx, alive, func(i int) error {
			t := &trials[i]
			p := t.Params
			p.Iterations = max(1, int(math.Ceil(float64(t.Params.Iterations)/scale)))
			m, secs, err := o.score(ctx, p)
			if err != nil {
				return fmt.Errorf("trial %+v: %w", p, err)
			}
			t.Metric, t.Iterations = m, p.Iterations
			t.Seconds += secs
			return nil
		})
		if err != nil {
			return nil, err
		}
		if r == rounds {
			break
		}
		o.sort(trials, alive)
		keep := (len(alive) + o.Eta - 1) / o.Eta
		for _, i := range alive[keep:] {
			trials[i].StoppedEarly = true
		}
		alive = alive[:keep]
	}
	o.sort(trials, alive)
	b := trials[alive[0]]
	return &Result{Trials: trials, Best: Best{Params: b.Params, Metric: b.Metric}, Metric: o.Metric, Seconds: time.Since(start).Seconds()}, nil
}

// sort orders the candidates idx best first (ties: the earlier candidate).
func (o Options) sort(trials []Trial, idx []int) {
	slices.SortStableFunc(idx, func(a, b int) int {
		ma, mb := trials[a].Metric, trials[b].Metric
		if lowerIsBetter(o.Metric) {
			ma, mb = -ma, -mb
		}
		switch {
		case ma > mb || (!math.IsNaN(ma) && math.IsNaN(mb)):
			return -1
		case ma < mb || (math.IsNaN(ma) && !math.IsNaN(mb)):
			return 1
		}
		return a - b
	})
}

// spec is the base spec for fold f (0 without folds).
func (o Options) spec(f int) job.Spec {
	s := o.Base
	if o.Folds > 1 {
		s.Test, s.TestFraction, s.Folds, s.Fold = "", 0, o.Folds, f
	}
	s.Out = ""
	return s
}

// score trains p on each fold (or once) and returns the mean metric and
// the training time.
func (o Options) score(ctx context.Context, p Params) (float64, float64, error) {
	folds := max(o.Folds, 1)
	var sum, secs float64
	for f := 0; f < folds; f++ {
		start := time.Now()
		res, err := o.Run(ctx, p.Apply(o.spec(f)))
		secs += time.Since(start).Seconds()
		if err != nil {
			return 0, secs, err
		}
		m, err := metricOf(res, o.Metric)
		if err != nil {
			return 0, secs, err
		}
		sum += m
	}
	return sum / float64(folds), secs, nil
}

func metricOf(r job.Result, name string) (float64, error) {
	var v *float64
	switch name {
	case TestRMSE:
		v = r.TestRMSE
	case PrecisionAt10:
		v = r.PrecisionAt10
	case NDCGAt10:
		v = r.NDCGAt10
	}
	if v == nil {
		return 0, fmt.Errorf("job %s reports no %s (is there a test set?)", r.JobID, name)
	}
	return *v, nil
}

// parallel runs f on every index with at most o.Parallel at once and
// returns the first error.
func (o Options) parallel(ctx context.Context, idx []int, f func(i int) error) error {
	sem := make(chan struct{}, max(o.Parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, i := range idx {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Grid returns the cartesian product of the lists, in order (rank
// slowest, iterations fastest).
func Grid(ranks []int, lambdas, alphas []float64, iterations []int) []Params {
	var out []Params
	for _, r := range ranks {
		for _, l := range lambdas {
			for _, a := range alphas {
				for _, it := range iterations {
					out = append(out, Params{Rank: r, Lambda: l, Alpha: a, Iterations: it})
				}
			}
		}
	}
	return out
}

// Range is a closed interval to sample from.
type Range struct{ Lo, Hi float64 }

// Random draws n candidates from ranges with a seeded generator: ranks and
// iterations uniform integers, λ and α log-uniform (their scale matters,
// not their digits).
func Random(n int, seed uint64, rank, lambda, alpha, iterations Range) []Params {
	rng := rand.New(rand.NewPCG(seed, 0x7475_6e65))
	logU := func(r Range) float64 {
		if r.Lo <= 0 || r.Lo == r.Hi {
			return r.Lo + rng.Float64()*(r.Hi-r.Lo)
		}
		return math.Exp(math.Log(r.Lo) + rng.Float64()*(math.Log(r.Hi)-math.Log(r.Lo)))
	}
	intU := func(r Range) int { return int(r.Lo) + rng.IntN(int(r.Hi)-int(r.Lo)+1) }
	out := make([]Params, n)
	for i := range out {
		out[i] = Params{Rank: intU(rank), Lambda: logU(lambda), Alpha: logU(alpha), Iterations: intU(iterations)}
	}
	return out
}
