#!/usr/bin/env python3
"""Speed baseline: the peer Python planner monteplan on its own default plan.

What it measures
----------------
The wall-clock time of one ``monteplan.simulate(plan, market, policies, sim_config)``
call on monteplan's default plan (``default_plan()``, ``default_market()``,
``default_policies()``), with ``--paths`` paths and seed ``--seed``. Only that call is
timed (``time.perf_counter`` around it): imports and building the pydantic configs are
outside the clock. The call itself includes everything monteplan does for a run: drawing
all monthly asset returns up front (``Generator.multivariate_normal`` on
paths x 780 months x 6 assets), the stochastic-inflation paths (an OU loop over months),
the month loop over all paths (vectorised NumPy), and the result's percentiles and
config hash. The run is repeated ``--repeats`` times; ``seconds`` is the best.
``path_steps_per_second`` = paths x months / seconds.

It prints one JSON object:
``monteplan_version, paths, months, seconds, seconds_all, path_steps_per_second,
success_probability, success_definition, seed, numpy_version, cpu_count, plan``.
``success_probability`` is monteplan's own ``SimulationResult.success_probability``: the
fraction of paths whose total wealth stays above zero at every month-end from the start
of retirement (age 65) to the horizon (age 95).

``--sextant-market`` prints instead the single-portfolio Sextant market that matches
monteplan's default market (see below) and exits. ``--student-t DF`` runs the same plan with
monteplan's Student-t return model at DF degrees of freedom (``return_model="student_t"``):
the peer of Sextant's plan under ``{"kind": "student_t", "df": DF}``, for speed. The two
models differ: monteplan scales a multivariate t by the normal's covariance (its monthly
variance is DF/(DF-2) times the normal's), Sextant keeps the lognormal's monthly mean and
variance (docs/model.md 4.1), so their success probabilities are not comparable.
``--annual`` rebalances monteplan's positions once a year (January) instead of January and
July: the peer of Sextant's per-asset plan under ``"rebalancing": "annual"``.
``--sextant-assets`` prints that Sextant market and exits: monteplan's six assets, each with
the monthly gross mean and SD of monteplan's (as ``--sextant-market`` matches the portfolio),
its weights, its correlations (applied to Sextant's log returns, monteplan's to arithmetic
ones: close, not equal), annual rebalancing, and the inflation of ``--sextant-market``.

Usage::

    python3 -m pip install --root-user-action=ignore -r benches/requirements-bench.txt
    python3 benches/monteplan_baseline.py --paths 10000 --repeats 3

monteplan's default plan (monteplan 0.6.0, ``monteplan/config/defaults.py``)
---------------------------------------------------------------------------
* One person, age 30, retires at 65, horizon to age 95: 780 monthly steps; no mortality.
* Accounts: taxable 50,000 (+6,000/yr), traditional 100,000 (+20,000/yr), roth 30,000
  (+7,000/yr). Contributions are annual/12 each month for months 0..419 (to 65), nominal,
  no growth (``income_growth_rate`` 0). ``monthly_income`` = 8,000 is a field of the plan
  but the engine never reads it (contributions are the only pre-retirement cash flow).
* Spending: constant real 5,000/month from month 420 (age 65), times the path's
  cumulative inflation (monthly compounding).
* Market: 6 assets, 60/40 stocks/bonds, each split 60/30/10 US/ex-US developed/EM:
  weights [.36 .18 .06 .24 .12 .04], annual means [.08 .075 .085 .05 .045 .06], annual
  vols [.16 .18 .23 .07 .09 .12], "academic consensus" correlations. Monthly returns are
  multivariate NORMAL (arithmetic) with mean mu/12 and vol sigma/sqrt(12); positions are
  per account per asset, floored at 0, rebalanced to target in January and July.
* Inflation: Ornstein-Uhlenbeck annual rate, theta 0.03, sigma 0.01, kappa 0.5, dt 1/12,
  starting at theta; month t's price change is rate_t/12.
* Policies: withdrawal order taxable -> traditional -> roth; flat 22% tax applied only as a
  gross-up of traditional withdrawals (withdraw X/0.78 to net X); taxable and roth
  withdrawals untaxed; no year-end tax (that runs only for ``tax_model="us_federal"``).
  RMDs are coded (start 73) but in the flat-tax default the prior-year traditional balance
  is never recorded, so every RMD is 0.
* Simulation: ``default_sim_config()`` is 5,000 paths, seed 42, no antithetics;
  RNG PCG64DXSM.

The Sextant request ``benches/plan-monteplan-default.json``
--------------------------------------------------------------
The same household in Sextant's plan format (docs/model.md section 5), with these
differences that Sextant's format cannot express or expresses differently:

* Returns: Sextant's portfolio is one lognormal, rebalanced monthly, identical in every
  account. Its ``expected_return``/``volatility`` are chosen so that a month's gross
  return has monteplan's portfolio mean 1 + mu_p/12 and SD sigma_p/sqrt(12), where
  mu_p = w'mu = 0.0672 and sigma_p = sqrt(w' D R D w) = 0.100425 (``--sextant-market``
  computes them). Compounded monthly this also matches the annual mean and variance. Not
  matched: normal vs lognormal shape, semi-annual vs monthly rebalancing.
  (``{"assets", "weights", "correlations"}`` with monteplan's numbers would instead give
  Sextant mu = 0.0672 as the ANNUAL mean, about 0.26 points/yr below monteplan's.)
* Inflation: Sextant's is deterministic and indexes spending in whole plan years,
  (1+i)^floor(t/12); monteplan's is a stochastic OU process compounded monthly. The
  request uses i = (1 + 0.03/12)^12 - 1 = 0.0304, monteplan's expected annual index.
* Tax: monteplan grosses up each traditional withdrawal at 22% at once; Sextant records
  tax-deferred withdrawals as ordinary income and the year's tax (one bracket, 22% from 0,
  no deduction) falls due the next January as part of the essential need. Capital gains
  rate 0 (monteplan does not tax taxable-account withdrawals in this mode).
* RMDs: ``rmd_age`` 120 (the largest Sextant accepts; the person dies at 95), because
  monteplan's default takes none.
* Timing within a month: monteplan applies the month's return first, then contributions,
  rebalancing and the spending withdrawal; Sextant takes contributions and withdrawals at
  the month's start, then grows the accounts.
* Failure: monteplan counts a path a success when wealth is > 0 at every month-end from
  retirement; Sextant fails a path in the month the essential need cannot be paid without
  emptying the accounts. The random streams differ (PCG64DXSM vs Philox), so the two
  success probabilities agree only statistically (SE about 0.004 at 10,000 paths) and up
  to the model differences above.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def _default_configs():
    from monteplan import default_market, default_plan, default_policies

    return default_plan(), default_market(), default_policies()


def sextant_equivalent_market() -> dict:
    """The one-portfolio Sextant market whose monthly gross return has the mean and SD of
    monteplan's default (monthly-rebalanced) portfolio, and the inflation that matches
    monteplan's expected annual price index."""
    import numpy as np

    _, market, _ = _default_configs()
    w = np.array([a.weight for a in market.assets])
    mu = np.array(market.expected_annual_returns)
    vol = np.array(market.annual_volatilities)
    corr = np.array(market.correlation_matrix)
    mu_p = float(w @ mu)
    sigma_p = float(math.sqrt(w @ (np.outer(vol, vol) * corr) @ w))
    month_mean = 1.0 + mu_p / 12.0  # E[monthly gross return]
    month_var = sigma_p**2 / 12.0  # Var[monthly gross return]
    # Sextant: annual gross lognormal, mean 1+m, SD s; monthly gross = its 12th root in law:
    # E = (1+m)^(1/12), Var = (1+m)^(1/6) (exp(s2/12) - 1), s2 = ln(1 + s^2/(1+m)^2).
    expected_return = month_mean**12 - 1.0
    s2 = 12.0 * math.log1p(month_var / month_mean**2)
    volatility = (1.0 + expected_return) * math.sqrt(math.expm1(s2))
    inflation = (1.0 + market.inflation_mean / 12.0) ** 12 - 1.0
    return {
        "expected_return": round(expected_return, 6),
        "volatility": round(volatility, 6),
        "inflation": round(inflation, 4),
        "monteplan_portfolio_mu": round(mu_p, 6),
        "monteplan_portfolio_sigma": round(sigma_p, 6),
    }


def _matched_lognormal(mean_annual: float, vol_annual: float) -> tuple[float, float]:
    """Sextant's (expected_return, volatility) whose monthly gross return has the mean
    1 + mean_annual/12 and the SD vol_annual/sqrt(12) of monteplan's normal month."""
    month_mean = 1.0 + mean_annual / 12.0
    month_var = vol_annual**2 / 12.0
    # Sextant: annual gross lognormal, mean 1+m, SD s; monthly gross = its 12th root in law:
    # E = (1+m)^(1/12), Var = (1+m)^(1/6) (exp(s2/12) - 1), s2 = ln(1 + s^2/(1+m)^2).
    expected_return = month_mean**12 - 1.0
    s2 = 12.0 * math.log1p(month_var / month_mean**2)
    return expected_return, (1.0 + expected_return) * math.sqrt(math.expm1(s2))


def sextant_equivalent_assets() -> dict:
    """The per-asset Sextant market of monteplan's default: its six assets with matched
    monthly moments, its weights and correlations, rebalanced once a year."""
    _, market, _ = _default_configs()
    assets = []
    for a, mu, vol in zip(
        market.assets, market.expected_annual_returns, market.annual_volatilities, strict=True
    ):
        expected_return, volatility = _matched_lognormal(mu, vol)
        assets.append(
            {
                "name": a.name,
                "expected_return": round(expected_return, 6),
                "volatility": round(volatility, 6),
            }
        )
    return {
        "assets": assets,
        "weights": [a.weight for a in market.assets],
        "correlations": [list(row) for row in market.correlation_matrix],
        "inflation": sextant_equivalent_market()["inflation"],
        "rebalancing": "annual",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--student-t",
        type=float,
        default=None,
        metavar="DF",
        help="monteplan's Student-t return model at DF degrees of freedom",
    )
    parser.add_argument(
        "--annual",
        action="store_true",
        help="rebalance monteplan's positions each January only (default: January and July)",
    )
    parser.add_argument(
        "--sextant-market",
        action="store_true",
        help="print the matching single-portfolio Sextant market and exit",
    )
    parser.add_argument(
        "--sextant-assets",
        action="store_true",
        help="print the matching per-asset Sextant market (annual rebalancing) and exit",
    )
    args = parser.parse_args()

    if args.sextant_market:
        print(json.dumps(sextant_equivalent_market()))
        return 0
    if args.sextant_assets:
        print(json.dumps(sextant_equivalent_assets()))
        return 0
    if args.paths < 1 or args.repeats < 1:
        parser.error("--paths and --repeats must be at least 1")

    import numpy as np

    import monteplan
    from monteplan import SimulationConfig, simulate

    plan, market, policies = _default_configs()
    if args.student_t is not None:
        market = market.model_copy(
            update={"return_model": "student_t", "degrees_of_freedom": args.student_t}
        )
    if args.annual:
        policies = policies.model_copy(update={"rebalancing_months": [1]})
    sim_config = SimulationConfig(n_paths=args.paths, seed=args.seed)

    times = []
    result = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = simulate(plan, market, policies, sim_config)
        times.append(time.perf_counter() - start)

    months = int(result.n_steps)
    best = min(times)
    out = {
        "monteplan_version": monteplan.__version__,
        "paths": int(result.n_paths),
        "months": months,
        "seconds": round(best, 4),
        "seconds_all": [round(t, 4) for t in times],
        "path_steps_per_second": round(result.n_paths * months / best),
        "success_probability": result.success_probability,
        "success_definition": (
            "monteplan SimulationResult.success_probability: fraction of paths with total "
            "wealth > 0 at every month-end from retirement (65) to the horizon (95)"
        ),
        "seed": args.seed,
        "return_model": market.return_model,
        "degrees_of_freedom": market.degrees_of_freedom,
        "rebalancing_months": list(policies.rebalancing_months),
        "numpy_version": np.__version__,
        "cpu_count": os.cpu_count(),
        "plan": (
            "monteplan default_plan/default_market/default_policies: age 30, retire 65, "
            "to 95 (780 months); taxable 50k +6k/yr, traditional 100k +20k/yr, roth 30k "
            "+7k/yr until 65; constant-real spending 5k/month from 65; 6-asset 60/40 "
            "global portfolio (monthly MVN returns, rebalanced "
            + ("each January" if args.annual else "Jan/Jul")
            + "); OU inflation "
            "3% +/- 1%; flat 22% gross-up on traditional withdrawals; order taxable, "
            "traditional, roth"
        ),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
