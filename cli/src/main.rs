//! `sextant`: the command line of the Sextant simulation engine.
//!
//! Every command reads a JSON request (docs/model.md field names), runs it on the engine and prints
//! JSON on stdout. Errors go to stderr, name the field, and exit non-zero (2 for a bad request,
//! 1 for anything else).

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde::Serialize;
use sextant_engine::frontier::{FrontierError, FrontierRequest, FrontierRequestError};
use sextant_engine::history::History;
use sextant_engine::plan::solve as plan_solve;
use sextant_engine::risk::RiskRequest;
use sextant_engine::scenarios::{self, SensitivityRequest, WhatIfRequest};
use sextant_engine::sweep::{SweepError, SweepRequest};
use sextant_engine::{
    solve, Engine, EngineError, GoalRequest, Options, PlanRequest, ValidationError,
};
use sextant_service::{charts, input, rescore};
use sextant_store as store;

#[derive(Parser)]
#[command(
    name = "sextant",
    version,
    about = "Goal Monte Carlo, solvers and scenarios for financial planning"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    engine: sextant_service::EngineArgs,
    /// Override options.paths of the request.
    #[arg(long, global = true)]
    paths: Option<u64>,
    /// Override options.seed of the request.
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Print JSON on one line.
    #[arg(long, global = true)]
    compact: bool,
    /// A TOML configuration file (keys: the long flags, `_` for `-`); flags and environment
    /// variables override it.
    #[arg(long, global = true, env = "SEXTANT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also draw the result as SVG into FILE: the fan chart of `simulate`, wealth in today's
    /// dollars by age for `plan`, the frontier of `frontier` and `sweep` (with success per
    /// point).
    #[arg(long, global = true, value_name = "FILE")]
    svg: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Goal Monte Carlo: success probability, fan chart, depletion, shortfall. The input may
    /// also be a JSON array of requests, run as one batch.
    Simulate {
        /// The request file, or - for standard input.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// A household plan (docs/model.md §5): people and lifetimes, accounts, incomes, Social
    /// Security, a spending rule, goals and taxes; success, estate, taxes and fan charts.
    /// Plans run on the CPU on every device for now.
    /// `plan solve spending|claiming|withdrawal-order FILE` runs the plan solvers.
    #[command(args_conflicts_with_subcommands = true)]
    Plan {
        #[command(subcommand)]
        solve: Option<PlanCommand>,
        /// The plan file, or - for standard input.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Solve for the contribution or withdrawal that meets the goal's success threshold.
    Solve {
        #[command(subcommand)]
        target: SolveTarget,
    },
    /// A base request and variants (merge patches of goal and market), with common random numbers.
    WhatIf {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Move each input by ± a relative step and rank the changes in success (a tornado).
    Sensitivity {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// The exact efficient frontier: corners, K points, minimum variance, maximum Sharpe,
    /// targets, and optionally Michaud's resampled frontier (docs/model.md §2).
    Frontier {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// The goal Monte Carlo at each frontier point, with common random numbers (docs/model.md §3).
    Sweep {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Risk metrics of an allocation: volatility, Sharpe, Sortino, VaR, CVaR, drawdowns, stress.
    Risk {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Measure speed beside a baseline (`--suite engine|portfolio|gpu|service|fairness`): runs
    /// the `sextant-bench` binary beside this one (`cargo build --release -p sextant-benches`),
    /// which keeps the benchmarks out of the service's binary. `sextant bench --help` is its.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Serve every operation over HTTP (see `serve --help` for limits, batching and keys).
    Serve(Box<sextant_service::ServeArgs>),
    /// The agent tools over the Model Context Protocol on stdin/stdout, for a local agent
    /// (the service's settings apply: database, limits, cache; its addresses are not used).
    /// The service also answers MCP over HTTP at `/mcp`.
    Mcp(Box<sextant_service::ServeArgs>),
    /// List the backends: what each runs on, or why it cannot run here, and what `auto` picks.
    Backends,
    /// Apply the database migrations (`serve` and `rescore` also apply them on start).
    Migrate(store::DatabaseArgs),
    /// Stored goals: `generate N` creates realistic synthetic ones (demos, benchmarks).
    Goals {
        #[command(subcommand)]
        action: GoalsAction,
    },
    /// Named histories of monthly returns that bootstrap markets resample (docs/model.md §4.3):
    /// `import FILE --name NAME` (CSV with a header of asset names and an optional `inflation`
    /// column, or JSON `{"assets", "months"}`), `list`. A request naming one
    /// (`"history": "NAME"`) reads it from the same database, as the service does for its
    /// caller (`--owner`, or `SEXTANT_OWNER`; `anonymous` is a service's without keys).
    Histories {
        #[command(subcommand)]
        action: HistoriesAction,
    },
    /// Stored household plans for the nightly re-score: `import FILE` (JSON lines), `generate N`
    /// (realistic synthetic households).
    Plans {
        #[command(subcommand)]
        action: PlansAction,
    },
    /// Re-score every stored goal and plan (or a filter's): a goal's success probability,
    /// required monthly savings for its threshold and funding status; a plan's success, the
    /// spending it sustains at its threshold and funding status. Workers given the same
    /// --run-key share the run; a killed worker's shards are taken over when its lease
    /// expires. `--paths` sets paths per goal (default 2000).
    Rescore(RescoreArgs),
}

#[derive(Subcommand)]
enum GoalsAction {
    /// Insert N synthetic goals (`--seed` makes them reproducible; default 1).
    Generate {
        n: usize,
        /// The date their horizons count from, YYYY-MM-DD (default today).
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        database: store::DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum HistoriesAction {
    /// Check and store a history under a name (a stored history is never replaced).
    Import {
        /// A CSV file (`.csv`), or a JSON history; - for standard input (JSON).
        input: PathBuf,
        /// 1 to 64 letters, digits, `-`, `_` or `.`.
        #[arg(long)]
        name: String,
        /// Whose history it is: the owner a service caller has (`key:NAME`, `jwt:SUB`, or
        /// `anonymous` without keys).
        #[arg(long, env = "SEXTANT_OWNER", default_value = "anonymous")]
        owner: String,
        #[command(flatten)]
        database: store::DatabaseArgs,
    },
    /// The owner's histories: name, assets, months, whether they carry inflation.
    List {
        #[arg(long, env = "SEXTANT_OWNER", default_value = "anonymous")]
        owner: String,
        #[command(flatten)]
        database: store::DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum PlansAction {
    /// Store the plans of a JSON-lines file, one `{"user_id", "name", "as_of", "request"}` a
    /// line (`as_of`, the date of the request's ages and balances, defaults to today; the
    /// request is a `sextant plan` document). Every line is checked first: a bad line stores
    /// nothing and names its line and field.
    Import {
        input: PathBuf,
        #[command(flatten)]
        database: store::DatabaseArgs,
    },
    /// Insert N synthetic households (`--seed` makes them reproducible; default 1).
    Generate {
        n: usize,
        /// The date their ages and balances are of, YYYY-MM-DD (default today).
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        database: store::DatabaseArgs,
    },
}

#[derive(clap::Args)]
struct RescoreArgs {
    /// The run to create or join (default `nightly-<as_of>`).
    #[arg(long, env = "SEXTANT_RUN_KEY")]
    run_key: Option<String>,
    /// Only goals (`goal`) or only plans (`plan`); default both.
    #[arg(long, value_parser = ["goal", "plan"])]
    kind: Option<String>,
    /// Only goals of this category (and so no plans).
    #[arg(long)]
    category: Option<String>,
    /// Only goals of this priority (and so no plans).
    #[arg(long)]
    priority: Option<String>,
    /// Only this user's goals and plans.
    #[arg(long)]
    user: Option<String>,
    /// Goals per shard: the unit of leasing and of each commit.
    #[arg(long, default_value_t = 2_000)]
    shard_size: u64,
    /// Paths per plan, in each run of its sustainable-spending search.
    #[arg(long, default_value_t = 1_000)]
    plan_paths: u64,
    /// Score each goal's success to this standard error (e.g. 0.005) under the tools' sampler,
    /// in rounds from --paths, in place of a fixed number of paths (docs/model.md §6).
    #[arg(long)]
    precision: Option<f64>,
    /// Plans per shard.
    #[arg(long, default_value_t = 50)]
    plan_shard_size: u64,
    /// The date horizons count from, YYYY-MM-DD (default today, UTC).
    #[arg(long)]
    as_of: Option<String>,
    /// This worker's name in leases (default host-pid); a worker restarted under the same
    /// name takes its leases back at once.
    #[arg(long, env = "SEXTANT_WORKER")]
    worker: Option<String>,
    /// Seconds a lease lasts; a dead worker's shard is taken over after it.
    #[arg(long, env = "SEXTANT_LEASE_S", default_value_t = 120)]
    lease_s: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    database: store::DatabaseArgs,
}

#[derive(Subcommand)]
enum PlanCommand {
    /// The plan solvers of docs/model.md §5, with common random numbers.
    Solve {
        #[command(subcommand)]
        target: PlanSolveTarget,
    },
}

#[derive(Subcommand)]
enum PlanSolveTarget {
    /// The largest scale of essential + discretionary spending meeting `plan.success_threshold`.
    Spending {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Every whole claim age 62 … 70 per benefit (every pair for a couple): success and median
    /// real estate of each, and the best.
    Claiming {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// The default order, tax-deferred first, proportional and bracket-fill at 12% and 22%.
    WithdrawalOrder {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
}

#[derive(Subcommand)]
enum SolveTarget {
    /// The least monthly contribution that reaches the success threshold.
    RequiredContribution {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// The largest monthly withdrawal (today's money) that keeps the success threshold.
    SustainableWithdrawal {
        #[arg(default_value = "-")]
        input: PathBuf,
    },
}

fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer complains on stderr when there is no runtime
    // directory (containers, CI); it only orders devices, so switch it off then. Set here,
    // before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    if let Err(err) = config::load() {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(if is_bad_request(&err) { 2 } else { 1 })
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    cli.engine.init()?;
    // The device is opened only by the commands that simulate: `frontier`, `risk`,
    // `backends`, `migrate` and the re-score never start Vulkan or compile CUDA kernels.
    let engine = || cli.engine.engine();
    match &cli.command {
        Command::Simulate { input } => {
            let text = input::read_source(input)?;
            if text.trim_start().starts_with('[') {
                let mut requests: Vec<GoalRequest> = parse_request(&text)?;
                for r in &mut requests {
                    cli.apply_overrides(&mut r.options);
                }
                print(cli, &engine()?.simulate_batch(&requests)?)
            } else {
                let mut request: GoalRequest = parse_request(&text)?;
                cli.apply_overrides(&mut request.options);
                let result = engine()?.simulate(&request)?;
                cli.draw(&result, charts::fan_chart)?;
                print(cli, &result)
            }
        }
        Command::Plan { solve, input } => {
            let input = match solve {
                None => input,
                Some(PlanCommand::Solve { target }) => match target {
                    PlanSolveTarget::Spending { input }
                    | PlanSolveTarget::Claiming { input }
                    | PlanSolveTarget::WithdrawalOrder { input } => input,
                },
            };
            let mut request: PlanRequest = input::parse(&input::read_source(input)?)?;
            cli.apply_overrides(&mut request.options);
            let engine = engine()?;
            match solve {
                None => {
                    let result = engine.plan(&request)?;
                    cli.draw(&result, charts::plan_fan_chart)?;
                    print(cli, &result)
                }
                Some(PlanCommand::Solve { target }) => match target {
                    PlanSolveTarget::Spending { .. } => {
                        print(cli, &plan_solve::sustainable_spending(&engine, &request)?)
                    }
                    PlanSolveTarget::Claiming { .. } => {
                        print(cli, &plan_solve::claiming(&engine, &request)?)
                    }
                    PlanSolveTarget::WithdrawalOrder { .. } => {
                        print(cli, &plan_solve::withdrawal_orders(&engine, &request)?)
                    }
                },
            }
        }
        Command::Solve { target } => {
            let (input, solver): (_, fn(&Engine, &GoalRequest) -> Result<_, EngineError>) =
                match target {
                    SolveTarget::RequiredContribution { input } => {
                        (input, solve::required_contribution)
                    }
                    SolveTarget::SustainableWithdrawal { input } => {
                        (input, solve::sustainable_withdrawal)
                    }
                };
            let mut request: GoalRequest = read_request(input)?;
            cli.apply_overrides(&mut request.options);
            print(cli, &solver(&engine()?, &request)?)
        }
        Command::WhatIf { input } => {
            let mut request: WhatIfRequest = read_request(input)?;
            cli.apply_overrides(&mut request.options);
            print(cli, &scenarios::what_if(&engine()?, &request)?)
        }
        Command::Sensitivity { input } => {
            let mut request: SensitivityRequest = read_request(input)?;
            cli.apply_overrides(&mut request.options);
            print(cli, &scenarios::sensitivity(&engine()?, &request)?)
        }
        Command::Frontier { input } => {
            let request: FrontierRequest = input::parse(&input::read_source(input)?)?;
            let report = request.run()?;
            cli.draw(&report, charts::frontier_chart)?;
            print(cli, &report)
        }
        Command::Sweep { input } => {
            let mut request: SweepRequest = input::parse(&input::read_source(input)?)?;
            cli.apply_overrides(&mut request.options);
            let report = request.run(&engine()?)?;
            cli.draw(&report, charts::frontier_chart)?;
            print(cli, &report)
        }
        Command::Risk { input } => {
            let mut request: RiskRequest = input::parse(&input::read_source(input)?)?;
            if let Some(paths) = cli.paths {
                request.options.paths = paths;
            }
            if let Some(seed) = cli.seed {
                request.options.seed = seed;
            }
            print(cli, &request.run()?)
        }
        Command::Bench { args } => run_bench(cli, args),
        Command::Backends => print(cli, &sextant_engine::backend::backends_report()),
        Command::Serve(args) => {
            runtime()?.block_on(sextant_service::serve(engine()?, (**args).clone()))
        }
        Command::Mcp(args) => {
            runtime()?.block_on(sextant_service::serve_mcp(engine()?, (**args).clone()))
        }
        Command::Migrate(database) => runtime()?.block_on(async {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            let store = store::Store::open(database).await?;
            print(cli, &serde_json::json!({"migrated": store.shown()}))
        }),
        Command::Goals {
            action: GoalsAction::Generate { n, as_of, database },
        } => {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            runtime()?.block_on(generate_goals(cli, *n, as_of.as_deref(), database))
        }
        Command::Histories { action } => {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            runtime()?.block_on(histories(cli, action))
        }
        Command::Plans {
            action: PlansAction::Import { input, database },
        } => {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            runtime()?.block_on(import_plans(cli, input, database))
        }
        Command::Plans {
            action: PlansAction::Generate { n, as_of, database },
        } => {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            runtime()?.block_on(generate_plans(cli, *n, as_of.as_deref(), database))
        }
        Command::Rescore(args) => {
            sextant_service::init_logs(sextant_service::LogFormat::Text, "warn");
            runtime()?.block_on(rescore_goals(cli, args))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `sextant bench …`: the `sextant-bench` binary beside this one (or `SEXTANT_BENCH_BIN`), given
/// the global flags this command line was given and the rest as they came.
fn run_bench(cli: &Cli, args: &[std::ffi::OsString]) -> Result<()> {
    let bench = match std::env::var_os("SEXTANT_BENCH_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name("sextant-bench"),
    };
    if !bench.is_file() {
        anyhow::bail!(
            "the benchmarks are the sextant-bench binary, not found at {}: build it with \
             `cargo build --release -p sextant-benches` (or set SEXTANT_BENCH_BIN)",
            bench.display()
        );
    }
    let mut command = std::process::Command::new(&bench);
    command.args(cli.engine.as_flags());
    let optional = [
        ("--paths", cli.paths.map(|v| v.to_string())),
        ("--seed", cli.seed.map(|v| v.to_string())),
    ];
    for (flag, value) in optional {
        if let Some(value) = value {
            command.arg(flag).arg(value);
        }
    }
    if cli.compact {
        command.arg("--compact");
    }
    let status = command.args(args).status()?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// `sextant histories import|list`.
async fn histories(cli: &Cli, action: &HistoriesAction) -> Result<()> {
    match action {
        HistoriesAction::Import {
            input,
            name,
            owner,
            database,
        } => {
            let text = input::read_source(input)?;
            let csv = input
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let history = if csv {
                History::from_csv(&text)?
            } else {
                let history: History = input::parse(&text)?;
                history.check("history")?;
                history
            };
            sextant_engine::history::check_name(name)?;
            let store = store::Store::open(database).await?;
            if !store.insert_history(owner, name, &history).await? {
                anyhow::bail!(
                    "{owner} has a history named {name:?} already: a stored history is never replaced, so import this one under another name"
                );
            }
            print(
                cli,
                &serde_json::json!({
                    "name": name,
                    "owner": owner,
                    "assets": history.assets,
                    "months": history.months.len(),
                    "inflation": history.has_inflation(),
                }),
            )
        }
        HistoriesAction::List { owner, database } => {
            let store = store::Store::open(database).await?;
            print(
                cli,
                &serde_json::json!({"histories": store.list_histories(owner).await?}),
            )
        }
    }
}

/// Read a goal request (or a what-if, a sensitivity) from `source`; see [`parse_request`].
fn read_request<T: serde::de::DeserializeOwned>(source: &std::path::Path) -> Result<T> {
    parse_request(&input::read_source(source)?)
}

/// Parse a goal request (or a list of them, a what-if, a sensitivity); the stored histories it
/// names come from the database of `DATABASE_URL` (or the default SQLite file), as
/// `SEXTANT_OWNER`'s (default `anonymous`, a service's caller without keys).
fn parse_request<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    if !text.contains("bootstrap") {
        return Ok(input::parse(text)?);
    }
    let mut document: serde_json::Value = input::parse(text)?;
    if store::histories::names_a_history(&document) {
        let database = store::DatabaseArgs {
            database_url: std::env::var("DATABASE_URL").ok(),
            ..store::DatabaseArgs::default()
        };
        let owner = std::env::var("SEXTANT_OWNER").unwrap_or_else(|_| "anonymous".into());
        runtime()?.block_on(async {
            let store = store::Store::open(&database).await?;
            store::histories::resolve_histories(&store, &owner, &mut document).await
        })?;
    }
    Ok(input::parse_value(document)?)
}

/// `sextant goals generate N`.
async fn generate_goals(
    cli: &Cli,
    n: usize,
    as_of: Option<&str>,
    database: &store::DatabaseArgs,
) -> Result<()> {
    let as_of = rescore::check(&rescore::RunSpec {
        as_of: as_of.map(str::to_string),
        ..rescore::RunSpec::default()
    })?;
    let store = store::Store::open(database).await?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(n as u64);
    const CHUNK: usize = 10_000;
    let seed = cli.seed.unwrap_or(1);
    for (i, start) in (0..n).step_by(CHUNK).enumerate() {
        let count = CHUNK.min(n - start);
        // Each chunk from its own seed: any N gives the same first goals.
        let goals =
            store::goals::synthetic_goals(count, seed.wrapping_mul(1_000_003) ^ i as u64, as_of);
        store.insert_goals(&goals).await?;
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    print(
        cli,
        &serde_json::json!({
            "inserted": n,
            "goals": store.count_goals().await?,
            "seconds": started.elapsed().as_secs_f64(),
            "database": store.shown(),
        }),
    )
}

/// `sextant plans generate N`.
async fn generate_plans(
    cli: &Cli,
    n: usize,
    as_of: Option<&str>,
    database: &store::DatabaseArgs,
) -> Result<()> {
    let as_of = rescore::check(&rescore::RunSpec {
        as_of: as_of.map(str::to_string),
        ..rescore::RunSpec::default()
    })?;
    let store = store::Store::open(database).await?;
    let started = std::time::Instant::now();
    const CHUNK: usize = 2_000;
    let seed = cli.seed.unwrap_or(1);
    for (i, start) in (0..n).step_by(CHUNK).enumerate() {
        let count = CHUNK.min(n - start);
        // Each chunk from its own seed: any N gives the same first plans.
        let plans =
            store::plans::synthetic_plans(count, seed.wrapping_mul(1_000_003) ^ i as u64, as_of);
        store.insert_plans(&plans).await?;
    }
    print(
        cli,
        &serde_json::json!({
            "inserted": n,
            "plans": store.count_plans().await?,
            "seconds": started.elapsed().as_secs_f64(),
            "database": store.shown(),
        }),
    )
}

/// One line of a `sextant plans import` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportedPlan {
    user_id: String,
    name: String,
    #[serde(default)]
    as_of: Option<String>,
    request: sextant_engine::PlanRequest,
}

/// `sextant plans import FILE`: every line read and its plan prepared as of its own date
/// before anything is stored; a bad line is an error naming the line and the field.
async fn import_plans(
    cli: &Cli,
    source: &std::path::Path,
    database: &store::DatabaseArgs,
) -> Result<()> {
    let text = input::read_source(source)?;
    let today = rescore::today().format(store::rescore_runs::DATE)?;
    let mut plans = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str, problem: String| input::InputError {
            field: format!("line {}: {field}", i + 1),
            problem,
        };
        let imported: ImportedPlan = input::parse(line).map_err(|e| at(&e.field, e.problem))?;
        for (field, value) in [("user_id", &imported.user_id), ("name", &imported.name)] {
            if value.is_empty() || value.len() > 200 {
                return Err(at(field, "must be 1 to 200 characters".into()).into());
            }
        }
        let plan = store::plans::StoredPlan {
            id: 0,
            user_id: imported.user_id,
            name: imported.name,
            request: imported.request,
            as_of: imported.as_of.unwrap_or_else(|| today.clone()),
        };
        let as_of = time::Date::parse(&plan.as_of, store::rescore_runs::DATE).map_err(|e| {
            at(
                "as_of",
                format!("must be YYYY-MM-DD, got {:?}: {e}", plan.as_of),
            )
        })?;
        let request = plan
            .request_as_of(as_of, plan.request.options.paths())
            .map_err(|problem| at("as_of", problem))?;
        sextant_engine::plan::prepare_plan(&request)
            .map_err(|e| at(&format!("request.{}", e.field), e.problem))?;
        plans.push(plan);
    }
    let store = store::Store::open(database).await?;
    store.insert_plans(&plans).await?;
    print(
        cli,
        &serde_json::json!({
            "inserted": plans.len(),
            "plans": store.count_plans().await?,
            "database": store.shown(),
        }),
    )
}

/// `sextant rescore`.
async fn rescore_goals(cli: &Cli, args: &RescoreArgs) -> Result<()> {
    let spec = rescore::RunSpec {
        run_key: args.run_key.clone(),
        filter: rescore::RunFilter {
            kind: args.kind.as_deref().map(|kind| match kind {
                "plan" => rescore::ScoreKind::Plan,
                _ => rescore::ScoreKind::Goal,
            }),
            category: args.category.clone(),
            priority: args.priority.clone(),
            user_id: args.user.clone(),
        },
        paths: cli.paths.unwrap_or(2_000),
        precision: args.precision,
        plan_paths: args.plan_paths,
        shard_size: args.shard_size,
        plan_shard_size: args.plan_shard_size,
        as_of: args.as_of.clone(),
    };
    rescore::check(&spec)?;
    let store = store::Store::open(&args.database).await?;
    let run = rescore::ensure_run(&store, &spec, "cli").await?;
    let worker = rescore::WorkerConfig {
        name: args
            .worker
            .clone()
            .unwrap_or_else(|| format!("{}-{}", sextant_service::hostname(), std::process::id())),
        lease: std::time::Duration::from_secs(args.lease_s.max(1)),
        progress: !args.quiet,
        cpu: cli.engine.cpu_backend()?,
        pool: None,
        stop: Default::default(),
    };
    let goal_paths = match run.precision {
        Some(s) => format!("to a standard error of {s}, from {} paths", run.paths),
        None => format!("{} paths each", run.paths),
    };
    eprintln!(
        "run {} ({}): {} goals ({goal_paths}) and {} plans ({} paths) in {} shards, as of {}; \
         worker {}",
        run.id,
        run.run_key,
        run.total_goals,
        run.total_plans,
        run.plan_paths,
        run.shards,
        run.as_of,
        worker.name
    );
    let report = rescore::work(&store, &run, &worker).await?;
    print(cli, &report)
}

/// Whether an error is the request's fault (exit 2): malformed or invalid input, constraints
/// no portfolio meets, a target outside the frontier.
fn is_bad_request(err: &anyhow::Error) -> bool {
    let frontier = |e: &FrontierError| !matches!(e, FrontierError::Numerical(_));
    err.downcast_ref::<input::InputError>().is_some()
        || matches!(
            err.downcast_ref::<rescore::RescoreError>(),
            Some(rescore::RescoreError::Invalid { .. })
        )
        || err.downcast_ref::<ValidationError>().is_some()
        || matches!(
            err.downcast_ref::<store::histories::ResolveError>(),
            Some(store::histories::ResolveError::Unknown { .. })
        )
        || matches!(
            err.downcast_ref::<EngineError>(),
            Some(EngineError::Invalid(_))
        )
        || match err.downcast_ref::<FrontierRequestError>() {
            Some(FrontierRequestError::Invalid(_)) => true,
            Some(FrontierRequestError::Solver(e)) => frontier(e),
            Some(FrontierRequestError::Cancelled) | None => false,
        }
        || match err.downcast_ref::<SweepError>() {
            Some(SweepError::Invalid(_)) | Some(SweepError::Engine(EngineError::Invalid(_))) => {
                true
            }
            Some(SweepError::Frontier(e)) => frontier(e),
            _ => false,
        }
}

impl Cli {
    /// With `--svg FILE`, draw `result` into FILE.
    fn draw<T: Serialize>(
        &self,
        result: &T,
        chart: fn(&serde_json::Value) -> Result<String, String>,
    ) -> Result<()> {
        if let Some(path) = &self.svg {
            let svg = chart(&serde_json::to_value(result)?).map_err(anyhow::Error::msg)?;
            std::fs::write(path, svg)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn apply_overrides(&self, options: &mut Options) {
        if let Some(paths) = self.paths {
            options.paths = Some(paths);
        }
        if let Some(seed) = self.seed {
            options.seed = seed;
        }
    }
}

fn print<T: Serialize>(cli: &Cli, value: &T) -> Result<()> {
    use std::io::Write;
    let text = if cli.compact {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    // A reader that stops early (`| head`) is not an error of ours.
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks of every command and flag.
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
