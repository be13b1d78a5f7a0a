//! Histories (docs/model.md §4.3): monthly returns of named assets, with an optional monthly
//! inflation column, that a bootstrap market resamples.
//!
//! What this module owns: the [`History`] document (the JSON form requests inline and the
//! service stores), its checks ([`History::check`], every error naming the field and the
//! bound, so the service, the CLI and a request's inline history refuse the same data with the
//! same words), and the CSV form (`sextant histories import`, `POST /v1/histories` with
//! `text/csv`): a header of asset names, an optional `inflation` column and an optional leading
//! `month` or `date` label column, one row per month of simple returns as decimals.

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

/// Most months a history may hold (500 years).
pub const MAX_HISTORY_MONTHS: usize = 6000;
/// Most assets a history may hold.
pub const MAX_HISTORY_ASSETS: usize = 32;
/// Largest monthly simple return accepted (+1000% in a month).
pub const MAX_MONTHLY_RETURN: f64 = 10.0;
/// Bounds of a month's inflation: (−50%, +100%] in a month.
pub const MIN_MONTHLY_INFLATION: f64 = -0.5;
pub const MAX_MONTHLY_INFLATION: f64 = 1.0;
/// Longest name of a stored history, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Monthly returns of named assets, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// The assets' names, in the order of each month's `returns` (and of `market.weights`).
    pub assets: Vec<String>,
    /// One entry per month, oldest first.
    pub months: Vec<HistoryMonth>,
}

/// One month of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryMonth {
    /// Simple returns of the month, one per asset (0.01 = +1%), each above −100%.
    pub returns: Vec<f64>,
    /// The month's simple inflation rate; every month has one or none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflation: Option<f64>,
}

impl History {
    /// Whether the months carry inflation (checked: all or none).
    pub fn has_inflation(&self) -> bool {
        self.months.first().is_some_and(|m| m.inflation.is_some())
    }

    /// Check every bound; `field` is where the history sits in its document (`history` in a
    /// stored one, `market.model.history` inline), and errors name `field.assets`,
    /// `field.months[i].returns[k]`, ….
    pub fn check(&self, field: &str) -> Result<(), ValidationError> {
        let assets = self.assets.len();
        if assets == 0 || assets > MAX_HISTORY_ASSETS {
            return Err(ValidationError::new(
                format!("{field}.assets"),
                format!("must name 1 to {MAX_HISTORY_ASSETS} assets, got {assets}"),
            ));
        }
        for (k, name) in self.assets.iter().enumerate() {
            if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
                return Err(ValidationError::new(
                    format!("{field}.assets[{k}]"),
                    format!("must be a name of 1 to {MAX_NAME_BYTES} bytes, got {name:?}"),
                ));
            }
            if name.eq_ignore_ascii_case("inflation") {
                return Err(ValidationError::new(
                    format!("{field}.assets[{k}]"),
                    "\"inflation\" is the inflation column, not an asset",
                ));
            }
            if self.assets[..k].contains(name) {
                return Err(ValidationError::new(
                    format!("{field}.assets[{k}]"),
                    format!("{name:?} is named twice"),
                ));
            }
        }
        let rows = self.months.len();
        if rows == 0 || rows > MAX_HISTORY_MONTHS {
            return Err(ValidationError::new(
                format!("{field}.months"),
                format!("must hold 1 to {MAX_HISTORY_MONTHS} months, got {rows}"),
            ));
        }
        let inflation = self.has_inflation();
        for (i, month) in self.months.iter().enumerate() {
            if month.returns.len() != assets {
                return Err(ValidationError::new(
                    format!("{field}.months[{i}].returns"),
                    format!(
                        "must hold one return per asset ({assets}), got {}",
                        month.returns.len()
                    ),
                ));
            }
            for (k, &r) in month.returns.iter().enumerate() {
                if !(r.is_finite() && r > -1.0 && r <= MAX_MONTHLY_RETURN) {
                    return Err(ValidationError::new(
                        format!("{field}.months[{i}].returns[{k}]"),
                        format!(
                            "must be a simple monthly return in (-1, {MAX_MONTHLY_RETURN}] \
                             (above -100%), got {r}"
                        ),
                    ));
                }
            }
            match month.inflation {
                Some(x)
                    if !(x.is_finite()
                        && x > MIN_MONTHLY_INFLATION
                        && x <= MAX_MONTHLY_INFLATION) =>
                {
                    return Err(ValidationError::new(
                        format!("{field}.months[{i}].inflation"),
                        format!(
                            "must be a monthly rate in ({MIN_MONTHLY_INFLATION}, \
                             {MAX_MONTHLY_INFLATION}], got {x}"
                        ),
                    ));
                }
                Some(_) if !inflation => {
                    return Err(ValidationError::new(
                        format!("{field}.months[{i}].inflation"),
                        "every month has an inflation rate or none does (month 0 has none)",
                    ));
                }
                None if inflation => {
                    return Err(ValidationError::new(
                        format!("{field}.months[{i}].inflation"),
                        "every month has an inflation rate or none does (month 0 has one)",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Read the CSV form (see the module's top) and check it. Errors name the line
    /// (`csv line 3`) or the header's column, and the bound.
    pub fn from_csv(text: &str) -> Result<History, ValidationError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| ValidationError::new("csv header", e.to_string()))?
            .clone();
        let mut columns: Vec<&str> = header.iter().collect();
        let labelled = columns
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case("month") || c.eq_ignore_ascii_case("date"));
        if labelled {
            columns.remove(0);
        }
        let inflation_at = columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case("inflation"));
        let assets: Vec<String> = columns
            .iter()
            .enumerate()
            .filter(|&(k, _)| Some(k) != inflation_at)
            .map(|(_, c)| c.to_string())
            .collect();
        let mut months = Vec::new();
        for (row, record) in reader.records().enumerate() {
            // Line 1 is the header (comment lines aside, a close enough count for a person).
            let line = row + 2;
            let record = record
                .map_err(|e| ValidationError::new(format!("csv line {line}"), e.to_string()))?;
            let fields: Vec<&str> = record.iter().skip(usize::from(labelled)).collect();
            if fields.len() != columns.len() {
                return Err(ValidationError::new(
                    format!("csv line {line}"),
                    format!(
                        "must hold {} values as the header does, got {}",
                        columns.len(),
                        fields.len()
                    ),
                ));
            }
            let mut returns = Vec::with_capacity(assets.len());
            let mut inflation = None;
            for (k, value) in fields.iter().enumerate() {
                let x: f64 = value.parse().map_err(|_| {
                    ValidationError::new(
                        format!("csv line {line}, column {:?}", columns[k]),
                        format!("must be a number (a simple monthly return), got {value:?}"),
                    )
                })?;
                if Some(k) == inflation_at {
                    inflation = Some(x);
                } else {
                    returns.push(x);
                }
            }
            months.push(HistoryMonth { returns, inflation });
        }
        let history = History { assets, months };
        history.check("history")?;
        Ok(history)
    }
}

/// Check the name of a stored history: 1 to [`MAX_NAME_BYTES`] bytes of letters, digits, `-`,
/// `_` and `.`, so that it sits in a URL path as it is.
pub fn check_name(name: &str) -> Result<(), ValidationError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!("must be 1 to {MAX_NAME_BYTES} letters, digits, '-', '_' or '.', got {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_labels_and_inflation_reads_as_json_would() {
        let csv = "month,stocks,bonds,inflation\n\
                   0001-01, 0.01, 0.002, 0.003\n\
                   # a comment line\n\
                   0001-02,-0.02,0.004,0.001\n";
        let history = History::from_csv(csv).unwrap();
        assert_eq!(history.assets, ["stocks", "bonds"]);
        assert_eq!(history.months.len(), 2);
        assert_eq!(history.months[1].returns, [-0.02, 0.004]);
        assert_eq!(history.months[1].inflation, Some(0.001));
        assert!(history.has_inflation());
    }

    #[test]
    fn csv_without_labels_or_inflation() {
        let history = History::from_csv("equity\n0.01\n0.02\n").unwrap();
        assert_eq!(history.assets, ["equity"]);
        assert!(!history.has_inflation());
        assert_eq!(history.months[0].inflation, None);
    }

    #[test]
    fn csv_errors_name_the_line_and_column() {
        let err = History::from_csv("a,b\n0.01,0.02\n0.01,x\n").unwrap_err();
        assert_eq!(err.field, "csv line 3, column \"b\"");
        let err = History::from_csv("a,b\n0.01\n").unwrap_err();
        assert!(err.field.starts_with("csv line 2"), "{err}");
        let err = History::from_csv("a\n-1.0\n").unwrap_err();
        assert_eq!(err.field, "history.months[0].returns[0]");
        assert!(err.problem.contains("above -100%"), "{err}");
        let err = History::from_csv("a,a\n0.1,0.1\n").unwrap_err();
        assert_eq!(err.field, "history.assets[1]");
        let err = History::from_csv("a\n").unwrap_err();
        assert_eq!(err.field, "history.months");
    }

    #[test]
    fn inflation_is_all_or_none() {
        let month = |inflation| HistoryMonth {
            returns: vec![0.01],
            inflation,
        };
        let history = History {
            assets: vec!["a".into()],
            months: vec![month(Some(0.002)), month(None)],
        };
        let err = history.check("market.model.history").unwrap_err();
        assert_eq!(err.field, "market.model.history.months[1].inflation");
        let history = History {
            assets: vec!["a".into()],
            months: vec![month(Some(0.002)), month(Some(f64::NAN))],
        };
        let err = history.check("history").unwrap_err();
        assert_eq!(err.field, "history.months[1].inflation");
    }

    #[test]
    fn names_fit_a_url() {
        assert!(check_name("us-1926_2024.v2").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert_eq!(check_name(bad).unwrap_err().field, "name", "{bad:?}");
        }
    }
}
