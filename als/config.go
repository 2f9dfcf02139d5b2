package als

import (
	"errors"
	"fmt"
	"runtime"
)

// SolverKind selects how each row's least-squares system is solved.
type SolverKind string

const (
	// SolverCholesky forms the k×k normal equations (float64 accumulation)
	// and solves them exactly.
	SolverCholesky SolverKind = "cholesky"
	// SolverCG runs Config.CGSteps conjugate-gradient steps per row,
	// warm-started from the row's previous value, without forming the
	// per-row matrix.
	SolverCG SolverKind = "cg"
	// SolverAuto, the default, is SolverCG for the implicit model and
	// SolverCholesky for the explicit one: on implicit data a few CG steps
	// match the exact solve's ranking quality at a fraction of its cost,
	// while the explicit model keeps the exact solve's slightly lower
	// error.
	SolverAuto SolverKind = "auto"
)

// Limits on configuration values.
const (
	// MaxRank bounds the factor rank. Per-row scratch space grows with k²
	// and the kernels are tuned for k ≤ 256; larger ranks are refused
	// rather than silently slow.
	MaxRank = 1024
	// MaxCGSteps bounds the conjugate-gradient steps per row. More than k
	// steps never helps in exact arithmetic.
	MaxCGSteps = 64
)

// Config describes one ALS model's hyper-parameters and how to compute it.
type Config struct {
	// Rank is the number of latent factors k.
	Rank int
	// Lambda is the regularisation weight. Explicit: scaled by each row's
	// rating count (ALS-WR). Implicit: used as is.
	Lambda float64
	// Implicit selects the Hu–Koren–Volinsky model.
	Implicit bool
	// Alpha scales confidence in the implicit model: c = 1 + Alpha·r.
	Alpha float64
	// Solver is SolverCholesky, SolverCG or SolverAuto.
	Solver SolverKind
	// CGSteps is the number of conjugate-gradient steps per row (SolverCG).
	CGSteps int
	// Threads is how many goroutines solve rows in parallel; 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
	// Biases adds a global mean and regularised user and item biases to
	// the explicit model: r̂ = μ + b_u + c_i + x_u·y_i. Rows are then
	// Width() = Rank+2 wide (see [Config.Width]); μ comes with each
	// BlockUpdate.
	Biases bool
	// NonNegative constrains the factors (not the biases) to be ≥ 0: each
	// row's least-squares problem is solved by non-negative least squares
	// on its normal equations (Cholesky solver only).
	NonNegative bool
}

// Width is the length of a stored factor row: Rank, or Rank+2 with Biases,
// where a user row is [x_u, b_u, 1] and an item row [y_i, 1, c_i], so that
// the dot product of the two is b_u + c_i + x_u·y_i and a prediction adds
// the global mean μ.
func (c Config) Width() int {
	if c.Biases {
		return c.Rank + 2
	}
	return c.Rank
}

// DefaultConfig returns the defaults: rank 10, explicit, λ 0.005, the
// automatic solver choice (Cholesky for explicit, CG for implicit), 3 CG
// steps when CG runs, one thread per CPU.
//
// The default λ suits data whose noise is small against its signal (it
// recovers a rank-k synthetic truth to near its noise floor). Real ratings
// are noisier and want more: ALS-WR on MovieLens is best near λ = 0.1.
func DefaultConfig() Config {
	return Config{
		Rank:    10,
		Lambda:  0.005,
		Alpha:   1,
		Solver:  SolverAuto,
		CGSteps: 3,
	}
}

// Sentinel errors.
var (
	// ErrConfig is wrapped by every Validate error.
	ErrConfig = errors.New("als: invalid configuration")
	// ErrNotPositiveDefinite: a row's system could not be factorised; the
	// row has too few ratings for its regularisation (λ = 0).
	ErrNotPositiveDefinite = errors.New("als: normal equations are not positive definite")
	// ErrShape: slices passed to UpdateBlock do not match the block.
	ErrShape = errors.New("als: inconsistent block shapes")
)

// Validate checks c and returns one error naming the first bad value.
func (c Config) Validate() error {
	switch {
	case c.Rank < 1 || c.Rank > MaxRank:
		return fmt.Errorf("%w: rank %d outside 1..%d", ErrConfig, c.Rank, MaxRank)
	case !(c.Lambda >= 0) || c.Lambda > 1e12:
		return fmt.Errorf("%w: lambda %g must be a finite number ≥ 0", ErrConfig, c.Lambda)
	case c.Implicit && (!(c.Alpha >= 0) || c.Alpha > 1e12):
		return fmt.Errorf("%w: alpha %g must be a finite number ≥ 0", ErrConfig, c.Alpha)
	case c.Solver != SolverCholesky && c.Solver != SolverCG && c.Solver != SolverAuto:
		return fmt.Errorf("%w: solver %q (want %q, %q or %q)", ErrConfig, c.Solver, SolverCholesky, SolverCG, SolverAuto)
	case c.SolverUsed() == SolverCG && (c.CGSteps < 1 || c.CGSteps > MaxCGSteps):
		return fmt.Errorf("%w: cg steps %d outside 1..%d", ErrConfig, c.CGSteps, MaxCGSteps)
	case c.Threads < 0:
		return fmt.Errorf("%w: threads %d must be ≥ 0", ErrConfig, c.Threads)
	case c.Biases && c.Implicit:
		return fmt.Errorf("%w: biases belong to the explicit model (drop --biases or --implicit)", ErrConfig)
	case (c.Biases || c.NonNegative) && c.SolverUsed() != SolverCholesky:
		return fmt.Errorf("%w: biases and non-negative factors need the cholesky solver, not %q", ErrConfig, c.Solver)
	}
	return nil
}

// SolverUsed is the solver that runs: Solver, with SolverAuto resolved
// for the model (SolverCG when Implicit without NonNegative, else
// SolverCholesky).
func (c Config) SolverUsed() SolverKind {
	if c.Solver != SolverAuto {
		return c.Solver
	}
	if c.Implicit && !c.NonNegative {
		return SolverCG
	}
	return SolverCholesky
}

func (c Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// InPlace reports whether a block's new factors may be written over its
// old ones: true when no row's solve reads the row's previous value
// (Cholesky without biases or non-negativity; conjugate gradients warm
// start from it). A caller that holds one copy of a block's factors
// instead of two relies on it, also when it repeats an interrupted solve
// over rows already overwritten.
func (c Config) InPlace() bool {
	return c.SolverUsed() == SolverCholesky && !c.Biases && !c.NonNegative
}
