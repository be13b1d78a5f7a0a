#!/usr/bin/env python3
"""Write a SYNTHETIC monthly market history for the bootstrap model (docs/model.md section 4.3).

The numbers are invented: they come from the small model below with a fixed seed, not from any
market. They are shaped to look like a plausible 60/40 world (long calm spells, short stressed
spells with falling stocks, rallying bonds and higher volatility, persistent inflation near 3% a
year), which is all the bootstrap's tests, examples and reference cases need. The month labels
run 0001-01 ... 0050-12: synthetic years, deliberately not real dates.

The model, month by month (annual figures are for a whole year of the state):
* a two-state Markov chain, calm -> stressed with probability 0.02 a month and stressed -> calm
  with 0.10 (a stressed spell lasts 10 months on average; about one month in seven is stressed),
  starting calm;
* stocks and bonds are lognormal months: the annual gross return has mean 1 + mu and standard
  deviation sigma (the same conversion as benches/reference.py's `monthly_params`), stocks
  8% / 16% when calm and -10% / 30% when stressed, bonds 4% / 6% when calm and 5% / 8% when
  stressed; the two log returns correlate 0.1 when calm and -0.3 when stressed;
* inflation is an annual rate following an AR(1) around 3% (monthly coefficient 0.97, a
  stationary standard deviation of 1.5 points, started at 3%), floored at -5% a year; the
  month's simple rate is (1 + rate)^(1/12) - 1.
Every simple return is exp(log return) - 1 > -100%, and stays so at 6 decimals (asserted).

Outputs (overwritten):
* examples/history-synthetic.csv: the header `month,stocks,bonds,inflation`, then 600 rows of
  simple monthly returns as decimals with 6 decimal places (the CSV form the service accepts: a
  header; asset columns, an optional `inflation` column, an optional leading `month` or `date`
  label column; one row per month);
* examples/history-synthetic.md: the companion note saying the data are synthetic;
* examples/bootstrap.json: a retirement drawdown goal with the whole history inline (so it runs
  without a stored history; `sextant histories import` stores the CSV under a name a request
  can give instead), 60/40, stationary blocks of 60 months.
With --cases it also (re)writes the bootstrap cases of benches/market-reference-cases.json (those
named "bootstrap: ..."; the other cases are kept as they are): four goals over the CSV's first
240 months inline (the fourth over the stocks column alone, without inflation), 100,000 paths.

Usage: python3 benches/make_history.py [--cases]   (from any directory; paths are repo-relative)
"""
import json
import math
import os
import re
import sys

import numpy as np

SEED = 20240601
MONTHS = 600
ASSETS = ["stocks", "bonds"]
# state -> ((mu, sigma) per asset, correlation of the log returns)
STATES = {
    0: (((0.08, 0.16), (0.04, 0.06)), 0.1),     # calm
    1: (((-0.10, 0.30), (0.05, 0.08)), -0.3),   # stressed
}
TRANSITION = np.array([[0.98, 0.02], [0.10, 0.90]])
INFLATION_MEAN, INFLATION_PHI, INFLATION_SD, INFLATION_FLOOR = 0.03, 0.97, 0.015, -0.05

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CSV = os.path.join(REPO, "examples", "history-synthetic.csv")
NOTE = os.path.join(REPO, "examples", "history-synthetic.md")
EXAMPLE = os.path.join(REPO, "examples", "bootstrap.json")
CASES = os.path.join(REPO, "benches", "market-reference-cases.json")
CASE_MONTHS = 240


def monthly_params(mu, sigma):
    """(drift, scale) of the monthly log return for an annual lognormal with mean 1+mu, sd sigma."""
    s2 = math.log1p(sigma * sigma / ((1.0 + mu) ** 2))
    m = math.log1p(mu) - s2 / 2.0
    return m / 12.0, math.sqrt(s2 / 12.0)


def generate():
    """(labels, returns (MONTHS, 2), inflation (MONTHS,), states (MONTHS,)), from SEED."""
    rng = np.random.default_rng(SEED)
    params = {}
    for s, (assets, rho) in STATES.items():
        drift = np.array([monthly_params(mu, sd)[0] for mu, sd in assets])
        scale = np.array([monthly_params(mu, sd)[1] for mu, sd in assets])
        chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
        params[s] = (drift, scale, chol)
    state, rate = 0, INFLATION_MEAN
    innovation = INFLATION_SD * math.sqrt(1.0 - INFLATION_PHI ** 2)
    returns = np.empty((MONTHS, len(ASSETS)))
    inflation = np.empty(MONTHS)
    states = np.empty(MONTHS, dtype=int)
    for t in range(MONTHS):
        if t > 0:
            state = int(rng.random() >= TRANSITION[state, 0])
        states[t] = state
        drift, scale, chol = params[state]
        z = chol @ rng.standard_normal(len(ASSETS))
        returns[t] = np.expm1(drift + scale * z)
        inflation[t] = (1.0 + rate) ** (1.0 / 12.0) - 1.0
        rate = INFLATION_MEAN + INFLATION_PHI * (rate - INFLATION_MEAN) + innovation * rng.standard_normal()
        rate = max(rate, INFLATION_FLOOR)
    returns, inflation = np.round(returns, 6), np.round(inflation, 6)
    assert (returns > -1.0).all() and (inflation > -1.0).all()
    labels = [f"{t // 12 + 1:04d}-{t % 12 + 1:02d}" for t in range(MONTHS)]
    return labels, returns, inflation, states


def history_json(returns, inflation=None, months=None, assets=None):
    """The inline history object of a request: {"assets", "months": [{"returns", "inflation"?}]}."""
    idx = list(range(len(returns) if months is None else months))
    cols = list(range(len(ASSETS))) if assets is None else [ASSETS.index(a) for a in assets]
    out = []
    for t in idx:
        month = {"returns": [float(returns[t, k]) for k in cols]}
        if inflation is not None:
            month["inflation"] = float(inflation[t])
        out.append(month)
    return {"assets": [ASSETS[k] for k in cols], "months": out}


def read_csv(path=CSV):
    """(labels, returns, inflation) back from the CSV, for the reference cases."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f if line.strip()]
    labels = [r[0] for r in rows]
    returns = np.array([[float(r[header.index(a)]) for a in ASSETS] for r in rows])
    inflation = np.array([float(r[header.index("inflation")]) for r in rows])
    return labels, returns, inflation


def main():
    labels, returns, inflation, states = generate()
    with open(CSV, "w") as f:
        f.write("month," + ",".join(ASSETS) + ",inflation\n")
        for t in range(MONTHS):
            f.write(f"{labels[t]}," + ",".join(f"{x:.6f}" for x in returns[t]) + f",{inflation[t]:.6f}\n")

    years = MONTHS / 12.0
    growth = np.prod(1.0 + returns, axis=0) ** (1.0 / years) - 1.0
    vol = returns.std(axis=0) * math.sqrt(12.0)
    infl = np.prod(1.0 + inflation) ** (1.0 / years) - 1.0
    with open(NOTE, "w") as f:
        f.write(
            "# history-synthetic.csv: a SYNTHETIC market history\n\n"
            "Not market data. `benches/make_history.py` generated these 600 months (fixed seed "
            f"{SEED}) from a two-state (calm / stressed) Markov chain with lognormal stock and bond "
            "months and an AR(1) inflation rate; see its docstring for the model. The month labels "
            "`0001-01` ... `0050-12` are synthetic years, not dates. Use it to try the bootstrap "
            "model (docs/model.md section 4.3) and in tests; do not read anything about real markets "
            "into it.\n\n"
            "Format: a header line `month,stocks,bonds,inflation`, then one row per month: the label, "
            "the simple monthly returns of each asset and the monthly simple inflation rate, as "
            "decimals with 6 decimal places.\n\n"
            f"Summary (annualised over the 600 months): stocks {growth[0]:.2%} a year compound, "
            f"volatility {vol[0]:.1%}; bonds {growth[1]:.2%}, volatility {vol[1]:.1%}; inflation "
            f"{infl:.2%} a year; {int(states.sum())} stressed months.\n\n"
            "`examples/bootstrap.json` is a retirement drawdown over this history, inline.\n"
        )

    labels, returns, inflation = read_csv()   # what a reader of the CSV gets
    request = {
        "goal": {
            "initial_wealth": 1000000,
            "monthly_withdrawal": 4000,
            "withdrawal_start_month": 0,
            "horizon_months": 360,
            "target_amount": 0,
            "success_threshold": 0.85,
        },
        "market": {
            "weights": [0.6, 0.4],
            "model": {
                "kind": "bootstrap",
                "history": history_json(returns, inflation),
                "block_months": 60,
                "method": "stationary",
            },
        },
        "options": {"paths": 20000, "seed": 7, "percentiles": [5, 25, 50, 75, 95]},
    }
    with open(EXAMPLE, "w") as f:
        f.write(dump_request(request))
    print(f"wrote {CSV}, {NOTE}, {EXAMPLE}")
    print(f"stocks {growth[0]:.4f}/{vol[0]:.4f}, bonds {growth[1]:.4f}/{vol[1]:.4f}, "
          f"inflation {infl:.4f}, stressed months {int(states.sum())}")
    if "--cases" in sys.argv[1:]:
        write_cases(returns, inflation)
        print(f"wrote the bootstrap cases of {CASES}")


def bootstrap_cases(returns, inflation):
    """The four bootstrap reference cases, over the history's first CASE_MONTHS months."""
    both = history_json(returns, inflation, months=CASE_MONTHS)
    stocks = history_json(returns, None, months=CASE_MONTHS, assets=["stocks"])

    def model(history, b, method):
        return {"kind": "bootstrap", "history": json.loads(json.dumps(history)),   # a copy each
                "block_months": b, "method": method}

    return [
        {"name": "bootstrap: circular 60, saver with a real target from the history's inflation",
         "goal": {"initial_wealth": 50000, "monthly_contribution": 1000, "contribution_growth": 0.02,
                  "horizon_months": 300, "target_amount": 600000, "target_real": True},
         "market": {"weights": [0.6, 0.4], "model": model(both, 60, "circular")},
         "options": {"paths": 100000, "seed": 2301, "percentiles": [10, 50, 90]}},
        {"name": "bootstrap: stationary 12, drawdown with a fee that depletes",
         "goal": {"initial_wealth": 1000000, "monthly_withdrawal": 3800, "withdrawal_start_month": 0,
                  "horizon_months": 360, "target_amount": 0},
         "market": {"weights": [0.6, 0.4], "fee": 0.01, "model": model(both, 12, "stationary")},
         "options": {"paths": 100000, "seed": 2302}},
        {"name": "bootstrap: circular 24 under a glide path, withdrawals, nominal target",
         "goal": {"initial_wealth": 100000, "monthly_contribution": 1000, "contribution_months": 240,
                  "monthly_withdrawal": 3000, "withdrawal_start_month": 240, "horizon_months": 420,
                  "target_amount": 200000, "target_real": False},
         "market": {"glide_path": [{"start_month": 0, "weights": [0.9, 0.1]},
                                   {"start_month": 240, "weights": [0.3, 0.7]}],
                    "model": model(both, 24, "circular")},
         "options": {"paths": 100000, "seed": 2303}},
        {"name": "bootstrap: stationary 60, one asset, no inflation column, a rate and a real target",
         "goal": {"initial_wealth": 100000, "monthly_contribution": 500, "horizon_months": 240,
                  "target_amount": 400000, "target_real": True},
         "market": {"inflation": 0.02, "model": model(stocks, 60, "stationary")},
         "options": {"paths": 100000, "seed": 2304}},
    ]


def write_cases(returns, inflation):
    """Replace the cases named "bootstrap: ..." in CASES (json indent 1, months one a line)."""
    with open(CASES) as f:
        cases = [c for c in json.load(f) if not c["name"].startswith("bootstrap:")]
    new = bootstrap_cases(returns, inflation)
    months = []
    for i, case in enumerate(new):
        months.append(case["market"]["model"]["history"]["months"])
        case["market"]["model"]["history"]["months"] = [f"@MONTHS{i}@"]
    text = json.dumps(cases + new, indent=1)
    for i, ms in enumerate(months):
        pad = " " * 7
        lines = ",\n".join(pad + json.dumps(m) for m in ms)
        text = re.sub(r'\[\s+"@MONTHS%d@"\s+\]' % i, lambda _: "[\n" + lines + "\n" + pad[:-1] + "]", text)
        new[i]["market"]["model"]["history"]["months"] = ms
    with open(CASES, "w") as f:
        f.write(text + "\n")


def dump_request(request):
    """Indented JSON with lists of numbers or names, and each history month, on one line."""
    months = request["market"]["model"]["history"]["months"]
    request["market"]["model"]["history"]["months"] = ["@MONTHS@"]
    text = json.dumps(request, indent=2)
    request["market"]["model"]["history"]["months"] = months
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    lines = ",\n".join("          " + json.dumps(m) for m in months)
    return text.replace('["@MONTHS@"]', "[\n" + lines + "\n        ]") + "\n"


if __name__ == "__main__":
    main()
