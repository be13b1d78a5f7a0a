//! Sextant's engine: the models of docs/model.md, the Philox generator, and the backends that run
//! them. Plain computation: no I/O, no async. The service and the CLI live in `api/`.
//!
//! The path of a request: [`GoalRequest`] → [`validate::prepare`] → [`PreparedGoal`] →
//! a batch on a [`Device`] → [`backend::Summary`] → [`SimulationResult`].

pub mod backend;
pub mod bootstrap;
pub mod bridge;
pub mod budget;
pub mod engine;
pub mod frontier;
pub mod history;
pub mod inflation;
pub mod normal;
pub mod philox;
pub mod plan;
pub mod portfolio;
pub mod quantile;
pub mod rebalance;
pub mod regime;
pub mod request;
pub mod result;
pub mod risk;
pub mod sampler;
pub mod scenarios;
pub mod sobol;
pub mod solve;
pub mod student_t;
pub mod sweep;
pub mod validate;

pub use backend::{BackendKind, CpuBackend, CpuKernel, Device, SimulationBackend};
pub use engine::{Engine, EngineError};
pub use plan::{PlanRequest, PlanResult};
pub use request::{Asset, GlideSegment, Goal, GoalRequest, Market, Options};
pub use result::{Percentiles, SimulationResult, ENGINE_VERSION};
pub use validate::{PreparedGoal, ValidationError};
