#!/usr/bin/env python3
"""PyPortfolioOpt baseline for Sextant's efficient-frontier benchmark.

What it measures: the wall time of tracing a mean-variance efficient frontier of `points`
portfolios the way a PyPortfolioOpt user does it: one `EfficientFrontier.efficient_return(target)`
(a cvxpy QP: minimise w'Sw subject to mu'w >= target, sum w = 1, bounds) per frontier point, at
evenly spaced targets from the minimum-variance portfolio's return to the maximum attainable
return (both ends included). It is the baseline Sextant's frontier benchmark is compared against.
Without --solver, cvxpy picks the solvers: OSQP for the QPs, Clarabel for the internal LP.

Two ways of looping, both PyPortfolioOpt's own API:
  --mode fresh  (default) a new `EfficientFrontier(mu, S, weight_bounds=...)` per point. Each
                `efficient_return` on a fresh object also solves PyPortfolioOpt's internal
                max-return LP (its target check) and has cvxpy canonicalise the problem anew.
  --mode reuse  one object for all points, as `pypfopt.plotting.plot_efficient_frontier` does in
                1.6.0: later calls only update the cvxpy target-return Parameter and re-solve.
The two endpoints (min_volatility and the max return, a greedy fill of the highest returns up
to their upper bounds) are found before the clock starts; only the `points` solves are timed.
PyPortfolioOpt refuses targets above the value of its own max-return LP, which the solver's
tolerance puts slightly below the true maximum (by 3e-10 to 6e-8 on the bundled problems), so
the last target is nudged down by 1e-9 relative, then 1e-8, ... until it is accepted (reported as
top_target_nudge). A point whose solve raises counts as a failure (its variance is null).

Usage: python3 benches/frontier_reference.py PROBLEM.json [--repeats R] [--mode fresh|reuse]
                                             [--solver NAME]
PROBLEM.json is Sextant's frontier request: {"assets": [{"name", "expected_return",
"volatility"}...], "correlations": [[...]] (or "covariance": [[...]]), "bounds": [{"min",
"max"}...] (optional, default 0..1), "points": K}. Prints one JSON object on stdout: library,
cvxpy, solver, mode, assets, points, seconds (median over the repeats), points_solved, failures,
top_target_nudge, variances (w'Sw per point, from the last repeat).
Needs: python3 -m pip install PyPortfolioOpt packaging   (measured with PyPortfolioOpt 1.6.0,
cvxpy 1.9.3, OSQP 1.1.3, Clarabel 0.11.1, NumPy 2.4.6; `packaging` is an undeclared dependency).
"""
import argparse
import json
import statistics
import time
from importlib.metadata import version

import numpy as np
from pypfopt import EfficientFrontier


def load(path):
    p = json.load(open(path))
    mu = np.array([a["expected_return"] for a in p["assets"]], dtype=float)
    if "covariance" in p:
        S = np.array(p["covariance"], dtype=float)
    else:
        vol = np.array([a["volatility"] for a in p["assets"]], dtype=float)
        R = np.array(p["correlations"], dtype=float) if p.get("correlations") else np.eye(len(mu))
        S = vol[:, None] * R * vol[None, :]
    bounds = [(b.get("min", 0.0), b.get("max", 1.0)) for b in p.get("bounds") or [{}] * len(mu)]
    return mu, S, bounds, int(p.get("points", 100))


def max_return(mu, bounds):
    """Long-only max return: start at the lower bounds, fill the best returns up to their maxima."""
    lo, hi = np.array(bounds, dtype=float).T
    w, left = lo.copy(), 1.0 - lo.sum()
    assert left >= -1e-12 and hi.sum() >= 1.0 - 1e-12, "the bounds admit no fully invested portfolio"
    for i in np.argsort(-mu, kind="stable"):
        step = min(hi[i] - lo[i], left)
        w[i], left = w[i] + step, left - step
    return float(mu @ w)


def refused(mu, S, bounds, target, solver):
    """True if PyPortfolioOpt rejects the target as above its maximum return (not a solver failure)."""
    try:
        EfficientFrontier(mu, S, weight_bounds=bounds, solver=solver).efficient_return(float(target))
    except ValueError:
        return True
    except Exception:
        pass
    return False


def frontier(mu, S, bounds, targets, reuse, solver):
    """Solve every target; return (variances with None for failures, failures, solver name)."""
    make = lambda: EfficientFrontier(mu, S, weight_bounds=bounds, solver=solver)
    ef, variances, failures, used = make(), [], 0, None
    for t in targets:
        ef = ef if reuse else make()
        try:
            ef.efficient_return(float(t))
            variances.append(float(ef.weights @ S @ ef.weights))
            used = ef._opt.solver_stats.solver_name
        except Exception:  # OptimizationError, ValueError ("target_return must be lower ..."), ...
            variances.append(None)
            failures += 1
    return variances, failures, used


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problem")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", choices=["fresh", "reuse"], default="fresh")
    ap.add_argument("--solver", default=None, help="cvxpy solver, e.g. CLARABEL (default: cvxpy's choice)")
    args = ap.parse_args()

    mu, S, bounds, points = load(args.problem)
    ef = EfficientFrontier(mu, S, weight_bounds=bounds, solver=args.solver)
    ef.min_volatility()
    lo, hi = float(mu @ ef.weights), max_return(mu, bounds)
    nudge = 0.0  # PyPortfolioOpt refuses targets above its own max-return LP, which lands a bit low
    while nudge < 1e-4 and refused(mu, S, bounds, hi * (1 - nudge), args.solver):
        nudge = max(10 * nudge, 1e-9)
    targets = np.linspace(lo, hi * (1 - nudge), points)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        variances, failures, solver = frontier(mu, S, bounds, targets, args.mode == "reuse", args.solver)
        times.append(time.perf_counter() - t0)

    print(json.dumps({
        "library": f"PyPortfolioOpt {version('pyportfolioopt')}", "cvxpy": version("cvxpy"),
        "solver": solver, "mode": args.mode, "assets": len(mu), "points": points,
        "seconds": statistics.median(times), "points_solved": points - failures,
        "failures": failures, "top_target_nudge": nudge, "variances": variances,
    }))


if __name__ == "__main__":
    main()
