//! `docket witness`: a C2SP `tlog-witness` service for Docket's log (or any log that signs
//! C2SP checkpoints with Ed25519), and the key it cosigns with.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use docket_audit::witness::{generate_witness_key, WitnessConfig, WitnessSigner};
use tokio::sync::watch;

/// `docket witness …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum WitnessCommand {
    /// Makes a witness key pair: `witness.key` (secret, mode 0600) and `witness.vkey` (public:
    /// give it to the log, `docket up --witness <url>=<vkey>`, and to auditors,
    /// `docket audit verify --witness-vkey`). Prints the vkey.
    Keygen(KeygenArgs),
    /// Runs the witness: `POST /add-checkpoint` (C2SP tlog-witness) cosigns a log's checkpoint
    /// only if it is consistent with, and no smaller than, what it cosigned before for that log.
    /// What it cosigned is kept in --state-dir, made durable before each cosignature is returned.
    /// Stops cleanly on Ctrl-C or SIGTERM.
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
    /// Where the witness keeps the size and root it last cosigned for each log.
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

/// A watch that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("docket: witness shutting down");
        let _ = tx.send(true);
    });
    rx
}
