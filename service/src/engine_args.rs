//! The engine flags both binaries take (`sextant` and `sextant-bench`): where to compute, how
//! many threads, which CPU kernel, which NVRTC; the process set-up they need (rayon's pool,
//! where the CUDA backend finds NVRTC: the environment is read here, never in the engine);
//! and the engine they make.

use std::path::{Path, PathBuf};

use sextant_engine::backend::{nvrtc_search::entries_where, set_nvrtc_search};
use sextant_engine::backend::{NvrtcSearch, SearchRoots};
use sextant_engine::{BackendKind, CpuBackend, CpuKernel, Device, Engine};

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Where to compute: auto (best available), cpu, wgpu or cuda.
    #[arg(long, global = true, env = "SEXTANT_BACKEND", default_value = "auto")]
    pub backend: BackendKind,
    /// Worker threads (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// The CPU backend's kernel: avx512, avx2 or portable (default: the widest this CPU has;
    /// all compute the same bits, so this only compares their speed).
    #[arg(long, global = true, env = "SEXTANT_CPU_KERNEL")]
    pub cpu_kernel: Option<CpuKernel>,
    /// The NVRTC library for the CUDA backend to use and no other (default: the newest
    /// `libnvrtc.so.13` or `.so.12` the driver can follow, from a CUDA toolkit, NVIDIA's
    /// PyPI wheels in a Python environment, or the loader's path).
    #[arg(long, global = true, env = "SEXTANT_NVRTC_LIB", value_name = "PATH")]
    pub nvrtc: Option<PathBuf>,
}

impl EngineArgs {
    /// The process's set-up: size rayon's global pool (`--threads`) and install where the
    /// CUDA backend finds NVRTC. Call once, before anything computes or a device opens.
    pub fn init(&self) -> anyhow::Result<()> {
        if let Some(threads) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global()?;
        }
        set_nvrtc_search(nvrtc_search_from_environment(self.nvrtc.clone()))
            .map_err(|_| anyhow::anyhow!("the NVRTC search was already set"))
    }

    /// The CPU backend, with `--cpu-kernel` when given.
    pub fn cpu_backend(&self) -> anyhow::Result<CpuBackend> {
        let cpu = CpuBackend::new();
        Ok(match self.cpu_kernel {
            Some(kernel) => cpu.with_kernel(kernel)?,
            None => cpu,
        })
    }

    /// The engine on `--backend` (opening the device: Vulkan started, CUDA kernels compiled),
    /// its CPU backend with `--cpu-kernel`.
    pub fn engine(&self) -> anyhow::Result<Engine> {
        let device = match Device::select(self.backend)? {
            Device::Cpu(_) => Device::Cpu(self.cpu_backend()?),
            device => device,
        };
        Ok(Engine::new(device))
    }

    /// The flags as a command line gives them (for a child process).
    pub fn as_flags(&self) -> Vec<String> {
        let mut flags = vec!["--backend".to_string(), self.backend.to_string()];
        if let Some(threads) = self.threads {
            flags.extend(["--threads".to_string(), threads.to_string()]);
        }
        if let Some(kernel) = self.cpu_kernel {
            flags.extend(["--cpu-kernel".to_string(), kernel.to_string()]);
        }
        if let Some(nvrtc) = &self.nvrtc {
            flags.extend(["--nvrtc".to_string(), nvrtc.display().to_string()]);
        }
        flags
    }
}

/// Where this process looks for NVRTC: `pinned` if given (`--nvrtc`), else its environment's
/// toolkit folders (`CUDA_HOME`, `CUDA_PATH`, `CUDA_ROOT`, `/usr/local/cuda*`,
/// `LD_LIBRARY_PATH`, the system's) and Python environments (`VIRTUAL_ENV`, `CONDA_PREFIX`,
/// the `python3` folders on `PATH`, the system's, the user's and pyenv's), in that order.
pub fn nvrtc_search_from_environment(pinned: Option<PathBuf>) -> NvrtcSearch {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let mut library_folders = Vec::new();
    for name in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
        if let Some(root) = var(name) {
            library_folders.push(root.join("lib64"));
            library_folders.push(root.join("lib"));
        }
    }
    library_folders.push("/usr/local/cuda/lib64".into());
    // /usr/local/cuda-13.0 before /usr/local/cuda-12.4.
    let versioned = entries_where(Path::new("/usr/local"), |n| n.starts_with("cuda-"));
    library_folders.extend(versioned.into_iter().rev().map(|p| p.join("lib64")));
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        library_folders.extend(std::env::split_paths(&paths));
    }
    library_folders.push("/usr/lib/x86_64-linux-gnu".into());
    library_folders.push("/usr/lib64".into());

    let mut python_prefixes = Vec::new();
    for name in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        python_prefixes.extend(var(name));
    }
    // The Python that `python3` runs (a virtual environment's bin/ is its prefix's).
    if let Some(paths) = std::env::var_os("PATH") {
        for folder in std::env::split_paths(&paths) {
            if folder.join("python3").exists() {
                if let Some(prefix) = folder.parent() {
                    python_prefixes.push(prefix.to_path_buf());
                }
            }
        }
    }
    python_prefixes.push("/usr/local".into());
    python_prefixes.push("/usr".into());
    if let Some(home) = var("HOME") {
        python_prefixes.push(home.join(".local"));
        let versions = entries_where(&home.join(".pyenv/versions"), |_| true);
        python_prefixes.extend(versions.into_iter().rev());
    }
    NvrtcSearch {
        pinned,
        roots: SearchRoots {
            library_folders,
            python_prefixes,
        },
    }
}
