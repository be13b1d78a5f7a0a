//! Social Security's claiming-age factor (docs/model.md §5): the share of the primary insurance
//! amount (the benefit at full retirement age) paid for claiming early or late.

/// Months of early claiming allowed: claiming is possible from 62 with a full retirement age of
/// 67.
pub const MAX_EARLY_MONTHS: u32 = 60;
/// The latest claiming age that still earns delayed credits, in months.
pub const LATEST_CREDIT_AGE_MONTHS: u32 = 70 * 12;

/// The factor for claiming at `claim_age_months` with a full retirement age of
/// `full_retirement_age_months` (both whole months of age). Early by e months (at most 60):
/// 1 − (5/9)% for each of the first 36 months − (5/12)% for each month beyond; late by l
/// months: 1 + (2/3)% a month, earned up to age 70 (claiming later earns no more).
pub fn claiming_factor(claim_age_months: u32, full_retirement_age_months: u32) -> f64 {
    if claim_age_months <= full_retirement_age_months {
        let early = (full_retirement_age_months - claim_age_months).min(MAX_EARLY_MONTHS);
        let first = f64::from(early.min(36));
        let beyond = f64::from(early.saturating_sub(36));
        1.0 - first * (5.0 / 9.0) / 100.0 - beyond * (5.0 / 12.0) / 100.0
    } else {
        let late = claim_age_months
            .min(LATEST_CREDIT_AGE_MONTHS)
            .saturating_sub(full_retirement_age_months);
        1.0 + f64::from(late) * (2.0 / 3.0) / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRA_67: u32 = 67 * 12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// SSA's published factors for a full retirement age of 67: 70% at 62, 100% at 67, 124% at
    /// 70; 80% at 64 (36 months early, 36 × 5/9 % = 20%).
    #[test]
    fn the_factor_at_62_64_67_and_70_is_ssas() {
        assert!(close(claiming_factor(62 * 12, FRA_67), 0.70));
        assert!(close(claiming_factor(64 * 12, FRA_67), 0.80));
        assert!(close(claiming_factor(67 * 12, FRA_67), 1.00));
        assert!(close(claiming_factor(70 * 12, FRA_67), 1.24));
        // Delayed credits stop at 70.
        assert!(close(claiming_factor(72 * 12, FRA_67), 1.24));
        // A full retirement age of 66: 75% at 62 (48 months early: 20% + 12 × 5/12 %).
        assert!(close(claiming_factor(62 * 12, 66 * 12), 0.75));
    }

    /// Claiming later never lowers the factor, month by month from 62 to 70.
    #[test]
    fn claiming_later_never_lowers_the_factor() {
        for fra in [66 * 12, 67 * 12] {
            for age in 62 * 12..70 * 12 {
                assert!(
                    claiming_factor(age + 1, fra) > claiming_factor(age, fra),
                    "{age}"
                );
            }
        }
    }
}
