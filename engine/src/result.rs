//! The goal Monte Carlo result of docs/model.md §1 ("Outputs"): plain data with serde.
//!
//! Percentiles serialise as an object keyed `"p5"`, `"p50"`, `"p97.5"`… in ascending order of
//! the percentile, which is how a fan chart reads them.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The engine's version, echoed in every result so a stored figure can be traced to its code.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything one goal's simulation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationResult {
    /// p̂: the fraction of paths that were never depleted and ended at or above the target.
    pub success_probability: f64,
    /// The standard error of p̂: sqrt(p̂(1−p̂)/N) under `philox`; under the other samplers
    /// from their own spread (`sampling`).
    pub standard_error: f64,
    /// The target at the horizon in nominal money.
    pub target_nominal: f64,
    /// Terminal wealth W_T (nominal).
    pub terminal: TerminalStats,
    /// The fan chart: one entry at each year end (month 12, 24, …) and at the horizon.
    pub yearly: Vec<YearlyStats>,
    pub depletion: DepletionStats,
    /// Mean of target_T − W_T over failed paths; `null` when no path failed. Under stochastic
    /// inflation with a real target, in today's money: the mean of target − W_T / I_T.
    pub shortfall: Option<f64>,
    /// Under stochastic inflation (docs/model.md §4.4) only: wealth in today's money, W_s / I_s
    /// with each path's own price index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<RealWealth>,
    /// Under a Student-t `market.model` only: the path-months whose return was clamped at
    /// −100% (a t shock below −1/σ), over every path and month of the horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamped_months: Option<u64>,
    /// Under per-asset paths (`market.rebalancing` other than monthly, docs/model.md §4.5)
    /// only: how often and how much the portfolio was traded back to its weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalancing: Option<RebalancingStats>,
    /// How the paths drew their numbers and what the standard errors rest on (docs/model.md
    /// §6); absent only from results stored before samplers existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// The paths simulated (the last round's, under a precision target).
    pub paths: u64,
    pub seed: u64,
    pub backend: String,
    pub engine_version: String,
}

/// The sampler behind a result and its standard errors (docs/model.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// `philox`, `antithetic` or `sobol`.
    pub sampler: String,
    /// The `sobol` sampler's replicates, whose spread gives the standard errors; absent for
    /// the others (`philox`: binomial; `antithetic`: the spread of the pairs' means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<u32>,
    /// The standard error of `depletion.probability`, as `standard_error` is success's.
    pub depletion_standard_error: f64,
    /// Under a precision target: what was asked, how many rounds ran, the paths of all
    /// of them together, and whether the target was met (else `max_paths` stopped them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionReport>,
}

/// What a precision target's rounds reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionReport {
    /// The standard error of success asked for.
    pub target: f64,
    pub met: bool,
    pub rounds: u32,
    /// Paths simulated over every round (the result's own are the last round's).
    pub paths_simulated: u64,
}

/// Mean and percentiles of terminal wealth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalStats {
    pub mean: f64,
    pub percentiles: Percentiles,
}

/// One point of the fan chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearlyStats {
    /// Months elapsed: 12, 24, …, and the horizon.
    pub month: u32,
    pub percentiles: Percentiles,
    /// Mean wealth at this month (nominal).
    pub mean: f64,
    /// Fraction of paths depleted by this month.
    pub depleted: f64,
}

/// Rebalancing under per-asset paths, per path on average over the horizon (a depleted path
/// counts until its depletion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebalancingStats {
    /// The rule: `annual`, `band` or `none`.
    pub rule: String,
    /// Rebalances per path.
    pub mean_rebalances: f64,
    /// Turnover per path: Σ over its rebalances of the one-sided trade Σ_k |x·w_k − h_k| / 2
    /// as a fraction of the portfolio x then.
    pub mean_turnover: f64,
    /// `mean_turnover` per year of the horizon.
    pub mean_annual_turnover: f64,
}

/// Wealth in today's money under stochastic inflation: the terminal W_T / I_T and a fan chart
/// at the same months as the nominal one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealWealth {
    pub terminal: TerminalStats,
    pub yearly: Vec<RealYearlyStats>,
}

/// One point of the real fan chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealYearlyStats {
    /// Months elapsed: 12, 24, …, and the horizon.
    pub month: u32,
    pub percentiles: Percentiles,
    /// Mean of W_s / I_s.
    pub mean: f64,
}

/// How often and when the money runs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepletionStats {
    /// Fraction of paths depleted before the horizon.
    pub probability: f64,
    /// Median month of depletion among depleted paths; `null` when none was depleted.
    pub median_month: Option<f64>,
}

/// Percentile → value pairs in ascending order of the percentile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Percentiles(pub Vec<(f64, f64)>);

impl Percentiles {
    /// The value at percentile `p`, if it was requested.
    pub fn get(&self, p: f64) -> Option<f64> {
        self.0.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
    }
}

/// The key of percentile `p`: `p5`, `p50`, `p97.5`.
pub fn percentile_key(p: f64) -> String {
    format!("p{p}")
}

impl Serialize for Percentiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (p, v) in &self.0 {
            map.serialize_entry(&percentile_key(*p), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Percentiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PercentilesVisitor;
        impl<'de> Visitor<'de> for PercentilesVisitor {
            type Value = Percentiles;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object keyed \"p5\", \"p50\", …")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Percentiles, A::Error> {
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, f64>()? {
                    let p = key
                        .strip_prefix('p')
                        .and_then(|s| s.parse::<f64>().ok())
                        .ok_or_else(|| {
                            serde::de::Error::custom(format!("bad percentile key {key:?}"))
                        })?;
                    out.push((p, value));
                }
                out.sort_by(|a, b| a.0.total_cmp(&b.0));
                Ok(Percentiles(out))
            }
        }
        deserializer.deserialize_map(PercentilesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_keys_read_as_a_planner_writes_them() {
        assert_eq!(percentile_key(5.0), "p5");
        assert_eq!(percentile_key(50.0), "p50");
        assert_eq!(percentile_key(97.5), "p97.5");
        assert_eq!(percentile_key(0.1), "p0.1");
    }

    #[test]
    fn percentiles_round_trip_in_ascending_order() {
        let p = Percentiles(vec![(5.0, 1.0), (10.0, 2.0), (97.5, 3.0)]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"p5":1.0,"p10":2.0,"p97.5":3.0}"#);
        let back: Percentiles = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
