"""A Python gRPC client generated from service/proto (grpcio-tools), as an orchestrator in another
language would use Sextant: every operation with typed messages, each answer compared field by
field with the same request's answer over HTTP, a bad field read back from the standard
google.rpc.BadRequest details, and two callers who cannot read each other's simulations.

Usage: grpc_client.py GRPC_ADDR HTTP_BASE PROTO_DIR EXAMPLES_DIR
The server runs with keys alice:alice-secret, bob:bob-secret and admin:admin-secret, the last
one an admin, and --jwt-secret jwt-test-secret (callers carol and dave hold tokens). Prints one line per check; exits non-zero on the first failure.
"""

import json
import os
import sys
import tempfile
import time

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

import callers
from callers import KEYS

GRPC_ADDR, HTTP_BASE, PROTO_DIR, EXAMPLES = sys.argv[1:5]

def generate():
    """The client code, generated from the .proto as a user would."""
    out = tempfile.mkdtemp(prefix="sextant-grpc-py-")
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main([
        "grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out}",
        f"--grpc_python_out={out}", "sextant/v1/sextant.proto",
    ])
    assert status == 0, "protoc failed"
    sys.path.insert(0, out)
    from sextant.v1 import sextant_pb2, sextant_pb2_grpc  # noqa: E402
    return sextant_pb2, sextant_pb2_grpc


pb, pb_grpc = generate()
stub = pb_grpc.SextantStub(grpc.insecure_channel(GRPC_ADDR))


def meta(who):
    return [("authorization", f"Bearer {KEYS[who]}")]


def http(method, path, who, body=None):
    return callers.http(HTTP_BASE, method, path, who, body)


def example(name):
    return callers.example(EXAMPLES, name)


MATRICES = {"correlations", "covariance"}


def rows(document):
    """The JSON document with each matrix as `repeated Row`, the .proto's one difference."""
    if isinstance(document, dict):
        return {k: ([{"values": r} for r in v] if k in MATRICES else rows(v))
                for k, v in document.items()}
    if isinstance(document, list):
        return [rows(v) for v in document]
    return document


def choices(document):
    """A plan's fields that JSON writes in one of several shapes, as the .proto's `oneof either`
    messages (and a withdrawal order's bare list as `AccountKinds`)."""
    plan = document.get("plan") if isinstance(document, dict) else None
    if not isinstance(plan, dict):
        return document
    spending = plan.get("spending", {})
    if "start" in spending:
        start = spending["start"]
        spending["start"] = {"word": start} if isinstance(start, str) else {"month": start}
    if "rule" in spending:
        rule = spending["rule"]
        spending["rule"] = {"word": rule} if isinstance(rule, str) else {"rule": rule}
    if "withdrawal_order" in plan:
        order = plan["withdrawal_order"]
        if isinstance(order, list):
            plan["withdrawal_order"] = {"sequence": {"values": order}}
        elif isinstance(order, str):
            plan["withdrawal_order"] = {"word": order}
        else:
            plan["withdrawal_order"] = {"bracket_fill": order}
    return document


def typed(message_type, document):
    return json_format.ParseDict(choices(rows(document)), message_type())


checks = 0


def repeated(field):
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def same(http_doc, message, path="result"):
    """Every field of the HTTP answer is in the message with the same value, and the message has
    nothing the HTTP answer lacks."""
    global checks
    assert isinstance(http_doc, dict), f"{path}: {http_doc!r} is not an object"
    seen = set()
    for field in message.DESCRIPTOR.fields:
        key = field.name if field.name in http_doc else field.json_name
        seen.add(key)
        value = http_doc.get(key)
        where = f"{path}.{key}"
        mine = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            assert dict(mine) == (value or {}), f"{where}: {dict(mine)} != {value}"
        elif repeated(field):
            value = value or []
            assert len(mine) == len(value), f"{where}: {len(mine)} items, HTTP has {len(value)}"
            for i, (a, b) in enumerate(zip(mine, value)):
                if field.message_type is None:
                    assert a == b, f"{where}[{i}]: {a} != {b}"
                else:
                    same(b, a, f"{where}[{i}]")
        elif field.message_type is not None and field.message_type.full_name in (
                "google.protobuf.Value", "google.protobuf.Struct"):
            assert json_format.MessageToDict(mine) == value, f"{where} differs"
        elif field.message_type is not None:
            if value is None:
                assert not message.HasField(field.name), f"{where}: set, HTTP has none"
            else:
                same(value, mine, where)
        else:
            if value is None:
                if field.has_presence:
                    assert not message.HasField(field.name), f"{where}: {mine}, HTTP has none"
            else:
                assert mine == value, f"{where}: {mine!r} != {value!r}"
        checks += 1
    extra = set(http_doc) - seen
    assert not extra, f"{path}: HTTP has {extra}, the message does not"


ok = callers.ok


def grpc_error(call):
    try:
        call()
    except grpc.RpcError as e:
        return e
    raise AssertionError("the call succeeded")


# ---- The engine's operations: typed request, the same numbers as HTTP ----
goal = example("accumulation-30y.json")
goal["options"]["paths"] = 2000
for method, route, name in [
    ("Simulate", "/v1/simulations", "accumulation-30y.json"),
    ("RequiredContribution", "/v1/solve/required-contribution", "accumulation-30y.json"),
    ("SustainableWithdrawal", "/v1/solve/sustainable-withdrawal", "retirement-drawdown.json"),
    ("WhatIf", "/v1/what-if", "what-if.json"),
    ("Sensitivity", "/v1/sensitivity", "sensitivity.json"),
    ("Frontier", "/v1/frontier", "frontier.json"),
    ("FrontierSweep", "/v1/frontier/sweep", "sweep.json"),
    ("Risk", "/v1/risk", "risk.json"),
    ("Plan", "/v1/plans", "plan-couple.json"),
    ("Plan", "/v1/plans", "plan-single-retiree.json"),
    ("SustainableSpending", "/v1/plans/solve/spending", "plan-single-retiree.json"),
    ("ClaimingAges", "/v1/plans/solve/claiming", "plan-single-retiree.json"),
    ("WithdrawalOrders", "/v1/plans/solve/withdrawal-order", "plan-pre-retiree.json"),
]:
    document = goal if name == "accumulation-30y.json" else example(name)
    if "options" in document and "paths" in document["options"]:
        document["options"]["paths"] = min(document["options"]["paths"], 2000)
    rpc = getattr(stub, method)
    input_type = pb.DESCRIPTOR.services_by_name["Sextant"].methods_by_name[method].input_type
    message = typed(getattr(pb, input_type.name), document)
    answer = rpc(message, metadata=meta("alice"))
    same(http("POST", route, "alice", document), answer, method)
    ok(f"{method} typed, the same numbers as HTTP {route}")

# ---- A plan's choices of shape (a month, a word, a bare list) arrive as JSON writes them ----
shapes = example("plan-single-retiree.json")
shapes["options"]["paths"] = 1000
shapes["plan"]["spending"].update({"start": 0, "rule": "fixed"})
shapes["plan"]["withdrawal_order"] = ["tax_free", "taxable", "tax_deferred"]
same(http("POST", "/v1/plans", "alice", shapes),
     stub.Plan(typed(pb.PlanRequest, shapes), metadata=meta("alice")), "Plan")
shapes["plan"]["withdrawal_order"] = "proportional"
shapes["plan"]["spending"]["rule"] = {"kind": "percent", "rate": 0.04}
same(http("POST", "/v1/plans", "alice", shapes),
     stub.Plan(typed(pb.PlanRequest, shapes), metadata=meta("alice")), "Plan")
ok("Plan's words, months, rules and orders typed, the same numbers as HTTP")

# ---- A plan job streamed, read and listed: the same numbers as HTTP ----
couple = example("plan-couple.json")
couple["options"]["paths"] = 1000
streamed = list(stub.PlanStream(typed(pb.PlanRequest, couple), metadata=meta("alice")))
assert streamed[0].WhichOneof("event") == "queued", streamed[0]
assert streamed[-1].WhichOneof("event") == "done", streamed[-1]
plan_result = [e.result for e in streamed if e.WhichOneof("event") == "result"]
assert len(plan_result) == 1, streamed
same(http("POST", "/v1/plans", "alice", couple), plan_result[0], "PlanStream")
plan_id = streamed[0].queued.id
record = stub.GetPlan(pb.SimulationId(id=plan_id), metadata=meta("alice"))
same(http("GET", f"/v1/plans/{plan_id}", "alice"), record, "GetPlan")
listed = stub.ListPlans(pb.ListSimulationsRequest(limit=5), metadata=meta("alice"))
same(http("GET", "/v1/plans?limit=5", "alice"), listed, "ListPlans")
assert plan_id in [p.id for p in listed.plans]
error = grpc_error(lambda: stub.GetPlan(pb.SimulationId(id=plan_id), metadata=meta("bob")))
assert error.code() == grpc.StatusCode.NOT_FOUND, error
ok("PlanStream, GetPlan and ListPlans typed, the same numbers as HTTP; bob cannot read it")

# ---- A bad field: google.rpc.BadRequest names it ----
bad = typed(pb.GoalRequest, {"goal": {"horizon_months": 0},
                             "market": {"expected_return": 0.05, "volatility": 0.1}})
error = grpc_error(lambda: stub.Simulate(bad, metadata=meta("alice")))
assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
status = rpc_status.from_call(error)
violations = []
for detail in status.details:
    if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
        request = error_details_pb2.BadRequest()
        detail.Unpack(request)
        violations += [(v.field, v.description) for v in request.field_violations]
assert [f for f, _ in violations] == ["goal.horizon_months"], violations
assert "1200" in violations[0][1], violations
ok(f"a bad field is a BadRequest violation: {violations[0]}")

# ---- Stored simulations: create, follow, read, list, chart, replay ----
job = stub.CreateSimulation(typed(pb.GoalRequest, goal), metadata=meta("alice"))
assert job.status == "queued" and job.self_link == f"/v1/simulations/{job.id}", job
events = [e.WhichOneof("event") for e in
          stub.SimulationEvents(pb.SimulationId(id=job.id), metadata=meta("alice"))]
assert events[0] == "queued" and events[-1] == "done" and "result" in events, events
ok(f"CreateSimulation then SimulationEvents: {' '.join(events)}")
record = stub.GetSimulation(pb.SimulationId(id=job.id), metadata=meta("alice"))
same(http("GET", f"/v1/simulations/{job.id}", "alice"), record, "GetSimulation")
ok("GetSimulation, the same record as HTTP")
streamed = list(stub.SimulateStream(typed(pb.GoalRequest, goal), metadata=meta("alice")))
result = [e.result for e in streamed if e.WhichOneof("event") == "result"]
same(http("POST", "/v1/simulations", "alice", goal), result[0], "SimulateStream")
ok("SimulateStream's result, the same numbers as HTTP")
listing = stub.ListSimulations(pb.ListSimulationsRequest(limit=10), metadata=meta("alice"))
same(http("GET", "/v1/simulations?limit=10", "alice"), listing, "ListSimulations")
assert job.id in [s.id for s in listing.simulations]
ok(f"ListSimulations: {len(listing.simulations)} of alice's")
chart = stub.GetFanChart(pb.SimulationId(id=job.id), metadata=meta("alice"))
assert chart.svg == http("GET", f"/v1/simulations/{job.id}/fan-chart.svg", "alice")
ok("GetFanChart, the same SVG as HTTP")
replayed = stub.Replay(pb.SimulationId(id=job.id), metadata=meta("alice"))
assert replayed.identical, replayed.engine_version
same(http("POST", f"/v1/simulations/{job.id}/replay", "alice"), replayed, "Replay")
ok("Replay: identical")

# ---- Two callers: bob cannot see alice's; the admin can ----
for method, request in [("GetSimulation", pb.SimulationId(id=job.id)),
                        ("GetFanChart", pb.SimulationId(id=job.id)),
                        ("Replay", pb.SimulationId(id=job.id))]:
    error = grpc_error(lambda: getattr(stub, method)(request, metadata=meta("bob")))
    assert error.code() == grpc.StatusCode.NOT_FOUND, (method, error)
error = grpc_error(lambda: list(stub.SimulationEvents(pb.SimulationId(id=job.id),
                                                      metadata=meta("bob"))))
assert error.code() == grpc.StatusCode.NOT_FOUND, error
assert job.id not in [s.id for s in stub.ListSimulations(
    pb.ListSimulationsRequest(), metadata=meta("bob")).simulations]
assert stub.GetSimulation(pb.SimulationId(id=job.id), metadata=meta("admin")).id == job.id
assert job.id in [s.id for s in stub.ListSimulations(
    pb.ListSimulationsRequest(limit=500), metadata=meta("admin")).simulations]
ok("bob gets NOT_FOUND for alice's simulation on every method and does not list it; "
   "the admin reads and lists it")

# ---- Two token subjects: the same rule ----
carols = stub.CreateSimulation(typed(pb.GoalRequest, goal), metadata=meta("carol"))
assert stub.GetSimulation(pb.SimulationId(id=carols.id), metadata=meta("carol")).id == carols.id
for method in ["GetSimulation", "GetFanChart", "Replay"]:
    error = grpc_error(lambda: getattr(stub, method)(pb.SimulationId(id=carols.id),
                                                     metadata=meta("dave")))
    assert error.code() == grpc.StatusCode.NOT_FOUND, (method, error)
assert carols.id not in [s.id for s in stub.ListSimulations(
    pb.ListSimulationsRequest(), metadata=meta("dave")).simulations]
ok("token subjects too: dave gets NOT_FOUND for carol's simulation and does not list it")

# ---- Re-scoring runs: admin only ----
error = grpc_error(lambda: stub.CreateRescoreRun(pb.RescoreRunSpec(), metadata=meta("alice")))
assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
run = stub.CreateRescoreRun(pb.RescoreRunSpec(run_key="py-client", paths=500),
                            metadata=meta("admin"))
assert run.self_link == f"/v1/rescore-runs/{run.id}", run
for _ in range(300):  # a run with no goals finishes at once; compare it finished
    status = stub.GetRescoreRun(pb.RescoreRunId(id=run.id), metadata=meta("admin"))
    if status.HasField("finished_at_ms"):
        break
    time.sleep(0.1)
assert status.run_key == "py-client" and status.paths == 500, status
same(http("GET", f"/v1/rescore-runs/{run.id}", "admin"), status, "GetRescoreRun")
ok(f"CreateRescoreRun and GetRescoreRun (admin): {status.status}")

# ---- Tools ----
tools = stub.ListTools(pb.ListToolsRequest(), metadata=meta("alice"))
same(http("GET", "/v1/tools", "alice"), tools, "ListTools")
arguments = json_format.ParseDict(goal, pb.RunToolRequest().arguments)
ran = stub.RunTool(pb.RunToolRequest(name="simulate_goal", arguments=arguments),
                   metadata=meta("alice"))
same(http("POST", "/v1/tools/simulate_goal", "alice", goal), ran, "RunTool")
assert "%" in ran.summary, ran.summary
ok(f"ListTools ({len(tools.tools)}) and RunTool: {ran.summary[:60]}…")

# ---- Histories: stored (CSV text and typed), listed, read, named by a typed request ----
with open(os.path.join(EXAMPLES, "history-synthetic.csv")) as f:
    csv_text = f.read()
created = stub.CreateHistory(pb.HistoryUpload(name="py-synthetic", csv=csv_text),
                             metadata=meta("alice"))
assert created.months == 600 and created.inflation, created
assert list(created.assets) == ["stocks", "bonds"], created
assert created.self_link == "/v1/histories/py-synthetic", created
error = grpc_error(lambda: stub.CreateHistory(
    pb.HistoryUpload(name="py-synthetic", csv=csv_text), metadata=meta("alice")))
assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error
bootstrap = example("bootstrap.json")
bootstrap["options"]["paths"] = 2000
inline = bootstrap["market"]["model"]["history"]
stub.CreateHistory(pb.HistoryUpload(name="py-inline", history=typed(pb.History, inline)),
                   metadata=meta("alice"))
same(http("GET", "/v1/histories", "alice"),
     stub.ListHistories(pb.ListHistoriesRequest(), metadata=meta("alice")), "ListHistories")
same(http("GET", "/v1/histories/py-inline", "alice"),
     stub.GetHistory(pb.HistoryName(name="py-inline"), metadata=meta("alice")), "GetHistory")
error = grpc_error(lambda: stub.GetHistory(pb.HistoryName(name="py-inline"), metadata=meta("bob")))
assert error.code() == grpc.StatusCode.NOT_FOUND, error
assert len(stub.ListHistories(pb.ListHistoriesRequest(), metadata=meta("bob")).histories) == 0
# A typed goal naming the history (`HistorySource.name`): the numbers of HTTP naming it.
named = json.loads(json.dumps(bootstrap))
named["market"]["model"]["history"] = "py-synthetic"
message = json.loads(json.dumps(named))
message["market"]["model"]["history"] = {"name": "py-synthetic"}
same(http("POST", "/v1/simulations", "alice", named),
     stub.Simulate(typed(pb.GoalRequest, message), metadata=meta("alice")), "Simulate (named history)")
# And one with its history inline (`HistorySource.history`) gets the inline numbers.
message["market"]["model"]["history"] = {"history": inline}
same(http("POST", "/v1/simulations", "alice", bootstrap),
     stub.Simulate(typed(pb.GoalRequest, message), metadata=meta("alice")), "Simulate (inline history)")
error = grpc_error(lambda: stub.Simulate(
    typed(pb.GoalRequest, dict(message, market=dict(message["market"], model=dict(
        message["market"]["model"], history={"name": "py-synthetic"})))), metadata=meta("bob")))
assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
ok("CreateHistory (CSV, typed; ALREADY_EXISTS), ListHistories, GetHistory (bob: NOT_FOUND), "
   "Simulate naming a history or carrying it: the numbers of HTTP")

print(f"all typed gRPC checks passed ({checks} fields compared)")
