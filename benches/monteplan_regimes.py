#!/usr/bin/env python3
"""Speed peer for regime switching: monteplan's own regime-switching return generator.

monteplan (PyPI) draws Markov regime-switching returns only inside its household plans, which
Sextant's plans do not take yet, so the like-for-like piece is its generator alone:
``monteplan.models.returns.regime_switching.RegimeSwitchingReturns.sample(paths, months, rng)``
(monteplan 0.6.0), which returns every path's monthly returns and does nothing else: no cash
flows, no wealth, no reductions. Sextant's figure beside it is a whole goal simulation under
the same chain (``sextant-bench --suite engine --regimes``), so the ratio understates Sextant's
lead.

The chain is the bench's (benches/bench/engine.rs ``BENCH_REGIMES``): one asset (the portfolio),
calm at the standard goal's 7% +- 15% and a crisis at -10% +- 35%, calm -> crisis 3% a month,
crisis -> calm 15%; monteplan's regime returns are arithmetic normals (mean/12, vol/sqrt(12)),
the same work per month as any parameters. Paths are drawn in chunks of at most 20,000 (the
generator holds paths x months x assets float64s). The timing is the median of ``--repeats``
runs after a warm-up.

Prints one JSON object: monteplan_version, paths, months, seconds, path_steps_per_second.
"""
import argparse
import json
import statistics
import time

import numpy as np
from monteplan.config.schema import RegimeConfig, RegimeSwitchingConfig
from monteplan.models.returns.regime_switching import RegimeSwitchingReturns
import importlib.metadata


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=360)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    def regime(name, mu, sigma):
        return RegimeConfig(name=name, expected_annual_returns=[mu], annual_volatilities=[sigma],
                            correlation_matrix=[[1.0]], inflation_mean=0.025, inflation_vol=0.0)

    config = RegimeSwitchingConfig(
        regimes=[regime("calm", 0.07, 0.15), regime("crisis", -0.10, 0.35)],
        transition_matrix=[[0.97, 0.03], [0.15, 0.85]],
        initial_regime=0,
    )
    model = RegimeSwitchingReturns(config)
    chunk = 20_000

    def run(rng):
        left = args.paths
        while left > 0:
            n = min(chunk, left)
            returns = model.sample(n, args.months, rng)
            left -= n
        return returns

    rng = np.random.default_rng(args.seed)
    model.sample(min(args.paths, 2000), args.months, rng)
    times = []
    for _ in range(max(args.repeats, 1)):
        start = time.perf_counter()
        run(rng)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print(json.dumps({
        "monteplan_version": importlib.metadata.version("monteplan"),
        "paths": args.paths,
        "months": args.months,
        "seconds": seconds,
        "path_steps_per_second": args.paths * args.months / seconds,
    }))


if __name__ == "__main__":
    main()
