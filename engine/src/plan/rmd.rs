//! Required minimum distributions: the IRS Uniform Lifetime Table (Publication 590-B,
//! Appendix B, Table III, for distribution years 2022 and later; Treasury regulation
//! §1.401(a)(9)-9(c)). The year's RMD of a tax-deferred account is its balance at the end of the
//! previous year divided by the divisor for the owner's age at the end of the year.
//!
//! The table was checked entry by entry against a reproduction of the publication's 2022 table
//! (ages 72 to 120+) and against docs/model.md §5 (ages 73 to 100 and 120+).

/// The first age of the table.
pub const FIRST_AGE: u32 = 72;

/// Distribution periods for ages 72, 73, … 120 (and every age above 120).
const DIVISORS: [f64; 49] = [
    27.4, 26.5, 25.5, 24.6, 23.7, 22.9, 22.0, 21.1, 20.2, 19.4, // 72–81
    18.5, 17.7, 16.8, 16.0, 15.2, 14.4, 13.7, 12.9, 12.2, 11.5, // 82–91
    10.8, 10.1, 9.5, 8.9, 8.4, 7.8, 7.3, 6.8, 6.4, 6.0, // 92–101
    5.6, 5.2, 4.9, 4.6, 4.3, 4.1, 3.9, 3.7, 3.5, 3.4, // 102–111
    3.3, 3.1, 3.0, 2.9, 2.8, 2.7, 2.5, 2.3, 2.0, // 112–120
];

/// The distribution period for an owner who is `age` at the end of the distribution year:
/// `None` below the table (no distribution is required from the table's rule there).
pub fn divisor(age: u32) -> Option<f64> {
    let index = age.checked_sub(FIRST_AGE)? as usize;
    Some(DIVISORS[index.min(DIVISORS.len() - 1)])
}

/// The year's required distribution from `balance_at_previous_year_end` for an owner of `age`
/// at the end of the year (zero below the table).
pub fn required(balance_at_previous_year_end: f64, age: u32) -> f64 {
    divisor(age).map_or(0.0, |d| balance_at_previous_year_end.max(0.0) / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_2022_uniform_lifetime_table() {
        // The values docs/model.md §5 names, and the ends of the table.
        let named = [
            (72, 27.4),
            (73, 26.5),
            (74, 25.5),
            (75, 24.6),
            (80, 20.2),
            (85, 16.0),
            (90, 12.2),
            (95, 8.9),
            (100, 6.4),
            (105, 4.6),
            (110, 3.5),
            (115, 2.9),
            (119, 2.3),
            (120, 2.0),
            (125, 2.0),
        ];
        for (age, expected) in named {
            assert_eq!(divisor(age), Some(expected), "age {age}");
        }
        assert_eq!(divisor(71), None);
        // A distribution period shrinks with age, never grows.
        for age in FIRST_AGE..120 {
            assert!(divisor(age + 1) < divisor(age), "{age}");
        }
    }

    /// The example: an RMD at 75 is the balance / 24.6.
    #[test]
    fn an_rmd_at_75_is_the_balance_over_24_6() {
        assert_eq!(required(492_000.0, 75), 492_000.0 / 24.6);
        assert_eq!(required(492_000.0, 70), 0.0);
    }
}
