//! The market of the portfolio side (docs/model.md §2): asset classes with expected returns, and a
//! covariance given directly or as volatilities + correlations. Checked here once for the
//! frontier, the sweep and the risk metrics, with the same field names and bounds.
//!
//! A matrix that is not symmetric positive semi-definite is refused, naming the field and its
//! smallest eigenvalue; when the request sets `"repair_psd": true` it is replaced by the
//! nearest valid matrix instead (Higham): the nearest correlation matrix (Higham 2002,
//! alternating projections with Dykstra's correction) for correlations, the nearest PSD matrix
//! in the Frobenius norm (Higham 1988: clip the negative eigenvalues) for a covariance. The
//! response reports how far the matrix moved.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::validate::{ValidationError, MAX_RATE};

/// Most assets a portfolio request may hold.
pub const MAX_ASSETS: usize = 500;

/// An asset class: `{name, expected_return, volatility}`; `volatility` may be left out when a
/// covariance is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetClass {
    pub name: String,
    pub expected_return: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
}

/// The market inputs of a portfolio request, as the request spells them.
#[derive(Debug, Clone, Copy)]
pub struct MarketInputs<'a> {
    pub assets: &'a [AssetClass],
    pub correlations: Option<&'a [Vec<f64>]>,
    pub covariance: Option<&'a [Vec<f64>]>,
    pub repair_psd: bool,
    /// Where these fields sit in the request, e.g. `""` or `"frontier."`.
    pub prefix: &'a str,
}

/// Checked market: names, μ, Σ (row-major), and what a repair changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    pub names: Vec<String>,
    pub expected_returns: Vec<f64>,
    pub covariance: Vec<f64>,
    pub repair: Option<Repair>,
}

impl Market {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// What `repair_psd` did to the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repair {
    /// `correlations` or `covariance`.
    pub matrix: String,
    /// The smallest eigenvalue before the repair (≥ 0: nothing needed repair).
    pub smallest_eigenvalue: f64,
    /// Largest absolute change of an entry.
    pub max_change: f64,
    /// Frobenius norm of the change.
    pub frobenius_change: f64,
}

/// A symmetric matrix's eigenvalues may be this far below zero (relative to the largest) and
/// still count as PSD: rounding of a valid matrix written with a few decimals.
const PSD_TOLERANCE: f64 = 1e-10;

impl MarketInputs<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Check every bound and build μ and Σ.
    pub fn prepare(&self) -> Result<Market, ValidationError> {
        let n = self.assets.len();
        if n == 0 || n > MAX_ASSETS {
            return Err(ValidationError::new(
                self.field("assets"),
                format!("must hold between 1 and {MAX_ASSETS} assets, got {n}"),
            ));
        }
        for (i, a) in self.assets.iter().enumerate() {
            if a.name.trim().is_empty() {
                return Err(ValidationError::new(
                    self.field(&format!("assets[{i}].name")),
                    "must not be empty",
                ));
            }
            if self.assets[..i].iter().any(|b| b.name == a.name) {
                return Err(ValidationError::new(
                    self.field(&format!("assets[{i}].name")),
                    format!("\"{}\" appears twice; names must be unique", a.name),
                ));
            }
            if !a.expected_return.is_finite() || a.expected_return.abs() > MAX_RATE {
                return Err(ValidationError::new(
                    self.field(&format!("assets[{i}].expected_return")),
                    format!(
                        "must be between -{MAX_RATE} and {MAX_RATE}, got {}",
                        a.expected_return
                    ),
                ));
            }
            if let Some(v) = a.volatility {
                if !v.is_finite() || !(0.0..=MAX_RATE).contains(&v) {
                    return Err(ValidationError::new(
                        self.field(&format!("assets[{i}].volatility")),
                        format!("must be between 0 and {MAX_RATE}, got {v}"),
                    ));
                }
            }
        }
        let (covariance, repair) = match (self.covariance, self.correlations) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    self.field("covariance"),
                    "give either `covariance` or `correlations` (with volatilities), not both",
                ))
            }
            (Some(rows), None) => self.covariance_from_matrix(rows)?,
            (None, correlations) => self.covariance_from_correlations(correlations)?,
        };
        Ok(Market {
            names: self.assets.iter().map(|a| a.name.clone()).collect(),
            expected_returns: self.assets.iter().map(|a| a.expected_return).collect(),
            covariance: (0..n * n).map(|k| covariance[(k / n, k % n)]).collect(),
            repair,
        })
    }

    fn covariance_from_matrix(
        &self,
        rows: &[Vec<f64>],
    ) -> Result<(DMatrix<f64>, Option<Repair>), ValidationError> {
        let field = self.field("covariance");
        let n = self.assets.len();
        let matrix = square(rows, n, &field)?;
        let limit = MAX_RATE * MAX_RATE;
        for i in 0..n {
            if !(0.0..=limit).contains(&matrix[(i, i)]) {
                return Err(ValidationError::new(
                    format!("{field}[{i}][{i}]"),
                    format!(
                        "a variance must be between 0 and {limit}, got {}",
                        matrix[(i, i)]
                    ),
                ));
            }
            if let Some(v) = self.assets[i].volatility {
                let implied = matrix[(i, i)].sqrt();
                if (v - implied).abs() > 1e-6 * v.max(implied).max(1e-12) {
                    return Err(ValidationError::new(
                        self.field(&format!("assets[{i}].volatility")),
                        format!(
                            "{v} disagrees with the covariance's diagonal (√{} = {implied}); \
                             leave it out or make them agree",
                            matrix[(i, i)]
                        ),
                    ));
                }
            }
        }
        symmetric(&matrix, &field, 1e-9 * max_abs(&matrix).max(1e-300))?;
        let matrix = (&matrix + matrix.transpose()) * 0.5;
        let smallest = smallest_eigenvalue(&matrix);
        if smallest >= -PSD_TOLERANCE * largest_abs_eigen_bound(&matrix) {
            return Ok((matrix, None));
        }
        if !self.repair_psd {
            return Err(not_psd(&field, smallest));
        }
        let repaired = nearest_psd(&matrix);
        let report = repair_report("covariance", smallest, &matrix, &repaired);
        Ok((repaired, Some(report)))
    }

    fn covariance_from_correlations(
        &self,
        rows: Option<&[Vec<f64>]>,
    ) -> Result<(DMatrix<f64>, Option<Repair>), ValidationError> {
        let n = self.assets.len();
        let mut vols = Vec::with_capacity(n);
        for (i, a) in self.assets.iter().enumerate() {
            vols.push(a.volatility.ok_or_else(|| {
                ValidationError::new(
                    self.field(&format!("assets[{i}].volatility")),
                    "is required unless a `covariance` is given",
                )
            })?);
        }
        let d = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vols));
        let Some(rows) = rows else {
            return Ok((&d * &d, None));
        };
        let field = self.field("correlations");
        let matrix = correlation_rows(rows, n, &field)?;
        let matrix = (&matrix + matrix.transpose()) * 0.5;
        let smallest = smallest_eigenvalue(&matrix);
        let (correlations, repair) = if smallest >= -PSD_TOLERANCE * n as f64 {
            (matrix, None)
        } else if self.repair_psd {
            let repaired = nearest_correlation(&matrix);
            let report = repair_report("correlations", smallest, &matrix, &repaired);
            (repaired, Some(report))
        } else {
            return Err(not_psd(&field, smallest));
        };
        Ok((&d * correlations * &d, repair))
    }
}

/// Rows → an n × n correlation matrix: finite entries within [−1, 1], a unit diagonal and
/// symmetric within 1e-9 (whether it is positive semi-definite is the caller's check, since
/// only portfolio requests may ask for a repair). Errors name `field[i][j]`.
pub(crate) fn correlation_rows(
    rows: &[Vec<f64>],
    n: usize,
    field: &str,
) -> Result<DMatrix<f64>, ValidationError> {
    let matrix = square(rows, n, field)?;
    for i in 0..n {
        for j in 0..n {
            let r = matrix[(i, j)];
            if !(-1.0..=1.0).contains(&r) {
                return Err(ValidationError::new(
                    format!("{field}[{i}][{j}]"),
                    format!("must be in [-1, 1], got {r}"),
                ));
            }
        }
        if (matrix[(i, i)] - 1.0).abs() > 1e-9 {
            return Err(ValidationError::new(
                format!("{field}[{i}][{i}]"),
                format!("the diagonal must be 1, got {}", matrix[(i, i)]),
            ));
        }
    }
    symmetric(&matrix, field, 1e-9)?;
    Ok(matrix)
}

/// Rows → an n × n matrix of finite numbers.
fn square(rows: &[Vec<f64>], n: usize, field: &str) -> Result<DMatrix<f64>, ValidationError> {
    if rows.len() != n {
        return Err(ValidationError::new(
            field,
            format!("must have {n} rows (one per asset), got {}", rows.len()),
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != n {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("must have {n} entries (one per asset), got {}", row.len()),
            ));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(ValidationError::new(
                format!("{field}[{i}][{j}]"),
                "must be a finite number",
            ));
        }
    }
    Ok(DMatrix::from_fn(n, n, |i, j| rows[i][j]))
}

fn symmetric(m: &DMatrix<f64>, field: &str, tol: f64) -> Result<(), ValidationError> {
    let n = m.nrows();
    for i in 0..n {
        for j in 0..i {
            if (m[(i, j)] - m[(j, i)]).abs() > tol {
                return Err(ValidationError::new(
                    format!("{field}[{i}][{j}]"),
                    format!(
                        "the matrix must be symmetric: {} ≠ [{j}][{i}] = {}",
                        m[(i, j)],
                        m[(j, i)]
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn not_psd(field: &str, smallest: f64) -> ValidationError {
    ValidationError::new(
        field,
        format!(
            "must be positive semi-definite, its smallest eigenvalue is {smallest:.3e}; \
             set \"repair_psd\": true to use the nearest valid matrix instead"
        ),
    )
}

fn max_abs(m: &DMatrix<f64>) -> f64 {
    m.iter().fold(0.0f64, |a, v| a.max(v.abs()))
}

/// A bound on the largest |eigenvalue| (the largest absolute row sum), for relative tolerances.
fn largest_abs_eigen_bound(m: &DMatrix<f64>) -> f64 {
    m.row_iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0f64, f64::max)
        .max(1e-300)
}

fn smallest_eigenvalue(m: &DMatrix<f64>) -> f64 {
    SymmetricEigen::new(m.clone()).eigenvalues.min()
}

/// Higham (1988): the nearest symmetric PSD matrix in the Frobenius norm keeps the
/// eigenvectors and clips the negative eigenvalues to zero.
pub fn nearest_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m.clone());
    let clipped = eigen.eigenvalues.map(|v| v.max(0.0));
    let q = &eigen.eigenvectors;
    let x = q * DMatrix::from_diagonal(&clipped) * q.transpose();
    (&x + x.transpose()) * 0.5
}

/// Higham (2002): the nearest correlation matrix (PSD, unit diagonal) by alternating
/// projections onto the PSD cone and the unit-diagonal set, with Dykstra's correction on the
/// cone. The result is made exactly PSD and unit-diagonal by a last projection and rescaling.
pub fn nearest_correlation(a: &DMatrix<f64>) -> DMatrix<f64> {
    let n = a.nrows();
    let mut y = a.clone();
    let mut correction = DMatrix::<f64>::zeros(n, n);
    for _ in 0..1000 {
        let r = &y - &correction;
        let x = nearest_psd(&r);
        correction = &x - &r;
        let mut next = x.clone();
        for i in 0..n {
            next[(i, i)] = 1.0;
        }
        let moved = (&next - &y).norm() / next.norm().max(1e-300);
        y = next;
        if moved < 1e-12 {
            break;
        }
    }
    let x = nearest_psd(&y);
    let scale: Vec<f64> = (0..n).map(|i| 1.0 / x[(i, i)].max(1e-300).sqrt()).collect();
    let mut c = DMatrix::from_fn(n, n, |i, j| x[(i, j)] * scale[i] * scale[j]);
    for i in 0..n {
        c[(i, i)] = 1.0;
    }
    c
}

fn repair_report(
    matrix: &str,
    smallest: f64,
    before: &DMatrix<f64>,
    after: &DMatrix<f64>,
) -> Repair {
    let change = after - before;
    Repair {
        matrix: matrix.into(),
        smallest_eigenvalue: smallest,
        max_change: max_abs(&change),
        frobenius_change: change.norm(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(n: usize) -> Vec<AssetClass> {
        (0..n)
            .map(|i| AssetClass {
                name: format!("a{i}"),
                expected_return: 0.05,
                volatility: Some(0.1 + 0.05 * i as f64),
            })
            .collect()
    }

    /// Pairwise-valid but jointly impossible correlations: eigenvalue 1 − 0.9·2 < 0.
    fn bad_correlations() -> Vec<Vec<f64>> {
        vec![
            vec![1.0, 0.9, -0.9],
            vec![0.9, 1.0, 0.9],
            vec![-0.9, 0.9, 1.0],
        ]
    }

    #[test]
    fn a_non_psd_correlation_matrix_is_refused_with_its_eigenvalue() {
        let a = assets(3);
        let rows = bad_correlations();
        let e = MarketInputs {
            assets: &a,
            correlations: Some(&rows),
            covariance: None,
            repair_psd: false,
            prefix: "",
        }
        .prepare()
        .unwrap_err();
        assert_eq!(e.field, "correlations");
        assert!(e.problem.contains("smallest eigenvalue"), "{e}");
    }

    #[test]
    fn higham_repair_gives_a_psd_unit_diagonal_matrix_near_the_input() {
        let rows = bad_correlations();
        let a = DMatrix::from_fn(3, 3, |i, j| rows[i][j]);
        let c = nearest_correlation(&a);
        assert!(smallest_eigenvalue(&c) >= -1e-12);
        for i in 0..3 {
            assert_eq!(c[(i, i)], 1.0);
        }
        // Every valid correlation matrix is at least as far: compare with the identity, and
        // with the input shrunk halfway to it (both valid here).
        let d = (&c - &a).norm();
        assert!(d < (DMatrix::identity(3, 3) - &a).norm());
        let half = (&a + DMatrix::<f64>::identity(3, 3)) * 0.5;
        assert!(smallest_eigenvalue(&half) >= 0.0);
        assert!(d <= (&half - &a).norm() + 1e-12);
    }

    #[test]
    fn a_covariance_and_its_volatilities_must_agree() {
        let a = assets(2);
        let rows = vec![vec![0.01, 0.0], vec![0.0, 0.5]];
        let e = MarketInputs {
            assets: &a,
            correlations: None,
            covariance: Some(&rows),
            repair_psd: false,
            prefix: "frontier.",
        }
        .prepare()
        .unwrap_err();
        assert_eq!(e.field, "frontier.assets[1].volatility");
    }

    #[test]
    fn a_repaired_covariance_is_psd() {
        let a: Vec<AssetClass> = assets(3)
            .into_iter()
            .map(|x| AssetClass {
                volatility: None,
                ..x
            })
            .collect();
        let rows: Vec<Vec<f64>> = bad_correlations()
            .iter()
            .map(|r| r.iter().map(|v| v * 0.04).collect())
            .collect();
        let m = MarketInputs {
            assets: &a,
            correlations: None,
            covariance: Some(&rows),
            repair_psd: true,
            prefix: "",
        }
        .prepare()
        .unwrap();
        let repair = m.repair.unwrap();
        assert!(repair.smallest_eigenvalue < 0.0 && repair.max_change > 0.0);
        let s = DMatrix::from_row_slice(3, 3, &m.covariance);
        assert!(smallest_eigenvalue(&s) >= -1e-15);
    }
}
