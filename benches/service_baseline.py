"""The service baseline: what the seed architecture would run, a FastAPI + NumPy service doing
the same goal simulation (benches/reference.py's, float64, vectorised over paths) behind
`POST /v1/simulations`. `sextant bench --suite service` starts it with uvicorn beside Sextant
and drives both with the same load.

    python3 benches/service_baseline.py --port 8090
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import uvicorn  # noqa: E402
from fastapi import Body, FastAPI  # noqa: E402

import reference  # noqa: E402

app = FastAPI()


@app.post("/v1/simulations")
def simulations(request: dict = Body(...)):
    return reference.simulate(request)[0]


@app.get("/healthz")
def healthz():
    return "ok"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    uvicorn.run("service_baseline:app", host="127.0.0.1", port=args.port,
                workers=args.workers, log_level="warning", app_dir=os.path.dirname(__file__))
