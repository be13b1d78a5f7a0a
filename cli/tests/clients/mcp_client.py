"""A real MCP client (the official Python SDK, `mcp`) against Sextant, as an agent gateway would
mount it: over streamable HTTP at /mcp with a key, and over stdio launching `sextant mcp`.
Initialize, list the tools, call one, read its summary and its structured result (compared with
the same request over HTTP), see a refused input come back as a tool error naming the field,
read a stored simulation's and a stored plan's fan chart as resources, and check that another
caller cannot.

Usage:
  mcp_client.py http HTTP_BASE EXAMPLES_DIR   (keys alice, bob and tokens of carol, dave, as
                                              grpc_client.py)
  mcp_client.py stdio SEXTANT_BINARY EXAMPLES_DIR DATABASE_URL
Prints one line per check; exits non-zero on the first failure.
"""

import asyncio
import os
import sys

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

import callers
from callers import KEYS

MODE, TARGET, EXAMPLES = sys.argv[1:4]
ok = callers.ok


def example(name):
    return callers.example(EXAMPLES, name)


def http(method, path, who, body=None):
    return callers.http(TARGET, method, path, who, body)


GOAL = example("accumulation-30y.json")
GOAL["options"]["paths"] = 2000
PLAN = example("plan-single-retiree.json")
PLAN["options"]["paths"] = 1000


async def tools_and_a_call(client, label):
    """The same checks on either transport; returns the structured result."""
    listed = (await client.list_tools()).tools
    names = sorted(t.name for t in listed)
    assert "simulate_goal" in names and "plan_household" in names and len(names) == 12, names
    simulate = next(t for t in listed if t.name == "simulate_goal")
    assert simulate.input_schema["type"] == "object", simulate.input_schema
    assert "goal" in simulate.input_schema["properties"], simulate.input_schema
    ok(f"{label}: {len(names)} tools listed, schemas from the request types")

    called = await client.call_tool("simulate_goal", GOAL)
    assert not called.is_error, called
    summary = called.content[0].text
    assert "%" in summary, summary
    result = called.structured_content
    assert 0.0 <= result["success_probability"] <= 1.0 and result["paths"] == 2000, result
    svg = [c for c in called.content if c.type == "resource"]
    assert svg and svg[0].resource.mime_type == "image/svg+xml", called.content
    assert svg[0].resource.text.lstrip().startswith("<svg"), svg[0].resource.text[:80]

    planned = await client.call_tool("plan_household", PLAN)
    assert not planned.is_error, planned
    drawn = [c for c in planned.content if c.type == "resource"]
    assert drawn and "chance the plan lasts" in drawn[0].resource.text, planned.content
    ok(f"{label}: plan_household answers its summary and its fan chart by age")
    ok(f"{label}: simulate_goal answers the summary ({summary[:50]}…), the result and its fan chart")

    bad = dict(GOAL, goal=dict(GOAL["goal"], horizon_months=0))
    refused = await client.call_tool("simulate_goal", bad)
    assert refused.is_error, refused
    assert refused.content[0].text.startswith("goal.horizon_months:"), refused.content[0].text
    ok(f"{label}: a refused input is a tool error naming the field: {refused.content[0].text}")

    try:
        await client.call_tool("no_such_tool", {})
        raise AssertionError("an unknown tool was called")
    except MCPError as e:
        assert "no_such_tool" in e.message, e.message
    ok(f"{label}: an unknown tool is a protocol error")
    return result


async def over_http():
    url = TARGET + "/mcp"

    def client_of(who, mode):
        http_client = httpx2.AsyncClient(headers={"authorization": f"Bearer {KEYS[who]}"},
                                         timeout=httpx2.Timeout(60.0))
        return http_client, Client(streamable_http_client(url, http_client=http_client), mode=mode)

    # Both protocol generations a gateway may speak: the stateless 2026 one and the older
    # initialize handshake.
    for mode in ["auto", "legacy"]:
        http_client, client = client_of("alice", mode)
        async with http_client, client:
            result = await tools_and_a_call(client, f"HTTP ({mode}, {client.protocol_version})")
            assert result == http("POST", "/v1/simulations", "alice", GOAL), \
                "the MCP result differs from HTTP's"
            ok(f"HTTP ({mode}): the structured result is HTTP's, number for number")

    # A stored simulation or plan is its owner's resource and no one else's, for keys and
    # tokens.
    for owner, other, collection, request in [
        ("alice", "bob", "simulations", GOAL),
        ("carol", "dave", "simulations", GOAL),
        ("alice", "bob", "plans", PLAN),
    ]:
        job = http("POST", f"/v1/{collection}", owner,
                   dict(request, options=dict(request["options"], **{"async": True})))
        for _ in range(600):
            if http("GET", job["self"], owner)["status"] == "complete":
                break
            await asyncio.sleep(0.05)
        uri = f"sextant://{collection}/{job['id']}/fan-chart.svg"
        http_client, client = client_of(owner, "auto")
        async with http_client, client:
            resources = [str(r.uri) for r in (await client.list_resources()).resources]
            assert uri in resources, resources
            read = (await client.read_resource(uri)).contents[0]
            assert read.mime_type == "image/svg+xml" and read.text.lstrip().startswith("<svg"), read
        ok(f"HTTP: {owner} lists and reads their {collection[:-1]}'s fan chart as a resource")
        http_client, client = client_of(other, "auto")
        async with http_client, client:
            resources = [str(r.uri) for r in (await client.list_resources()).resources]
            assert uri not in resources, resources
            try:
                await client.read_resource(uri)
                raise AssertionError(f"{other} read {owner}'s fan chart")
            except MCPError as e:
                assert "no resource" in e.message, e.message
        ok(f"HTTP: {other} neither lists nor reads it (not found)")

    # Without a key, /mcp is refused like /v1.
    async with httpx2.AsyncClient() as anonymous:
        answer = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                      headers={"accept": "application/json, text/event-stream"})
        assert answer.status_code == 401, answer.status_code
    ok("HTTP: no key, 401")


async def over_stdio(binary, database):
    parameters = StdioServerParameters(
        command=binary, args=["--backend", "cpu", "mcp"],
        env={**{k: v for k, v in os.environ.items() if k != "SEXTANT_API_KEYS"},
             "DATABASE_URL": database})
    async with Client(parameters) as client:
        await tools_and_a_call(client, "stdio")


if MODE == "http":
    asyncio.run(over_http())
else:
    asyncio.run(over_stdio(TARGET, sys.argv[4]))
print(f"all MCP checks passed over {MODE}")
