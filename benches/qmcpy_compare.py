#!/usr/bin/env python3
"""Peer comparison for the sampler benchmark (issue 15): the peer library qmcpy's scrambled
Sobol' points with its Brownian-bridge construction, against plain Monte Carlo, on the
integrand of the standard goal (examples/accumulation-30y.json). Outside the engine, like
benches/sobol_prototype.py, whose goal arithmetic it repeats: a reference for what an
off-the-shelf QMC library gets on this goal, not an engine measurement.

What it computes
----------------
The goal (docs/model.md section 1): W_0 = 50,000; month t = 0 ... 359:
``W <- (W + c_t) * exp(m/12 + vol * Z_t)`` with ``c_t = 1,000 * 1.03^floor(t/12)``,
``s^2 = ln(1 + sigma^2 / (1 + mu)^2)``, ``m = ln(1 + mu) - s^2/2``, ``vol = sqrt(s^2/12)``
(mu = 7%, sigma = 15%). The target is real: 1e6 * 1.025^(360/12) nominal. A path succeeds when
W_T >= target and it was never depleted (this goal has no withdrawals, so it never is). All
arithmetic is f64 (the engine rounds vol to f32 and draws its shocks in f32; irrelevant here).

One "run" is the estimate of the success probability from 16,384 paths:

* ``plain_mc``: 16,384 paths of NumPy ``default_rng`` normals (PCG64, ziggurat), month by month.
* ``qmcpy_sobol_bridge``: ``--replicates`` (16) independent randomizations x ``--points``
  (1,024) points of qmcpy's ``DigitalNetB2`` in 360 dimensions, i.e. Sobol' points from Joe
  and Kuo's ``new-joe-kuo-6.21201`` direction numbers (qmcpy's default
  ``generating_matrices="joe_kuo.6.21201.txt"``), natural (radical-inverse) order, 63-bit
  output, with qmcpy's default randomization ``randomize="LMS DS"``: a linear matrix scramble
  (a random lower-triangular binary matrix with unit diagonal, per dimension; Matousek's, as
  in SciPy's ``scramble=True``) followed by a random 63-bit digital shift, drawn independently
  per replicate. These uniforms go through qmcpy's ``BrownianMotion`` true
  measure with ``decomp_type="BrownianBridge"`` (Owen, "Monte Carlo theory, methods and
  examples", section 6.4, algorithms 6.1/6.2): ``norm.ppf`` of coordinate 1 sets B(360), the
  next ones the midpoints in van der Corput order, so the first, best-distributed Sobol'
  coordinates carry the path's large-scale shape. The monthly normals are the increments
  ``Z_t = B(t+1) - B(t)`` (``t_final = 360``, unit time steps). The estimate is the mean of the
  16 replicate estimates (= the success fraction of all 16,384 paths).

  ``monitoring_times = 1 ... 360`` is passed explicitly: for a dimension that is not a power
  of two, qmcpy's default bridge times are the first d van der Corput points (for d = 360 a
  grid of steps 0.70 and 1.41, not the months); with explicit times it sorts them into van der
  Corput order itself (``bridge_vdc_gray_ordering=True``). Its warning that the bridge is
  "most efficient when d is a power of 2" (about speed) is silenced.
* ``qmcpy_sobol_pca`` (only with ``--decomp pca`` or ``both``): the same points through
  ``BrownianMotion``'s default ``decomp_type="PCA"`` (eigenvectors of the 360 x 360 covariance
  min(s, t), largest eigenvalue first) instead of the bridge.

Each run is repeated over ``--seeds`` seeds (seed k: ``default_rng(SeedSequence([0, k]))`` for
plain MC, ``DigitalNetB2(seed=SeedSequence([1, k]))`` for qmcpy). Reported per method:
``mean`` (of the per-run estimates), ``variance`` (their sample variance, ddof = 1: the
variance of one run's estimate), ``vrf`` = plain_mc variance / this method's variance, with
``vrf_ci95``, its 95% interval from the F distribution (seeds - 1, seeds - 1 degrees of
freedom; the per-run estimates are close to normal at 16,384 paths; null for plain_mc, the
reference), ``within_run_variance`` (the mean over runs of the variance a run estimates for
itself: p(1 - p)/16,384 for plain MC, the replicates' sample variance / 16 for qmcpy; it
should agree with ``variance``), and ``median_seconds`` per run: drawing the normals (for qmcpy:
building and randomizing the net, the true measure, the increments) and simulating, on this
machine, single-threaded NumPy loops (BLAS may use more threads for the PCA product). Most of
qmcpy's time is SciPy's ``norm.ppf`` inside the true measure, not the net. ``estimates`` lists
the per-run estimates, seed 0 first.

The defaults (100 seeds) take about two minutes on two cores (121 s with a cargo build running
beside it). It prints one JSON object on stdout and a Markdown table on stderr.

    pip install -r benches/requirements-bench.txt      # qmcpy
    python3 benches/qmcpy_compare.py                    # --seeds 100 --replicates 16 --points 1024
    python3 benches/qmcpy_compare.py --decomp both      # also PCA (about three times as long)
"""
import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import warnings

import numpy as np
import scipy
from scipy.stats import f as f_dist

import qmcpy as qp

HERE = os.path.dirname(os.path.abspath(__file__))
GOAL = os.path.join(HERE, "..", "examples", "accumulation-30y.json")


def load_goal(path):
    """The goal's per-month arithmetic, from the example request (single portfolio only)."""
    with open(path) as f:
        req = json.load(f)
    g, mk = req["goal"], req["market"]
    T = g["horizon_months"]
    mu, sigma, infl = mk["expected_return"], mk["volatility"], mk.get("inflation", 0.0)
    assert not g.get("monthly_withdrawal"), "this integrand has no withdrawals"
    s2 = math.log1p(sigma ** 2 / (1 + mu) ** 2)
    m = math.log1p(mu) - s2 / 2
    months = np.arange(T)
    cmonths = g.get("contribution_months", T)
    c = np.where(months < cmonths,
                 g.get("monthly_contribution", 0.0)
                 * (1 + g.get("contribution_growth", 0.0)) ** (months // 12), 0.0)
    target = g["target_amount"] * ((1 + infl) ** (T / 12) if g.get("target_real", True) else 1.0)
    return dict(T=T, w0=float(g.get("initial_wealth", 0.0)), c=c, drift=m / 12,
                vol=math.sqrt(s2 / 12), target=target)


def successes(goal, z):
    """z: (paths, T) month normals -> bool per path (W_T >= target; never depleted here)."""
    g = np.exp(goal["drift"] + goal["vol"] * z.T)  # (T, paths), contiguous per month
    W = np.full(z.shape[0], goal["w0"])
    c = goal["c"]
    for t in range(goal["T"]):
        W += c[t]
        W *= g[t]
    return W >= goal["target"]


def run_plain(goal, paths, seed):
    rng = np.random.default_rng(np.random.SeedSequence([0, seed]))
    ok = successes(goal, rng.standard_normal((paths, goal["T"])))
    p = ok.mean()
    return p, p * (1 - p) / paths


def run_qmcpy(goal, replicates, points, seed, decomp):
    T = goal["T"]
    net = qp.DigitalNetB2(T, replications=replicates, seed=np.random.SeedSequence([1, seed]))
    if decomp == "bridge":
        bm = qp.BrownianMotion(net, t_final=T, decomp_type="BrownianBridge",
                               monitoring_times=np.arange(1, T + 1))
    else:
        bm = qp.BrownianMotion(net, t_final=T, decomp_type="PCA")
    B = bm(points)  # (replicates, points, T): B(1), ..., B(T)
    z = np.diff(B, axis=-1, prepend=0.0).reshape(replicates * points, T)
    ok = successes(goal, z).reshape(replicates, points)
    reps = ok.mean(axis=1)
    return reps.mean(), reps.var(ddof=1) / replicates


def summarize(ests, within, secs):
    return dict(mean=float(np.mean(ests)), variance=float(np.var(ests, ddof=1)),
                within_run_variance=float(np.mean(within)),
                median_seconds=float(statistics.median(secs)),
                estimates=[float(e) for e in ests])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100, help="independent runs per method (100)")
    ap.add_argument("--replicates", type=int, default=16,
                    help="independent randomizations per qmcpy run (16)")
    ap.add_argument("--points", type=int, default=1024,
                    help="Sobol' points per randomization, a power of two (1024)")
    ap.add_argument("--decomp", choices=["bridge", "pca", "both"], default="bridge",
                    help="qmcpy BrownianMotion decomposition(s) to run (bridge)")
    ap.add_argument("--goal", default=GOAL, help="goal request (examples/accumulation-30y.json)")
    args = ap.parse_args()
    if args.seeds < 2 or args.replicates < 2 or args.points < 1 \
            or args.points & (args.points - 1):
        ap.error("need --seeds >= 2, --replicates >= 2, --points a power of two")
    warnings.filterwarnings("ignore", message="BrownianBridge is most efficient")

    goal = load_goal(args.goal)
    paths = args.replicates * args.points
    decomps = ["bridge", "pca"] if args.decomp == "both" else [args.decomp]
    names = {"bridge": "qmcpy_sobol_bridge", "pca": "qmcpy_sobol_pca"}
    runs = {"plain_mc": ([], [], [])}
    for d in decomps:
        runs[names[d]] = ([], [], [])

    start = time.perf_counter()
    for seed in range(args.seeds):
        for name, (ests, within, secs) in runs.items():
            t0 = time.perf_counter()
            if name == "plain_mc":
                p, v = run_plain(goal, paths, seed)
            else:
                d = "bridge" if name == "qmcpy_sobol_bridge" else "pca"
                p, v = run_qmcpy(goal, args.replicates, args.points, seed, d)
            secs.append(time.perf_counter() - t0)
            ests.append(p)
            within.append(v)
    wall = time.perf_counter() - start

    methods = {name: summarize(*r) for name, r in runs.items()}
    v_mc = methods["plain_mc"]["variance"]
    dof = args.seeds - 1
    lo, hi = f_dist.ppf(0.975, dof, dof), f_dist.ppf(0.025, dof, dof)
    for name, m in methods.items():
        vrf = v_mc / m["variance"] if m["variance"] > 0 else None
        m["vrf"] = vrf
        # plain_mc is the reference: its VRF is 1 by definition, with no interval.
        m["vrf_ci95"] = None if vrf is None or name == "plain_mc" else [vrf / lo, vrf / hi]
        m["estimates"] = m.pop("estimates")  # last, for reading
    net = qp.DigitalNetB2(goal["T"], seed=0)
    report = dict(
        goal=os.path.relpath(args.goal, os.path.join(HERE, "..")),
        months=goal["T"], target_nominal=goal["target"],
        seeds=args.seeds, replicates=args.replicates, points=args.points,
        paths_per_run=paths,
        qmcpy_version=qp.__version__, numpy_version=np.__version__,
        scipy_version=scipy.__version__, python_version=platform.python_version(),
        cpu_count=os.cpu_count(),
        qmcpy_generator=dict(cls="DigitalNetB2", dimension=goal["T"],
                             generating_matrices="joe_kuo.6.21201 (Joe-Kuo new-joe-kuo-6.21201)",
                             randomize=net.randomize, order=net.order, t=int(net.t),
                             true_measure="BrownianMotion(t_final=%d)" % goal["T"],
                             decomp=[{"bridge": "BrownianBridge (monitoring_times 1..%d, van der "
                                      "Corput order)" % goal["T"], "pca": "PCA"}[d]
                                     for d in decomps]),
        methods=methods, wall_seconds=wall,
    )
    text = json.dumps(report, indent=2)
    # Flat lists (the per-run estimates, the CI) on one line each.
    print(re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda mt: "[" + " ".join(mt.group(1).split()) + "]",
                 text))

    rows = ["| method | mean estimate | variance across seeds | VRF (95%) | within-run variance "
            "| median s/run |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, m in methods.items():
        vrf = "n/a" if m["vrf"] is None else "%.1f" % m["vrf"]
        if m["vrf_ci95"]:
            vrf += " (%.1f-%.1f)" % tuple(m["vrf_ci95"])
        rows.append("| %s | %.5f | %.3e | %s | %.3e | %.3f |" % (
            name, m["mean"], m["variance"], vrf, m["within_run_variance"], m["median_seconds"]))
    print("\n%d seeds x %d paths per run (qmcpy %s: %d x %d), %.0f s in all\n"
          % (args.seeds, paths, qp.__version__, args.replicates, args.points, wall),
          file=sys.stderr)
    print("\n".join(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
