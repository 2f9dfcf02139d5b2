"""run.py trains the `implicit` library's CPU ALS (conjugate gradient, the
library's default solver) on a CSV of user,item,rating and prints one JSON
object: seconds per iteration and, given --test, precision@10 and NDCG@10
under the NumPy reference's protocol (../../shared/tools/npals.py: every
item outside the user's training set is ranked; test pairs whose user or
item has no training rating are dropped).

The confidence of an observed pair is c = 1 + alpha * r, as in cofactor:
the library reads its input values as c itself (and weights y yᵀ by c - 1),
so the values passed are 1 + alpha * r with the library's own alpha at 1.
Build the library first (build.sh) and put its directory on PYTHONPATH.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "shared", "tools"))
import npals  # noqa: E402  (the reference's evaluation, not its solver)


def load(path):
    """Raw ids and ratings of a CSV with a header line."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2), dtype=np.float64)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("--test")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--lambda", dest="lam", type=float, default=50)
    ap.add_argument("--alpha", type=float, default=1)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cg-steps", type=int, default=3)
    a = ap.parse_args()

    from implicit.cpu.als import AlternatingLeastSquares
    import implicit

    t0 = time.perf_counter()
    u, i, r = load(a.train)
    uids, uinv = np.unique(u, return_inverse=True)
    iids, iinv = np.unique(i, return_inverse=True)
    conf = (1 + a.alpha * r).astype(np.float32)
    ui = sp.csr_matrix((conf, (uinv, iinv)), shape=(len(uids), len(iids)), dtype=np.float32)
    ui.sum_duplicates()
    load_s = time.perf_counter() - t0

    model = AlternatingLeastSquares(factors=a.rank, regularization=a.lam, alpha=1.0, iterations=a.iterations,
                                    use_cg=True, calculate_training_loss=False, num_threads=a.threads,
                                    random_state=42, dtype=np.float32)
    model.cg_steps = a.cg_steps
    per = []
    model.fit(ui, show_progress=False, callback=lambda it, secs, loss: per.append(secs))
    out = {"system": "implicit " + implicit.__version__ + " (CPU, CG)", "rank": a.rank, "lambda": a.lam,
           "alpha": a.alpha, "threads": a.threads, "cg_steps": a.cg_steps, "iterations": a.iterations,
           "users": len(uids), "items": len(iids), "n_train": int(ui.nnz), "load_seconds": load_s,
           "iteration_seconds": per, "seconds_per_iteration": min(per) if per else None}
    if a.test:
        tu, ti, _ = load(a.test)
        upos = np.searchsorted(uids, tu).clip(0, len(uids) - 1)
        ipos = np.searchsorted(iids, ti).clip(0, len(iids) - 1)
        ok = (uids[upos] == tu) & (iids[ipos] == ti)
        train = npals.CSR(ui.tocoo().row.astype(np.int64), ui.tocoo().col.astype(np.int64), ui.tocoo().data, len(uids))
        x, y = np.asarray(model.user_factors), np.asarray(model.item_factors)
        counts = np.asarray((ui > 0).sum(axis=0)).ravel().astype(np.float64)
        m = npals.ranking_metrics(train, upos[ok], ipos[ok], lambda uu: y @ x[uu], len(iids), 10, counts)
        out.update({"precision_at_10": m["precision_at_10"], "ndcg_at_10": m["ndcg_at_10"],
                    "test_dropped_cold": int((~ok).sum())})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
