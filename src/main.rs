//! steerd command line: parse arguments → config → build → run. No packet logic here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
#[cfg(feature = "tpe")]
use steerd::tpe::cli::{
    TelemetryExportArgs, TpeDatasetArgs, TpeEvalArgs, run_dataset, run_eval, run_export,
};

use steerd::app::{self, Appliance, RunOptions};
use steerd::bench::{self, BenchOptions};
use steerd::ctl::{self, client, proto::Request};

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
        #[arg(long, value_parser = parse_seconds)]
        duration: Option<f64>,
        /// Write the final stats as one JSON object to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Number of workers (overrides general.workers).
        #[arg(long)]
        workers: Option<usize>,
        /// No per-second stats (no lines, no screen).
        #[arg(long, short)]
        quiet: bool,
        /// Plain stats lines even on a terminal (no live screen).
        #[arg(long)]
        plain: bool,
        /// Serve /metrics and /status on ADDRESS:PORT, or "off" (default: [ctl]
        /// metrics_listen, else 127.0.0.1:9477).
        #[arg(long, value_name = "ADDR|off")]
        metrics_listen: Option<String>,
        /// Listen for `steerd ctl` on this Unix socket, or "off" (default: [ctl] socket,
        /// else /run/steerd/ctl.sock for root, $XDG_RUNTIME_DIR/steerd.sock or
        /// /tmp/steerd-UID.sock for others).
        #[arg(long, value_name = "PATH|off")]
        ctl_socket: Option<String>,
        /// Io forwarding: packets from port p leave on port p^1 unparsed and unchanged
        /// (the testpmd `io` baseline: measures the ports and the loop, not the pipeline).
        #[arg(long)]
        io: bool,
        /// Run a generated scenario in closed loop instead of the ports: generator →
        /// marker → SAFE → telemetry → TPE → RAM → tables (surge, diurnal or mixed;
        /// the embedded conf/ram-surge.toml unless --config has a [ram] section).
        #[arg(long, value_name = "NAME")]
        scenario: Option<String>,
        /// RAM mode of a scenario run: predictive, reactive or static (default: [ram] mode).
        #[arg(long, value_name = "MODE", requires = "scenario")]
        ram: Option<String>,
        /// Scenario run: do not pace to wall time (same result, sooner).
        #[arg(long, requires = "scenario")]
        fast: bool,
        /// Scenario run: the scenario's seed.
        #[arg(long, default_value_t = 2026, requires = "scenario")]
        seed: u64,
        /// Scenario run: a link fails, A,B@MIN[+DUR] (logical minutes from the start;
        /// without +DUR until the end), e.g. core-a,fra1@120+30. Repeatable.
        #[arg(long, value_name = "A,B@MIN[+DUR]", requires = "scenario")]
        fail_link: Vec<String>,
        /// Scenario run, a diagnostic: what the predictive RAM is given as its forecast:
        /// model (the TPE's, the default), oracle (the scenario's noise-free future rate),
        /// oracle-causal (that rate as known at the forecast's time) or clairvoyant (the
        /// generated traffic itself, noise and spikes included). All but model read the
        /// generator, which no deployment can: they bound what a better model buys.
        #[arg(long, value_name = "SOURCE", requires = "scenario")]
        forecast: Option<String>,
    },
    #[cfg(feature = "tpe")]
    /// Resource Allocation Manager tools.
    Ram {
        #[command(subcommand)]
        cmd: RamCmd,
    },
    /// Run the packet marker (IPM) of the config's [mark] section: classify flows,
    /// insert steering headers for predicted destinations, forward between port pairs;
    /// prints a JSON summary at the end.
    Mark {
        /// Configuration file with a [mark] section (and [steering] keys, [[ports]]).
        #[arg(long, short)]
        config: PathBuf,
        /// Stop after this many seconds (default: until Ctrl-C or inputs run out).
        #[arg(long, value_parser = parse_seconds)]
        duration: Option<f64>,
        /// Also write the summary JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Number of marker threads (overrides mark.threads).
        #[arg(long)]
        threads: Option<usize>,
        /// No per-second stats lines (the JSON summary is still printed at the end).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Talk to a running `steerd run` over its ctl socket.
    Ctl {
        /// The socket (default: as for `steerd run`).
        #[arg(long, short)]
        socket: Option<PathBuf>,
        /// Print the JSON response instead of text.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for an answer (drain waits for the whole drain).
        #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
        timeout: f64,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
    /// Validate a configuration (and its routes file) and exit.
    Check {
        /// Configuration file (default: the embedded one).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Measure the in-memory pipeline and print one JSON object.
    Bench {
        /// Path(s): io, lpm, steer; lpm-wfq and steer-wfq are lpm and steer with
        /// weighted transmit classes on the egress port (`tx_weights = [1, 2, 4, 8]`);
        /// several (comma-separated) run alternately.
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
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        duration: f64,
        /// Runs per path, alternating between paths.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Distinct flows (destinations).
        #[arg(long, default_value_t = 8192)]
        flows: usize,
        /// Prediction engine during the runs: off, on, or on,off (alternating, and the
        /// on/off rate ratio reported as tpe_ratio).
        #[arg(long, default_value = "off", value_delimiter = ',', value_parser = parse_on_off)]
        tpe: Vec<bool>,
        /// [tpe] time_scale of the runs with the engine on (600: a bucket every 100 ms).
        #[arg(long, default_value_t = 600.0)]
        tpe_time_scale: f64,
    },
    /// Write a capture of generated UDP flows (with valid steering headers when
    /// --steered > 0, keyed by the config's [steering]), e.g. for DPDK's net_pcap vdev.
    GenPcap {
        /// Config whose [steering] keys, epoch and destinations the headers use.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Distinct flows (one packet each).
        #[arg(long, default_value_t = 1024)]
        flows: usize,
        /// Frame size in bytes (without FCS).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Destination prefixes, comma-separated.
        #[arg(long, default_value = "198.18.0.0/16", value_delimiter = ',')]
        dst: Vec<String>,
        /// Fraction of flows carrying a valid steering header.
        #[arg(long, default_value_t = 0.0)]
        steered: f64,
        /// Steering priority (0..=3) in the headers.
        #[arg(long, default_value_t = 0)]
        priority: u8,
        /// Destination MAC of the frames.
        #[arg(long, default_value = "02:00:00:00:00:10")]
        dst_mac: String,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    #[cfg(feature = "tpe")]
    /// Traffic Prediction Engine tools: evaluate the model against the baselines, write
    /// training data.
    Tpe {
        #[command(subcommand)]
        cmd: TpeCmd,
    },
    #[cfg(feature = "tpe")]
    /// Telemetry tools: export per-destination time buckets as CSV.
    Telemetry {
        #[command(subcommand)]
        cmd: TelemetryCmd,
    },
}

#[cfg(feature = "tpe")]
#[derive(Subcommand)]
enum RamCmd {
    /// Plot predicted demand, actual traffic and active capacity of scenario runs
    /// (their --json files; without files, the last run of each mode).
    Timeline {
        /// Summaries written by `steerd run --scenario ... --json FILE`.
        files: Vec<PathBuf>,
        /// SVG file to write.
        #[arg(long)]
        plot: PathBuf,
    },
}

#[cfg(feature = "tpe")]
#[derive(Subcommand)]
enum TpeCmd {
    /// Evaluate the model and every baseline on held-out data (MAE, RMSE, MAPE per horizon).
    Eval(TpeEvalArgs),
    /// Write training features and targets (.npy) for scripts/train.py.
    Dataset(TpeDatasetArgs),
}

#[cfg(feature = "tpe")]
#[derive(Subcommand)]
enum TelemetryCmd {
    /// Export telemetry buckets as CSV.
    Export(TelemetryExportArgs),
}

#[derive(Subcommand)]
enum CtlCmd {
    /// Run state, counters, rates, latency, tables.
    Status,
    /// Routes: list, add, del.
    Routes {
        #[command(subcommand)]
        cmd: RoutesCmd,
    },
    /// Steering keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Prediction models (needs the TPE).
    Model {
        #[command(subcommand)]
        cmd: ModelCmd,
    },
    /// Scheduled events the prediction engine is told about (needs the TPE).
    Events {
        #[command(subcommand)]
        cmd: EventsCmd,
    },
    /// The live RAM's topology links and paths (needs `[ram] live = true`).
    Ram {
        #[command(subcommand)]
        cmd: RamCtlCmd,
    },
    /// Reload the configuration (all or nothing; same as SIGHUP).
    Reload {
        /// Load this file instead of the running one.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Stop receiving, drain every queue, print the final stats; steerd then exits.
    Drain,
    /// Stop gracefully (drain, then exit) without waiting for it.
    Shutdown,
}

#[derive(Subcommand)]
enum RoutesCmd {
    /// List the routes in force and where each came from.
    List,
    /// Add a route: PREFIX [via] NEXT_HOP[,NEXT_HOP...] (several = ECMP).
    Add {
        /// CIDR prefix.
        prefix: String,
        /// Next hops ("via" is optional).
        #[arg(num_args = 1.., required = true)]
        via: Vec<String>,
        /// Replace an existing route for the prefix.
        #[arg(long)]
        replace: bool,
    },
    /// Delete the route for a prefix.
    Del {
        /// CIDR prefix.
        prefix: String,
    },
}

#[derive(Subcommand)]
enum RamCtlCmd {
    /// The links (state, placed load) and each steered destination's path.
    Links,
    /// Set a link down (no path uses it) or up again: by its two ends, or its index in
    /// [[ram.links]] (`steerd ctl ram links` lists them).
    Link {
        /// down or up.
        #[arg(value_parser = ["down", "up"])]
        state: String,
        /// The link's two ends (node names), or its index alone.
        #[arg(num_args = 1..=2, required = true)]
        link: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Make a new key current; the current one stays accepted as the previous key.
    Rotate {
        /// The new key (32 hex digits); a random one when absent (printed once).
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModelCmd {
    /// Validate an ONNX model and evaluate it in shadow beside the active one; it is
    /// promoted only if it beats it. A bad model is refused and the active one stays.
    Load {
        /// The .onnx file (its spec is the .json beside it).
        path: String,
    },
}

#[derive(Subcommand)]
enum EventsCmd {
    /// List the scheduled events ([[tpe.events]] and those added here) and their state.
    List,
    /// Schedule an event: the model sees it in its event features from the next bucket
    /// and a live RAM holds capacity for it. Not written to the config.
    Add {
        /// Start in (logical) minutes from now.
        #[arg(long, conflicts_with = "start")]
        in_min: Option<u64>,
        /// Start time, RFC 3339 (e.g. 2026-12-24T18:00:00Z).
        #[arg(long)]
        start: Option<String>,
        /// Length in minutes.
        #[arg(long)]
        duration_min: u32,
        /// Destination ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        dest: Vec<u16>,
        /// Expected traffic multiplier while it runs (2 = twice the usual).
        #[arg(long)]
        factor: f32,
        /// A name (unique), to remove it by.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a scheduled event by name or index.
    Del {
        /// Name or index (see `events list`).
        event: String,
    },
}

/// Longest `--duration` or `--timeout` taken: a year, far beyond any run that is meant
/// to stop (leave `--duration` out to run until Ctrl-C).
const MAX_SECONDS: f64 = 365.0 * 86400.0;

/// A number of seconds, finite and above zero (`Duration::from_secs_f64` panics on NaN,
/// infinity and negative values; zero would stop before anything ran).
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of seconds"))?;
    if !(v > 0.0 && v <= MAX_SECONDS) {
        return Err(format!(
            "{s} seconds: expected more than 0 and at most {MAX_SECONDS} (a year)"
        ));
    }
    Ok(v)
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("\"{s}\": expected on or off")),
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STEERD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ctl::screen::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn ctl_request(cmd: CtlCmd) -> Request {
    match cmd {
        CtlCmd::Status => Request::Status,
        CtlCmd::Routes { cmd } => match cmd {
            RoutesCmd::List => Request::RoutesList,
            RoutesCmd::Add {
                prefix,
                via,
                replace,
            } => Request::RoutesAdd {
                prefix,
                via: via
                    .iter()
                    .filter(|v| v.as_str() != "via")
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
                    .collect(),
                replace,
            },
            RoutesCmd::Del { prefix } => Request::RoutesDel { prefix },
        },
        CtlCmd::Keys {
            cmd: KeysCmd::Rotate { key },
        } => Request::KeysRotate { key },
        CtlCmd::Model {
            cmd: ModelCmd::Load { path },
        } => Request::ModelLoad {
            // steerd resolves relative paths against its own working directory.
            path: std::path::absolute(&path)
                .map(|p| p.display().to_string())
                .unwrap_or(path),
        },
        CtlCmd::Events { cmd } => match cmd {
            EventsCmd::List => Request::EventsList,
            EventsCmd::Add {
                in_min,
                start,
                duration_min,
                dest,
                factor,
                name,
            } => Request::EventsAdd(ctl::tpe::EventRequest {
                start,
                start_in_min: in_min,
                duration_min,
                destinations: dest,
                factor,
                name,
            }),
            EventsCmd::Del { event } => Request::EventsDel { event },
        },
        CtlCmd::Ram { cmd } => match cmd {
            RamCtlCmd::Links => Request::RamLinks,
            RamCtlCmd::Link { state, link } => match &link[..] {
                [i] if i.parse::<usize>().is_ok() => Request::RamLink {
                    a: None,
                    b: None,
                    index: i.parse().ok(),
                    state,
                },
                [a, b] => Request::RamLink {
                    a: Some(a.clone()),
                    b: Some(b.clone()),
                    index: None,
                    state,
                },
                // One name that is not an index: the server says the other end is missing.
                _ => Request::RamLink {
                    a: link.first().cloned(),
                    b: None,
                    index: None,
                    state,
                },
            },
        },
        CtlCmd::Reload { config } => Request::Reload {
            config: config.map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string()),
        },
        CtlCmd::Drain => Request::Drain,
        CtlCmd::Shutdown => Request::Shutdown,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    steerd::panics::install_hook();
    init_logging();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("steerd: error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "tpe")]
/// Exit code of a TPE/telemetry tool: its own code, or 1 with the error printed.
fn tool_exit<E: std::fmt::Display>(r: Result<i32, E>) -> Result<ExitCode, app::SetupError> {
    match r {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("steerd: {e}");
            Ok(ExitCode::from(1))
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
            plain,
            metrics_listen,
            ctl_socket,
            io,
            scenario,
            ram,
            fast,
            seed,
            fail_link,
            forecast,
        } => {
            if let Some(scenario) = scenario {
                #[cfg(feature = "tpe")]
                {
                    let _ = (workers, plain, metrics_listen, ctl_socket, io);
                    let a = steerd::ram::cli::ScenarioArgs {
                        config,
                        scenario,
                        ram,
                        duration,
                        json,
                        fast,
                        seed,
                        quiet,
                        fail_links: fail_link,
                        forecast,
                    };
                    return tool_exit(steerd::ram::cli::run_scenario(&a));
                }
                #[cfg(not(feature = "tpe"))]
                {
                    let _ = (scenario, ram, fast, seed, fail_link, forecast);
                    eprintln!(
                        "steerd: --scenario needs the prediction engine (build with the tpe feature)"
                    );
                    return Ok(ExitCode::from(2));
                }
            }
            let cfg = app::load_config(config.as_deref())?;
            app::log_env_overrides(&cfg);
            // Flag, else the config's [ctl] setting, else the default.
            let metrics_listen = metrics_listen.or_else(|| {
                cfg.ctl
                    .metrics_listen
                    .is_none()
                    .then(|| ctl::DEFAULT_METRICS_LISTEN.to_string())
            });
            let ctl_socket = ctl_socket.or_else(|| {
                cfg.ctl
                    .socket
                    .is_none()
                    .then(|| ctl::default_socket_path().display().to_string())
            });
            let opts = RunOptions {
                duration: duration.map(Duration::from_secs_f64),
                json,
                quiet,
                workers,
                io_mode: io,
                metrics_listen,
                ctl_socket,
                screen: !plain,
            };
            let a = Appliance::build(cfg, &opts)?;
            tracing::info!(
                "{} workers, config {}; Ctrl-C or SIGTERM stops and drains, SIGHUP reloads",
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
        Cmd::Ctl {
            socket,
            json,
            timeout,
            cmd,
        } => {
            let socket = socket.unwrap_or_else(ctl::default_socket_path);
            let req = ctl_request(cmd);
            let wait = Duration::from_secs_f64(timeout.max(0.1));
            let resp = client::call(&socket, &req, wait)
                .map_err(|e| app::SetupError::Other(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&resp).expect("JSON of plain values")
                );
            } else if resp["ok"] == serde_json::Value::Bool(true) {
                println!("{}", client::render(&req, &resp));
            } else {
                eprintln!("steerd ctl: {}", client::render(&req, &resp));
            }
            Ok(if resp["ok"] == serde_json::Value::Bool(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "tpe")]
        Cmd::Ram {
            cmd: RamCmd::Timeline { files, plot },
        } => tool_exit(steerd::ram::cli::run_timeline(&files, &plot)),
        #[cfg(feature = "tpe")]
        Cmd::Tpe { cmd } => {
            let r = match cmd {
                TpeCmd::Eval(a) => run_eval(&a),
                TpeCmd::Dataset(a) => run_dataset(&a),
            };
            tool_exit(r)
        }
        #[cfg(feature = "tpe")]
        Cmd::Telemetry {
            cmd: TelemetryCmd::Export(a),
        } => tool_exit(run_export(&a)),
        Cmd::GenPcap {
            config,
            out,
            flows,
            size,
            dst,
            steered,
            priority,
            dst_mac,
            seed,
        } => {
            let cfg = app::load_config(config.as_deref())?;
            let o = bench::GenPcapOptions {
                out,
                flows,
                size,
                dst,
                steered,
                priority,
                dst_mac,
                seed,
            };
            let n = bench::gen_pcap(&cfg, &o)?;
            eprintln!("{}: {n} packets", o.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Mark {
            config,
            duration,
            json,
            threads,
            quiet,
        } => {
            let cfg = app::load_config(Some(&config))?;
            app::log_env_overrides(&cfg);
            let o = steerd::ipm::run::MarkOptions {
                duration: duration.map(Duration::from_secs_f64),
                json,
                threads,
                quiet,
            };
            let s = steerd::ipm::run::run(&cfg, &o)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s.to_json()).expect("JSON of plain values")
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { config } => {
            let cfg = app::load_config(config.as_deref())?;
            app::build_tables(&cfg, &[], None)?;
            #[cfg(feature = "tpe")]
            if cfg.tpe.enabled {
                println!("tpe: {}", steerd::tpe::live::check(&cfg)?);
            }
            if let Some(r) = &cfg.ram {
                println!("ram: {}", steerd::ram::live::check(&cfg, r));
            }
            if let Some(m) = &cfg.mark {
                println!(
                    "mark: {} pairs, {} thread(s){}, {} destinations, {} rules, {} extra signatures",
                    m.pairs.len(),
                    m.threads,
                    m.cores
                        .as_ref()
                        .map(|c| format!(" on cores {:?}", &c[..m.threads.min(c.len())]))
                        .unwrap_or_default(),
                    m.destinations.len(),
                    m.rules.len(),
                    m.signatures.len()
                );
            }
            if let Some(o) = cfg.env_overrides() {
                println!("{o}");
            }
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
            tpe,
            tpe_time_scale,
        } => {
            let o = BenchOptions {
                paths: path,
                routes,
                workers,
                size,
                duration,
                repeat,
                flows,
                tpe,
                tpe_time_scale,
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
