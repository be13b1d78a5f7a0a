//! The goal Monte Carlo request of docs/model.md §1: plain data, serde, field names as in docs/model.md.
//!
//! These types only describe what the caller asked for. Nothing here is trusted: every request
//! goes through [`crate::validate`] before it reaches a backend, which turns it into a
//! [`crate::PreparedGoal`] (a month-by-month schedule) or a [`crate::ValidationError`] naming
//! the field and the bound it broke. Unknown fields are refused so that a typo is an error
//! rather than a silently ignored input.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::history::History;

/// The seed used when a request gives none: results are reproducible by default.
pub const DEFAULT_SEED: u64 = 42;
/// Paths simulated when a request gives no `options.paths`.
pub const DEFAULT_PATHS: u64 = 10_000;
/// The percentiles reported when a request gives no `options.percentiles`.
pub const DEFAULT_PERCENTILES: [f64; 7] = [5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0];
/// The success probability a goal needs when it states none.
pub const DEFAULT_SUCCESS_THRESHOLD: f64 = 0.80;

/// One goal Monte Carlo request: `{"goal", "market", "options"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalRequest {
    pub goal: Goal,
    pub market: Market,
    #[serde(default)]
    pub options: Options,
}

/// The saver's situation and what they want (docs/model.md §1, `goal.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// Savings today, W0 ≥ 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e15))]
    pub initial_wealth: f64,
    /// Paid at the start of each month while contributing.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e15))]
    pub monthly_contribution: f64,
    /// Annual step-up of the contribution (0.03 = 3% a year).
    #[serde(default)]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = -1.0))]
    pub contribution_growth: f64,
    /// Months with a contribution, from month 0 (default: the whole horizon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution_months: Option<u32>,
    /// Spending in today's money, taken at the start of each month from `withdrawal_start_month`.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e15))]
    pub monthly_withdrawal: f64,
    /// First month of withdrawals (default: the horizon, i.e. none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_start_month: Option<u32>,
    /// T, 1 … 1200 months.
    #[schemars(range(min = 1, max = 1200))]
    pub horizon_months: u32,
    /// Wealth wanted at T (0: the goal is only never to run out).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e15))]
    pub target_amount: f64,
    /// Whether `target_amount` is in today's money (inflated to T) or nominal.
    #[serde(default = "default_true")]
    pub target_real: bool,
    /// The success probability the goal needs (solvers, funding status).
    #[serde(default = "default_threshold")]
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub success_threshold: f64,
}

/// The portfolio's returns: one of `expected_return` + `volatility`, `assets` + `weights`
/// (+ `correlations`), or a `glide_path`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// μ: annual arithmetic mean of the portfolio's return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = -1.0))]
    pub expected_return: Option<f64>,
    /// σ: annual standard deviation of the portfolio's return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub volatility: Option<f64>,
    /// Asset classes, for a multi-asset portfolio or weight segments of a glide path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<Asset>>,
    /// Long-only weights over `assets`, summing to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// Correlation matrix of `assets` (identity if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlations: Option<Vec<Vec<f64>>>,
    /// Piecewise-constant allocation over time; the first segment starts at month 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glide_path: Option<Vec<GlideSegment>>,
    /// Annual inflation: a rate i (deterministic, §1), or a stochastic model of the rate
    /// (`{"kind": "ar1", …}`, docs/model.md §4.4). 0 when absent.
    #[serde(default)]
    pub inflation: Inflation,
    /// f: the portfolio's annual fee (an expense ratio or an adviser's fee), taken monthly:
    /// each month's growth G_t becomes G_t · (1 − f)^(1/12) (docs/model.md §4.6). 0 when absent.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1.0))]
    pub fee: f64,
    /// The month's return distribution (docs/model.md §4): §1's lognormal when absent.
    #[serde(default, skip_serializing_if = "ReturnModel::is_lognormal")]
    pub model: ReturnModel,
    /// How the assets are brought back to their weights (docs/model.md §4.5): `"monthly"`
    /// (the default: §1's one lognormal portfolio), `"annual"`, `"none"` or
    /// `{"kind": "band", "band": b}`; other than monthly, each asset is simulated.
    #[serde(default, skip_serializing_if = "Rebalancing::is_monthly")]
    #[schemars(with = "RebalancingSchema")]
    pub rebalancing: Rebalancing,
}

/// `market.rebalancing`: when a multi-asset portfolio's holdings, which drift with their own
/// returns, are traded back to the target weights (docs/model.md §4.5). Written as a word
/// (`"annual"`) or an object with a `kind` (`{"kind": "band", "band": 0.05}`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rebalancing {
    /// Every month, which §1's reduction to one lognormal portfolio computes exactly.
    #[default]
    Monthly,
    /// At the start of months 12, 24, …
    Annual,
    /// In any month where some asset's weight is more than `band` (absolute) from its target.
    Band {
        #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
        band: f64,
    },
    /// Never: the holdings drift; contributions buy at the target weights.
    None,
}

impl Rebalancing {
    pub fn is_monthly(&self) -> bool {
        *self == Rebalancing::Monthly
    }
}

/// What `market.rebalancing` may be written as, for its JSON schema: a word, or a rule object.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum RebalancingSchema {
    Word(RebalancingWord),
    Rule(Rebalancing),
}

/// A rule without parameters, as a word.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum RebalancingWord {
    Monthly,
    Annual,
    None,
}

/// The object form of `market.rebalancing`, read with its own errors (an unknown `kind` or
/// field is named).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RebalancingObject {
    Monthly,
    Annual,
    Band { band: f64 },
    None,
}

/// A word is a rule without parameters; an object is any rule, as for `market.inflation`.
impl<'de> Deserialize<'de> for Rebalancing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RebalancingVisitor;
        impl<'de> Visitor<'de> for RebalancingVisitor {
            type Value = Rebalancing;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"monthly\", \"annual\", \"none\" or {\"kind\": \"band\", \"band\": 0.05}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rebalancing, E> {
                match v {
                    "monthly" => Ok(Rebalancing::Monthly),
                    "annual" => Ok(Rebalancing::Annual),
                    "none" => Ok(Rebalancing::None),
                    "band" => Err(E::custom(
                        "a band rule needs its width: {\"kind\": \"band\", \"band\": 0.05}",
                    )),
                    other => Err(E::unknown_variant(other, &["monthly", "annual", "none"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rebalancing, A::Error> {
                let object =
                    RebalancingObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match object {
                    RebalancingObject::Monthly => Rebalancing::Monthly,
                    RebalancingObject::Annual => Rebalancing::Annual,
                    RebalancingObject::Band { band } => Rebalancing::Band { band },
                    RebalancingObject::None => Rebalancing::None,
                })
            }
        }
        deserializer.deserialize_any(RebalancingVisitor)
    }
}

/// `market.model`: the distribution of each month's return (docs/model.md §4.1–§4.3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReturnModel {
    /// §1's lognormal month.
    #[default]
    Lognormal,
    /// Fat tails: §1's monthly mean and standard deviation around a Student-t shock with `df`
    /// degrees of freedom (ν > 2; 5 when absent), one mixing draw a month shared by every
    /// asset; G_t = max(1 + R_t, 0).
    StudentT {
        #[serde(default = "default_df")]
        #[schemars(range(max = 1e9), extend("exclusiveMinimum" = 2.0))]
        df: f64,
    },
    /// Markov regime switching: each month is §1's lognormal with the parameters of the regime
    /// in force, and the regime follows a Markov chain with monthly `transition` probabilities.
    Regime {
        /// 1 … 8 regimes; each overrides the market's μ and σ (or its assets') that it names.
        regimes: Vec<Regime>,
        /// Monthly transition probabilities: `transition[i][j]` is P(regime j next month |
        /// regime i now); each row sums to 1.
        transition: Vec<Vec<f64>>,
        /// The regime of month 0: drawn from the chain's stationary distribution
        /// (`"stationary"`, the default) or the given index.
        #[serde(default)]
        initial: RegimeStart,
    },
    /// Bootstrap from a history (docs/model.md §4.3): each month's returns are a month of the
    /// history, drawn in blocks; the portfolio's return is `market.weights` (or a glide
    /// path's) over the history's assets, in its order.
    Bootstrap {
        /// A stored history's name, or the history itself.
        history: HistorySource,
        /// b: the length of a block (circular), or its mean length (stationary); 60 when
        /// absent, at most the history's months.
        #[serde(default = "default_block_months")]
        #[schemars(range(min = 1))]
        block_months: u32,
        /// How blocks are drawn: `"circular"` (the default) or `"stationary"`.
        #[serde(default)]
        method: BlockMethod,
    },
}

/// How a bootstrap draws its blocks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BlockMethod {
    /// Blocks of exactly b months, each from a uniform random month, wrapping at the end.
    #[default]
    Circular,
    /// Politis–Romano: each month continues the block with probability 1 − 1/b, else starts
    /// one at a uniform random month.
    Stationary,
}

/// `market.model.history`: a stored history's name, or a history inline.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum HistorySource {
    /// The name a history was stored under (`POST /v1/histories`, `sextant histories import`).
    Named(String),
    /// The history itself.
    Inline(History),
}

/// A string is a name; an object is a history, read with its own errors (an unknown field is
/// named), which an untagged enum would reduce to "no variant matched".
impl<'de> Deserialize<'de> for HistorySource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = HistorySource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stored history's name, or {\"assets\": [...], \"months\": [...]}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HistorySource, E> {
                Ok(HistorySource::Named(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HistorySource, A::Error> {
                History::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(HistorySource::Inline)
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

fn default_block_months() -> u32 {
    crate::bootstrap::DEFAULT_BLOCK_MONTHS
}

/// `market.inflation`: a deterministic annual rate (§1), or a stochastic model of the rate
/// (§4.4). Written as a number or as an object with a `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Inflation {
    /// i: the same annual rate every year, in (−1, 10].
    Rate(f64),
    /// A stochastic annual rate.
    Model(InflationModel),
}

/// A stochastic model of the annual inflation rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InflationModel {
    /// AR(1): π_{t+1} = θ + φ(π_t − θ) + σ·sqrt(1 − φ²)·ε_t monthly, φ = 2^(−1/(12h)), with
    /// ε_t correlated `correlation` with the month's market shock (docs/model.md §4.4).
    Ar1 {
        /// θ, the long-run annual rate.
        #[schemars(range(max = 1.0), extend("exclusiveMinimum" = -0.5))]
        mean: f64,
        /// σ, the stationary standard deviation of the annual rate.
        #[schemars(range(min = 0.0, max = 0.25))]
        volatility: f64,
        /// h, the half-life of a deviation from the mean, in years (1.5 when absent).
        #[serde(default = "default_half_life")]
        #[schemars(range(max = 100.0), extend("exclusiveMinimum" = 0.0))]
        half_life_years: f64,
        /// π_0, the rate of the first month (the mean when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = 1.0), extend("exclusiveMinimum" = -0.5))]
        initial: Option<f64>,
        /// ρ, the correlation of the rate's shock with the market's (0 when absent).
        #[serde(default, skip_serializing_if = "is_zero")]
        #[schemars(range(min = -1.0, max = 1.0))]
        correlation: f64,
    },
}

fn default_half_life() -> f64 {
    1.5
}

impl Default for Inflation {
    fn default() -> Self {
        Inflation::Rate(0.0)
    }
}

impl From<f64> for Inflation {
    fn from(rate: f64) -> Self {
        Inflation::Rate(rate)
    }
}

impl Inflation {
    /// The deterministic rate, or `None` under a stochastic model.
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Inflation::Rate(rate) => Some(rate),
            Inflation::Model(_) => None,
        }
    }

    /// The long-run annual rate: the rate itself, or a model's mean.
    pub fn mean(&self) -> f64 {
        match *self {
            Inflation::Rate(rate) => rate,
            Inflation::Model(InflationModel::Ar1 { mean, .. }) => mean,
        }
    }
}

/// A number is a rate; an object is a model, read with the model's own errors (an unknown
/// `kind` or field is named), which an untagged enum would reduce to "no variant matched".
impl<'de> Deserialize<'de> for Inflation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InflationVisitor;
        impl<'de> Visitor<'de> for InflationVisitor {
            type Value = Inflation;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an annual rate, or a model such as {\"kind\": \"ar1\", \"mean\": 0.025, \"volatility\": 0.015}")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Inflation, E> {
                Ok(Inflation::Rate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Inflation, E> {
                Ok(Inflation::Rate(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Inflation, E> {
                Ok(Inflation::Rate(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Inflation, A::Error> {
                InflationModel::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Inflation::Model)
            }
        }
        deserializer.deserialize_any(InflationVisitor)
    }
}

/// One regime of a `regime` market model: a name and what differs from the market. A field
/// left out keeps the market's value, so regimes that override nothing are §1's market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Regime {
    pub name: String,
    /// μ of the portfolio in this regime (a market given as `expected_return` + `volatility`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = -1.0))]
    pub expected_return: Option<f64>,
    /// σ of the portfolio in this regime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub volatility: Option<f64>,
    /// Per asset of `market.assets`, in its order: this regime's μ and σ of that asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<RegimeAsset>>,
}

/// An asset's parameters in one regime; a field left out keeps the asset's own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegimeAsset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = -1.0))]
    pub expected_return: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub volatility: Option<f64>,
}

/// The regime of month 0: `"stationary"` or a regime's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RegimeStart {
    Index(u32),
    Named(RegimeStartName),
}

/// The one named start, `"stationary"`: drawn from the chain's stationary distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegimeStartName {
    Stationary,
}

impl Default for RegimeStart {
    fn default() -> Self {
        RegimeStart::Named(RegimeStartName::Stationary)
    }
}

impl ReturnModel {
    pub fn is_lognormal(&self) -> bool {
        *self == ReturnModel::Lognormal
    }
}

fn default_df() -> f64 {
    crate::student_t::DEFAULT_DF
}

/// Whether an optional rate is its default 0 (left out when writing a document, so that a
/// document written before the field existed reads back the same).
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// An asset class of a multi-asset portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub name: String,
    pub expected_return: f64,
    pub volatility: f64,
}

/// One segment of a glide path: from `start_month` on, either the given μ and σ or the given
/// weights over `market.assets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlideSegment {
    pub start_month: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_return: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

/// How to run the simulation. Written out (stored requests, cache keys) and compared with
/// `paths` filled in, so that a body leaving it to its default and one giving the default are
/// one request, and a request read back from what it wrote equals itself.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// N, 1 … 10,000,000 (default 10,000). The `sobol` sampler rounds it up to R × 2^m and
    /// `antithetic` to an even count; the result reports the paths used. With `precision`,
    /// the first round's paths (default 1,024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub paths: Option<u64>,
    /// Same seed, same result.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Which percentiles to report, each in [0, 100].
    #[serde(default = "default_percentiles")]
    #[schemars(length(max = 101))]
    pub percentiles: Vec<f64>,
    /// How the paths' random numbers are drawn (docs/model.md §6): `philox` (the default),
    /// `antithetic` or `sobol`.
    #[serde(default, skip_serializing_if = "Sampler::is_philox")]
    pub sampler: Sampler,
    /// R, the `sobol` sampler's independent scrambles, 2 … 1,024 (default 16): its standard
    /// errors come from their spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 1024))]
    pub replicates: Option<u32>,
    /// A target standard error instead of a number of paths: the engine runs rounds that
    /// double the paths until it is met or `max_paths` is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// With `precision`, the most paths a round may use (default 65,536: its budget, twice that × the horizon, stays in the interactive lane for 30 years).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_paths: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            paths: None,
            seed: DEFAULT_SEED,
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            sampler: Sampler::Philox,
            replicates: None,
            precision: None,
            max_paths: None,
        }
    }
}

impl PartialEq for Options {
    fn eq(&self, other: &Self) -> bool {
        // Named in full so that a new field cannot be left out of the comparison.
        let Options {
            paths: _,
            seed,
            percentiles,
            sampler,
            replicates,
            precision,
            max_paths,
        } = self;
        self.paths() == other.paths()
            && *seed == other.seed
            && *percentiles == other.percentiles
            && *sampler == other.sampler
            && *replicates == other.replicates
            && *precision == other.precision
            && *max_paths == other.max_paths
    }
}

impl Serialize for Options {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Options", 7)?;
        out.serialize_field("paths", &self.paths())?;
        out.serialize_field("seed", &self.seed)?;
        out.serialize_field("percentiles", &self.percentiles)?;
        if !self.sampler.is_philox() {
            out.serialize_field("sampler", &self.sampler)?;
        }
        if let Some(replicates) = self.replicates {
            out.serialize_field("replicates", &replicates)?;
        }
        if let Some(precision) = &self.precision {
            out.serialize_field("precision", precision)?;
        }
        if let Some(max_paths) = self.max_paths {
            out.serialize_field("max_paths", &max_paths)?;
        }
        out.end()
    }
}

impl Options {
    /// The paths asked for, or the default: [`DEFAULT_PATHS`], or with a precision the
    /// first round's [`FIRST_ROUND_PATHS`].
    pub fn paths(&self) -> u64 {
        self.paths.unwrap_or(if self.precision.is_some() {
            FIRST_ROUND_PATHS
        } else {
            DEFAULT_PATHS
        })
    }

    /// The most paths a run of these options may simulate, for the budget: the paths in the
    /// sampler's form, or under a precision target every round's up to `max_paths` (each
    /// round at least doubles, so together under twice the last).
    pub fn most_paths(&self) -> u64 {
        let paths = self.paths();
        let rounded =
            crate::sampler::PathSampler::of_options(self, paths).map_or(paths, |(_, used)| used);
        match self.precision {
            Some(_) => {
                let cap = self.max_paths.unwrap_or(DEFAULT_MAX_PATHS);
                rounded.max(cap).saturating_mul(2)
            }
            None => rounded,
        }
    }
}

/// Paths of a precision target's first round when the request names none.
pub const FIRST_ROUND_PATHS: u64 = 1024;
/// The most paths a precision target's rounds may reach when `options.max_paths` is absent.
pub const DEFAULT_MAX_PATHS: u64 = 1 << 16;
/// Replicates of the `sobol` sampler when `options.replicates` is absent.
pub const DEFAULT_REPLICATES: u32 = 16;

/// `options.sampler`: where each path's normals come from (docs/model.md §6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// Philox 4×32-10 and Box–Muller, path by path (§1's streams).
    #[default]
    Philox,
    /// Paths in pairs: the second takes the first's market normals negated, its other draws
    /// the same.
    Antithetic,
    /// Randomized quasi-Monte Carlo: scrambled Sobol' points ordered by a Brownian bridge, in
    /// R independent replicates.
    Sobol,
}

impl Sampler {
    pub fn is_philox(&self) -> bool {
        *self == Sampler::Philox
    }

    /// The sampler's name, as requests write it.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Philox => "philox",
            Sampler::Antithetic => "antithetic",
            Sampler::Sobol => "sobol",
        }
    }
}

/// `options.precision`: the standard error wanted of an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Precision {
    /// The target standard error of the success probability, in (0, 0.5] (0.005: ±0.5
    /// percentage points).
    #[schemars(range(max = 0.5), extend("exclusiveMinimum" = 0.0))]
    pub success_probability: f64,
}

fn default_true() -> bool {
    true
}
fn default_threshold() -> f64 {
    DEFAULT_SUCCESS_THRESHOLD
}
fn default_seed() -> u64 {
    DEFAULT_SEED
}
fn default_percentiles() -> Vec<f64> {
    DEFAULT_PERCENTILES.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(body: serde_json::Value) -> Options {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn options_left_to_their_default_paths_equal_options_giving_them() {
        assert_eq!(
            options(serde_json::json!({})),
            options(serde_json::json!({"paths": 10_000}))
        );
        assert_ne!(
            options(serde_json::json!({})),
            options(serde_json::json!({"paths": 10_001}))
        );
        let precise = serde_json::json!({"precision": {"success_probability": 0.01}});
        let first_round =
            serde_json::json!({"paths": 1_024, "precision": {"success_probability": 0.01}});
        assert_eq!(options(precise.clone()), options(first_round));
        assert_ne!(
            options(precise),
            options(serde_json::json!({"paths": 1_024}))
        );
    }

    #[test]
    fn options_read_back_from_what_they_wrote_equal_themselves() {
        for body in [
            serde_json::json!({}),
            serde_json::json!({"seed": 7, "percentiles": [50.0]}),
            serde_json::json!({"sampler": "sobol", "replicates": 8, "paths": 4_096}),
            serde_json::json!({"sampler": "antithetic", "precision": {"success_probability": 0.005},
                               "max_paths": 32_768}),
        ] {
            let written = options(body);
            let text = serde_json::to_value(&written).unwrap();
            assert!(text["paths"].is_u64(), "paths are written out: {text}");
            assert_eq!(options(text), written);
        }
    }
}
