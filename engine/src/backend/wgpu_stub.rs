//! Stand-in for the WGSL backend when the `wgpu` feature is not built: the type exists so the
//! closed [`super::Device`] enum always compiles, and opening it says why it cannot run.

use super::Watch;
use super::{BackendError, BackendInfo, BackendKind, Detail, SimulationBackend, Summary};
use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;

/// Never constructed without the `wgpu` feature.
#[derive(Debug, Clone)]
pub struct WgpuBackend {
    never: std::convert::Infallible,
}

impl WgpuBackend {
    pub fn open(_allow_software: bool) -> Result<Self, BackendError> {
        Err(BackendError::Unavailable {
            kind: BackendKind::Wgpu,
            reason: "this build has no WGSL backend (cargo feature `wgpu` not built)".into(),
        })
    }

    pub fn adapter(&self) -> String {
        match self.never {}
    }

    pub fn is_software(&self) -> bool {
        match self.never {}
    }
}

impl SimulationBackend for WgpuBackend {
    fn info(&self) -> BackendInfo {
        match self.never {}
    }
    fn simulate(&self, _: &[PreparedGoal], _: Detail) -> Result<Vec<Summary>, BackendError> {
        match self.never {}
    }
    fn terminal_wealth(&self, _: &PreparedGoal) -> Vec<f64> {
        match self.never {}
    }
    fn plan_kernel(&self) -> Result<(), String> {
        match self.never {}
    }
    fn simulate_plans(
        &self,
        _: &[PreparedPlan],
        _: Yearly,
        _: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        match self.never {}
    }
}
