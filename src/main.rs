//! steerd command line: parse arguments → config → build → run. No packet logic here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use steerd::app::{self, Appliance, RunOptions};
use steerd::bench::{self, BenchOptions};

#[derive(Parser)]
#[command(
    name = "steerd",
    version,
    about = "Predictive, steering-aware poll-mode packet forwarding"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the appliance (the embedded default config when --config is not given).
    Run {
        /// Configuration file (TOML); STEERD_<SECTION>__<KEY> variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Stop after this many seconds (default: until Ctrl-C or inputs run out).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the final stats as one JSON object to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Number of workers (overrides general.workers).
        #[arg(long)]
        workers: Option<usize>,
        /// No per-second stats lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a configuration (and its routes file) and exit.
    Check {
        /// Configuration file (default: the embedded one).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Measure the in-memory pipeline and print one JSON object.
    Bench {
        /// Path(s): io, lpm, steer; several (comma-separated) run alternately.
        #[arg(long, default_value = "lpm", value_delimiter = ',')]
        path: Vec<String>,
        /// Routes in the table (1 = one covering route; more = a BGP-like synthetic table).
        #[arg(long, default_value_t = 1)]
        routes: usize,
        /// Workers.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Frame size in bytes (without FCS).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Runs per path, alternating between paths.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Distinct flows (destinations).
        #[arg(long, default_value_t = 8192)]
        flows: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("steerd: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode, app::SetupError> {
    match cli.cmd {
        Cmd::Run {
            config,
            duration,
            json,
            workers,
            quiet,
        } => {
            let cfg = app::load_config(config.as_deref())?;
            let opts = RunOptions {
                duration: duration.map(Duration::from_secs_f64),
                json,
                quiet,
                workers,
                io_mode: false,
            };
            let a = Appliance::build(cfg, &opts)?;
            eprintln!(
                "steerd: {} workers, config {}; Ctrl-C stops",
                a.workers(),
                a.config.source.name
            );
            app::install_signal_handlers();
            let s = a.run(&opts)?;
            app::print_summary(&s);
            Ok(if s.total.accounted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Check { config } => {
            let cfg = app::load_config(config.as_deref())?;
            app::build_tables(&cfg, &[], None)?;
            println!("{}: ok ({} ports)", cfg.source.name, cfg.ports.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            path,
            routes,
            workers,
            size,
            duration,
            repeat,
            flows,
        } => {
            let o = BenchOptions {
                paths: path,
                routes,
                workers,
                size,
                duration,
                repeat,
                flows,
            };
            let v = bench::run(&o)?;
            println!(
                "{}",
                serde_json::to_string(&v).expect("JSON of plain values")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
