//! The samplers of docs/model.md §6 as a goal runs them: which paths a request's `options`
//! turn into ([`PathSampler`], with the paths rounded to the sampler's form), where each
//! path's market normals come from (Philox, its antithetic partner's negated, or a scrambled
//! Sobol' point through the Brownian bridge: [`SobolPaths`]), and the standard error each
//! sampler's own spread gives ([`Spread`]). The integer parts (Philox, the Sobol' points and
//! their scramble) live in [`crate::philox`] and [`crate::sobol`]; this module only puts them
//! together per path.
//!
//! - `philox`: path p draws its own numbers, as §1 has always; the standard error is the
//!   binomial one, √(p(1 − p)/N).
//! - `antithetic`: paths 2k and 2k + 1 draw every number of path k's streams, and path 2k + 1
//!   negates the market normals (the other streams' draws — regime uniforms, the Student-t
//!   mixing variable, inflation's own normals — are shared). The pairs are independent, so the
//!   standard error is that of the N/2 pair means.
//! - `sobol`: path p is point p mod 2^m of replicate ⌊p / 2^m⌋ (R replicates of 2^m points,
//!   each its own scramble); month t's normal is the bridge's t-th from Φ⁻¹ of the scrambled
//!   coordinates. The other streams stay Philox at path p. The standard error comes from the
//!   spread of the R replicate estimates.

use crate::bridge::BrownianBridge;
use crate::philox;
use crate::request::{Options, Sampler, DEFAULT_MAX_PATHS, DEFAULT_REPLICATES};
use crate::sobol;
use crate::validate::{ValidationError, MAX_PATHS};

/// The most replicates a `sobol` request may ask for.
pub const MAX_REPLICATES: u32 = 1024;

/// How a prepared goal's paths draw their market normals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSampler {
    Philox,
    /// Paths in pairs (an even number of them).
    Antithetic,
    /// `replicates` × 2^`points_log2` paths.
    Sobol {
        replicates: u32,
        points_log2: u32,
    },
}

impl PathSampler {
    /// The sampler of `options` for `paths` paths, and the paths it will use: `sobol` rounds
    /// up to R × 2^m, `antithetic` to an even count. Errors name the field.
    pub fn of_options(
        options: &Options,
        paths: u64,
    ) -> Result<(PathSampler, u64), ValidationError> {
        if options.replicates.is_some() && options.sampler != Sampler::Sobol {
            return Err(ValidationError::new(
                "options.replicates",
                format!(
                    "only the sobol sampler has replicates; the {} sampler takes none",
                    options.sampler.name()
                ),
            ));
        }
        let sampler = match options.sampler {
            Sampler::Philox => PathSampler::Philox,
            Sampler::Antithetic => PathSampler::Antithetic,
            Sampler::Sobol => {
                let replicates = options.replicates.unwrap_or(DEFAULT_REPLICATES);
                if !(2..=MAX_REPLICATES).contains(&replicates) {
                    return Err(ValidationError::new(
                        "options.replicates",
                        format!("must be between 2 and {MAX_REPLICATES}, got {replicates}"),
                    ));
                }
                PathSampler::Sobol {
                    replicates,
                    points_log2: 0,
                }
            }
        };
        let (sampler, used) = sampler.with_paths(paths);
        if used > MAX_PATHS {
            return Err(ValidationError::new(
                "options.paths",
                format!(
                    "the {} sampler rounds {paths} paths up to {used}, above the most a goal may use, {MAX_PATHS}",
                    options.sampler.name()
                ),
            ));
        }
        Ok((sampler, used))
    }

    /// This sampler with `paths` paths (a precision target's next round): the paths rounded
    /// as [`PathSampler::of_options`] rounds them.
    pub fn with_paths(self, paths: u64) -> (PathSampler, u64) {
        match self {
            PathSampler::Philox => (self, paths),
            PathSampler::Antithetic => (self, paths.next_multiple_of(2)),
            PathSampler::Sobol { replicates, .. } => {
                let points = paths.div_ceil(u64::from(replicates)).next_power_of_two();
                let sampler = PathSampler::Sobol {
                    replicates,
                    points_log2: points.trailing_zeros(),
                };
                (sampler, u64::from(replicates) * points)
            }
        }
    }

    /// The sampler's name, as requests write it.
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    pub fn kind(self) -> Sampler {
        match self {
            PathSampler::Philox => Sampler::Philox,
            PathSampler::Antithetic => Sampler::Antithetic,
            PathSampler::Sobol { .. } => Sampler::Sobol,
        }
    }

    /// Replicates of the `sobol` sampler; `None` for the others.
    pub fn replicates(self) -> Option<u32> {
        match self {
            PathSampler::Sobol { replicates, .. } => Some(replicates),
            _ => None,
        }
    }

    /// The counts the standard errors are taken from, before any path is reduced.
    pub fn empty_spread(self) -> Spread {
        match self {
            PathSampler::Philox => Spread::Paths,
            PathSampler::Antithetic => Spread::Pairs {
                successes: [0; 3],
                depleted: [0; 3],
            },
            PathSampler::Sobol { replicates, .. } => {
                Spread::Replicates(vec![ReplicateCounts::default(); replicates as usize])
            }
        }
    }
}

/// A precision target on a prepared goal: the standard error of success wanted, and the most
/// paths a round may use (docs/model.md §6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionTarget {
    pub success_probability: f64,
    pub max_paths: u64,
}

impl PrecisionTarget {
    /// `options.precision` and `options.max_paths` checked; `None` without a precision.
    pub fn of_options(options: &Options) -> Result<Option<PrecisionTarget>, ValidationError> {
        let Some(precision) = options.precision else {
            if options.max_paths.is_some() {
                return Err(ValidationError::new(
                    "options.max_paths",
                    "bounds the rounds of a precision target: give options.precision with it",
                ));
            }
            return Ok(None);
        };
        let se = precision.success_probability;
        if !(se.is_finite() && se > 0.0 && se <= 0.5) {
            return Err(ValidationError::new(
                "options.precision.success_probability",
                format!("must be in (0, 0.5], got {se}"),
            ));
        }
        let max_paths = options.max_paths.unwrap_or(DEFAULT_MAX_PATHS);
        if !(1..=MAX_PATHS).contains(&max_paths) {
            return Err(ValidationError::new(
                "options.max_paths",
                format!("must be between 1 and {MAX_PATHS}, got {max_paths}"),
            ));
        }
        if options.paths() > max_paths {
            return Err(ValidationError::new(
                "options.paths",
                format!(
                    "the first round's paths must be at most options.max_paths ({max_paths}), got {}",
                    options.paths()
                ),
            ));
        }
        Ok(Some(PrecisionTarget {
            success_probability: se,
            max_paths,
        }))
    }

    /// Paths of the round after one of `paths` paths that reached standard error `se`: at
    /// least double, and as many doublings as the error's square-root law says the target
    /// needs; at most `max_paths` (after the sampler's rounding, the largest of its forms
    /// within it). `None` when no more paths are allowed.
    pub fn next_paths(&self, sampler: PathSampler, paths: u64, se: f64) -> Option<u64> {
        let mut next = paths.saturating_mul(2);
        let predicted = paths as f64 * (se / self.success_probability).powi(2);
        while (next as f64) < predicted && next < self.max_paths {
            next = next.saturating_mul(2);
        }
        let mut next = next.min(self.max_paths);
        // The sampler's rounding may take it over the cap: halve the request until it fits.
        loop {
            let (_, rounded) = sampler.with_paths(next);
            if rounded <= self.max_paths {
                return (rounded > paths).then_some(rounded);
            }
            if next <= 1 {
                return None;
            }
            next /= 2;
        }
    }
}

/// Refuse a precision target where an operation compares runs at one number of paths (a
/// solver's search, what-if variants, sensitivity moves, sweep points: common random numbers
/// need every run on the same paths), naming the field rather than ignoring it.
pub fn one_number_of_paths(options: &Options, operation: &str) -> Result<(), ValidationError> {
    let field = if options.precision.is_some() {
        "options.precision"
    } else if options.max_paths.is_some() {
        "options.max_paths"
    } else {
        return Ok(());
    };
    Err(ValidationError::new(
        field,
        format!("{operation} compares runs on the same paths (common random numbers): give options.paths instead; a precision target is for simulations"),
    ))
}

/// One `sobol` replicate's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicateCounts {
    pub paths: u64,
    pub successes: u64,
    pub depleted: u64,
}

/// What a goal's standard errors are taken from, by sampler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Spread {
    /// Independent paths: the binomial standard error.
    #[default]
    Paths,
    /// Antithetic pairs by how many of their two paths succeeded (0, 1, 2), and likewise
    /// were depleted.
    Pairs {
        successes: [u64; 3],
        depleted: [u64; 3],
    },
    /// Each `sobol` replicate's counts.
    Replicates(Vec<ReplicateCounts>),
}

impl Spread {
    /// Fold one `sobol` path's outcome into its replicate's counts (antithetic pairs go
    /// through [`Spread::add_pair`]; independent paths need no more than the totals).
    pub fn add_path(&mut self, replicate: usize, success: bool, depleted: bool) {
        if let Spread::Replicates(counts) = self {
            let c = &mut counts[replicate];
            c.paths += 1;
            c.successes += u64::from(success);
            c.depleted += u64::from(depleted);
        }
    }

    /// Fold an antithetic pair's outcomes in.
    pub fn add_pair(&mut self, success: [bool; 2], depleted: [bool; 2]) {
        if let Spread::Pairs {
            successes,
            depleted: d,
        } = self
        {
            successes[usize::from(success[0]) + usize::from(success[1])] += 1;
            d[usize::from(depleted[0]) + usize::from(depleted[1])] += 1;
        }
    }

    /// Another part of the same goal's counts (integers only: any order gives the same).
    pub fn merge(&mut self, other: &Spread) {
        match (self, other) {
            (
                Spread::Pairs {
                    successes,
                    depleted,
                },
                Spread::Pairs {
                    successes: s,
                    depleted: d,
                },
            ) => {
                for k in 0..3 {
                    successes[k] += s[k];
                    depleted[k] += d[k];
                }
            }
            (Spread::Replicates(mine), Spread::Replicates(theirs)) => {
                for (a, b) in mine.iter_mut().zip(theirs) {
                    a.paths += b.paths;
                    a.successes += b.successes;
                    a.depleted += b.depleted;
                }
            }
            _ => {}
        }
    }

    /// The standard errors of (success probability, depletion probability) over `paths`
    /// paths with `successes` and `depleted` of them.
    pub fn standard_errors(&self, paths: u64, successes: u64, depleted: u64) -> (f64, f64) {
        match self {
            Spread::Paths => (binomial_se(successes, paths), binomial_se(depleted, paths)),
            Spread::Pairs {
                successes,
                depleted,
            } => (pair_se(successes), pair_se(depleted)),
            Spread::Replicates(counts) => (
                replicate_se(counts.iter().map(|c| (c.successes, c.paths))),
                replicate_se(counts.iter().map(|c| (c.depleted, c.paths))),
            ),
        }
    }
}

/// The standard error of success under `sampler` from each path's outcome, in path order (what
/// the kernels' reductions count, for a caller that holds every path: the re-score's affine
/// pass).
pub fn success_standard_error(sampler: PathSampler, success: &[bool]) -> f64 {
    let mut spread = sampler.empty_spread();
    match sampler {
        PathSampler::Philox => {}
        PathSampler::Antithetic => {
            for pair in success.chunks_exact(2) {
                spread.add_pair([pair[0], pair[1]], [false; 2]);
            }
        }
        PathSampler::Sobol { points_log2, .. } => {
            for (path, &s) in success.iter().enumerate() {
                let replicate = SobolPaths::replicate_of(points_log2, path as u32);
                spread.add_path(replicate as usize, s, false);
            }
        }
    }
    let successes = success.iter().filter(|&&s| s).count() as u64;
    spread.standard_errors(success.len() as u64, successes, 0).0
}

/// √(p(1 − p)/n).
fn binomial_se(hits: u64, n: u64) -> f64 {
    let p = hits as f64 / n as f64;
    (p * (1.0 - p) / n as f64).sqrt()
}

/// The standard error of the mean of the pairs' means (0, ½ or 1, `classes[k]` of each).
fn pair_se(classes: &[u64; 3]) -> f64 {
    let n = classes.iter().sum::<u64>() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (half, one) = (classes[1] as f64, classes[2] as f64);
    let mean = (0.5 * half + one) / n;
    let squares = 0.25 * half + one;
    let variance = ((squares - n * mean * mean) / (n - 1.0)).max(0.0);
    (variance / n).sqrt()
}

/// The standard error of the mean of R replicate estimates hits/paths: their sample standard
/// deviation over √R.
fn replicate_se(replicates: impl Iterator<Item = (u64, u64)>) -> f64 {
    let estimates: Vec<f64> = replicates
        .map(|(hits, paths)| hits as f64 / paths as f64)
        .collect();
    let r = estimates.len() as f64;
    if r < 2.0 {
        return 0.0;
    }
    let mean = estimates.iter().sum::<f64>() / r;
    let variance = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (r - 1.0);
    (variance / r).sqrt()
}

/// The `sobol` sampler's normals for a goal's paths: the bridge over its horizon, and the
/// scramble seeds of the replicate last asked for (the lanes of a group almost always share
/// one).
pub struct SobolPaths {
    bridge: BrownianBridge,
    key: [u32; 2],
    points_log2: u32,
    replicate: Option<u32>,
    seeds: Vec<u32>,
    z: Vec<f64>,
    out: Vec<f64>,
}

impl SobolPaths {
    pub fn new(seed: u64, horizon: u32, points_log2: u32) -> SobolPaths {
        let months = horizon as usize;
        SobolPaths {
            bridge: BrownianBridge::new(months),
            key: philox::key_of_seed(seed),
            points_log2,
            replicate: None,
            seeds: Vec::new(),
            z: vec![0.0; months],
            out: vec![0.0; months],
        }
    }

    /// Path `path`'s replicate.
    pub fn replicate_of(points_log2: u32, path: u32) -> u32 {
        path >> points_log2
    }

    /// Path `path`'s month normals, one a month, into `normals` (f32, as every kernel's
    /// normals): point path mod 2^m of replicate ⌊path / 2^m⌋.
    pub fn path_normals(&mut self, path: u32, normals: &mut [f32]) {
        let replicate = Self::replicate_of(self.points_log2, path);
        if self.replicate != Some(replicate) {
            self.seeds = sobol::scramble_seeds(self.key, replicate, self.z.len());
            self.replicate = Some(replicate);
        }
        let index = path & ((1u32 << self.points_log2) - 1);
        sobol::path_normals(&self.bridge, &self.seeds, index, &mut self.z, &mut self.out);
        for (n, &x) in normals.iter_mut().zip(&self.out) {
            *n = x as f32;
        }
    }
}

/// Path `path`'s partner-free stream index under antithetic sampling (both paths of a pair
/// draw path k's numbers), and whether its market normals are negated.
#[inline(always)]
pub fn antithetic_source(path: u32) -> (u32, bool) {
    (path >> 1, path & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Precision;

    fn options(sampler: Sampler, replicates: Option<u32>) -> Options {
        Options {
            sampler,
            replicates,
            ..Options::default()
        }
    }

    #[test]
    fn each_sampler_rounds_the_paths_to_its_form() {
        let philox = options(Sampler::Philox, None);
        assert_eq!(
            PathSampler::of_options(&philox, 1001).unwrap(),
            (PathSampler::Philox, 1001)
        );
        let anti = options(Sampler::Antithetic, None);
        assert_eq!(PathSampler::of_options(&anti, 1001).unwrap().1, 1002);
        let sobol = options(Sampler::Sobol, None);
        // 10,000 over 16 replicates: 625 → 1,024 points each.
        assert_eq!(
            PathSampler::of_options(&sobol, 10_000).unwrap(),
            (
                PathSampler::Sobol {
                    replicates: 16,
                    points_log2: 10
                },
                16_384
            )
        );
        let few = options(Sampler::Sobol, Some(4));
        assert_eq!(PathSampler::of_options(&few, 1).unwrap().1, 4);
    }

    #[test]
    fn bad_sampler_options_name_their_field() {
        let err = PathSampler::of_options(&options(Sampler::Philox, Some(8)), 100).unwrap_err();
        assert_eq!(err.field, "options.replicates");
        let err = PathSampler::of_options(&options(Sampler::Sobol, Some(1)), 100).unwrap_err();
        assert_eq!(err.field, "options.replicates");
        assert!(err.problem.contains("between 2 and 1024"), "{err}");
        let err =
            PathSampler::of_options(&options(Sampler::Sobol, Some(1000)), MAX_PATHS).unwrap_err();
        assert_eq!(err.field, "options.paths");
        let mut o = Options {
            max_paths: Some(5000),
            ..Options::default()
        };
        assert_eq!(
            PrecisionTarget::of_options(&o).unwrap_err().field,
            "options.max_paths"
        );
        o.precision = Some(Precision {
            success_probability: 0.0,
        });
        assert_eq!(
            PrecisionTarget::of_options(&o).unwrap_err().field,
            "options.precision.success_probability"
        );
        o.precision = Some(Precision {
            success_probability: 0.01,
        });
        o.paths = Some(6000);
        assert_eq!(
            PrecisionTarget::of_options(&o).unwrap_err().field,
            "options.paths"
        );
    }

    #[test]
    fn the_next_round_doubles_at_least_and_stops_at_the_cap() {
        let target = PrecisionTarget {
            success_probability: 0.005,
            max_paths: 1 << 20,
        };
        // Near the target: one doubling.
        assert_eq!(
            target.next_paths(PathSampler::Philox, 1000, 0.006),
            Some(2000)
        );
        // Four times the target: 16× the paths, 2^4.
        assert_eq!(
            target.next_paths(PathSampler::Philox, 1000, 0.02),
            Some(16_000)
        );
        // The cap.
        assert_eq!(
            target.next_paths(PathSampler::Philox, 1 << 19, 0.5),
            Some(1 << 20)
        );
        assert_eq!(target.next_paths(PathSampler::Philox, 1 << 20, 0.5), None);
        let sobol = PathSampler::Sobol {
            replicates: 16,
            points_log2: 6,
        };
        assert_eq!(target.next_paths(sobol, 1024, 0.006), Some(2048));
        // 3 replicates never reach 2^20 exactly: the largest form within the cap.
        let three = PathSampler::Sobol {
            replicates: 3,
            points_log2: 10,
        };
        assert_eq!(target.next_paths(three, 3 << 17, 0.5), Some(3 << 18));
        assert_eq!(target.next_paths(three, 3 << 18, 0.5), None);
    }

    /// The spreads' standard errors against their closed forms.
    #[test]
    fn standard_errors_follow_their_estimators() {
        let (se, _) = Spread::Paths.standard_errors(100, 50, 0);
        assert!((se - 0.05).abs() < 1e-15);
        // Pairs: 10 with both, 10 with one, 10 with none: means 1, ½, 0; mean ½, sample
        // variance (10·¼ + 10·0 + 10·¼)/29.
        let pairs = Spread::Pairs {
            successes: [10, 10, 10],
            depleted: [30, 0, 0],
        };
        let (se, depleted) = pairs.standard_errors(60, 30, 0);
        assert!((se - (5.0 / 29.0 / 30.0f64).sqrt()).abs() < 1e-15);
        assert_eq!(depleted, 0.0);
        // Replicates 0.25 and 0.75 of 4 paths: sd √(2·¼²) = 0.3536, over √2.
        let reps = Spread::Replicates(vec![
            ReplicateCounts {
                paths: 4,
                successes: 1,
                depleted: 0,
            },
            ReplicateCounts {
                paths: 4,
                successes: 3,
                depleted: 0,
            },
        ]);
        let (se, _) = reps.standard_errors(8, 4, 0);
        assert!((se - 0.25).abs() < 1e-15, "{se}");
    }
}
