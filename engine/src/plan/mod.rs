//! Household plans (docs/model.md §5): the rules a plan's month applies, each a pure function
//! that every backend computes the same way, tested here against hand-computable answers.
//!
//! What is here so far: Social Security's claiming factor ([`social_security`]), the IRS
//! Uniform Lifetime Table for required minimum distributions ([`rmd`]), progressive income tax
//! ([`tax`]) and lifetimes, fixed, Gompertz or from a table, drawn by inversion from a path's
//! own mortality stream ([`lifetime`]). The plan request, its validation, the month loop and
//! its backends build on these.

pub mod lifetime;
pub mod rmd;
pub mod social_security;
pub mod tax;
