//! Stochastic inflation (docs/model.md §4.4): the AR(1) annual rate, its Philox stream, and
//! the price index that indexes withdrawals and real targets and deflates the real fan chart.
//!
//! The model: π_0 = `initial`; for each month t, ε_t = ρ·Z_t + sqrt(1 − ρ²)·Z'_t, where Z_t is
//! the month's market shock (§1.4's stream) and Z'_t a normal of this model's own stream, and
//! π_{t+1} = θ + φ(π_t − θ) + σ_π·sqrt(1 − φ²)·ε_t with φ = 2^(−1/(12h)), so σ_π is the
//! stationary standard deviation and h the half-life of a deviation, in years. The price index
//! is I_0 = 1, I_{t+1} = I_t·(1 + π_t)^(1/12).
//!
//! How every backend computes it, identically:
//! - Z'_t is word-pair Box–Muller of counter (path, ⌊t/4⌋, [`INFLATION_STREAM`], 0), laid
//!   out as the shocks' (month t takes normal t mod 4 of its block).
//! - The constants θ, φ, σ_π·sqrt(1 − φ²), π_0, ρ and sqrt(1 − ρ²) are rounded to f32 (like
//!   §1.2's volatility) and the rate is carried in f64 from them.
//! - The index is not advanced month by month, which would cost a `pow` a month: the kernels
//!   multiply P ← P·max(1 + π_t, 0.5) and, at each year end and at the horizon, take
//!   I = I_year·F(P) with F(P) = exp(ln(P)/12) in f32 by `normal.rs`'s polynomials, then
//!   start the next year from I_year = I, P = 1. The
//!   product of the year's twelfth roots is the twelfth root of the product, so this is the
//!   index of the definition up to f32 rounding of F (tested within 1e-6 a year).
//! - A month's (1 + π_t) below 0.5 counts as 0.5 (−50% a year; with the bounds of
//!   `validate.rs` a tail of many standard deviations), so the index stays positive.
//!
//! The index at month 12⌊t/12⌋ scales month t's withdrawal (§1 indexes withdrawals in whole
//! years), the index at the horizon scales a real target, and the real fan chart reports
//! W_s / I_s.

use crate::normal;
use crate::philox;

/// Philox word c2 of the inflation normals: counter (path, ⌊t/4⌋, 4, 0).
pub const INFLATION_STREAM: u32 = 4;
/// Largest stationary standard deviation of the annual rate accepted.
pub const MAX_VOLATILITY: f64 = 0.25;
/// Largest half-life accepted, in years.
pub const MAX_HALF_LIFE_YEARS: f64 = 100.0;
/// Bounds of θ and π_0: annual rates in (`MIN_RATE`, `MAX_RATE`].
pub const MIN_RATE: f64 = -0.5;
pub const MAX_RATE: f64 = 1.0;

/// The AR(1) model's constants as the kernels use them (f32, see the module's top).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ar1Inflation {
    /// θ, the long-run annual rate.
    pub mean: f32,
    /// φ = 2^(−1/(12h)).
    pub persistence: f32,
    /// σ_π·sqrt(1 − φ²): the scale of a month's innovation.
    pub innovation: f32,
    /// π_0.
    pub initial: f32,
    /// ρ: the weight of the market shock Z_t in ε_t.
    pub shock_weight: f32,
    /// sqrt(1 − ρ²): the weight of the model's own normal Z'_t.
    pub own_weight: f32,
}

impl Ar1Inflation {
    /// The kernels' constants of θ, σ_π, h (years), π_0 and ρ, already validated.
    pub fn new(mean: f64, volatility: f64, half_life_years: f64, initial: f64, rho: f64) -> Self {
        let persistence = 2f64.powf(-1.0 / (12.0 * half_life_years));
        Ar1Inflation {
            mean: mean as f32,
            persistence: persistence as f32,
            innovation: (volatility * (1.0 - persistence * persistence).sqrt()) as f32,
            initial: initial as f32,
            shock_weight: rho as f32,
            own_weight: (1.0 - rho * rho).max(0.0).sqrt() as f32,
        }
    }

    /// π_{t+1} from π_t, the month's market shock `z` and its own normal `z_own`.
    #[inline(always)]
    pub fn next_rate(&self, rate: f64, z: f32, z_own: f32) -> f64 {
        let shock = f64::from(self.shock_weight) * f64::from(z)
            + f64::from(self.own_weight) * f64::from(z_own);
        let mean = f64::from(self.mean);
        mean + f64::from(self.persistence) * (rate - mean) + f64::from(self.innovation) * shock
    }
}

/// Least factor (1 + π_t) a month contributes to the index: a rate below −50% a year counts
/// as −50%, so the index stays positive and the real wealth W / I finite.
pub const MIN_MONTH_FACTOR: f64 = 0.5;

/// A month's factor of the year's product: max(1 + π_t, [`MIN_MONTH_FACTOR`]).
#[inline(always)]
pub fn month_factor(rate: f64) -> f64 {
    (1.0 + rate).max(MIN_MONTH_FACTOR)
}

/// F(P) = P^(1/12) of a product of up to twelve months' factors (at least 0.5¹², a normal f32),
/// in f32 (see the module's top).
#[inline(always)]
pub fn index_factor(product: f64) -> f64 {
    let p = product.min(f64::from(f32::MAX)) as f32;
    f64::from(normal::exp(normal::ln(p) / 12.0))
}

/// Z'_t, the model's own normal of `month` on `path` (the definition every kernel matches).
pub fn own_normal_at(seed: u64, path: u32, month: u32) -> f32 {
    let words = philox::philox4x32_10(
        [path, month / 4, INFLATION_STREAM, 0],
        philox::key_of_seed(seed),
    );
    normal::normals_of_block(words)[(month % 4) as usize]
}

/// Each lane's rate and index as a lane group steps through the months (the CPU kernels').
#[derive(Debug, Clone, Copy)]
pub struct IndexLanes<const L: usize> {
    /// π_t.
    pub rate: [f64; L],
    /// The product of max(1 + π) since the last year end.
    pub product: [f64; L],
    /// I at the last year end: the index that scales this year's withdrawals.
    pub year_index: [f64; L],
    /// I at the last year end or the horizon.
    pub index: [f64; L],
}

impl<const L: usize> IndexLanes<L> {
    pub fn new(model: &Ar1Inflation) -> Self {
        IndexLanes {
            rate: [f64::from(model.initial); L],
            product: [1.0; L],
            year_index: [1.0; L],
            index: [1.0; L],
        }
    }

    /// An index that a history's inflation drives (docs/model.md §4.3): 1 at month 0.
    pub fn unit() -> Self {
        IndexLanes {
            rate: [0.0; L],
            product: [1.0; L],
            year_index: [1.0; L],
            index: [1.0; L],
        }
    }

    /// A month of a history's inflation: I ← I·(1 + π) in each lane (`factors` = 1 + π), the
    /// next year's withdrawals' index at a year end.
    #[inline(always)]
    pub fn advance_by(&mut self, factors: &[f64; L], year_end: bool) {
        for (index, factor) in self.index.iter_mut().zip(factors) {
            *index *= factor;
        }
        if year_end {
            self.year_index = self.index;
        }
    }

    /// The month's step: fold (1 + π_t) into the product, then π_{t+1}.
    #[inline(always)]
    pub fn advance(&mut self, model: &Ar1Inflation, z: &[f32; L], z_own: &[f32; L]) {
        for l in 0..L {
            self.product[l] *= month_factor(self.rate[l]);
            self.rate[l] = model.next_rate(self.rate[l], z[l], z_own[l]);
        }
    }

    /// I at the end of the month stepped last, without closing it: I at the last year end
    /// times F of the year's product so far, which is what [`IndexLanes::close`] would make
    /// it (a plan's path that ends mid-year reads its index so); right after a year end (the
    /// product restarted at 1) that year end's I itself.
    #[inline(always)]
    pub fn between_closes(&self) -> [f64; L] {
        std::array::from_fn(|l| {
            let (year, product) = (self.year_index[l], self.product[l]);
            if product == 1.0 {
                year
            } else {
                year * index_factor(product)
            }
        })
    }

    /// I at the end of the month just stepped (the kernels take it at a year end and at the
    /// horizon); at a year end the next year starts from it.
    #[inline(always)]
    pub fn close(&mut self, year_end: bool) {
        for l in 0..L {
            self.index[l] = self.year_index[l] * index_factor(self.product[l]);
        }
        if year_end {
            self.year_index = self.index;
            self.product = [1.0; L];
        }
    }
}

/// One path's index as the kernels compute it: I_s at every month end s = 0 … `horizon` (the
/// kernels take it at year ends and the horizon, where these are theirs), and the year-start
/// indices I_{12y}. The definition the kernels are tested against.
pub fn kernel_index_path(
    model: &Ar1Inflation,
    seed: u64,
    path: u32,
    horizon: u32,
) -> (Vec<f64>, Vec<f64>) {
    let mut lanes = IndexLanes::<1>::new(model);
    let mut at_month = vec![f64::NAN; horizon as usize + 1];
    at_month[0] = 1.0;
    let mut year_start = vec![1.0];
    for t in 0..horizon {
        let z = normal::normal_at(seed, path, t);
        let z_own = own_normal_at(seed, path, t);
        lanes.advance(model, &[z], &[z_own]);
        let month = t + 1;
        let year_end = month.is_multiple_of(12);
        lanes.close(year_end);
        at_month[month as usize] = lanes.index[0];
        if year_end {
            year_start.push(lanes.index[0]);
        }
    }
    (at_month, year_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(volatility: f64, rho: f64) -> Ar1Inflation {
        Ar1Inflation::new(0.03, volatility, 1.5, 0.05, rho)
    }

    #[test]
    fn the_yearly_index_is_the_monthly_definition_within_f32_rounding() {
        // I_{t+1} = I_t·(1 + π_t)^(1/12) month by month in f64, against the kernels' yearly
        // twelfth root of the product: within 1e-6 relative per year, over 30 years.
        let m = model(0.02, 0.3);
        for path in 0..50 {
            let (kernel, _) = kernel_index_path(&m, 7, path, 360);
            let mut rate = f64::from(m.initial);
            let mut index = 1.0f64;
            for t in 0..360u32 {
                index *= (1.0 + rate).powf(1.0 / 12.0);
                let (z, z_own) = (normal::normal_at(7, path, t), own_normal_at(7, path, t));
                rate = m.next_rate(rate, z, z_own);
                let month = t + 1;
                if month.is_multiple_of(12) {
                    let years = f64::from(month / 12);
                    let error = (kernel[month as usize] / index - 1.0).abs();
                    assert!(error < 1e-6 * years, "path {path} month {month}: {error}");
                }
            }
        }
    }

    #[test]
    fn zero_volatility_is_deterministic_inflation() {
        // σ_π = 0 and π_0 = θ: every year's index is (1 + θ) to the years, within f32's
        // rounding of the twelfth root (1e-7 a year), on every path.
        let m = Ar1Inflation::new(0.03, 0.0, 1.5, 0.03, 0.5);
        for path in 0..8 {
            let (_, years) = kernel_index_path(&m, 1, path, 240);
            for (y, &index) in years.iter().enumerate() {
                let exact = 1.03f64.powi(y as i32);
                assert!(
                    (index / exact - 1.0).abs() < 2e-7 * (y as f64 + 1.0),
                    "{y}: {index}"
                );
            }
        }
    }

    /// The rates π_t of many paths at month `t`.
    fn rates_at(m: &Ar1Inflation, paths: u32, t: u32) -> Vec<(f64, f64)> {
        (0..paths)
            .map(|path| {
                let mut rate = f64::from(m.initial);
                let mut at = 0.0;
                // π_t, then twelve steps to π_{t+12}.
                for s in 0..t + 12 {
                    if s == t {
                        at = rate;
                    }
                    let (z, z_own) = (normal::normal_at(3, path, s), own_normal_at(3, path, s));
                    rate = m.next_rate(rate, z, z_own);
                }
                (at, rate)
            })
            .collect()
    }

    #[test]
    fn the_rate_has_the_stationary_moments_and_the_lag_12_autocorrelation() {
        // Started at θ and run 20 years (φ^240 ≈ 1e-40 of the start is left): mean θ, SD σ_π,
        // and corr(π_t, π_{t+12}) = φ^12 = 2^(−1/h), each within 4 standard errors over 20,000
        // paths (SE of the mean σ/√n, of the SD σ/√(2n), of the correlation (1 − r²)/√n).
        let (theta, sigma, h) = (0.03, 0.02, 1.5);
        let m = Ar1Inflation::new(theta, sigma, h, theta, 0.4);
        let n = 20_000u32;
        let pairs = rates_at(&m, n, 240);
        let nf = f64::from(n);
        let mean = pairs.iter().map(|p| p.0).sum::<f64>() / nf;
        let mean_12 = pairs.iter().map(|p| p.1).sum::<f64>() / nf;
        let var = pairs.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / (nf - 1.0);
        let var_12 = pairs.iter().map(|p| (p.1 - mean_12).powi(2)).sum::<f64>() / (nf - 1.0);
        let cov = pairs
            .iter()
            .map(|p| (p.0 - mean) * (p.1 - mean_12))
            .sum::<f64>()
            / (nf - 1.0);
        let sd = var.sqrt();
        let corr = cov / (var * var_12).sqrt();
        let expected_corr = 2f64.powf(-1.0 / h);
        assert!(
            (mean - theta).abs() < 4.0 * sigma / nf.sqrt(),
            "mean {mean}"
        );
        assert!(
            (sd - sigma).abs() < 4.0 * sigma / (2.0 * nf).sqrt(),
            "sd {sd}"
        );
        let se_corr = (1.0 - expected_corr * expected_corr) / nf.sqrt();
        assert!(
            (corr - expected_corr).abs() < 4.0 * se_corr,
            "corr {corr} vs {expected_corr}"
        );
    }

    #[test]
    fn the_innovation_correlates_with_the_market_shock_by_rho() {
        // corr(π_{t+1} − θ − φ(π_t − θ), Z_t) = ρ, within 4 SE over 20,000 path-months.
        let rho = -0.6;
        let m = model(0.02, rho);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        let n = 20_000u32;
        for path in 0..n {
            let t = path % 48;
            let z = normal::normal_at(11, path, t);
            let z_own = own_normal_at(11, path, t);
            let rate = 0.04;
            let mean = f64::from(m.mean);
            let innovation =
                m.next_rate(rate, z, z_own) - mean - f64::from(m.persistence) * (rate - mean);
            sxy += innovation * f64::from(z);
            sxx += innovation * innovation;
            syy += f64::from(z) * f64::from(z);
        }
        let corr = sxy / (sxx * syy).sqrt();
        let se = (1.0 - rho * rho) / f64::from(n).sqrt();
        assert!((corr - rho).abs() < 4.0 * se, "corr {corr}");
    }

    #[test]
    fn extreme_rates_keep_the_index_positive_and_finite() {
        assert_eq!(month_factor(-1.5), MIN_MONTH_FACTOR);
        let least = index_factor(MIN_MONTH_FACTOR.powi(12));
        assert!((least / MIN_MONTH_FACTOR - 1.0).abs() < 1e-6, "{least}");
        let most = index_factor(1e300);
        assert!(most.is_finite() && most > 1.0, "{most}");
    }
}
