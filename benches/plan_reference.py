#!/usr/bin/env python3
"""Plain NumPy reference implementation of the household plan Monte Carlo (docs/model.md §5).

Written only from docs/model.md (§5 "Household plans", and §1.1-1.3, 1.5 for the market),
MODEL.md §5 and the field names/defaults of engine/src/plan/request.rs; never from the plan's
implementation. It is an independent float64 implementation, vectorised over paths (arrays of
shape (N,) and (accounts, N)) and looping over months. It draws with NumPy's own generator
(`numpy.random.default_rng(seed)`): first one uniform per person per path for the lifetimes
(shape (people, N), u = (k + 1/2)/2^32 for a uniform 32-bit k, as the engine's u), then one
standard normal of shape (N,) per month for the market. Its results therefore agree with the
engine statistically (within Monte Carlo error), not path by path.

Usage: python3 benches/plan_reference.py [FILE|-] [--paths N] [--seed S] [--time]
The input is one `{"plan", "market", "options"}` request or a JSON array of them; an element
may carry a "name" (echoed). One result object per request is printed (an array for an array).

The month t (plan year y = t // 12, I_y = (1 + i)^y) runs, per path, in docs/model.md §5's order:
  1. January (t > 0): close year y-1 (tax at I_{y-1}, due now; counters reset; the balances
     become the RMDs' previous year-end balances; the year's market return is kept for the
     guardrails' "no raise after a negative year").
  2. Deaths (alive while t < death month); the path ends in the first month nobody is alive:
     its estate is the accounts' total less the unpaid tax (the tax due this month, when this
     month is a January, plus the open year's tax at I_y), never below 0.
  3. Contributions; 4. incomes and Social Security (cash, and ordinary income);
  5. the spending rule sets S (its first month, then every January) from W = the accounts at
     the month's start; 6. the essential need (essential spending, essential goals due, tax due)
     from cash, then withdrawn; failure; 7. discretionary spending, then flexible goals, then the
     surplus cash into the first taxable account; 8. RMDs in December; 9. growth by G_t.

Conventions chosen where the documents are silent or ambiguous (each one a place to reconcile):
 - Lifetimes. Death month D = ceil(12 t) (computed as ceil(12 t - 1e-9) against float noise),
   capped so nobody passes 120 and at 1200 months; fixed lifetimes give D = 12 (age_at_death -
   age) exactly (one uniform per person is still drawn). A table must cover the person's current
   age (age >= start_age, else refused); the first (partial) year uses the q of the person's
   attained integer age with survival (1-q)^f for the fraction f left in that year.
 - Contributions are monthly_amount x (1 + growth)^y, NOT indexed by prices (as §1's c); they
   run while the owner is alive and t < 12 (until_age - owner age); they are not deductible;
   after a failure they are not added (the accounts stay empty).
 - An income's start/end ages are the owner's ages whether or not the owner lives; after the
   owner's death the survivor receives survivor_fraction of it over the same months. A taxable
   income counts as ordinary income for what is actually paid.
 - Social Security: claim month 12 (claim_age - age) (from month 0 when already past, with the
   stated claim age's factor: a retiree states the age they claimed at); the
   benefit of a person is pia x factor x I_y from their claim month. Both alive: each their own;
   one alive (after a death): max(own benefit, the deceased's), each counted from its own claim
   month (0 before it). social_security_taxable x the amount paid is ordinary income.
 - "retirement" spending start = max over people of 12 (retirement_age - age), at least 0, from
   the ages alone (a death before retirement does not move it).
 - The survivor factor multiplies S at payment; the rules themselves (W-based S, guardrail WR,
   S_{y-1}) work on S before the factor. Essential part = essential I_y sf; discretionary part =
   S sf - essential part.
 - floor_ceiling: S = max(essential I, min(rate W/12, ceiling I)).
 - vpw: n = max(1, ceil((12 to_age - age_months of the youngest living person at t) / 12)).
 - guardrails: the "negative portfolio return" is the product of the 12 monthly G of the
   previous plan year < 1 (for a mid-year start, the whole previous plan year); the "WR > WR_0"
   test of the freeze uses last year's S on this year's wealth, 12 S_{y-1} / W_y; years left =
   planning_age - exact age (in years, months/12) of the youngest living person, compared
   strictly (> min_years_left); the final S is floored at essential I_y (also after a freeze);
   W <= 0 gives WR = +inf. A guardrail cut counts as a spending cut; cuts/raises are counted.
 - Failure: when need_w = essential need - cash > 0 and total accounts - need_w <= 0. The
   failing month withdraws everything (the withdrawal's taxes accrue: ordinary income / gains),
   the accounts are then set to 0 and stay 0. After a failure, cash still pays needs as it
   comes (essential first, then discretionary), surplus cash is discarded, contributions are
   ignored, and the tax counters keep running on incomes (so later years are still assessed).
 - Spending cuts: a month counts as a shortfall when the discretionary part left after the cash
   exceeds the accounts (also in and after a failing month); a guardrail cut counts even when
   the essential floor then undoes it. A freeze (no inflation raise) is neither cut nor raise.
 - An essential goal is "paid" when the month's whole essential need was met (the path did not
   fail this month, and if it had failed before, the cash covered the need). A goal is "due"
   when the path is still running at its month (someone alive), whoever's age it was keyed on.
 - A flexible goal (after the discretionary spending, goals in request order) is paid when
   cash + accounts - amount >= flexible_reserve_years x 12 x the month's essential spending
   part (essential I_y sf, also before spending starts).
 - RMDs: attained age floor((12 age + t) / 12) at the December month t, of the owner, or of the
   survivor when the owner is dead; divisor of that age (72 is the table's first age; nothing
   below 72); year 0's "previous year-end balance" is the starting balance; the amount is
   max(0, prev/divisor - withdrawn from that account this year), capped at the balance; it goes
   into the first taxable account with its basis.
 - Tax: brackets' `over` and the deduction scaled by I_y of the year assessed; gains are the
   year's net realised gains, max(0, .) (losses offset gains only, never carried forward).
   Lifetime taxes = every year's assessed tax for the years closed before the end month, plus
   what the estate pays at the end (the tax due in the end month, if a January, plus the open
   year's), as far as the estate covers it. Years assessed after a failure are counted in full.
 - bracket_fill: ceiling = (top of the last bracket with rate <= up_to_rate + deduction) I_y,
   the top being the next bracket's `over` (+inf for the last bracket); if no bracket qualifies,
   the first bracket's `over` + deduction. Without a tax schedule it is the default order.
   "Ordinary income so far" includes this month's incomes and earlier withdrawals.
 - proportional: X x balance/total from every account at once (float64 remainder taken by the
   default order).
 - Outputs: paid_probability = P(due and paid) (unconditional); paid_given_due is also given.
   Percentiles are NumPy's default linear method; std is ddof = 0. Estate real = nominal /
   (1+i)^(t/12) with t the end month. Success = no failure before the last death; depletion
   probability = failed paths / N (so success + depletion = 1).
 - Account `weights` (asset location) are refused: every account holds the market portfolio.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

# IRS Uniform Lifetime Table, Publication 590-B Appendix B Table III (2022 and later), 72..120+.
RMD_DIVISORS = {
    72: 27.4, 73: 26.5, 74: 25.5, 75: 24.6, 76: 23.7, 77: 22.9, 78: 22.0, 79: 21.1, 80: 20.2,
    81: 19.4, 82: 18.5, 83: 17.7, 84: 16.8, 85: 16.0, 86: 15.2, 87: 14.4, 88: 13.7, 89: 12.9,
    90: 12.2, 91: 11.5, 92: 10.8, 93: 10.1, 94: 9.5, 95: 8.9, 96: 8.4, 97: 7.8, 98: 7.3, 99: 6.8,
    100: 6.4, 101: 6.0, 102: 5.6, 103: 5.2, 104: 4.9, 105: 4.6, 106: 4.3, 107: 4.1, 108: 3.9,
    109: 3.7, 110: 3.5, 111: 3.4, 112: 3.3, 113: 3.1, 114: 3.0, 115: 2.9, 116: 2.8, 117: 2.7,
    118: 2.5, 119: 2.3, 120: 2.0,
}
KINDS = ("taxable", "tax_deferred", "tax_free")
DEFAULT_ORDER = ["taxable", "tax_deferred", "tax_free"]
MAX_MONTHS = 1200


class PlanError(ValueError):
    pass


# ----------------------------------------------------------------------------- market (§1)

# The §1 market (portfolio of assets, glide segments, monthly lognormal parameters) is the goal
# reference's: one definition for both references.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import monthly_params, segments  # noqa: E402


# ----------------------------------------------------------------------------- validation

def _months(value, field):
    """Years in whole months -> integer months."""
    m = float(value) * 12.0
    k = round(m)
    if abs(m - k) > 1e-6:
        raise PlanError(f"{field}: must be whole months, got {value}")
    return int(k)


def validate(plan, market):
    people = plan["people"]
    if not 1 <= len(people) <= 2:
        raise PlanError("plan.people: must have 1 or 2 people")
    P = len(people)
    for k, p in enumerate(people):
        f = f"plan.people[{k}]"
        for key in ("age", "retirement_age"):
            if not 0 <= p[key] <= 120:
                raise PlanError(f"{f}.{key}: must be between 0 and 120")
            _months(p[key], f"{f}.{key}")
        lon = p.get("longevity", {"kind": "fixed", "age": 95.0})
        if lon["kind"] == "fixed":
            _months(lon["age"], f"{f}.longevity.age")
            if not p["age"] < lon["age"] <= 120:
                raise PlanError(f"{f}.longevity.age: must be above the age and at most 120")
        elif lon["kind"] == "gompertz":
            if not (lon["dispersion"] > 0 and 0 < lon["modal_age"] <= 150):
                raise PlanError(f"{f}.longevity: bad gompertz parameters")
        elif lon["kind"] == "table":
            qx = lon["qx"]
            if not qx or any(not 0 <= q <= 1 for q in qx):
                raise PlanError(f"{f}.longevity.qx: each must be in [0, 1]")
            if not lon["start_age"] <= p["age"] < lon["start_age"] + len(qx):
                raise PlanError(f"{f}.longevity: the table must cover the person's age")
        else:
            raise PlanError(f"{f}.longevity.kind: unknown")
    names = [a["name"] for a in plan["accounts"]]
    if len(set(names)) != len(names):
        raise PlanError("plan.accounts: names must be unique")
    for k, a in enumerate(plan["accounts"]):
        f = f"plan.accounts[{k}]"
        if a["kind"] not in KINDS:
            raise PlanError(f"{f}.kind: unknown")
        if not 0 <= a["balance"] <= 1e15:
            raise PlanError(f"{f}.balance: out of range")
        if "cost_basis" in a and (a["kind"] != "taxable" or not 0 <= a["cost_basis"] <= 1e15):
            raise PlanError(f"{f}.cost_basis: only for taxable accounts, >= 0")
        if not 0 <= a.get("owner", 0) < P:
            raise PlanError(f"{f}.owner: no such person")
        if a.get("weights") is not None:
            raise PlanError(f"{f}.weights: asset location is not supported by this reference")
    for k, c in enumerate(plan.get("contributions", [])):
        f = f"plan.contributions[{k}]"
        if c["account"] not in names:
            raise PlanError(f"{f}.account: no such account")
        if c["monthly_amount"] < 0 or c.get("growth", 0.0) <= -1:
            raise PlanError(f"{f}: bad amount or growth")
        if c.get("until_age") is not None:
            _months(c["until_age"], f"{f}.until_age")
    for k, inc in enumerate(plan.get("incomes", [])):
        f = f"plan.incomes[{k}]"
        if not 0 <= inc.get("owner", 0) < P:
            raise PlanError(f"{f}.owner: no such person")
        if not 0 <= inc.get("survivor_fraction", 0.0) <= 1:
            raise PlanError(f"{f}.survivor_fraction: must be in [0, 1]")
        for key in ("start_age", "end_age"):
            if inc.get(key) is not None:
                _months(inc[key], f"{f}.{key}")
        if inc.get("start_age") is not None and inc.get("end_age") is not None \
                and inc["end_age"] <= inc["start_age"]:
            raise PlanError(f"{f}.end_age: must be above start_age")
    seen = set()
    for k, s in enumerate(plan.get("social_security", [])):
        f = f"plan.social_security[{k}]"
        if not 0 <= s["person"] < P or s["person"] in seen:
            raise PlanError(f"{f}.person: no such person or given twice")
        seen.add(s["person"])
        if not 62 <= s["claim_age"] <= 70:
            raise PlanError(f"{f}.claim_age: must be between 62 and 70 years, got {s['claim_age']}")
        _months(s["claim_age"], f"{f}.claim_age")
        fra = s.get("full_retirement_age", 67.0)
        if not 65 <= fra <= 67:
            raise PlanError(f"{f}.full_retirement_age: must be between 65 and 67")
        _months(fra, f"{f}.full_retirement_age")
    sp = plan["spending"]
    if not 0 <= sp.get("survivor_fraction", 1.0) <= 1:
        raise PlanError("plan.spending.survivor_fraction: must be in [0, 1]")
    rule = sp.get("rule", "fixed")
    if isinstance(rule, dict) and rule["kind"] == "floor_ceiling" \
            and rule["ceiling"] < sp["essential"]:
        raise PlanError("plan.spending.rule.ceiling: must be at least the essential spending")
    for k, g in enumerate(plan.get("goals", [])):
        f = f"plan.goals[{k}]"
        if (g.get("age") is None) == (g.get("month") is None):
            raise PlanError(f"{f}: give exactly one of age and month")
        if g.get("age") is not None:
            person = g.get("person", 0)
            if not 0 <= person < P:
                raise PlanError(f"{f}.person: no such person")
            _months(g["age"], f"{f}.age")
            if g["age"] < people[person]["age"]:
                raise PlanError(f"{f}.age: already past")
        elif not 0 <= g["month"] <= MAX_MONTHS:
            raise PlanError(f"{f}.month: out of range")
    tax = plan.get("tax")
    if tax is not None:
        br = tax["brackets"]
        if not br:
            raise PlanError("plan.tax.brackets: at least one")
        for a, b in zip(br, br[1:]):
            if not b["over"] > a["over"]:
                raise PlanError("plan.tax.brackets: `over` must increase")
        if any(not 0 <= b["rate"] <= 1 for b in br) or br[0]["over"] < 0:
            raise PlanError("plan.tax.brackets: rates in [0, 1], over >= 0")
    wo = plan.get("withdrawal_order", DEFAULT_ORDER)
    if isinstance(wo, list) and sorted(wo) != sorted(KINDS):
        raise PlanError("plan.withdrawal_order: must be a permutation of the three kinds")
    glide = market.get("glide_path")
    if glide:
        starts = [s["start_month"] for s in glide]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise PlanError("market.glide_path: starts at 0 and increases strictly")


# ----------------------------------------------------------------------------- rules

def ss_factor(claim_m, fra_m):
    """Claiming factor by whole months of age (early: 5/9 % for 36 months, 5/12 % beyond, at
    most 60; late: 2/3 % per month up to 70)."""
    if claim_m <= fra_m:
        e = min(fra_m - claim_m, 60)
        return 1.0 - (5.0 / 9.0) / 100.0 * min(e, 36) - (5.0 / 12.0) / 100.0 * max(e - 36, 0)
    late = min(claim_m, 70 * 12) - fra_m
    return 1.0 + (2.0 / 3.0) / 100.0 * late


def death_months(lon, age_m, u):
    """Death month (first month at whose start the person is dead) for each uniform u."""
    x = age_m / 12.0
    cap_t = 120.0 - x
    kind = lon["kind"]
    if kind == "fixed":
        d = _months(lon["age"], "longevity.age") - age_m
        d = min(d, 1440 - age_m)
        return np.full(u.shape, min(d, MAX_MONTHS), dtype=np.int64)
    if kind == "gompertz":
        m, b = float(lon["modal_age"]), float(lon["dispersion"])
        t = b * np.log1p(-np.log(u) * math.exp((m - x) / b))
    else:  # table: constant force within each year, q = 1 past the table
        start, qx = int(lon["start_age"]), [float(q) for q in lon["qx"]]
        L = -np.log(u)                       # the cumulative hazard to reach
        t = np.full(u.shape, np.nan)
        pos = x
        elapsed = 0.0
        todo = np.ones(u.shape, dtype=bool)
        while todo.any():
            A = math.floor(pos + 1e-12)
            k = A - start
            q = qx[k] if 0 <= k < len(qx) else 1.0
            seg = (A + 1) - pos
            if q >= 1.0:
                t[todo] = elapsed
                break
            lam = -math.log1p(-q)
            hit = todo & (lam * seg >= L)
            if lam > 0:
                t[hit] = elapsed + L[hit] / lam
            todo &= ~hit
            L = L - lam * seg
            elapsed += seg
            pos = A + 1.0
            if elapsed >= cap_t:
                t[todo] = cap_t
                break
    t = np.minimum(t, cap_t)
    d = np.ceil(12.0 * t - 1e-9).astype(np.int64)
    return np.clip(d, 0, MAX_MONTHS)


def income_tax(ordinary, gains, I, tax):
    """brackets(ordinary - deduction) + cg_rate max(gains, 0), brackets and deduction x I."""
    x = np.maximum(ordinary - float(tax.get("standard_deduction", 0.0)) * I, 0.0)
    br = tax["brackets"]
    out = np.zeros_like(x)
    for k, b in enumerate(br):
        lo = float(b["over"]) * I
        hi = float(br[k + 1]["over"]) * I if k + 1 < len(br) else np.inf
        out += float(b["rate"]) * np.clip(x - lo, 0.0, hi - lo)
    return out + float(tax.get("capital_gains_rate", 0.0)) * np.maximum(gains, 0.0)


def pct(values, ps):
    if values.size == 0:
        return {f"p{p}": None for p in ps}
    qs = np.percentile(values, ps)
    return {f"p{p}": float(q) for p, q in zip(ps, qs)}


# ----------------------------------------------------------------------------- simulation

def simulate(req, paths=None, seed=None):
    plan, market, opts = req["plan"], req["market"], req.get("options", {}) or {}
    validate(plan, market)
    N = int(paths if paths is not None else opts.get("paths", 10000))
    S_seed = int(seed if seed is not None else opts.get("seed", 42))
    infl = float(market.get("inflation", 0.0))
    tax = plan.get("tax")

    people = plan["people"]
    P = len(people)
    age_m = [_months(p["age"], "age") for p in people]
    ret_m = [_months(p["retirement_age"], "retirement_age") for p in people]

    # accounts (the plan opens a taxable one when there is none)
    accts = [dict(a) for a in plan["accounts"]]
    if not any(a["kind"] == "taxable" for a in accts):
        accts.append({"name": "taxable (opened by the plan)", "kind": "taxable", "balance": 0.0,
                      "owner": 0})
    A = len(accts)
    kind = [a["kind"] for a in accts]
    owner = [int(a.get("owner", 0)) for a in accts]
    idx = {a["name"]: k for k, a in enumerate(accts)}
    first_taxable = kind.index("taxable")
    deferred_idx = [k for k in range(A) if kind[k] == "tax_deferred"]

    def seq_of(order):
        return [k for kd in order for k in range(A) if kind[k] == kd]

    default_seq = seq_of(DEFAULT_ORDER)
    wo = plan.get("withdrawal_order", DEFAULT_ORDER)
    if isinstance(wo, list):
        mode, seq = "sequence", seq_of(wo)
    elif wo == "proportional":
        mode, seq = "proportional", default_seq
    else:
        assert wo["kind"] == "bracket_fill"
        mode, seq = ("bracket_fill" if tax is not None else "sequence"), default_seq
        ceiling0 = np.inf
        if tax is not None:
            br = tax["brackets"]
            ded = float(tax.get("standard_deduction", 0.0))
            last = None
            for k, b in enumerate(br):
                if b["rate"] <= wo["up_to_rate"]:
                    last = k
            if last is None:
                ceiling0 = float(br[0]["over"]) + ded
            elif last + 1 < len(br):
                ceiling0 = float(br[last + 1]["over"]) + ded
            else:
                ceiling0 = np.inf

    # contributions: (account, amount, growth, until month, owner)
    contribs = []
    for c in plan.get("contributions", []):
        a = idx[c["account"]]
        o = owner[a]
        until = c.get("until_age")
        until_m = (_months(until, "until_age") if until is not None else ret_m[o]) - age_m[o]
        contribs.append((a, float(c["monthly_amount"]), float(c.get("growth", 0.0)), until_m, o))

    # incomes: (owner, amount, start month, end month, indexed, taxable, survivor fraction)
    incomes = []
    for inc in plan.get("incomes", []):
        o = int(inc.get("owner", 0))
        s = inc.get("start_age")
        e = inc.get("end_age")
        s_m = max(0, _months(s, "start_age") - age_m[o]) if s is not None else 0
        e_m = _months(e, "end_age") - age_m[o] if e is not None else 10 ** 9
        incomes.append((o, float(inc["monthly_amount"]), s_m, e_m, bool(inc.get("indexed", True)),
                        bool(inc.get("taxable", True)), float(inc.get("survivor_fraction", 0.0))))

    # Social Security: per person (base benefit pia x factor, claim month)
    ss = [None] * P
    for s in plan.get("social_security", []):
        p = int(s["person"])
        claim_m = _months(s["claim_age"], "claim_age")
        fra_m = _months(s.get("full_retirement_age", 67.0), "full_retirement_age")
        ss[p] = (float(s["pia"]) * ss_factor(claim_m, fra_m), max(0, claim_m - age_m[p]))
    ss_taxable = float(tax.get("social_security_taxable", 0.85)) if tax is not None else 0.0

    sp = plan["spending"]
    E = float(sp["essential"])
    Dsc = float(sp.get("discretionary", 0.0))
    start = sp.get("start", "retirement")
    start_m = max(0, max(r - a for r, a in zip(ret_m, age_m))) if start == "retirement" \
        else int(start)
    sp_sf = float(sp.get("survivor_fraction", 1.0))
    rule = sp.get("rule", "fixed")
    if rule == "fixed" or (isinstance(rule, dict) and rule["kind"] == "fixed"):
        rule = {"kind": "fixed"}
    rk = rule["kind"]

    goals = []  # (name, amount, month, essential)
    for g in plan.get("goals", []):
        if g.get("month") is not None:
            gm = int(g["month"])
        else:
            p = int(g.get("person", 0))
            gm = _months(g["age"], "age") - age_m[p]
        goals.append((g["name"], float(g["amount"]), gm,
                      g.get("priority", "essential") == "essential"))
    reserve_years = float(plan.get("flexible_reserve_years", 2.0))
    rmd_age = int(plan.get("rmd_age", 73))

    seg_params = [(st, *monthly_params(mu, sg)) for st, mu, sg in segments(market)]

    def params_at(t):
        drift, scale = seg_params[0][1:]
        for st, a, b in seg_params:
            if st <= t:
                drift, scale = a, b
        return drift, scale

    t0 = time.perf_counter()
    rng = np.random.default_rng(S_seed)
    u = (rng.integers(0, 2 ** 32, size=(P, N), dtype=np.uint64).astype(np.float64) + 0.5) \
        / 2.0 ** 32
    D = np.stack([death_months(people[p].get("longevity", {"kind": "fixed", "age": 95.0}),
                               age_m[p], u[p]) for p in range(P)])
    end = D.max(axis=0)
    H = int(end.max())

    bal = np.empty((A, N))
    basis = np.zeros((A, N))
    for k, a in enumerate(accts):
        bal[k] = float(a["balance"])
        if kind[k] == "taxable":
            basis[k] = float(a.get("cost_basis", a["balance"]))
    prev_ye = bal.copy()
    wd_year = np.zeros((A, N))            # withdrawn this year (tax-deferred accounts)
    ordinary = np.zeros(N)
    gains = np.zeros(N)
    lifetime_tax = np.zeros(N)
    zeros = np.zeros(N)
    tax_due = zeros
    failed = np.zeros(N, dtype=bool)
    fail_month = np.full(N, -1, dtype=np.int64)
    cut = np.zeros(N, dtype=bool)
    n_cuts = np.zeros(N)
    n_raises = np.zeros(N)
    S = np.zeros(N)                        # the rule's monthly spending (before survivor factor)
    WR0 = np.zeros(N)
    yr_growth = np.ones(N)
    prev_year_ret = np.ones(N)
    estate = np.zeros(N)
    estate_real = np.zeros(N)
    goal_due = [np.zeros(N, dtype=bool) for _ in goals]
    goal_paid = [np.zeros(N, dtype=bool) for _ in goals]
    G = np.empty(N)
    rmd_div = np.array([RMD_DIVISORS.get(x, np.inf) for x in range(121)])
    I_of = lambda y: (1.0 + infl) ** y  # noqa: E731

    # -- withdrawals ------------------------------------------------------------------------
    def take(a, x):
        """Take min(x, balance) from account a; returns what was taken."""
        b = bal[a]
        got = np.minimum(x, b)
        if kind[a] == "taxable":
            frac = np.divide(got, b, out=np.zeros(N), where=b > 0)
            sold = basis[a] * frac
            gains[:] += got - sold
            basis[a] -= sold
        elif kind[a] == "tax_deferred":
            ordinary[:] += got
            wd_year[a] += got
        bal[a] = b - got
        return got

    def take_seq(x, order):
        rem = x.copy()
        for a in order:
            if not rem.any():
                break
            rem -= take(a, rem)
        return x - rem

    def withdraw(x, I):
        """Take x (N,) from the accounts in the plan's order, as far as they allow."""
        if not (x > 0).any():
            return np.zeros(N)
        if mode == "sequence":
            return take_seq(x, seq)
        if mode == "proportional":
            total = bal.sum(axis=0)
            want = np.minimum(x, total)
            frac = np.divide(want, total, out=np.zeros(N), where=total > 0)
            got = np.zeros(N)
            for a in range(A):
                got += take(a, bal[a] * frac)
            rest = np.maximum(want - got, 0.0)
            return got + take_seq(rest, default_seq)
        # bracket_fill
        room = np.maximum(ceiling0 * I - ordinary, 0.0)
        first = np.minimum(x, room)
        got = take_seq(first, deferred_idx)
        return got + take_seq(x - got, default_seq)

    # -- the month loop -----------------------------------------------------------------------
    for t in range(H + 1):
        y = t // 12
        I = I_of(y)
        tax_due = zeros                                   # due only in a January
        if t > 0 and t % 12 == 0:                         # 1. the previous year closes
            if tax is not None:
                tax_due = income_tax(ordinary, gains, I_of(y - 1), tax)
                lifetime_tax += np.where(end > t, tax_due, 0.0)   # paths that go on
            ordinary[:] = 0.0
            gains[:] = 0.0
            wd_year[:] = 0.0
            prev_ye = bal.copy()
            prev_year_ret = yr_growth
            yr_growth = np.ones(N)

        alive = D > t                                     # 2. deaths, (P, N)
        n_alive = alive.sum(axis=0)
        ending = end == t
        if ending.any():
            gross = bal[:, ending].sum(axis=0)
            owed = tax_due[ending]                        # this January's, unpaid
            if tax is not None:                           # + the open year's
                owed = owed + income_tax(ordinary[ending], gains[ending], I, tax)
            paid = np.minimum(owed, gross)
            estate[ending] = gross - paid
            estate_real[ending] = (gross - paid) / (1.0 + infl) ** (t / 12.0)
            lifetime_tax[ending] += paid
            bal[:, ending] = 0.0
            basis[:, ending] = 0.0
        if t == H:
            break
        run = n_alive > 0
        sf = np.where(n_alive == 1, sp_sf, 1.0) if P == 2 else np.ones(N)
        W = bal.sum(axis=0)                               # wealth at the month's start

        for a, amt, g, until_m, o in contribs:            # 3. contributions
            if t < until_m and amt > 0:
                c = amt * (1.0 + g) ** y
                add = np.where(alive[o] & ~failed, c, 0.0)
                bal[a] += add
                if kind[a] == "taxable":
                    basis[a] += add

        cash = np.zeros(N)                                # 4. incomes and Social Security
        for o, amt, s_m, e_m, indexed, taxable, surv in incomes:
            if s_m <= t < e_m:
                v = amt * (I if indexed else 1.0)
                pay = np.where(alive[o], v, np.where(run, surv * v, 0.0))
                cash += pay
                if taxable:
                    ordinary += pay
        if any(s is not None for s in ss):
            ben = [(s[0] * I if (s is not None and t >= s[1]) else 0.0) for s in ss]
            if P == 1:
                paid_ss = np.where(alive[0], ben[0], 0.0)
            else:
                paid_ss = np.where(n_alive == 2, ben[0] + ben[1],
                                   np.where(n_alive == 1, max(ben[0], ben[1]), 0.0))
            cash += paid_ss
            ordinary += ss_taxable * paid_ss

        started = t >= start_m                            # 5. spending
        if started and (t == start_m or t % 12 == 0):
            EI = E * I
            if rk in ("vpw", "guardrails"):
                living_age = np.where(alive, np.array(age_m)[:, None] + t, 10 ** 9)
                young_m = living_age.min(axis=0).astype(float)
            if rk == "fixed":
                S = np.full(N, (E + Dsc) * I)
            elif rk == "percent":
                S = np.maximum(EI, float(rule["rate"]) * W / 12.0)
            elif rk == "floor_ceiling":
                S = np.maximum(EI, np.minimum(float(rule["rate"]) * W / 12.0,
                                              float(rule["ceiling"]) * I))
            elif rk == "vpw":
                r = float(rule.get("real_return", 0.04))
                to_m = 12.0 * float(rule.get("to_age", 100.0))
                n = np.maximum(1.0, np.ceil((to_m - young_m) / 12.0 - 1e-9))
                pmt = W / n if r == 0 else W * r / (1.0 - (1.0 + r) ** (-n))
                S = np.maximum(EI, pmt / 12.0)
            elif rk == "guardrails":
                up = float(rule.get("upper", 1.2))
                lo = float(rule.get("lower", 0.8))
                adj = float(rule.get("adjust", 0.10))
                myl = float(rule.get("min_years_left", 15.0))
                plan_age = float(rule.get("planning_age", 95.0))
                if t == start_m:
                    S = np.full(N, (E + Dsc) * I)
                    WR0 = np.divide(12.0 * S, W, out=np.full(N, np.inf), where=W > 0)
                else:
                    wr_prev = np.divide(12.0 * S, W, out=np.full(N, np.inf), where=W > 0)
                    freeze = (prev_year_ret < 1.0) & (wr_prev > WR0)
                    S = np.where(freeze, S, S * (I / I_of(y - 1)))
                    WR = np.divide(12.0 * S, W, out=np.full(N, np.inf), where=W > 0)
                    years_left = plan_age - young_m / 12.0
                    c_ = (WR > up * WR0) & (years_left > myl) & run
                    r_ = (WR < lo * WR0) & run & ~c_
                    S = np.where(c_, S * (1.0 - adj), np.where(r_, S * (1.0 + adj), S))
                    S = np.maximum(S, EI)
                    cut |= c_
                    n_cuts += c_
                    n_raises += r_
            else:
                raise PlanError(f"plan.spending.rule.kind: unknown {rk}")
        if started:
            e_part = np.where(run, E * I * sf, 0.0)
            d_part = np.where(run, np.maximum(S * sf - e_part, 0.0), 0.0)
        else:
            e_part = np.zeros(N)
            d_part = None
        reserve_part = np.where(run, E * I * sf, 0.0)    # the flexible goals' reserve unit

        need = e_part + tax_due * run                     # 6. the essential need
        due_now = [k for k, g in enumerate(goals) if g[2] == t]
        for k in due_now:
            goal_due[k] = run.copy()
            if goals[k][3]:
                need = need + np.where(run, goals[k][1] * I, 0.0)
        c1 = np.minimum(cash, need)
        cash -= c1
        need_w = need - c1
        if (need_w > 0).any():
            total = bal.sum(axis=0)
            fail_now = ~failed & (need_w > 0) & (total - need_w <= 0.0)
            ok = ~failed & ~fail_now
            withdraw(np.where(ok, need_w, 0.0), I)
            if fail_now.any():
                withdraw(np.where(fail_now, 2.0 * total + 1.0, 0.0), I)   # everything goes
                bal[:, fail_now] = 0.0
                basis[:, fail_now] = 0.0
                failed |= fail_now
                fail_month[fail_now] = t
            met = run & ((need_w <= 0.0) | ~failed)
        else:
            met = run
        for k in due_now:
            if goals[k][3]:
                goal_paid[k] = met.copy()

        if d_part is not None and (d_part > 0).any():     # 7. discretionary, flexible goals
            c2 = np.minimum(cash, d_part)
            cash -= c2
            rem = d_part - c2
            total = bal.sum(axis=0)
            short = run & (rem > total)
            withdraw(rem, I)
            cut |= short
        for k in due_now:
            if not goals[k][3]:
                amt = goals[k][1] * I
                total = bal.sum(axis=0)
                ok = run & (cash + total - amt >= reserve_years * 12.0 * reserve_part)
                x = np.where(ok, amt, 0.0)
                c3 = np.minimum(cash, x)
                cash -= c3
                withdraw(x - c3, I)
                goal_paid[k] = ok
        live = run & ~failed                              # surplus cash (spent after a failure)
        add = np.where(live, cash, 0.0)
        bal[first_taxable] += add
        basis[first_taxable] += add

        if t % 12 == 11 and deferred_idx:                 # 8. RMDs
            for a in deferred_idx:
                o = owner[a]
                if P == 2:
                    age_now = np.where(alive[o], age_m[o], age_m[1 - o]) + t
                else:
                    age_now = np.full(N, age_m[o] + t)
                att = np.minimum(age_now // 12, 120)
                d = np.where(att >= rmd_age, rmd_div[att], np.inf)
                req_amt = np.clip(prev_ye[a] / d - wd_year[a], 0.0, bal[a])
                req_amt = np.where(live, req_amt, 0.0)
                if (req_amt > 0).any():
                    take(a, req_amt)
                    bal[first_taxable] += req_amt
                    basis[first_taxable] += req_amt

        drift, scale = params_at(t)                       # 9. growth
        rng.standard_normal(out=G)
        G *= scale
        G += drift
        np.exp(G, out=G)
        bal *= G
        yr_growth = yr_growth * G

    secs = time.perf_counter() - t0
    p_fail = float(failed.mean())
    p = 1.0 - p_fail
    fail_ages = (age_m[0] + fail_month[failed]) / 12.0
    result = {
        "name": req.get("name"),
        "success_probability": p,
        "standard_error": math.sqrt(p * (1.0 - p) / N),
        "depletion_probability": p_fail,
        "median_failure_age": float(np.median(fail_ages)) if fail_ages.size else None,
        "spending_cut_probability": float(cut.mean()),
        "guardrail_cuts_mean": float(n_cuts.mean()),
        "guardrail_raises_mean": float(n_raises.mean()),
        "goals": [{"name": g[0], "due_probability": float(goal_due[k].mean()),
                   "paid_probability": float(goal_paid[k].mean()),
                   "paid_given_due": (float(goal_paid[k].sum() / goal_due[k].sum())
                                      if goal_due[k].any() else None)}
                  for k, g in enumerate(goals)],
        "estate": {"mean": float(estate.mean()), "median": float(np.median(estate)),
                   "std": float(estate.std()), **pct(estate, [10, 90]),
                   "real_mean": float(estate_real.mean()),
                   "real_median": float(np.median(estate_real))},
        "lifetime_taxes": {"mean": float(lifetime_tax.mean()), "std": float(lifetime_tax.std()),
                           "median": float(np.median(lifetime_tax))},
        "ages_at_death": [pct((age_m[p] + D[p]) / 12.0, [10, 50, 90]) for p in range(P)],
        "horizon_months": H,
        "paths": N,
        "seed": S_seed,
        "backend": "numpy",
        "seconds": secs,
    }
    return result, int(end.sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default="-", help="JSON request file, or - for stdin")
    ap.add_argument("--paths", type=int, help="override options.paths")
    ap.add_argument("--seed", type=int, help="override options.seed")
    ap.add_argument("--time", action="store_true", help="print timings to stderr")
    args = ap.parse_args()
    text = sys.stdin.read() if args.file == "-" else open(args.file).read()
    req = json.loads(text)
    reqs = req if isinstance(req, list) else [req]
    results = []
    t0 = time.perf_counter()
    for r in reqs:
        res, steps = simulate(r, args.paths, args.seed)
        if args.time:
            print(f"{res['name'] or '-'}: {res['seconds']:.2f} s, "
                  f"path-months/s {steps / res['seconds']:.4g}", file=sys.stderr)
        results.append(res)
    if args.time:
        print(f"total: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    json.dump(results if isinstance(req, list) else results[0], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
