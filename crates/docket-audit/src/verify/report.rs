//! What [`super::verify`] found: the [`Report`] (serialised for `--json`, shown for people) and
//! its parts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A rule broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The position of the commit that breaks the rule; for a checkpoint, its size; for
    /// something missing, the commit that started its clock (or the first commit it leaves
    /// uncovered); 0 for the export as a whole.
    pub position: u64,
    /// The rule's name.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

/// A witness whose cosignature on a checkpoint verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WitnessSeen {
    /// The witness key's name.
    pub name: String,
    /// The cosignature's timestamp (seconds since the epoch).
    pub timestamp: u64,
}

/// A checkpoint cadence the deployment declared in its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CadenceDeclaration {
    /// The declaring commit's position.
    pub position: u64,
    /// A checkpoint at least this often while the log grows (0: no time bound).
    pub every_ms: u64,
    /// A checkpoint at least every this many commits (0: no count bound).
    pub every_commits: u64,
}

/// Commits between two checkpoints (or after the last) longer than the declared cadence
/// allows: evidence that checkpoints were withheld from the export, or that the checkpointer
/// was not signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The checkpoint size the gap follows (0: the log's start).
    pub after: u64,
    /// The next checkpoint's size, or the head for the tail.
    pub until: u64,
    /// Commits in the gap (`until - after`).
    pub commits: u64,
    /// From the first commit of the gap to the last one, by their recorded times.
    pub span_ms: u64,
    /// The first commit's recorded time (RFC 3339).
    pub first_at: Option<String>,
    /// The last commit's recorded time (RFC 3339).
    pub last_at: Option<String>,
    /// The declaration judged by.
    pub cadence: CadenceDeclaration,
    /// The gap is the tail: no checkpoint follows it.
    pub tail: bool,
    /// A cadence declaration inside the gap: the checkpointer (re)started there.
    pub checkpointer_started_at: Option<u64>,
}

/// The kind of an anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorKind {
    /// A checkpoint the auditor holds (`--trusted-checkpoint`).
    TrustedCheckpoint,
    /// The witnesses' quorum (`--witness-vkey`, `--witness-quorum`).
    Witnesses,
}

/// One anchor checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnchorCheck {
    /// Which kind.
    pub kind: AnchorKind,
    /// The trusted checkpoint's size, or the size the witnesses' quorum vouches for.
    pub size: Option<u64>,
    /// The export is consistent with it.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// What the verdict rests on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Commits in the export (read and checked).
    pub head: u64,
    /// The largest size the log key's checkpoints vouch for within the export: the last
    /// checkpoint's size, or the head when the proof to a checkpoint beyond it holds.
    pub signed_size: u64,
    /// The last checkpoint's size (beyond the head for an `--upto` export with its proof).
    pub last_checkpoint_size: Option<u64>,
    /// The checkpoint beyond the head the consistency proof reaches, if any.
    pub proof_to: Option<u64>,
    /// Commits past `signed_size`: vouched for by no signature.
    pub unsigned_commits: u64,
    /// Whether commits past the last signed checkpoint were allowed.
    pub unsigned_tail_allowed: bool,
    /// The auditor's witnesses, by key name.
    pub witnesses: Vec<String>,
    /// How many of them must cosign a checkpoint for it to count.
    pub witness_quorum: usize,
    /// The largest size a checkpoint cosigned by the quorum vouches for, with witnesses.
    pub witnessed_size: Option<u64>,
    /// Who cosigned that checkpoint, and when.
    pub witnessed_by: Vec<WitnessSeen>,
    /// Commits past `witnessed_size`, with witnesses.
    pub unwitnessed_commits: Option<u64>,
    /// The checkpoint cadences the log declares, in log order.
    pub cadence: Vec<CadenceDeclaration>,
    /// Gaps between checkpoints longer than the declared cadence.
    pub gaps: Vec<Gap>,
    /// Every anchor checked.
    pub anchors: Vec<AnchorCheck>,
    /// One line: what the verdict rests on.
    pub rests_on: String,
}

/// What [`super::verify`] found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The export's directory.
    pub dir: PathBuf,
    /// True when nothing failed.
    pub ok: bool,
    /// Commits checked (all of them when the integrity checks held).
    pub commits_checked: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// Commits of the domain's streams the process rules folded.
    pub domain_commits: u64,
    /// Checkpoint files found.
    pub checkpoints_found: u64,
    /// Checkpoints whose signature, root and consistency were checked and held.
    pub checkpoints_checked: u64,
    /// The Merkle root of the commits checked (base64, as in checkpoints).
    pub root: String,
    /// How many times each rule was checked.
    pub rules: BTreeMap<String, u64>,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// The failure the verdict names: an integrity failure in preference to a process-rule
    /// failure (see the module documentation); none when verified.
    pub first_failure: Option<Failure>,
    /// Every failure found: the integrity failures in the order found, then the first
    /// process-rule failure.
    pub failures: Vec<Failure>,
    /// What the verdict rests on.
    pub coverage: Coverage,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// Commits checked per second of wall time.
    pub fn commits_per_s(&self) -> f64 {
        self.commits_checked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.coverage;
        match &self.first_failure {
            None if c.unsigned_commits > 0 => writeln!(
                f,
                "VERIFIED {} (the last {} commits are unsigned: allowed)",
                self.dir.display(),
                c.unsigned_commits
            )?,
            None => writeln!(f, "VERIFIED {}", self.dir.display())?,
            Some(x) => writeln!(
                f,
                "FAILED {}: position {}, rule {}: {}",
                self.dir.display(),
                x.position,
                x.rule,
                x.message
            )?,
        }
        for x in self.failures.iter().skip(1) {
            writeln!(
                f,
                "  also failed: position {}, rule {}: {}",
                x.position, x.rule, x.message
            )?;
        }
        writeln!(
            f,
            "  {} commits in {} streams, {} checkpoints of {} checked, in {:.2} s ({:.0} commits/s)",
            self.commits_checked,
            self.streams,
            self.checkpoints_checked,
            self.checkpoints_found,
            self.elapsed.as_secs_f64(),
            self.commits_per_s()
        )?;
        write!(
            f,
            "  signed: {} of {} commits, {} unsigned",
            c.signed_size, c.head, c.unsigned_commits
        )?;
        if let Some(m) = c.proof_to {
            write!(
                f,
                " (the last ones by the consistency proof to the checkpoint of size {m})"
            )?;
        }
        writeln!(f)?;
        if let Some(w) = c.witnessed_size {
            let by: Vec<String> = c
                .witnessed_by
                .iter()
                .map(|w| {
                    let at = i64::try_from(w.timestamp)
                        .ok()
                        .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0))
                        .map_or_else(|| w.timestamp.to_string(), |t| t.to_rfc3339());
                    format!("{} at {at}", w.name)
                })
                .collect();
            writeln!(
                f,
                "  witnessed: {w} of {} commits, cosigned by {} (quorum {} of {})",
                c.head,
                by.join(", "),
                c.witness_quorum,
                c.witnesses.len()
            )?;
        }
        for a in &c.anchors {
            let kind = match a.kind {
                AnchorKind::TrustedCheckpoint => "trusted checkpoint",
                AnchorKind::Witnesses => "witnesses",
            };
            let verdict = if a.ok { "consistent" } else { "NOT consistent" };
            writeln!(f, "  anchor: {kind}: {verdict}: {}", a.detail)?;
        }
        match c.cadence.last() {
            Some(d) => writeln!(
                f,
                "  cadence declared: every {} ms or {} commits (at position {}); {} gaps longer than declared",
                d.every_ms,
                d.every_commits,
                d.position,
                c.gaps.len()
            )?,
            None => writeln!(f, "  no checkpoint cadence declared in the log: gaps not judged")?,
        }
        for g in c.gaps.iter().take(10) {
            writeln!(
                f,
                "    gap after checkpoint {}: {} commits over {:.1} s until {}{}",
                g.after,
                g.commits,
                g.span_ms as f64 / 1000.0,
                if g.tail {
                    "the head"
                } else {
                    "the next checkpoint"
                },
                g.checkpointer_started_at
                    .map(|p| format!(" (the checkpointer started at {p})"))
                    .unwrap_or_default()
            )?;
        }
        if c.gaps.len() > 10 {
            writeln!(f, "    … and {} more (see --json)", c.gaps.len() - 10)?;
        }
        writeln!(f, "  rests on: {}", c.rests_on)?;
        writeln!(f, "  root {}", self.root)?;
        if self.domain_commits == 0 {
            writeln!(
                f,
                "  no domain commits (case, officer, representation, review): only the rules on every commit ran (commit time order, unique event ids)"
            )?;
        }
        write!(f, "  checks:")?;
        for (rule, n) in &self.rules {
            write!(f, " {rule} {n};")?;
        }
        writeln!(f)
    }
}
