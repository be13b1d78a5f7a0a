//! What-if variants and sensitivity (tornado) analysis: a base request and changed copies of it,
//! run as one batch with common random numbers (one seed, the same Z for every variant), so the
//! differences between variants are the inputs' effect and not sampling noise.
//!
//! Variants are JSON merge patches (RFC 7396) over the base's `goal` and `market`, so a caller
//! names only what changes, and `null` removes a field. Options (paths, seed, percentiles) are
//! the base's for every variant: that is what makes the comparison fair.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::{Engine, EngineError};
use crate::request::{Goal, GoalRequest, Market, Options};
use crate::result::SimulationResult;
use crate::validate::{prepare, ValidationError};

/// A base request and the variants to compare with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    pub goal: Goal,
    pub market: Market,
    #[serde(default)]
    pub options: Options,
    pub variants: Vec<Variant>,
}

/// One what-if: a name and merge patches over the base's `goal` and `market`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub goal: Map<String, Value>,
    #[serde(default)]
    pub market: Map<String, Value>,
}

/// The base's result and each variant's, with its change in success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfResult {
    pub base: SimulationResult,
    pub variants: Vec<VariantResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    /// success_probability − the base's.
    pub success_probability_change: f64,
    pub result: SimulationResult,
}

/// Most variants in one what-if request.
pub const MAX_VARIANTS: usize = 256;

/// Run the base and every variant in one batch.
pub fn what_if(engine: &Engine, request: &WhatIfRequest) -> Result<WhatIfResult, EngineError> {
    if request.variants.len() > MAX_VARIANTS {
        return Err(ValidationError::new(
            "variants",
            format!(
                "at most {MAX_VARIANTS} variants, got {}",
                request.variants.len()
            ),
        )
        .into());
    }
    let base = GoalRequest {
        goal: request.goal.clone(),
        market: request.market.clone(),
        options: request.options.clone(),
    };
    crate::sampler::one_number_of_paths(&base.options, "a what-if")?;
    let mut goals = vec![prepare(&base)?];
    for (i, variant) in request.variants.iter().enumerate() {
        let field = |f: &str| format!("variants[{i}].{f}");
        let goal: Goal = parse_at(patched(&base.goal, &variant.goal), &field("goal"))?;
        let market: Market = parse_at(patched(&base.market, &variant.market), &field("market"))?;
        let varied = GoalRequest {
            goal,
            market,
            options: base.options.clone(),
        };
        goals.push(prepare(&varied).map_err(|e| ValidationError::new(field(&e.field), e.problem))?);
    }
    let mut results = engine.run(&goals)?.into_iter();
    let base = results.next().expect("the base result");
    let variants = request
        .variants
        .iter()
        .zip(results)
        .map(|(v, result)| VariantResult {
            name: v.name.clone(),
            success_probability_change: result.success_probability - base.success_probability,
            result,
        })
        .collect();
    Ok(WhatIfResult { base, variants })
}

/// `base` as JSON with `patch` merged in (RFC 7396).
fn patched<T: Serialize>(base: &T, patch: &Map<String, Value>) -> Value {
    let mut value = serde_json::to_value(base).expect("requests serialise");
    merge_patch(&mut value, &Value::Object(patch.clone()));
    value
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let object = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Deserialise `value`, naming a bad field under `prefix`.
fn parse_at<T: serde::de::DeserializeOwned>(
    value: Value,
    prefix: &str,
) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            prefix.to_string()
        } else {
            format!("{prefix}.{path}")
        };
        ValidationError::new(field, e.into_inner().to_string())
    })
}

/// A base request and which inputs to move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensitivityRequest {
    pub goal: Goal,
    pub market: Market,
    #[serde(default)]
    pub options: Options,
    #[serde(default)]
    pub sensitivity: SensitivityOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensitivityOptions {
    /// Paths of numeric inputs, e.g. `goal.monthly_contribution`, `market.assets[0].volatility`.
    /// Default: every input of [`DEFAULT_INPUTS`] that the request sets to a non-zero value.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// Each input is moved to value·(1 ± step).
    #[serde(default = "default_step")]
    pub relative_step: f64,
}

impl Default for SensitivityOptions {
    fn default() -> Self {
        SensitivityOptions {
            inputs: None,
            relative_step: default_step(),
        }
    }
}

fn default_step() -> f64 {
    0.10
}

/// The inputs a tornado moves when the request names none.
pub const DEFAULT_INPUTS: [&str; 11] = [
    "goal.initial_wealth",
    "goal.monthly_contribution",
    "goal.contribution_growth",
    "goal.monthly_withdrawal",
    "goal.target_amount",
    "goal.horizon_months",
    "market.expected_return",
    "market.volatility",
    "market.inflation",
    "market.fee",
    "goal.withdrawal_start_month",
];

/// The tornado: one bar per input, largest swing first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityResult {
    pub base: SimulationResult,
    pub relative_step: f64,
    pub tornado: Vec<TornadoBar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TornadoBar {
    pub input: String,
    pub base_value: f64,
    pub low_value: f64,
    pub high_value: f64,
    /// Success with the input at `low_value`.
    pub success_low: f64,
    /// Success with the input at `high_value`.
    pub success_high: f64,
    /// |success_high − success_low|: the bar's length.
    pub swing: f64,
}

/// Most inputs in one sensitivity request.
pub const MAX_INPUTS: usize = 64;

/// Move each input by ± the relative step and report the change in success, sorted.
pub fn sensitivity(
    engine: &Engine,
    request: &SensitivityRequest,
) -> Result<SensitivityResult, EngineError> {
    let step = request.sensitivity.relative_step;
    if !(step.is_finite() && step > 0.0 && step < 1.0) {
        return Err(ValidationError::new(
            "sensitivity.relative_step",
            format!("must be in (0, 1), got {step}"),
        )
        .into());
    }
    let base = GoalRequest {
        goal: request.goal.clone(),
        market: request.market.clone(),
        options: request.options.clone(),
    };
    let base_json = serde_json::to_value(&base).expect("a request serialises");
    let inputs: Vec<String> = match &request.sensitivity.inputs {
        Some(inputs) => inputs.clone(),
        None => DEFAULT_INPUTS
            .iter()
            .filter(|path| {
                lookup(&base_json, path)
                    .and_then(Value::as_f64)
                    .is_some_and(|v| v != 0.0)
            })
            .map(|s| s.to_string())
            .collect(),
    };
    if inputs.len() > MAX_INPUTS {
        return Err(ValidationError::new(
            "sensitivity.inputs",
            format!("at most {MAX_INPUTS} inputs, got {}", inputs.len()),
        )
        .into());
    }
    crate::sampler::one_number_of_paths(&base.options, "a sensitivity")?;
    let mut goals = vec![prepare(&base)?];
    let mut bars = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let field = format!("sensitivity.inputs[{i}]");
        let current = lookup(&base_json, input).ok_or_else(|| {
            ValidationError::new(&field, format!("{input:?} is not an input of this request"))
        })?;
        let base_value = current
            .as_f64()
            .ok_or_else(|| ValidationError::new(&field, format!("{input:?} is not a number")))?;
        let integer = current.is_u64();
        let moved = |factor: f64| -> Value {
            let v = base_value * factor;
            if integer {
                // Whole months: at least one month either way.
                let r = if factor < 1.0 {
                    v.round().min(base_value - 1.0)
                } else {
                    v.round().max(base_value + 1.0)
                };
                Value::from(r.max(0.0) as u64)
            } else {
                Value::from(v)
            }
        };
        let (low, high) = (moved(1.0 - step), moved(1.0 + step));
        for value in [&low, &high] {
            let mut varied = base_json.clone();
            *lookup_mut(&mut varied, input).expect("found above") = value.clone();
            let varied: GoalRequest = serde_json::from_value(varied)
                .map_err(|e| ValidationError::new(&field, e.to_string()))?;
            goals.push(prepare(&varied).map_err(|e| {
                ValidationError::new(
                    &field,
                    format!(
                        "moving {input} to {value} breaks {}: {}",
                        e.field, e.problem
                    ),
                )
            })?);
        }
        bars.push((
            input.clone(),
            base_value,
            low.as_f64().unwrap_or(0.0),
            high.as_f64().unwrap_or(0.0),
        ));
    }
    let mut results = engine.run(&goals)?.into_iter();
    let base = results.next().expect("the base result");
    let mut tornado: Vec<TornadoBar> = bars
        .into_iter()
        .map(|(input, base_value, low_value, high_value)| {
            let success_low = results.next().expect("low").success_probability;
            let success_high = results.next().expect("high").success_probability;
            TornadoBar {
                input,
                base_value,
                low_value,
                high_value,
                success_low,
                success_high,
                swing: (success_high - success_low).abs(),
            }
        })
        .collect();
    tornado.sort_by(|a, b| {
        b.swing
            .total_cmp(&a.swing)
            .then_with(|| a.input.cmp(&b.input))
    });
    Ok(SensitivityResult {
        base,
        relative_step: step,
        tornado,
    })
}

/// One step of a path like `market.assets[1].volatility`.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The steps of `path`, or `None` if it is not of the form `key(.key|[index])*`.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for piece in path.split('.') {
        let (key, mut indices) = piece
            .split_once('[')
            .map_or((piece, ""), |(k, rest)| (k, rest));
        if key.is_empty() {
            return None;
        }
        out.push(Step::Key(key));
        while !indices.is_empty() {
            let (index, rest) = indices.split_once(']')?;
            out.push(Step::Index(index.parse().ok()?));
            indices = rest.strip_prefix('[').unwrap_or(rest);
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    steps(path)?
        .into_iter()
        .try_fold(value, |v, step| match step {
            Step::Key(key) => v.get(key),
            Step::Index(index) => v.get(index),
        })
}

fn lookup_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    steps(path)?
        .into_iter()
        .try_fold(value, |v, step| match step {
            Step::Key(key) => v.get_mut(key),
            Step::Index(index) => v.get_mut(index),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn paths_reach_nested_numbers() {
        let v = json!({"market": {"assets": [{"volatility": 0.1}, {"volatility": 0.2}]}});
        assert_eq!(lookup(&v, "market.assets[1].volatility"), Some(&json!(0.2)));
        assert_eq!(lookup(&v, "market.assets[2].volatility"), None);
        assert_eq!(lookup(&v, "market.nothing"), None);
        assert_eq!(lookup(&v, "market.assets[x].volatility"), None);
        assert_eq!(lookup(&v, "market.assets[0]volatility"), None);
        let mut w = v.clone();
        *lookup_mut(&mut w, "market.assets[0].volatility").unwrap() = json!(0.3);
        assert_eq!(w["market"]["assets"][0]["volatility"], json!(0.3));
    }
}
