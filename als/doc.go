// Package als owns the factor math of alternating least squares: building
// each row's normal equations, solving them (Cholesky or conjugate
// gradient), the explicit (ALS-WR) and implicit (Hu–Koren–Volinsky) updates
// of one block of rows, factor initialisation, and the accuracy and ranking
// metrics.
//
// # Model
//
// Explicit feedback (ALS-WR, Zhou et al. 2008) minimises
//
//	Σ_(u,i) (r_ui − x_u·y_i)² + λ (Σ_u n_u |x_u|² + Σ_i n_i |y_i|²)
//
// so each row solves (Y_uᵀY_u + λ n_u I) x_u = Y_uᵀ r_u, where n_u is the
// row's rating count. Implicit feedback (Hu, Koren & Volinsky 2008) treats
// every observed pair as preference 1 with confidence c = 1 + α r and every
// unobserved pair as preference 0 with confidence 1, regularised by plain λ:
// (YᵀY + Y_uᵀ(C_u − I)Y_u + λ I) x_u = Y_uᵀ C_u 1. YᵀY covers the whole other
// side and is computed once per half-iteration ([Gram]).
//
// # Solvers
//
// SolverCholesky forms the k×k normal equations with float64 accumulation
// (products of float32 factors are exact in float64) and solves them by
// Cholesky factorisation; where the CPU has AVX-512, the explicit model's
// systems of at most 64 unknowns are factored eight at a time, one per
// vector lane (cholbatch.go, rowbatch.go). SolverCG runs a few
// conjugate-gradient steps per row, warm-started from the row's previous
// value, and never forms the per-row matrix: each step applies
// Y_uᵀ(W Y_u p) directly.
//
// # Determinism
//
// A row's result depends only on its ratings (in the order of the other
// side's global index), the other side's rows and its previous value, never
// on how rows are split into blocks or goroutines. Training the same data
// with any block count therefore gives bit-identical factors.
//
// # Concurrency
//
// [Solver.UpdateBlock] spreads rows over Config.Threads goroutines, each with
// its own scratch space; the inner math is single-threaded. A Solver may be
// used by one UpdateBlock call at a time.
package als
