//! `docket witness`: a C2SP `tlog-witness` service for Docket's log (or any log that signs
//! C2SP checkpoints with Ed25519), and the key it cosigns with.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use docket_audit::witness::{generate_witness_key, WitnessConfig, WitnessSigner};

use crate::signal::shutdown_signal;

/// `docket witness …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum WitnessCommand {
    /// Makes a witness key pair: `witness.key` (secret, mode 0600) and `witness.vkey` (public:
    /// give it to the log, `docket up --witness <url>=<vkey>`, and to auditors,
    /// `docket audit verify --witness-vkey`). Prints the vkey.
    ///
    /// The key signs C2SP tlog-cosignature `cosignature/v1` lines (Ed25519) over the
    /// checkpoints `docket witness serve` accepts. A witness is its key together with its state
    /// dir: what the key has cosigned is remembered only there. If that state is ever lost or
    /// restored from an old copy, retire the key (tell the logs and auditors that trusted its
    /// vkey) and make a new key pair under a new name: with the old key the witness would
    /// cosign a rollback.
    Keygen(KeygenArgs),
    /// Runs the witness: `POST /add-checkpoint` (C2SP tlog-witness) cosigns a log's checkpoint
    /// only if it is consistent with, and no smaller than, what it cosigned before for that log.
    /// What it cosigned is kept in --state-dir, made durable before each cosignature is returned.
    /// Stops cleanly on Ctrl-C or SIGTERM.
    ///
    /// What it is for: an auditor who requires cosignatures from independent witnesses
    /// (`docket audit verify --witness-vkey … --witness-quorum K`) can tell when the operator of
    /// a log shows a rewritten, forked or rolled-back history, since no honest witness cosigns
    /// one. The log asks each witness for a cosignature as it signs checkpoints
    /// (`docket up --witness <url>=<vkey>`).
    ///
    /// Protocol: C2SP tlog-witness; the request is `old <size>`, a consistency proof from that
    /// size and the signed checkpoint note, the answer one C2SP tlog-cosignature
    /// `cosignature/v1` line (Ed25519). Refusals: 400 malformed, 403 not signed by a key given
    /// with --log-vkey, 404 an origin not witnessed, 409 `old` is not the size last cosigned or
    /// the same size with another root (the body names the size), 422 a consistency proof that
    /// does not verify. A refusal changes no state.
    ///
    /// State: one file per log origin in --state-dir (the size and root last cosigned), written
    /// and synced before the cosignature leaves; a file that does not parse stops the witness
    /// from starting. Back the directory up, but never restore an old copy: a witness whose
    /// state is lost or rolled back must be retired and replaced with a new key
    /// (`docket witness keygen`), since with the old key it would cosign a rollback.
    Serve(ServeArgs),
}

/// Options of `docket witness keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// The witness's name: the name on its cosignature lines, conventionally `<host>/<path>` of
    /// the witness's operator, e.g. `witness.example.org/w1`.
    #[arg(long, env = "DOCKET_WITNESS_NAME")]
    name: String,
    /// The directory to write `witness.key` and `witness.vkey` into.
    #[arg(long, env = "DOCKET_WITNESS_OUT", default_value = ".")]
    out: PathBuf,
    /// Replace an existing key pair.
    #[arg(long)]
    force: bool,
}

/// Options of `docket witness serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0: any free port; the address is printed).
    #[arg(long, env = "DOCKET_WITNESS_LISTEN", default_value = "127.0.0.1:7480")]
    listen: std::net::SocketAddr,
    /// The witness's secret key file (`docket witness keygen`).
    #[arg(long, env = "DOCKET_WITNESS_KEY")]
    key: PathBuf,
    /// Where the witness keeps the size and root it last cosigned for each log (created if
    /// absent). Losing it, or restoring an old copy, means retiring this witness's key.
    #[arg(long, env = "DOCKET_WITNESS_STATE_DIR")]
    state_dir: PathBuf,
    /// A log to witness: its checkpoint verifier key (`<origin>+<id>+<base64>`, as `docket
    /// audit keygen` prints it) or `@FILE` holding it; the key's name is the log's origin.
    /// Repeatable (several keys of one origin are all trusted); in the environment,
    /// comma-separated. (`--log` is the global log filter.)
    #[arg(
        long = "log-vkey",
        value_name = "VKEY_OR_@FILE",
        env = "DOCKET_WITNESS_LOG_VKEYS",
        value_delimiter = ',',
        required = true
    )]
    logs: Vec<String>,
}

pub(crate) async fn run(command: WitnessCommand) -> Result<()> {
    match command {
        WitnessCommand::Keygen(args) => keygen(args),
        WitnessCommand::Serve(args) => serve(args).await,
    }
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let (skey, vkey) = generate_witness_key(&args.name)?;
    let key_path = args.out.join("witness.key");
    let vkey_path = args.out.join("witness.vkey");
    if !args.force {
        for path in [&key_path, &vkey_path] {
            if path.exists() {
                bail!(
                    "{} exists: refusing to replace a key (pass --force to do so)",
                    path.display()
                );
            }
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    crate::audit::write_secret(&key_path, &skey)?;
    std::fs::write(&vkey_path, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", vkey_path.display()))?;
    println!("{vkey}");
    eprintln!(
        "docket: witness key {} (secret), {} (public)",
        key_path.display(),
        vkey_path.display()
    );
    Ok(())
}

/// A log key given on the command line: the text, or `@file`.
fn log_key(arg: &str) -> Result<String> {
    let arg = arg.trim();
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .with_context(|| format!("reading the log key {path}")),
        None => Ok(arg.to_owned()),
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let skey = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading the witness key {}", args.key.display()))?;
    let signer = WitnessSigner::new(&skey)
        .with_context(|| format!("the witness key {}", args.key.display()))?;
    let log_vkeys = args
        .logs
        .iter()
        .filter(|k| !k.trim().is_empty())
        .map(|k| log_key(k))
        .collect::<Result<Vec<_>>>()?;
    let vkey = signer.vkey().to_owned();
    let witness = docket_audit::witness::Witness::open(WitnessConfig {
        signer,
        log_vkeys,
        state_dir: args.state_dir.clone(),
    })?;
    let mut origins: Vec<&str> = witness.origins().collect();
    origins.sort_unstable();
    let origins = origins.join(", ");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("listening http://{address}");
    println!("vkey {vkey}");
    tracing::info!(%address, vkey = %vkey, origins = %origins, state_dir = %args.state_dir.display(), "witness serving");
    docket_audit::witness::serve_witness(listener, std::sync::Arc::new(witness), shutdown_signal())
        .await?;
    eprintln!("docket: witness stopped");
    Ok(())
}
