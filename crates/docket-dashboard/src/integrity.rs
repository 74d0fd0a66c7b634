//! Log integrity as the dashboard shows it: the latest signed checkpoint, checked the way a light
//! client checks a transparency log.
//!
//! A checkpoint counts as verified when
//! 1. its note's signature verifies with the deployment's verifier key (the dashboard holds only
//!    the public key),
//! 2. it is consistent with the last checkpoint this dashboard verified (a consistency proof from
//!    the audit service, checked here), so the log only grew in between, and
//! 3. it includes, as its last leaf, the very commit the dashboard reads from the log at that
//!    position (an inclusion proof, checked here against the leaf hash the dashboard computes
//!    from the commit's bytes).
//!
//! The proofs come from the audit service, asked through the bus (a [`docket_bus::Transport`]:
//! the node's in-process bus in `docket up`, or NATS); none of the checks trusts it.
//!
//! Beside the checkpoint, the panel shows the witnesses as the checkpointer reports them
//! ([`WitnessHealth`]): how many cosigned the latest checkpoint against the quorum, and for each
//! the size it last cosigned, its refusals (alarms) and failures (down). That part is the
//! checkpointer's report, for the operator; the cosignatures themselves are an auditor's to check
//! (`docket audit verify --witness-vkey`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use docket_audit::tree::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use docket_audit::CheckpointVerifier;
use docket_bus::{
    CheckpointAnswer, CheckpointRequest, Client, ConsistencyRequest, InclusionRequest, Transport,
};
use docket_log::EventLog;

use crate::view::Integrity;

/// One witness of the checkpointer, as it reports it: the audit service's wire form.
pub type WitnessHealth = docket_bus::WitnessReport;

/// The witness part of the audit service's checkpoint answer.
fn witnesses_of(report: &mut Integrity, answer: &CheckpointAnswer) {
    report.cosignatures = usize::try_from(answer.cosignatures).ok();
    report.witness_quorum = usize::try_from(answer.witness_quorum).ok();
    report.witnesses = answer.witnesses.clone();
}

/// Checks the latest checkpoint; remembers the last one verified.
#[derive(Debug)]
pub struct IntegrityCheck<A> {
    audit: Client<A>,
    verifier: CheckpointVerifier,
    last_verified: Option<(u64, Hash)>,
}

fn decode_hash(text: &str) -> Result<Hash, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes, not 32", b.len()))?;
    Ok(Hash(array))
}

fn proof(hashes: &[String]) -> Result<Vec<Hash>, String> {
    hashes.iter().map(|h| decode_hash(h)).collect()
}

impl<A: Transport> IntegrityCheck<A> {
    /// Checks checkpoints from the audit service behind `audit` with the verifier key `vkey`.
    /// It asks without an actor: audit queries need none.
    pub fn new(audit: A, vkey: &str) -> Result<Self, String> {
        let verifier =
            CheckpointVerifier::new(vkey).map_err(|e| format!("the verifier key: {e}"))?;
        Ok(IntegrityCheck {
            audit: Client::unsigned(audit),
            verifier,
            last_verified: None,
        })
    }

    /// Checks the latest checkpoint against `log`.
    pub async fn check<L: EventLog>(&mut self, log: &L) -> Integrity {
        let now = Utc::now();
        let latest = match self
            .audit
            .query(None, &CheckpointRequest { covering: None })
            .await
        {
            Ok(v) => v,
            Err(e)
                if e.code == docket_bus::codes::UNAVAILABLE
                    && e.message.contains("no checkpoint") =>
            {
                return Integrity {
                    checked_at: Some(now),
                    ..Integrity::default()
                };
            }
            Err(e) => {
                return Integrity {
                    checked_at: Some(now),
                    problem: Some(format!("cannot get the latest checkpoint: {e}")),
                    ..Integrity::default()
                };
            }
        };
        let note = latest.note.as_str();
        let mut report = Integrity {
            checked_at: Some(now),
            ..Integrity::default()
        };
        witnesses_of(&mut report, &latest);
        let signed = match self.verifier.open(note) {
            Ok(signed) => signed,
            Err(e) => {
                report.checkpoint_size = Some(latest.size);
                report.verified = Some(false);
                report.problem = Some(format!("the signature does not verify: {e}"));
                return report;
            }
        };
        let size = signed.checkpoint.size;
        let root = signed.checkpoint.root;
        report.checkpoint_size = Some(size);
        report.root = Some(BASE64.encode(root.0));
        if size == 0 {
            report.verified = Some(true);
            return report;
        }
        match self.verify(log, size, root).await {
            Ok(recorded_micros) => {
                self.last_verified = Some((size, root));
                report.verified = Some(true);
                report.age_seconds = Some(
                    ((now.timestamp_micros() - recorded_micros).max(0) as f64 / 1e6 * 10.0).round()
                        / 10.0,
                );
            }
            Err(problem) => {
                report.verified = Some(false);
                report.problem = Some(problem);
            }
        }
        report
    }

    /// Consistency with the last verified checkpoint and inclusion of the log's commit at
    /// `size`; returns when that commit was recorded.
    async fn verify<L: EventLog>(&self, log: &L, size: u64, root: Hash) -> Result<i64, String> {
        if let Some((old, old_root)) = self.last_verified {
            if old > size {
                return Err(format!(
                    "the latest checkpoint (size {size}) is smaller than one verified before (size {old})"
                ));
            }
            if old < size {
                let answer = self
                    .audit
                    .query(None, &ConsistencyRequest { old, new: size })
                    .await
                    .map_err(|e| format!("no consistency proof from {old} to {size}: {e}"))?;
                verify_consistency(&proof(&answer.proof)?, old, old_root, size, root).map_err(
                    |e| {
                        format!(
                            "not consistent with the checkpoint of size {old} verified before: {e}"
                        )
                    },
                )?;
            } else if old_root != root {
                return Err(format!("two different roots signed for size {size}"));
            }
        }
        let commit = log
            .read_all(size - 1, 1)
            .await
            .map_err(|e| format!("cannot read commit {size}: {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("the log has no commit {size}"))?;
        let leaf = leaf_hash(&commit.bytes);
        let answer = self
            .audit
            .query(
                None,
                &InclusionRequest {
                    position: size,
                    size,
                },
            )
            .await
            .map_err(|e| format!("no inclusion proof for commit {size}: {e}"))?;
        let claimed = decode_hash(&answer.leaf_hash).map_err(|e| format!("leaf_hash: {e}"))?;
        if claimed != leaf {
            return Err(format!(
                "the checkpoint's last leaf is not the log's commit {size}"
            ));
        }
        verify_inclusion(&proof(&answer.proof)?, size, root, size, leaf).map_err(|e| {
            format!("commit {size} as read from the log is not in the signed tree: {e}")
        })?;
        Ok(commit.commit.metadata.recorded_at_micros)
    }
}
