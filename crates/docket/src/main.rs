//! `docket`: runs Docket (`up`, `serve`), sends commands to a running system, and runs the
//! benchmarks. `main` only parses flags, sets up logging and calls into the libraries.

mod audit;
mod audit_api;
mod client;
mod demo;
mod http;
mod metrics;
mod run;
mod signal;
mod tokens;
mod witness;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Docket: discretionary enforcement decisions and their review, on a verifiable event log.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info` or `docket_runtime=debug`.
    #[arg(long, global = true, env = "DOCKET_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every service in one process. Embedded (no dependencies): the log in --data-dir and
    /// the commands on a local HTTP endpoint. With --nats: the log on JetStream and the services
    /// as NATS micro services.
    Up(run::UpArgs),
    /// Runs one service over NATS (start several processes to share the load).
    Serve(run::ServeArgs),
    /// Sends one command to a running system and prints the reply (see `docket commands`).
    Send(client::SendArgs),
    /// Case commands: `docket case attach-record …` is `docket send case.attach_record …`.
    Case(client::AggregateArgs),
    /// Officer commands: `docket officer register …`.
    Officer(client::AggregateArgs),
    /// G-28 commands: `docket representation record-g28 …`.
    Representation(client::AggregateArgs),
    /// Review commands: `docket review request …`.
    Review(client::AggregateArgs),
    /// Lists every command with its subject and owning service.
    Commands,
    /// Drives a running system with a realistic workload (staff of the 25 field offices,
    /// hundreds of cases, decisions, approvals, G-28s, reviews at both tiers) and prints a
    /// summary.
    Demo(demo::DemoArgs),
    /// The auditor's tools: checkpoint keys, export and offline verification, receipts,
    /// timelines, replay as of a time, decision consistency (see docs/audit.md).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Actor tokens: `keygen` makes the deployment's actor-token key pair, `issue` prints a
    /// signed token for a person and role (every command must carry one).
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// A witness of checkpoints (C2SP tlog-witness): `keygen` makes its key, `serve` cosigns a
    /// log's checkpoints only when they extend what it cosigned before (see docs/audit.md).
    ///
    /// What it is for: whoever runs a log holds its checkpoint key, so could sign a rewritten
    /// history, or show an auditor an older (rolled back) one. A witness, run by someone else,
    /// remembers the latest checkpoint it cosigned for each log and cosigns a newer one only with
    /// a consistency proof from it. An auditor who requires the cosignatures of K independent
    /// witnesses (`docket audit verify --witness-vkey … --witness-quorum K`) needs no one's word
    /// that the log shown is the one history the witnesses saw.
    ///
    /// Protocol: C2SP tlog-witness (`POST /add-checkpoint`), answered with a C2SP
    /// tlog-cosignature `cosignature/v1` line (Ed25519). A third-party witness can stand in for
    /// this one, and this one can witness any log that signs C2SP checkpoints with Ed25519.
    ///
    /// State: the size and root last cosigned for each log, one file per origin in
    /// `serve --state-dir`, written and synced before each cosignature leaves. Back it up, but
    /// never restore an old copy: a witness whose state dir is lost or rolled back must be
    /// retired and replaced by a new witness with a new key (`keygen`), since with the old key
    /// it would cosign a rollback.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Runs a benchmark; each figure is printed as `BENCH <name> <value> <unit>`.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The event log: file backend append/replay, and JetStream beside raw async-nats.
    Log(docket_bench::log::Options),
    /// End to end: the demo workload against the command services over NATS (a nats-server is
    /// started unless --nats), beside raw NATS request/reply measured in the same run.
    E2e(docket_bench::e2e::Options),
    /// Accountability: a 1,000,000-commit log exported and verified offline, and inclusion
    /// proofs, beside raw SHA-256 and segment reading measured in the same run.
    Audit(docket_bench::audit::Options),
    /// The dashboard: its projections rebuilt from position 0 over a 1,000,000-commit log of the
    /// demo workload, beside reading and decoding the same commits, measured in the same run.
    Dashboard(docket_bench::dashboard::Options),
}

/// Where `docket up` keeps its data unless told otherwise.
pub(crate) fn default_data_dir() -> PathBuf {
    PathBuf::from("docket-data")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .map_err(|e| anyhow::anyhow!("bad log filter {:?}: {e}", cli.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => run::up(args).await,
            Command::Serve(args) => run::serve(args).await,
            Command::Send(args) => client::send(args).await,
            Command::Case(args) => client::send(args.into_send("case")).await,
            Command::Officer(args) => client::send(args.into_send("officer")).await,
            Command::Representation(args) => client::send(args.into_send("representation")).await,
            Command::Review(args) => client::send(args.into_send("review")).await,
            Command::Commands => {
                client::print_commands();
                Ok(())
            }
            Command::Demo(args) => demo::demo(args).await,
            Command::Audit(command) => audit::run(command).await,
            Command::Token(command) => tokens::run(command),
            Command::Witness(command) => witness::run(command).await,
            Command::Bench(Bench::Log(options)) => docket_bench::log::run(options).await.map(drop),
            Command::Bench(Bench::E2e(options)) => docket_bench::e2e::run(options).await.map(drop),
            Command::Bench(Bench::Audit(options)) => {
                docket_bench::audit::run(options).await.map(drop)
            }
            Command::Bench(Bench::Dashboard(options)) => {
                docket_bench::dashboard::run(options).await.map(drop)
            }
        }
    })
}
