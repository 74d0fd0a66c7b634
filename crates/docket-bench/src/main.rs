//! `docket-bench`: runs Docket's benchmarks until the `docket` binary takes them over as
//! `docket bench`.

use clap::{Parser, Subcommand};

/// Docket's benchmarks. Each figure is printed as `BENCH <name> <value> <unit>`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The event log: file backend append/replay, and JetStream beside raw async-nats.
    Log(docket_bench::log::Options),
    /// The demo workload against the command services over NATS, beside raw request/reply.
    E2e(docket_bench::e2e::Options),
    /// Offline verification of an export of a large log, and inclusion proofs.
    Audit(docket_bench::audit::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.bench {
        Bench::Log(options) => runtime
            .block_on(docket_bench::log::run(options))
            .map(|_| ()),
        Bench::E2e(options) => runtime
            .block_on(docket_bench::e2e::run(options))
            .map(|_| ()),
        Bench::Audit(options) => runtime
            .block_on(docket_bench::audit::run(options))
            .map(|_| ()),
    }
}
