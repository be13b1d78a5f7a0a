//! Clients other teams would write, in another language, against the real server: a Python
//! gRPC client generated from the `.proto` (grpcio-tools) calls every operation with typed
//! messages and compares each answer field by field with HTTP's, reads a bad field from the
//! standard `google.rpc.BadRequest`, and checks that two callers (two keys, and two token
//! subjects) cannot read each other's simulations (`tests/clients/grpc_client.py`); and the
//! official Python MCP client mounts the tools over HTTP (`/mcp`) and stdio (`sextant mcp`),
//! calls one, reads its summary, its result and its fan chart, and cannot read another
//! caller's (`tests/clients/mcp_client.py`).

mod common;

use std::process::Command;

use common::{root, sqlite_url, start};

/// The Python modules a script needs, or a failure saying how to install them (never a
/// silent skip).
fn require_python(modules: &[&str]) {
    let imports = modules.join(", ");
    let out = Command::new("python3")
        .args(["-c", &format!("import {imports}")])
        .output()
        .unwrap_or_else(|e| panic!("python3 does not run ({e}): run scripts/install-deps.sh"));
    assert!(
        out.status.success(),
        "a Python module of {imports} is missing: run scripts/install-deps.sh (it installs \
         benches/requirements.txt)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a client script; its output is shown, and it must end with `last_line`.
fn run_client(script: &str, args: &[&str], last_line: &str) {
    let out = Command::new("python3")
        .arg(root().join("cli/tests/clients").join(script))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed");
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with(last_line)),
        "{script} did not finish"
    );
}

/// Five callers: alice and bob, an admin, and the holders of HS256 tokens for carol and dave
/// (the scripts sign them with this secret).
const KEYS: [&str; 6] = [
    "--api-key",
    "alice:alice-secret,bob:bob-secret,admin:admin-secret",
    "--admin",
    "key:admin",
    "--jwt-secret",
    "jwt-test-secret",
];

#[test]
fn a_python_grpc_client_generated_from_the_proto_gets_what_http_gets() {
    require_python(&[
        "grpc",
        "grpc_tools",
        "grpc_status",
        "google.rpc.error_details_pb2",
    ]);
    let server = start(&KEYS);
    let grpc = server.grpc.trim_start_matches("http://").to_string();
    let proto = root().join("service/proto");
    let examples = root().join("examples");
    run_client(
        "grpc_client.py",
        &[
            &grpc,
            &server.base,
            proto.to_str().unwrap(),
            examples.to_str().unwrap(),
        ],
        "all typed gRPC checks passed",
    );
}

#[test]
fn the_python_mcp_client_uses_the_tools_over_http() {
    require_python(&["mcp", "httpx2"]);
    let server = start(&KEYS);
    let examples = root().join("examples");
    run_client(
        "mcp_client.py",
        &["http", &server.base, examples.to_str().unwrap()],
        "all MCP checks passed over http",
    );
}

#[test]
fn the_python_mcp_client_uses_the_tools_over_stdio() {
    require_python(&["mcp"]);
    let examples = root().join("examples");
    run_client(
        "mcp_client.py",
        &[
            "stdio",
            env!("CARGO_BIN_EXE_sextant"),
            examples.to_str().unwrap(),
            &sqlite_url(),
        ],
        "all MCP checks passed over stdio",
    );
}
