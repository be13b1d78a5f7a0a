#!/usr/bin/env python3
"""Write the Sobol' direction numbers the engine embeds (docs/model.md section 6):
engine/data/sobol-joe-kuo-1200.txt, the first 1,200 dimensions of Joe and Kuo's
new-joe-kuo-6.21201 table (S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better
two-dimensional projections", SIAM J. Sci. Comput. 30, 2635-2654, 2008), in the table's own
format: a header line, then one line per dimension d = 2, 3, ... with its primitive
polynomial's degree s, its coefficients a (the s - 1 middle bits) and the initial direction
integers m_1 ... m_s. Dimension 1 (van der Corput, every m = 1) is implicit, as in the table.

The numbers are read from SciPy's copy of that table (scipy/stats/_sobol_direction_numbers.npz,
whose `poly` holds each dimension's whole polynomial, leading and constant terms included, and
`vinit` its m_1 ... m_s), since this machine reaches PyPI and not the authors' site. 1,200 is
the longest horizon in months (validate.rs, MAX_HORIZON_MONTHS): one dimension per month.

    python3 benches/make_sobol_table.py        # rewrites the file; git diff shows any change
"""
import os
import sys

import numpy as np
import scipy

DIMENSIONS = 1200
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "engine", "data", f"sobol-joe-kuo-{DIMENSIONS}.txt")


def main() -> None:
    table = np.load(os.path.join(os.path.dirname(scipy.__file__), "stats",
                                 "_sobol_direction_numbers.npz"))
    poly, vinit = table["poly"], table["vinit"]
    assert int(poly[0]) == 1 and all(int(v) == 1 for v in vinit[0][:1]), "dimension 1 first"
    lines = ["d       s       a       m_i"]
    for d in range(1, DIMENSIONS):
        p = int(poly[d])
        s = p.bit_length() - 1
        assert s >= 1 and p & 1, (d, p)
        a = (p >> 1) & ((1 << (s - 1)) - 1)
        m = [int(x) for x in vinit[d][:s]]
        # Each m_k is odd and below 2^k (the table's invariants).
        assert all(x % 2 == 1 and x < (1 << (k + 1)) for k, x in enumerate(m)), (d, m)
        lines.append(" ".join(str(x) for x in [d + 1, s, a, *m]))
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({DIMENSIONS} dimensions, scipy {scipy.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
