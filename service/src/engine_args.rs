//! The engine flags both binaries take (`sextant` and `sextant-bench`): where to compute, how
//! many threads, which CPU kernel; and the engine they make.

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
}

impl EngineArgs {
    /// Size rayon's global pool (`--threads`); call once, before anything computes.
    pub fn init_threads(&self) -> anyhow::Result<()> {
        if let Some(threads) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global()?;
        }
        Ok(())
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
        flags
    }
}
