//! Shared inputs of the benchmarks: the standard goal of `sextant bench`.

use sextant_engine::GoalRequest;

/// The standard goal (examples/accumulation-30y.json) with `paths` paths.
pub fn standard_goal(paths: u64) -> GoalRequest {
    let mut request: GoalRequest =
        serde_json::from_str(include_str!("../examples/accumulation-30y.json"))
            .expect("the standard goal parses");
    request.options.paths = Some(paths);
    request
}
