//! Lifetimes (docs/model.md §5): fixed, Gompertz or from a table of annual death
//! probabilities, each person's death month drawn by inversion from one uniform of the path's
//! mortality stream. Nobody lives past 120.
//!
//! The death month is the first month at whose start the person is dead: someone who dies t
//! years from month 0 has death month ⌈12 t⌉, so a 65-year-old with a fixed lifetime to 95 is
//! alive in months 0 … 359 and dead from month 360.

use crate::philox;

/// Nobody lives past this age.
pub const MAX_AGE_YEARS: u32 = 120;
/// The Philox stream of mortality (counter word c2; the goal's shocks are stream 0): counter
/// (path, person, MORTALITY_STREAM, 0), first output.
pub const MORTALITY_STREAM: u32 = 4;

/// How long a person may live.
#[derive(Debug, Clone, PartialEq)]
pub enum Longevity {
    /// Dies at this age (years).
    Fixed { age: f64 },
    /// Survival from age x for t years: S = exp(e^((x−m)/b) (1 − e^(t/b))).
    Gompertz { modal_age: f64, dispersion: f64 },
    /// `qx[k]` is the probability of dying within the year of age `start_age + k`, with a
    /// constant force of mortality within the year; past the table's end, nobody survives.
    Table { start_age: u32, qx: Vec<f64> },
}

/// The probability that someone of `age` years lives `t` more years.
pub fn survival(longevity: &Longevity, age: f64, t: f64) -> f64 {
    if age + t > f64::from(MAX_AGE_YEARS) {
        return 0.0;
    }
    let s = match longevity {
        Longevity::Fixed { age: death } => {
            if age + t < *death {
                1.0
            } else {
                0.0
            }
        }
        Longevity::Gompertz {
            modal_age,
            dispersion,
        } => (((age - modal_age) / dispersion).exp() * (1.0 - (t / dispersion).exp())).exp(),
        Longevity::Table { start_age, qx } => {
            let mut s = 1.0;
            let mut x = age;
            let end = age + t;
            while x < end {
                let k = x.floor();
                let q = table_q(*start_age, qx, k).unwrap_or(1.0);
                let span = (k + 1.0).min(end) - x;
                s *= (1.0 - q).powf(span);
                x = k + 1.0;
            }
            s
        }
    };
    s.clamp(0.0, 1.0)
}

/// The table's death probability for the year of age `k` (whole years): `None` past its end.
/// An age below `start_age` reads the first entry (a plan's validation refuses such a person).
fn table_q(start_age: u32, qx: &[f64], k: f64) -> Option<f64> {
    qx.get((k - f64::from(start_age)).max(0.0) as usize)
        .copied()
}

/// Years lived from `age` by someone whose survival falls to `u` (a uniform in (0, 1)): the t
/// with S(t) = u, or the time to 120 if that comes first.
pub fn years_left(longevity: &Longevity, age: f64, u: f64) -> f64 {
    let limit = (f64::from(MAX_AGE_YEARS) - age).max(0.0);
    let t = match longevity {
        Longevity::Fixed { age: death } => (death - age).max(0.0),
        Longevity::Gompertz {
            modal_age,
            dispersion,
        } => dispersion * (1.0 - u.ln() * ((modal_age - age) / dispersion).exp()).ln(),
        Longevity::Table { start_age, qx } => {
            // Walk the years until survival falls to u, then solve within the year:
            // S · (1 − q)^τ = u.
            let mut s = 1.0;
            let mut x = age;
            loop {
                let k = x.floor();
                let Some(q) = table_q(*start_age, qx, k) else {
                    break x - age; // past the table: dies at its end
                };
                let span = k + 1.0 - x;
                let end = s * (1.0 - q).powf(span);
                if end <= u {
                    let tau = if q >= 1.0 {
                        0.0
                    } else {
                        (u / s).ln() / (1.0 - q).ln()
                    };
                    break x + tau.min(span) - age;
                }
                s = end;
                x = k + 1.0;
                if x - age >= limit {
                    break limit;
                }
            }
        }
    };
    t.min(limit)
}

/// The death month of someone aged `age_months` (whole months) at month 0 whose mortality
/// uniform is `u`: ⌈12 t⌉ for the t they live.
pub fn death_month(longevity: &Longevity, age_months: u32, u: f64) -> u32 {
    let t = years_left(longevity, f64::from(age_months) / 12.0, u);
    (12.0 * t - 1e-9).ceil().max(0.0) as u32
}

/// Person `person`'s mortality uniform on `path` under `seed`, in (0, 1): (first output + ½) / 2³².
pub fn mortality_uniform(seed: u64, path: u32, person: u32) -> f64 {
    let block = philox::philox4x32_10(
        [path, person, MORTALITY_STREAM, 0],
        philox::key_of_seed(seed),
    );
    (f64::from(block[0]) + 0.5) / 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gompertz() -> Longevity {
        Longevity::Gompertz {
            modal_age: 88.0,
            dispersion: 10.0,
        }
    }

    #[test]
    fn a_fixed_lifetime_ends_at_its_age() {
        let fixed = Longevity::Fixed { age: 95.0 };
        assert_eq!(death_month(&fixed, 65 * 12, 0.3), 360);
        assert_eq!(death_month(&fixed, 65 * 12 + 6, 0.9), 354);
        // Nobody lives past 120.
        assert_eq!(
            death_month(&Longevity::Fixed { age: 130.0 }, 100 * 12, 0.5),
            240
        );
    }

    /// The inversion is S's: at the t it returns, survival is u.
    #[test]
    fn the_inverse_of_gompertz_survival_is_its_inverse() {
        for u in [0.01, 0.2, 0.5, 0.8, 0.99] {
            let t = years_left(&gompertz(), 65.0, u);
            assert!(
                (survival(&gompertz(), 65.0, t) - u).abs() < 1e-12,
                "u {u}: t {t}"
            );
        }
    }

    /// Ages at death drawn from the mortality stream against S(t) at 10, 20, 25 and 30 years,
    /// each within 4 standard errors √(S(1−S)/n) (seed 7, 100,000 paths).
    #[test]
    fn simulated_gompertz_deaths_follow_the_survival_curve() {
        let n = 100_000u32;
        let months: Vec<u32> = (0..n)
            .map(|p| death_month(&gompertz(), 65 * 12, mortality_uniform(7, p, 0)))
            .collect();
        for years in [10u32, 20, 25, 30] {
            let alive = months.iter().filter(|&&d| d > 12 * years).count() as f64 / f64::from(n);
            let s = survival(&gompertz(), 65.0, f64::from(years));
            let se = (s * (1.0 - s) / f64::from(n)).sqrt();
            assert!(
                (alive - s).abs() < 4.0 * se,
                "{years} years: {alive} vs S = {s} (SE {se})"
            );
        }
    }

    /// A table with q = 1 at 90 ends every path of an 85-year-old there; below it, the constant
    /// force within a year gives survival (1 − q) over a whole year.
    #[test]
    fn a_table_with_q_one_ends_every_path_there() {
        let table = Longevity::Table {
            start_age: 80,
            qx: vec![0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0],
        };
        for p in 0..1000 {
            let u = mortality_uniform(3, p, 1);
            assert!(death_month(&table, 85 * 12, u) <= 60, "path {p}");
        }
        // A tiny u: survives every year below 90, and dies there.
        assert_eq!(death_month(&table, 85 * 12, 1e-12), 60);
        assert!((survival(&table, 85.0, 1.0) - 0.9).abs() < 1e-12);
        assert!((survival(&table, 85.5, 1.0) - 0.9).abs() < 1e-12);
        // Alive at 90 with probability 0.9⁵, and nobody an instant later.
        assert!((survival(&table, 85.0, 5.0) - 0.9f64.powi(5)).abs() < 1e-12);
        assert_eq!(survival(&table, 85.0, 5.01), 0.0);
        // Inversion and survival agree within a year and across years.
        for u in [0.95, 0.7, 0.62] {
            let t = years_left(&table, 85.25, u);
            assert!(
                (survival(&table, 85.25, t) - u).abs() < 1e-12,
                "u {u}: t {t}"
            );
        }
        // Below S(to 90) = 0.9^4.75 ≈ 0.606, every u reaches 90 and dies there.
        assert_eq!(years_left(&table, 85.25, 0.6), 4.75);
    }

    /// The mortality stream is its own: a different person or path gives a different uniform,
    /// and the uniform never reaches 0 or 1.
    #[test]
    fn the_mortality_uniforms_are_in_the_open_interval() {
        let u = mortality_uniform(1, 0, 0);
        assert_ne!(u, mortality_uniform(1, 0, 1));
        assert_ne!(u, mortality_uniform(1, 1, 0));
        assert!(u > 0.0 && u < 1.0);
    }
}
