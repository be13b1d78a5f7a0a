//! A year's income tax (docs/model.md §5): progressive brackets on ordinary income above the
//! standard deduction, both in today's dollars and indexed by the price level, plus a flat rate
//! on realised capital gains.

/// One bracket: income above `over` (annual, today's dollars) is taxed at `rate`, up to the
/// next bracket's `over`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub over: f64,
    pub rate: f64,
}

/// The tax on `taxable` (nominal) under `brackets` whose thresholds are scaled by `index` (the
/// price level, 1 today). Brackets are in increasing order of `over`; income below the first
/// `over` is untaxed.
pub fn bracket_tax(brackets: &[Bracket], taxable: f64, index: f64) -> f64 {
    let mut tax = 0.0;
    for (k, bracket) in brackets.iter().enumerate() {
        let low = bracket.over * index;
        if taxable <= low {
            break;
        }
        let high = brackets
            .get(k + 1)
            .map_or(f64::INFINITY, |b| b.over * index);
        tax += bracket.rate * (taxable.min(high) - low);
    }
    tax
}

/// The year's tax: brackets on `ordinary` income less the standard deduction, both indexed,
/// plus `capital_gains_rate` on `gains`.
pub fn year_tax(
    brackets: &[Bracket],
    standard_deduction: f64,
    capital_gains_rate: f64,
    ordinary: f64,
    gains: f64,
    index: f64,
) -> f64 {
    let taxable = (ordinary - standard_deduction * index).max(0.0);
    bracket_tax(brackets, taxable, index) + capital_gains_rate * gains.max(0.0)
}

/// The ordinary income (deduction included, nominal) that fills every bracket taxed at
/// `up_to_rate` or less: what a bracket-fill withdrawal order draws from tax-deferred accounts
/// up to in a year. Unbounded when the top bracket's rate is within `up_to_rate`.
pub fn bracket_top(
    brackets: &[Bracket],
    standard_deduction: f64,
    up_to_rate: f64,
    index: f64,
) -> f64 {
    let top = brackets
        .iter()
        .position(|b| b.rate > up_to_rate)
        .map_or(f64::INFINITY, |k| brackets[k].over);
    (top + standard_deduction) * index
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024's single-filer brackets up to 22% and deduction.
    fn brackets() -> Vec<Bracket> {
        vec![
            Bracket {
                over: 0.0,
                rate: 0.10,
            },
            Bracket {
                over: 11_600.0,
                rate: 0.12,
            },
            Bracket {
                over: 47_150.0,
                rate: 0.22,
            },
        ]
    }

    /// One year of tax on known withdrawals: $60,000 of ordinary income less $14,600 is
    /// $45,400 taxable: 10% of 11,600 + 12% of 33,800 = 1,160 + 4,056 = 5,216; and 15% of
    /// $10,000 of gains.
    #[test]
    fn a_year_of_tax_by_hand() {
        let tax = year_tax(&brackets(), 14_600.0, 0.15, 60_000.0, 10_000.0, 1.0);
        assert!((tax - (5_216.0 + 1_500.0)).abs() < 1e-9, "{tax}");
        // Into the 22% bracket: 100,000 − 14,600 = 85,400.
        let tax = year_tax(&brackets(), 14_600.0, 0.0, 100_000.0, 0.0, 1.0);
        let expected = 1_160.0 + 0.12 * 35_550.0 + 0.22 * (85_400.0 - 47_150.0);
        assert!((tax - expected).abs() < 1e-9, "{tax}");
        // Under the deduction: nothing.
        assert_eq!(
            year_tax(&brackets(), 14_600.0, 0.0, 14_000.0, 0.0, 1.0),
            0.0
        );
    }

    /// Indexing scales thresholds and deduction with prices: income and tax both scale.
    #[test]
    fn indexed_brackets_scale_with_prices() {
        let today = year_tax(&brackets(), 14_600.0, 0.0, 80_000.0, 0.0, 1.0);
        let later = year_tax(&brackets(), 14_600.0, 0.0, 80_000.0 * 1.5, 0.0, 1.5);
        assert!((later - 1.5 * today).abs() < 1e-9, "{later} vs {today}");
    }

    #[test]
    fn the_bracket_top_fills_up_to_the_rate() {
        assert_eq!(
            bracket_top(&brackets(), 14_600.0, 0.12, 1.0),
            47_150.0 + 14_600.0
        );
        assert_eq!(
            bracket_top(&brackets(), 14_600.0, 0.10, 2.0),
            2.0 * (11_600.0 + 14_600.0)
        );
        assert_eq!(bracket_top(&brackets(), 14_600.0, 0.22, 1.0), f64::INFINITY);
    }
}
