//! steerd command line (TPE subcommands wired on the dev-tpe branch; main.rs is owned by
//! the integration branch, which hooks the same `Args` structs into its tree).

use clap::{Parser, Subcommand};
use steerd::tpe::cli::{
    TelemetryExportArgs, TpeDatasetArgs, TpeEvalArgs, run_dataset, run_eval, run_export,
};

#[derive(Parser)]
#[command(
    name = "steerd",
    about = "Predictive, steering-aware poll-mode packet forwarding appliance"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Traffic Prediction Engine tools.
    Tpe {
        #[command(subcommand)]
        cmd: TpeCmd,
    },
    /// Telemetry tools.
    Telemetry {
        #[command(subcommand)]
        cmd: TelemetryCmd,
    },
}

#[derive(Subcommand)]
enum TpeCmd {
    /// Evaluate the model against the baselines on held-out data.
    Eval(TpeEvalArgs),
    /// Write training features and targets (.npy) for scripts/train.py.
    Dataset(TpeDatasetArgs),
}

#[derive(Subcommand)]
enum TelemetryCmd {
    /// Export telemetry buckets as CSV.
    Export(TelemetryExportArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Tpe {
            cmd: TpeCmd::Eval(a),
        } => run_eval(&a),
        Cmd::Tpe {
            cmd: TpeCmd::Dataset(a),
        } => run_dataset(&a),
        Cmd::Telemetry {
            cmd: TelemetryCmd::Export(a),
        } => run_export(&a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("steerd: {e}");
            std::process::exit(1);
        }
    }
}
