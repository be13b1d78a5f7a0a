#!/usr/bin/env python3
"""Write the deterministic frontier benchmark problems benches/frontier-50.json and frontier-20.json.

Long-only problems in Sextant's frontier request format: expected returns uniform in
[0.02, 0.12], volatilities uniform in [0.04, 0.30], correlations from a random 5-factor model
plus an idiosyncratic part (C = B B' + diag(d), scaled to a unit diagonal; the first factor is a
market factor with positive loadings), so the matrix is a valid, positive definite correlation
matrix. Values are rounded to 6 decimals and the rounded matrix is checked to still be positive
definite. Bounds are omitted (the default 0..1).

Usage: python3 benches/make_frontier_problems.py   (rewrites both files)
"""
import json
import pathlib

import numpy as np

FACTORS = 5


def problem(n, seed, points=100):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.02, 0.12, n).round(6)
    vol = rng.uniform(0.04, 0.30, n).round(6)
    B = rng.normal(0.0, 1.0, (n, FACTORS)) * rng.uniform(0.2, 0.6, FACTORS)
    B[:, 0] = np.abs(B[:, 0]) + 0.3  # the first factor is a market factor: positive loadings
    C = B @ B.T + np.diag(rng.uniform(0.2, 1.0, n))
    s = np.sqrt(np.diag(C))
    R = (C / np.outer(s, s)).round(6)
    R = (R + R.T) / 2  # already symmetric; keeps it exactly so
    np.fill_diagonal(R, 1.0)
    eig = np.linalg.eigvalsh(R)
    assert eig.min() > 1e-4, f"rounded correlation matrix not PD (min eigenvalue {eig.min()})"
    assets = [{"name": f"a{i}", "expected_return": float(mu[i]), "volatility": float(vol[i])} for i in range(n)]
    return {"assets": assets, "correlations": R.tolist(), "points": points}, eig.min()


def dump(p):
    """Compact JSON: one asset per line, one correlation row per line."""
    assets = ",\n  ".join(json.dumps(a) for a in p["assets"])
    rows = ",\n  ".join(json.dumps(r) for r in p["correlations"])
    return f'{{"assets": [\n  {assets}],\n "correlations": [\n  {rows}],\n "points": {p["points"]}}}\n'


if __name__ == "__main__":
    here = pathlib.Path(__file__).parent
    for n, seed in [(50, 7), (20, 11)]:
        p, min_eig = problem(n, seed)
        path = here / f"frontier-{n}.json"
        path.write_text(dump(p))
        assert json.loads(path.read_text()) == p
        print(f"{path}: {n} assets, seed {seed}, min eigenvalue of correlations {min_eig:.4g}")
