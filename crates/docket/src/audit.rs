//! `docket audit …`: the auditor's tools. `keygen` makes the checkpoint signing key pair.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The auditor's tools.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Makes the key pair that signs checkpoints: the signer key (secret, written with mode 0600)
    /// and the verifier key (public, in C2SP vkey form: give it to auditors).
    Keygen(KeygenArgs),
}

/// Options of `docket audit keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// The log's origin: the first line of every checkpoint and the key's name, conventionally
    /// `<host>/<path>` of the deployment, e.g. `docket.example.gov/log`.
    #[arg(long)]
    origin: String,
    /// Where to write `checkpoint.key` (secret) and `checkpoint.vkey` (public).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Keygen(args) => keygen(args),
    }
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let (skey, vkey) = docket_audit::note::generate_key(&args.origin)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let key_path = args.out.join("checkpoint.key");
    let vkey_path = args.out.join("checkpoint.vkey");
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
    write_secret(&key_path, &skey)?;
    std::fs::write(&vkey_path, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", vkey_path.display()))?;
    if args.json {
        let out = serde_json::json!({
            "origin": args.origin,
            "vkey": vkey,
            "key_file": key_path,
            "vkey_file": vkey_path,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("verifier key (public, give it to auditors): {vkey}");
        println!("signer key (secret): {}", key_path.display());
        println!("verifier key file: {}", vkey_path.display());
    }
    Ok(())
}

/// Writes a secret file readable by its owner only.
fn write_secret(path: &std::path::Path, content: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(format!("{content}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
