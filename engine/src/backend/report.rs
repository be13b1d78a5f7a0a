//! The backends report (`sextant backends`, `sextant-bench --suite backends`): what each
//! backend opens here, or why it cannot; what `auto` picks; the CUDA driver and every NVRTC
//! found. One typed report, so the command line and the GPU check print the same document.

use serde::Serialize;

use super::{cuda_toolchain, Device};

/// What `sextant backends` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BackendsReport {
    pub backends: Vec<BackendStatus>,
    /// The backend `auto` picks.
    pub auto: &'static str,
    pub cuda_toolchain: ToolchainReport,
}

/// One backend: its device, or the reason it is unavailable.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub backend: String,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether household plans run on this backend's plan kernel (`"kernel ready"`), or why
    /// they run on the CPU instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<String>,
}

/// The CUDA driver and NVRTC libraries found.
#[derive(Debug, Clone, Serialize)]
pub struct ToolchainReport {
    /// `CUDA 12.9`, or `{"unavailable": reason}`.
    pub driver: serde_json::Value,
    pub nvrtc: Vec<NvrtcFound>,
    /// Libraries found that would not load, with the loader's reason.
    pub nvrtc_not_loaded: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NvrtcFound {
    pub version: String,
    pub path: String,
}

/// Open every backend (CUDA kernels are compiled, a Vulkan device is opened) and report.
pub fn backends_report() -> BackendsReport {
    let backends = Device::survey()
        .into_iter()
        .map(|(kind, probe)| match probe {
            Ok(device) => {
                let backend = device.backend();
                let info = backend.info();
                BackendStatus {
                    backend: kind.to_string(),
                    available: true,
                    device: Some(info.device),
                    parallelism: Some(info.parallelism),
                    reason: None,
                    plans: Some(match backend.plan_kernel() {
                        Ok(()) => "kernel ready".to_string(),
                        Err(reason) => format!("on the CPU: {reason}"),
                    }),
                }
            }
            Err(err) => BackendStatus {
                backend: kind.to_string(),
                available: false,
                device: None,
                parallelism: None,
                reason: Some(err.to_string()),
                plans: None,
            },
        })
        .collect();
    let cuda = cuda_toolchain();
    BackendsReport {
        backends,
        auto: Device::auto().device.backend().info().name,
        cuda_toolchain: ToolchainReport {
            driver: match &cuda.driver {
                Ok((major, minor)) => serde_json::json!(format!("CUDA {major}.{minor}")),
                Err(reason) => serde_json::json!({ "unavailable": reason }),
            },
            nvrtc: cuda
                .nvrtc
                .iter()
                .map(|(path, (major, minor))| NvrtcFound {
                    version: format!("{major}.{minor}"),
                    path: path.display().to_string(),
                })
                .collect(),
            nvrtc_not_loaded: cuda.nvrtc_failures,
        },
    }
}
