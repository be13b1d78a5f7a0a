//! Household plans (docs/model.md §5): one or two people, their accounts, incomes, Social
//! Security, spending rule, goals, taxes and lifetimes, simulated month by month.
//!
//! The path of a plan: [`PlanRequest`] → [`prepare_plan`] (every field checked, ages turned into
//! plan months) → [`PreparedPlan`] → [`simulate_plan`] (the month loop, on the CPU, paths in lane groups) →
//! [`build_plan_result`] → [`PlanResult`]. The rules a month applies are pure functions, each
//! tested against hand-computable answers: Social Security's claiming factor
//! ([`social_security`]), the IRS Uniform Lifetime Table ([`rmd`]), progressive income tax
//! ([`tax`]) and lifetimes drawn from a path's own mortality stream ([`lifetime`]).

pub mod lifetime;
pub mod packed;
pub mod prepare;
pub mod request;
pub mod result;
pub mod rmd;
pub mod simulate;
pub mod social_security;
pub mod solve;
pub mod tax;
#[cfg(test)]
mod tests;

pub use prepare::{prepare_plan, PreparedPlan, MAX_PLAN_PATHS};
pub use request::PlanRequest;
pub use result::{build_plan_result, reduce_tables, PlanResult};
pub use simulate::{simulate_plan, PathOutcome, PlanSamples, ReducedYear, Yearly};
