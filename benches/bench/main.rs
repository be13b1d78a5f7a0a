//! `sextant-bench` (and `sextant-bench`, which runs it): the benchmark suites, kept out of the
//! service's binary. Each measures Sextant beside a baseline run in the same command, so the
//! ratio holds on a shared, noisy machine; `benches/RESULTS.md` records the figures with the
//! commands that produced them.
//!
//! | suite | module | against |
//! |---|---|---|
//! | `engine` | [`engine`] | the NumPy reference (`benches/reference.py`) |
//! | `portfolio` | [`portfolio`] | PyPortfolioOpt; resampling and the sweep |
//! | `gpu` | [`gpu`] | the CPU backend (parity, then timing) |
//! | `service` | [`service`] | a FastAPI + NumPy service; typed gRPC beside HTTP JSON |
//! | `fairness` | [`fairness`] | one lane against two |
//! | `plan` | [`plan`] | monteplan (PyPI) on its default plan; the couple and its claiming solver |
//! | `sampler` | [`sampler`] | Philox: variance reduction and time to a standard error |
//! | `backends` | — | what each backend opens here (as `sextant backends`) |

mod engine;
mod fairness;
mod gpu;
mod plan;
mod portfolio;
mod sampler;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "sextant-bench",
    version,
    about = "Sextant's benchmarks, each beside its baseline in the same run"
)]
struct Cli {
    #[command(flatten)]
    engine: sextant_service::EngineArgs,
    /// Paths: of the engine suite's standard goal (default 1,000,000), of each request of the
    /// service suite (default 10,000: the engine dominates; 100: the transport shows).
    #[arg(long)]
    paths: Option<u64>,
    /// The engine suite's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON on one line.
    #[arg(long)]
    compact: bool,
    #[command(flatten)]
    bench: BenchArgs,
}

/// What `sextant-bench` measures.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Path-steps per second on the standard goal, beside NumPy.
    Engine,
    /// The frontier, resampling and the sweep (see `portfolio`).
    Portfolio,
    /// The GPU backends against the CPU, then timed (see `gpu`).
    Gpu,
    /// The service under load beside a FastAPI + NumPy baseline (see `service`).
    Service,
    /// Small requests' latency while a budget-sized one runs, two lanes against one (see
    /// `fairness`).
    Fairness,
    /// Household plans beside monteplan, the couple example and its claiming solver (see
    /// `plan`).
    Plan,
    /// The samplers of docs/model.md §6 against Philox: variance reduction at equal paths and
    /// time to a standard error (see `sampler`).
    Sampler,
    /// What each backend opens here, or why it cannot (the `sextant backends` report; the
    /// GPU check carries only this binary).
    Backends,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Suite::Engine)]
    pub suite: Suite,
    #[command(flatten)]
    pub portfolio: portfolio::PortfolioArgs,
    #[command(flatten)]
    pub service: service::ServiceArgs,
    #[command(flatten)]
    pub gpu: gpu::GpuArgs,
    #[command(flatten)]
    pub fairness: fairness::FairnessArgs,
    #[command(flatten)]
    pub plan: plan::PlanArgs,
    #[command(flatten)]
    pub sampler: sampler::SamplerArgs,
    /// Timed runs of the engine; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Paths for the NumPy reference (default: the engine's).
    #[arg(long)]
    numpy_paths: Option<u64>,
    /// Skip the NumPy reference.
    #[arg(long)]
    no_numpy: bool,
    /// The engine suite also times the standard goal under Student-t months of this ν
    /// (docs/model.md §4.1), beside the lognormal in the same run (and NumPy's t).
    #[arg(long)]
    student_t: Option<f64>,
    /// The engine suite also times the standard goal in a two-regime market (docs/model.md
    /// §4.2: calm, the goal's own market, and a crisis at −10% ± 35%, leaving calm 3% of
    /// months and crisis 15%), beside the lognormal in the same run (and NumPy's).
    #[arg(long)]
    regimes: bool,
    /// The engine suite also times the standard goal under AR(1) inflation (docs/model.md
    /// §4.4: 2.5% ± 1.5%, correlation −0.2 with the market), beside the lognormal in the same
    /// run (and NumPy's).
    #[arg(long)]
    inflation: bool,
    /// The engine suite also times the standard goal bootstrapped from the synthetic history
    /// (docs/model.md §4.3: examples/history-synthetic.csv, 60/40, stationary blocks of 60
    /// months, the history's inflation), beside the lognormal in the same run (and NumPy's).
    #[arg(long)]
    bootstrap: bool,
    /// The engine suite also times the standard goal held in five correlated assets
    /// (docs/model.md §4.5): rebalanced monthly (§1's one portfolio) and each asset simulated
    /// under annual rebalancing, beside the lognormal in the same run (and NumPy's).
    #[arg(long)]
    per_asset: bool,
    /// The reference script.
    #[arg(long, default_value = "benches/reference.py")]
    reference: PathBuf,
    /// The Python interpreter with NumPy.
    #[arg(long, env = "SEXTANT_PYTHON", default_value = "python3")]
    pub python: String,
}

fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer complains on stderr when there is no runtime
    // directory; it only orders devices, so switch it off then, before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    cli.engine.init()?;
    let engine = || cli.engine.engine();
    let args = &cli.bench;
    match args.suite {
        Suite::Engine => print(cli, &engine::run(&engine()?, args, cli.paths, cli.seed)?),
        Suite::Gpu => print(cli, &gpu::run(&args.gpu)?),
        Suite::Service => print(
            cli,
            &service::run(&engine()?, &cli.service_args(), &args.python)?,
        ),
        Suite::Fairness => print(cli, &fairness::run(&engine()?, &args.fairness)?),
        Suite::Portfolio => print(
            cli,
            &portfolio::run(&engine()?, &args.portfolio, &args.python)?,
        ),
        Suite::Plan => print(cli, &plan::run(&engine()?, &args.plan, &args.python)?),
        Suite::Sampler => print(cli, &sampler::run(&engine()?, &args.sampler)?),
        Suite::Backends => print(cli, &sextant_engine::backend::backends_report()),
    }
}

impl Cli {
    /// The service suite's settings, its paths per request from the global `--paths`.
    fn service_args(&self) -> service::ServiceArgs {
        let mut service = self.bench.service.clone();
        service.paths = self.paths.unwrap_or(service.paths);
        service
    }
}

fn print<T: Serialize>(cli: &Cli, value: &T) -> Result<()> {
    let text = if cli.compact {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (one id per argument, among them): two `--paths` in one
    /// command line parse as neither.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn paths_reach_the_service_suite() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "sextant-bench",
            "--backend",
            "cpu",
            "--suite",
            "service",
            "--paths",
            "100",
            "--seconds",
            "2",
            "--no-baseline",
        ])
        .unwrap();
        assert_eq!(cli.service_args().paths, 100);
        let default = super::Cli::try_parse_from(["sextant-bench", "--suite", "service"]).unwrap();
        assert_eq!(default.service_args().paths, 10_000);
    }
}
