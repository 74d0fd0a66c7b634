//! Actor tokens on the command line: `docket token keygen|issue`, the key that signs this tool's
//! requests (`--actor-key`), and the public keys services accept (`--actor-vkeys`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use docket_bus::token::{self, TokenIssuer, TokenVerifier};

/// `docket token …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Makes an actor-token key pair: `actor.key` (secret, mode 0600: whoever holds it can act as
    /// anyone) and `actor.vkey` (public: give it to the services, `--actor-vkeys`).
    Keygen(KeygenArgs),
    /// Prints a signed actor token for `--as <person uuid>/<role>` (for other tools; `docket
    /// send` and `docket demo` sign their own with `--actor-key`).
    Issue(IssueArgs),
}

/// Options of `docket token keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// The directory to write `actor.key` and `actor.vkey` into.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Replace an existing key pair.
    #[arg(long)]
    force: bool,
}

/// Options of `docket token issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// Who acts: `<person uuid>/<role>`.
    #[arg(long = "as")]
    actor: String,
    /// How long the token is valid, in seconds (at most a day).
    #[arg(long, default_value_t = 3600)]
    ttl_secs: i64,
    #[command(flatten)]
    key: IssuerArgs,
}

/// The key that signs this tool's requests.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IssuerArgs {
    /// The actor-token key signing the requests (`docket token keygen`; `docket up` makes one
    /// in `<data dir>/keys/actor.key`). Default: `docket-data/keys/actor.key` if it exists.
    #[arg(long, env = "DOCKET_ACTOR_KEY")]
    actor_key: Option<PathBuf>,
}

impl IssuerArgs {
    /// The issuer from the named key, or from the default place.
    pub(crate) fn issuer(&self) -> Result<TokenIssuer> {
        let path = match &self.actor_key {
            Some(path) => path.clone(),
            None => {
                let default = crate::default_data_dir().join("keys").join("actor.key");
                if !default.exists() {
                    bail!(
                        "no actor-token key: pass --actor-key (or DOCKET_ACTOR_KEY) with the key \
                         from `docket token keygen`; `docket up` makes one in \
                         <data dir>/keys/actor.key"
                    );
                }
                default
            }
        };
        read_issuer(&path)
    }
}

fn read_issuer(path: &Path) -> Result<TokenIssuer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the actor-token key {}", path.display()))?;
    TokenIssuer::new(&text).with_context(|| format!("the actor-token key {}", path.display()))
}

/// The public keys whose tokens a service accepts.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifierArgs {
    /// Public actor-token keys accepted (comma-separated; each the key text or `@file`, e.g.
    /// `@/etc/docket/actor.vkey`). Give the old and the new key while rotating.
    #[arg(long, env = "DOCKET_ACTOR_VKEYS", value_delimiter = ',')]
    actor_vkeys: Vec<String>,
}

impl VerifierArgs {
    /// The keys' texts, files read.
    fn texts(&self) -> Result<Vec<String>> {
        self.actor_vkeys
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|k| match k.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map(|t| t.trim().to_owned())
                    .with_context(|| format!("reading the actor verifier key {path}")),
                None => Ok(k.to_owned()),
            })
            .collect()
    }

    /// The verifier; an error if no key was given.
    pub(crate) fn required(&self) -> Result<TokenVerifier> {
        let texts = self.texts()?;
        if texts.is_empty() {
            bail!(
                "no actor verifier key: pass --actor-vkeys (or DOCKET_ACTOR_VKEYS) with the \
                 public key(s) from `docket token keygen` (actor.vkey); requests without a \
                 token signed by one of them are refused"
            );
        }
        TokenVerifier::new(&texts).map_err(|e| anyhow!("--actor-vkeys: {e}"))
    }

    /// The verifier, if keys were given.
    pub(crate) fn optional(&self) -> Result<Option<TokenVerifier>> {
        let texts = self.texts()?;
        if texts.is_empty() {
            return Ok(None);
        }
        TokenVerifier::new(&texts)
            .map(Some)
            .map_err(|e| anyhow!("--actor-vkeys: {e}"))
    }

    /// The verifier for `docket up`: its own key's public half (made on first start in
    /// `<data dir>/keys/`, or `--actor-key`) and any further keys given.
    pub(crate) fn with_own_key(
        &self,
        issuer: &IssuerArgs,
        data_dir: &Path,
    ) -> Result<TokenVerifier> {
        let path = match &issuer.actor_key {
            Some(path) => path.clone(),
            None => {
                let dir = data_dir.join("keys");
                let path = dir.join("actor.key");
                if !path.exists() {
                    let (skey, vkey) = token::generate_key();
                    write_pair(&dir, &skey, &vkey, false)?;
                    eprintln!(
                        "docket: made the actor-token key {} (tools sign requests with it: \
                         --actor-key); its public key, for services: {vkey}",
                        path.display()
                    );
                }
                path
            }
        };
        let own = read_issuer(&path)?;
        let mut texts = vec![own.vkey()];
        texts.extend(self.texts()?);
        TokenVerifier::new(&texts).map_err(|e| anyhow!("--actor-vkeys: {e}"))
    }
}

fn write_pair(dir: &Path, skey: &str, vkey: &str, force: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = dir.join("actor.key");
    if key.exists() && !force {
        bail!("{} exists; --force replaces it", key.display());
    }
    crate::audit::write_secret(&key, skey)?;
    let public = dir.join("actor.vkey");
    std::fs::write(&public, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", public.display()))
}

/// Runs `docket token …`.
pub(crate) fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Keygen(args) => {
            let (skey, vkey) = token::generate_key();
            write_pair(&args.out, &skey, &vkey, args.force)?;
            eprintln!(
                "docket: wrote {} (secret) and {}",
                args.out.join("actor.key").display(),
                args.out.join("actor.vkey").display()
            );
            println!("{vkey}");
            Ok(())
        }
        TokenCommand::Issue(args) => {
            let actor = docket_bus::actor::parse_claim(&args.actor)
                .map_err(|e| anyhow!("--as: {}", e.message))?;
            let issuer = args.key.issuer()?;
            println!("{}", issuer.issue(&actor, token::now_secs(), args.ttl_secs));
            Ok(())
        }
    }
}
