#!/usr/bin/env python3
"""Plain NumPy reference implementation of the goal Monte Carlo (docs/model.md section 1).

This is the baseline of `sextant bench` and of the reference comparison tests: an
independent float64 implementation, vectorised over paths and looping over months only.
It deliberately uses NumPy's own generator (`numpy.random.default_rng(seed)`, one draw of
shape (N,) per month) instead of the engine's Philox stream, so its results agree with the
engine statistically (within Monte Carlo error), not bit for bit.

Usage: python3 benches/reference.py [FILE|-] [--paths N] [--seed S] [--time]
The request is `{"goal": {...}, "market": {...}, "options": {...}}` or a JSON array of such
requests (then an array of results is printed). Memory is O(N): W, the depletion month, and
one scratch array; each year-end snapshot is reduced (percentiles, mean) as soon as it is taken.
Conventions where docs/model.md is silent: `terminal.std` is the population standard deviation
(ddof=0); glide path segment k applies from its start_month until the next segment's.

Section 4 as it lands: `market.fee` (each month's growth times (1 - f)^(1/12)) and the
Student-t month (`market.model = {"kind": "student_t", "df": nu}`): the lognormal month's mean
E[G] and standard deviation around Z * sqrt((nu - 2) / V), V from NumPy's own chi-square
generator, G = max(E[G] * (1 + sd/E[G] * T), 0); `clamped_months` counts the clamped
path-months. Regime switching (`{"kind": "regime", "regimes", "transition", "initial"}`):
each regime's market is the market with the mu and sigma (the portfolio's or its assets') the
regime names; month 0's regime is drawn from the stationary distribution (the eigenvector of
P' for eigenvalue 1) or is the given index, month t's from the row of month t - 1's regime,
with NumPy's uniforms; the month is that regime's lognormal. AR(1) inflation
(`market.inflation = {"kind": "ar1", "mean", "volatility", "half_life_years", "initial",
"correlation"}`): the annual rate pi_{t+1} = theta + phi (pi_t - theta) + sigma sqrt(1 - phi^2)
(rho Z_t + sqrt(1 - rho^2) Z'_t), phi = 2^(-1/(12h)), Z_t the month's market normal and Z'_t
another NumPy normal; the index I_{t+1} = I_t (1 + max(pi_t, -0.5))^(1/12) month by month in
float64; month t withdraws d I_{12 floor(t/12)}; a real target succeeds when W_T / I_T reaches
it; `real_terminal` reports the mean and standard deviation of W_T / I_T.

Bootstrap from history (`{"kind": "bootstrap", "history": {"assets", "months": [{"returns",
"inflation"?}]}, "block_months": b, "method": "circular" | "stationary"}`, b 60 and "circular"
when absent; only an inline history, not a stored one's name): each path replays rows of the
N-month history. Circular: month t belongs to block floor(t / b), each block starts at a row s
drawn uniformly from [0, N) (NumPy's `integers`), and month t takes row (s + t mod b) mod N.
Stationary (Politis and Romano): month 0 takes a uniform row; each later month, with
probability 1/b (a NumPy uniform below 1/b), a new uniform row, else the previous row + 1 mod N.
The month's growth is (1 + sum_k w_k r_k(row)) (1 - f)^(1/12), w the market's `weights` (the
history's asset order) or the glide segment's in force, [1] for a one-asset history without
weights; `expected_return` and `volatility` play no part. With an inflation column, the index is
I_0 = 1, I_{t+1} = I_t (1 + pi_row(t)) (the monthly rate of the month's own row), used as the
AR(1) index is (withdrawals, real target, `real_terminal`); `market.inflation` is then ignored
(the engine refuses it); `target_nominal` is the target at the history's geometric mean rate,
target (1 + i)^(T/12) with 1 + i = exp(12 mean ln(1 + pi)), for reference only. Without one,
`market.inflation` applies as for the lognormal (an AR(1) only with correlation 0, as there is
no market normal to correlate with).

Per-asset paths and rebalancing (§4.5; `market.rebalancing` = "monthly" | "annual" | "none" |
{"kind": "monthly" | "annual" | "none"} | {"kind": "band", "band": b}, 0 < b < 1): "monthly",
or no field, is §1's reduction of the assets to one lognormal portfolio, unchanged. Any other
form simulates each asset: it needs `market.assets` with `market.weights`, or with a glide
path whose segments give `weights` (w(t) the weights in force at month t), and the lognormal
model (a ValueError naming `market.rebalancing` otherwise); an AR(1) inflation only with
correlation 0, deterministic inflation as in §1. Asset k's month is
G_k = exp(m_k + s_k Y_k + ln(1 - f)/12), (m_k, s_k) = `monthly_params(mu_k, sigma_k)`,
Y = L Z with Z NumPy's `standard_normal((N, K))` (one normal per asset, drawn each month
before the AR(1)'s own normal) and L the lower Cholesky factor of `market.correlations`
(identity when absent; 1e-12 added to the diagonal when only semi-definite). Holdings h (N x K)
start at W0 w(0). Month t: W = sum_k h_k, x = W + c_t - d_t with c_t, d_t and depletion
exactly as §1 (a depleted path holds 0 forever); on a live path, net = c_t - d_t is invested at
w(t) when net >= 0, else taken pro rata to the holdings (h *= x / W). Then, on live paths with
x > 0: "annual" rebalances when t > 0 and t % 12 == 0, a band when some |h_k / x - w_k(t)| > b,
"none" never; a rebalance adds sum_k |x w_k(t) - h_k| / (2x) to the path's turnover, 1 to its
count, and sets h = x w(t). Then h_k *= G_k, and W_{t+1} = sum_k h_k feeds the snapshots,
terminal statistics, success and depletion as for every other model. The result gains
`rebalancing`: {"mean_rebalances", "std_rebalances", "mean_turnover", "std_turnover"}, the
mean and population standard deviation over paths of the count and of the summed one-sided
turnover (fractions of the portfolio, over the whole horizon); monthly rebalancing adds no key.
"""
import argparse
import json
import math
import sys
import time

import numpy as np

DEFAULT_PERCENTILES = [5, 10, 25, 50, 75, 90, 95]


def portfolio(weights, assets, correlations):
    """mu = w'mu_k, sigma = sqrt(w' D R D w)."""
    w = np.asarray(weights, dtype=float)
    mu_k = np.array([a["expected_return"] for a in assets], dtype=float)
    vol = np.array([a["volatility"] for a in assets], dtype=float)
    R = np.eye(len(assets)) if correlations is None else np.asarray(correlations, dtype=float)
    cov = vol[:, None] * R * vol[None, :]
    return float(w @ mu_k), math.sqrt(max(float(w @ cov @ w), 0.0))


def segments(market):
    """Sorted list of (start_month, mu, sigma)."""
    assets, corr = market.get("assets"), market.get("correlations")
    glide = market.get("glide_path")
    if not glide:
        if "expected_return" in market and "volatility" in market:
            return [(0, float(market["expected_return"]), float(market["volatility"]))]
        return [(0, *portfolio(market["weights"], assets, corr))]
    out = []
    for seg in sorted(glide, key=lambda s: s["start_month"]):
        if "weights" in seg:
            mu, sigma = portfolio(seg["weights"], assets, corr)
        else:
            mu, sigma = float(seg["expected_return"]), float(seg["volatility"])
        out.append((int(seg["start_month"]), mu, sigma))
    return out


def monthly_params(mu, sigma):
    """(drift, scale) of ln G_t per month for an annual lognormal with mean 1+mu, sd sigma."""
    s2 = math.log1p(sigma * sigma / ((1.0 + mu) ** 2))
    m = math.log1p(mu) - s2 / 2.0
    return m / 12.0, math.sqrt(s2 / 12.0)


def regime_market(market, regime):
    """The market of one regime: the market with the mu and sigma the regime names."""
    m = dict(market)
    for key in ("expected_return", "volatility"):
        if key in regime:
            m[key] = regime[key]
    if "assets" in regime:
        m["assets"] = [dict(a, **changes) for a, changes in zip(market["assets"], regime["assets"])]
    return m


def bootstrap_table(market, model, T):
    """(portfolio returns per weight set (S, N), segment index per month (T,), inflation (N,) or None)."""
    history = model["history"]
    if not isinstance(history, dict):
        raise ValueError("market.model.history: the reference takes an inline history only")
    K = len(history["assets"])
    months = history["months"]
    R = np.array([m["returns"] for m in months], dtype=float)
    if R.ndim != 2 or R.shape[1] != K or len(months) == 0:
        raise ValueError("market.model.history.months: one return per asset in every month")
    has_infl = ["inflation" in m for m in months]
    if any(has_infl) and not all(has_infl):
        raise ValueError("market.model.history.months: inflation in every month or in none")
    pi = np.array([m["inflation"] for m in months], dtype=float) if all(has_infl) else None
    glide = market.get("glide_path")
    if glide:
        glide = sorted(glide, key=lambda seg: seg["start_month"])
        weight_sets = [seg["weights"] for seg in glide]
        starts = [int(seg["start_month"]) for seg in glide]
    else:
        weight_sets = [market["weights"] if "weights" in market else ([1.0] if K == 1 else None)]
        if weight_sets[0] is None:
            raise ValueError("market.weights: needed for a history of more than one asset")
        starts = [0]
    W = np.array(weight_sets, dtype=float)
    if W.shape[1] != K:
        raise ValueError("market.weights: one weight per history asset")
    seg_of = np.zeros(T, dtype=np.int64)
    for k, start in enumerate(starts):
        seg_of[start:] = k
    return R @ W.T, seg_of, pi


def rebalancing_mode(market):
    """(mode, band) of `market.rebalancing`: mode "monthly" (the one-lognormal reduction),
    "annual", "none" or "band"."""
    spec = market.get("rebalancing")
    if spec is None:
        return "monthly", None
    kind = spec.get("kind") if isinstance(spec, dict) else spec
    if kind in ("monthly", "annual", "none"):
        if isinstance(spec, dict) and set(spec) != {"kind"}:
            raise ValueError(f"market.rebalancing: unexpected fields beside kind {kind!r}")
        return kind, None
    if kind == "band" and isinstance(spec, dict):
        band = spec.get("band")
        if not isinstance(band, (int, float)) or isinstance(band, bool) or not 0.0 < band < 1.0:
            raise ValueError(f"market.rebalancing.band: must be in (0, 1), got {band}")
        return "band", float(band)
    raise ValueError('market.rebalancing: "monthly", "annual", "none" or '
                     f'{{"kind": "band", "band": b}}, got {spec!r}')


def per_asset_setup(market, T):
    """(monthly drift (K,), monthly scale (K,), Cholesky factor L (K, K), weight sets (S, K),
    weight set index per month (T,)) of per-asset paths."""
    assets = market.get("assets")
    glide = market.get("glide_path")
    if not assets:
        raise ValueError("market.rebalancing: per-asset paths need market.assets")
    K = len(assets)
    if glide:
        glide = sorted(glide, key=lambda seg: seg["start_month"])
        if not all("weights" in seg for seg in glide):
            raise ValueError("market.rebalancing: per-asset paths need a glide path of weights")
        weight_sets = [seg["weights"] for seg in glide]
        starts = [int(seg["start_month"]) for seg in glide]
    elif "weights" in market:
        weight_sets, starts = [market["weights"]], [0]
    else:
        raise ValueError("market.rebalancing: per-asset paths need market.weights or a glide path")
    Wts = np.array(weight_sets, dtype=float)
    if Wts.ndim != 2 or Wts.shape[1] != K:
        raise ValueError("market.weights: one weight per asset")
    params = [monthly_params(float(a["expected_return"]), float(a["volatility"])) for a in assets]
    drift = np.array([p[0] for p in params])
    scale = np.array([p[1] for p in params])
    corr = market.get("correlations")
    R = np.eye(K) if corr is None else np.asarray(corr, dtype=float)
    try:
        L = np.linalg.cholesky(R)
    except np.linalg.LinAlgError:                        # semi-definite: nudge the diagonal
        try:
            L = np.linalg.cholesky(R + 1e-12 * np.eye(K))
        except np.linalg.LinAlgError:
            raise ValueError("market.correlations: not positive semi-definite") from None
    seg_of = np.zeros(T, dtype=np.int64)
    for k, start in enumerate(starts):
        seg_of[start:] = k
    return drift, scale, L, Wts, seg_of


def pct_dict(values, pcts):
    qs = np.percentile(values, pcts)
    return {f"p{float(p):g}": float(q) for p, q in zip(pcts, qs)}


def simulate(req, paths=None, seed=None):
    goal, market, opts = req["goal"], req["market"], req.get("options", {}) or {}
    T = int(goal["horizon_months"])
    W0 = float(goal.get("initial_wealth", 0.0))
    c = float(goal.get("monthly_contribution", 0.0))
    g = float(goal.get("contribution_growth", 0.0))
    c_months = int(goal.get("contribution_months", T))
    d = float(goal.get("monthly_withdrawal", 0.0))
    d_start = int(goal.get("withdrawal_start_month", T))
    target = float(goal.get("target_amount", 0.0))
    target_real = bool(goal.get("target_real", True))
    inflation = market.get("inflation", 0.0)
    ar1 = isinstance(inflation, dict)
    infl = float(inflation["mean"] if ar1 else inflation)
    fee_log = math.log1p(-float(market.get("fee", 0.0))) / 12.0
    model = market.get("model") or {"kind": "lognormal"}
    student_t = model.get("kind", "lognormal") == "student_t"
    bootstrap = model.get("kind") == "bootstrap"
    df = float(model.get("df", 5.0))
    N = int(paths if paths is not None else opts.get("paths", 10000))
    S = int(seed if seed is not None else opts.get("seed", 42))
    pcts = [float(p) for p in opts.get("percentiles", DEFAULT_PERCENTILES)]
    target_T = target * (1.0 + infl) ** (T / 12.0) if target_real else target

    regime = model.get("kind") == "regime"
    markets = [regime_market(market, r) for r in model["regimes"]] if regime else [market]
    hist_infl = False
    if bootstrap:
        block = int(model.get("block_months", 60))
        method = model.get("method", "circular")
        if method not in ("circular", "stationary"):
            raise ValueError(f"market.model.method: circular or stationary, got {method}")
        port_returns, seg_of, hist_pi = bootstrap_table(market, model, T)
        n_rows = port_returns.shape[0]
        if not 1 <= block <= n_rows:
            raise ValueError("market.model.block_months: must be in [1, history months]")
        growth_of = (1.0 + port_returns) * math.exp(fee_log)     # (rows, segments)
        hist_infl = hist_pi is not None
        if hist_infl:                                            # the column replaces market.inflation
            ar1 = False
            infl = math.expm1(12.0 * float(np.log1p(hist_pi).mean()))   # geometric, annual
            target_T = target * (1.0 + infl) ** (T / 12.0) if target_real else target
        elif ar1 and float(inflation.get("correlation", 0.0)) != 0.0:
            raise ValueError("market.inflation.correlation: must be 0 under a bootstrap (no market normal)")
        markets = []                                             # no lognormal schedule
    mode, band = rebalancing_mode(market)
    per_asset = mode != "monthly"
    if per_asset:
        if model.get("kind", "lognormal") != "lognormal":
            raise ValueError("market.rebalancing: per-asset paths run under the lognormal model only")
        if ar1 and float(inflation.get("correlation", 0.0)) != 0.0:
            raise ValueError("market.inflation.correlation: must be 0 with per-asset paths")
        a_drift, a_scale, chol, a_weights, a_seg = per_asset_setup(market, T)
        a_bias = a_drift + fee_log                               # (K,) per-asset log drift
        n_assets = len(a_drift)
        markets = []                                             # no portfolio schedule
    indexed = ar1 or hist_infl
    schedules = []
    for m in markets:
        seg_params = [(start, *monthly_params(mu, sigma)) for start, mu, sigma in segments(m)]
        schedule = []
        for t in range(T):
            drift, scale = seg_params[0][1:]
            for start, a, b in seg_params:
                if start <= t:
                    drift, scale = a, b
            schedule.append((drift, scale))
        schedules.append(schedule)

    def params_at(t):
        return schedules[0][t] if schedules else (None, None)

    t0 = time.perf_counter()
    rng = np.random.default_rng(S)
    W = np.full(N, W0)
    dep_month = np.full(N, -1, dtype=np.int64)   # month of depletion, -1 if never
    depleted = np.zeros(N, dtype=bool)
    n_dep = 0
    G = np.empty(N)
    clamped = 0
    yearly = []
    if ar1:
        theta = float(inflation["mean"])
        phi = 2.0 ** (-1.0 / (12.0 * float(inflation.get("half_life_years", 1.5))))
        innovation = float(inflation["volatility"]) * math.sqrt(1.0 - phi * phi)
        rho = float(inflation.get("correlation", 0.0))
        rate = np.full(N, float(inflation.get("initial", theta)))
    if indexed:
        index = np.ones(N)
        year_index = np.ones(N)
    if bootstrap:
        row = np.zeros(N, dtype=np.int64)
        start_row = np.zeros(N, dtype=np.int64)
    if per_asset:
        h = np.outer(np.full(N, W0), a_weights[a_seg[0]])     # holdings (N, K)
        W = h.sum(axis=1)
        n_rebalances = np.zeros(N, dtype=np.int64)
        turnover = np.zeros(N)
    if regime:
        P = np.asarray(model["transition"], dtype=float)
        cumulative = np.cumsum(P, axis=1)
        K = len(P)
        initial = model.get("initial", "stationary")
        if initial == "stationary":
            values, vectors = np.linalg.eig(P.T)
            pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
            pi = np.abs(pi) / np.abs(pi).sum()
            state = rng.choice(K, size=N, p=pi)
        else:
            state = np.full(N, int(initial))
        drift_of = np.array([[sch[t][0] for t in range(T)] for sch in schedules])
        scale_of = np.array([[sch[t][1] for t in range(T)] for sch in schedules])
    for t in range(T):
        year = t // 12
        c_t = c * (1.0 + g) ** year if t < c_months else 0.0
        if indexed:
            d_t = d * year_index if t >= d_start else 0.0
        else:
            d_t = d * (1.0 + infl) ** year if t >= d_start else 0.0
        drift, scale = params_at(t)
        if bootstrap:
            if method == "circular":
                if t % block == 0:
                    start_row = rng.integers(0, n_rows, size=N)
                row = (start_row + t % block) % n_rows
            elif t == 0:
                row = rng.integers(0, n_rows, size=N)
            else:
                jump = rng.random(N) < 1.0 / block
                fresh = rng.integers(0, n_rows, size=N)
                row = np.where(jump, fresh, (row + 1) % n_rows)
            G[:] = growth_of[row, seg_of[t]]
            Z = np.zeros(N) if ar1 else None                     # correlation 0: Z unused
        elif regime:
            if t > 0:
                u = rng.random(N)
                state = np.minimum((u[:, None] >= cumulative[state]).sum(axis=1), K - 1)
            rng.standard_normal(out=G)
            Z = G.copy() if ar1 else None
            G *= scale_of[state, t]
            G += drift_of[state, t] + fee_log
            np.exp(G, out=G)
        elif student_t:
            # E[G] and SD[G] / E[G] of the lognormal month, around a unit-variance t shock.
            mean_g = math.exp(drift + scale * scale / 2.0 + fee_log)
            relative_sd = math.sqrt(math.expm1(scale * scale))
            Z = rng.standard_normal(N)
            shock = Z * np.sqrt((df - 2.0) / rng.chisquare(df, N))
            G[:] = 1.0 + relative_sd * shock
            clamped += int(np.count_nonzero(G <= 0.0))
            np.maximum(G, 0.0, out=G)
            G *= mean_g
        elif per_asset:
            GA = rng.standard_normal((N, n_assets)) @ chol.T    # Y = L Z, row by row
            GA *= a_scale
            GA += a_bias
            np.exp(GA, out=GA)
            Z = np.zeros(N) if ar1 else None                     # correlation 0: Z unused
        else:
            rng.standard_normal(out=G)
            Z = G.copy() if ar1 else None
            G *= scale
            G += drift + fee_log
            np.exp(G, out=G)
        if per_asset:
            x = W + (c_t - d_t)                          # W = sum_k h_k
        else:
            W += c_t - d_t                               # x = W_t + c_t - d_t
            x = W
        if d > 0.0 and t >= d_start:
            newly = (x <= 0.0) & ~depleted
            k = int(np.count_nonzero(newly))
            if k:
                dep_month[newly] = t
                depleted |= newly
                n_dep += k
        if per_asset:
            wt = a_weights[a_seg[t]]
            live = ~depleted
            net = np.broadcast_to(c_t - d_t, (N,))
            into = live & (net >= 0.0)                   # invested at the target weights
            if into.any():
                h[into] += net[into, None] * wt
            out = live & (net < 0.0)                     # taken pro rata (W > 0 here: x > 0)
            if out.any():
                h[out] *= (x[out] / W[out])[:, None]
            due = None
            if mode == "annual" and t > 0 and t % 12 == 0:
                due = live & (x > 0.0)
            elif mode == "band":
                held = live & (x > 0.0)
                drift_off = np.abs(h[held] / x[held, None] - wt).max(axis=1)
                due = np.zeros(N, dtype=bool)
                due[held] = drift_off > band
            if due is not None and due.any():
                xr = x[due]
                rebalanced = xr[:, None] * wt
                turnover[due] += np.abs(rebalanced - h[due]).sum(axis=1) / (2.0 * xr)
                n_rebalances[due] += 1
                h[due] = rebalanced
            h *= GA                                      # each asset's month
            if n_dep:
                h[depleted] = 0.0                        # depleted paths hold 0
            W = h.sum(axis=1)                            # W_{t+1}
        else:
            W *= G                                       # W_{t+1} = x * G_t
            if n_dep:
                W[depleted] = 0.0                        # depleted paths stay at 0
        m = t + 1
        if hist_infl:
            index *= 1.0 + hist_pi[row]                          # the month's own row
        if ar1:
            index *= np.maximum(1.0 + rate, 0.5) ** (1.0 / 12.0)
            own = rng.standard_normal(N)
            rate = theta + phi * (rate - theta) + innovation * (rho * Z + math.sqrt(1.0 - rho * rho) * own)
        if indexed and m % 12 == 0:
            year_index = index.copy()
        if m % 12 == 0 or m == T:
            yearly.append({"month": m, "percentiles": pct_dict(W, pcts),
                           "mean": float(W.mean()), "depleted": n_dep / N})

    # A real target under AR(1) or a history's inflation: W_T / I_T against the target in today's money.
    measured, goal_T = (W / index, target) if indexed and target_real else (W, target_T)
    success = ~depleted & (measured >= goal_T)
    p = float(np.count_nonzero(success)) / N
    failed = ~success
    shortfall = float(np.mean(goal_T - measured[failed])) if failed.any() else None
    median_month = float(np.median(dep_month[depleted])) if n_dep else None
    result = {
        "success_probability": p,
        "standard_error": math.sqrt(p * (1.0 - p) / N),
        "target_nominal": target_T,
        "terminal": {"mean": float(W.mean()), "std": float(W.std()),
                     "percentiles": pct_dict(W, pcts)},
        "yearly": yearly,
        "depletion": {"probability": n_dep / N, "median_month": median_month},
        "shortfall": shortfall,
        "paths": N,
        "seed": S,
        "backend": "numpy",
    }
    if student_t:
        result["clamped_months"] = clamped
    if indexed:
        real = W / index
        result["real_terminal"] = {"mean": float(real.mean()), "std": float(real.std())}
    if per_asset:
        result["rebalancing"] = {
            "mean_rebalances": float(n_rebalances.mean()), "std_rebalances": float(n_rebalances.std()),
            "mean_turnover": float(turnover.mean()), "std_turnover": float(turnover.std())}
    result["seconds"] = time.perf_counter() - t0
    return result, N * T


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default="-", help="JSON request file, or - for stdin")
    ap.add_argument("--paths", type=int, help="override options.paths")
    ap.add_argument("--seed", type=int, help="override options.seed")
    ap.add_argument("--time", action="store_true", help="print path-steps/s to stderr")
    args = ap.parse_args()
    text = sys.stdin.read() if args.file == "-" else open(args.file).read()
    req = json.loads(text)
    reqs = req if isinstance(req, list) else [req]
    results = []
    for r in reqs:
        res, steps = simulate(r, args.paths, args.seed)
        if args.time:
            print(f"path-steps/s: {steps / res['seconds']:.4g}", file=sys.stderr)
        results.append(res)
    json.dump(results if isinstance(req, list) else results[0], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
