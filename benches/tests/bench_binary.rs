//! The `sextant-bench` binary as `benches/gpu-check.sh` runs it on a lent GPU machine: its
//! backends report is JSON that names every backend and the one `auto` takes. Building it here
//! also lets CI's rehearsal of the GPU check use the binary the tests built.

use std::process::Command;

#[test]
fn the_backends_report_names_every_backend_and_the_cpu_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_sextant-bench"))
        .args(["--suite", "backends"])
        .output()
        .expect("running sextant-bench");
    assert!(
        output.status.success(),
        "sextant-bench --suite backends failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the report is JSON on stdout");
    let backends = report["backends"].as_array().expect("a list of backends");
    let names: Vec<&str> = backends
        .iter()
        .filter_map(|b| b["backend"].as_str())
        .collect();
    assert_eq!(names, ["cpu", "wgpu", "cuda"]);
    assert_eq!(backends[0]["available"], serde_json::Value::Bool(true));
    let auto = report["auto"].as_str().expect("the backend auto takes");
    assert!(
        names.contains(&auto),
        "auto takes {auto}, not a listed backend"
    );
}
