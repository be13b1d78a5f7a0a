//! Stand-in for the CUDA backend when the `cuda` feature is not built: the type exists so the
//! closed [`super::Device`] enum always compiles, and opening it says why it cannot run.

use super::Watch;
use super::{
    BackendError, BackendInfo, BackendKind, CudaToolchain, Detail, SimulationBackend, Summary,
};
use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;

const NOT_BUILT: &str = "this build has no CUDA backend (cargo feature `cuda` not built)";

/// Without the backend there is nothing to look for.
pub fn toolchain() -> CudaToolchain {
    CudaToolchain {
        driver: Err(NOT_BUILT.into()),
        nvrtc: Vec::new(),
        nvrtc_failures: Vec::new(),
    }
}

/// Never constructed without the `cuda` feature.
#[derive(Debug, Clone)]
pub struct CudaBackend {
    never: std::convert::Infallible,
}

impl CudaBackend {
    pub fn open() -> Result<Self, BackendError> {
        Err(BackendError::Unavailable {
            kind: BackendKind::Cuda,
            reason: NOT_BUILT.into(),
        })
    }

    pub fn device_name(&self) -> String {
        match self.never {}
    }
}

impl SimulationBackend for CudaBackend {
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
