//! The audit service: answers the audit queries (the latest or a covering signed checkpoint with
//! the witnesses' state, inclusion and consistency proofs from the checkpointer's tree, a
//! receipt for any position) as the bus handler of `Service::Audit`, registered over NATS like
//! the command services and on the node's in-process bus, which the HTTP routes and the
//! dashboard ask.

use std::time::Duration;

use docket_audit::CheckpointerHandle;
use docket_bus::token::TokenVerifier;
use docket_bus::{
    AuditAnswer, AuditQuery, BusError, BusRequest, CheckpointAnswer, CheckpointRequest,
    CommandReply, ConsistencyAnswer, ConsistencyRequest, Handler, InclusionAnswer,
    InclusionRequest, QueryRequest, ReceiptRequest, WitnessReport,
};
use docket_log::{AnyLog, CommitHash, EventLog};

/// What the audit queries need.
#[derive(Clone, Debug)]
pub struct AuditApi {
    /// The running checkpointer.
    pub checkpointer: CheckpointerHandle,
    /// The log, to check positions against its head and to read a commit for a receipt asked
    /// without its hash.
    pub log: AnyLog,
    /// The actor tokens a query may carry (none is needed; one sent must verify).
    pub actors: TokenVerifier,
}

/// How long a query for a new checkpoint may wait.
const WAIT: Duration = Duration::from_secs(10);

fn unavailable(e: impl ToString) -> BusError {
    BusError::unavailable(e.to_string())
}

fn hashes(list: &[docket_audit::Hash]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// The wire form of a receipt (`docket_bus::Receipt`, which `docs/audit.md` describes): the
/// orphan rule keeps this a function, as neither type is the node's.
pub(crate) fn wire_receipt(receipt: &docket_audit::Receipt) -> docket_bus::Receipt {
    docket_bus::Receipt {
        position: receipt.position,
        leaf_hash: receipt.leaf_hash.to_string(),
        commit_hash: receipt.commit_hash.to_string(),
        tlog_proof: receipt.to_text(),
    }
}

/// A commit hash in its text form (64 hex digits).
fn commit_hash(text: &str) -> Result<CommitHash, BusError> {
    let bad = || BusError::bad_request(format!("commit_hash {text:?} is not 64 hex digits"));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(CommitHash(bytes))
}

impl AuditApi {
    /// Refuses positions and sizes the log has not reached, so no query waits for ever.
    async fn within_head(&self, what: &str, value: u64) -> Result<(), BusError> {
        let head = self.log.head().await.map_err(unavailable)?;
        if value == 0 || value > head {
            return Err(BusError::bad_request(format!(
                "{what} {value} is outside the log (positions 1 to {head})"
            )));
        }
        Ok(())
    }

    /// Checks a query's numbers before anything waits on them.
    async fn check(&self, query: &AuditQuery) -> Result<(), BusError> {
        match query {
            AuditQuery::Checkpoint(CheckpointRequest { covering: Some(p) }) => {
                self.within_head("position", *p).await
            }
            AuditQuery::Checkpoint(CheckpointRequest { covering: None }) => Ok(()),
            AuditQuery::InclusionProof(InclusionRequest { position, size }) => {
                self.within_head("size", *size).await?;
                if *position == 0 || position > size {
                    return Err(BusError::bad_request(format!(
                        "position {position} is outside the tree of size {size}"
                    )));
                }
                Ok(())
            }
            AuditQuery::ConsistencyProof(ConsistencyRequest { old, new }) => {
                self.within_head("new size", *new).await?;
                if *old == 0 || old > new {
                    return Err(BusError::bad_request(format!(
                        "old size {old} must be from 1 to the new size {new}"
                    )));
                }
                Ok(())
            }
            AuditQuery::Receipt(ReceiptRequest { position, .. }) => {
                self.within_head("position", *position).await
            }
        }
    }

    /// Answers one query.
    pub async fn query(&self, query: AuditQuery) -> Result<AuditAnswer, BusError> {
        self.check(&query).await?;
        let cp = &self.checkpointer;
        let answer = async {
            Ok::<_, docket_audit::AuditError>(match query {
                AuditQuery::Checkpoint(CheckpointRequest { covering }) => {
                    let signed = match covering {
                        Some(position) => Some(cp.checkpoint_covering(position).await?),
                        None => cp.latest(),
                    };
                    // With the witnesses as the checkpointer sees them, for the dashboard.
                    let status = cp.status();
                    signed.map(|s| {
                        AuditAnswer::Checkpoint(CheckpointAnswer {
                            note: s.note,
                            size: s.checkpoint.size,
                            cosignatures: status.cosignatures as u64,
                            witness_quorum: status.witness_quorum as u64,
                            witnesses: status
                                .witnesses
                                .into_iter()
                                .map(|w| WitnessReport {
                                    name: w.name,
                                    url: w.url,
                                    cosigned_size: w.cosigned_size,
                                    cosignatures: w.cosignatures,
                                    refusals: w.refusals,
                                    failures: w.failures,
                                    alarm: w.alarm,
                                    resting: w.resting,
                                    last_error: w.last_error,
                                })
                                .collect(),
                        })
                    })
                }
                AuditQuery::InclusionProof(InclusionRequest { position, size }) => {
                    cp.wait_for_size(size).await?;
                    Some(AuditAnswer::InclusionProof(InclusionAnswer {
                        position,
                        size,
                        leaf_hash: cp.leaf(position).await?.to_string(),
                        root: cp.root_at(size).await?.to_string(),
                        proof: hashes(&cp.inclusion_proof(position, size).await?),
                    }))
                }
                AuditQuery::ConsistencyProof(ConsistencyRequest { old, new }) => {
                    cp.wait_for_size(new).await?;
                    Some(AuditAnswer::ConsistencyProof(ConsistencyAnswer {
                        old,
                        new,
                        old_root: cp.root_at(old).await?.to_string(),
                        new_root: cp.root_at(new).await?.to_string(),
                        proof: hashes(&cp.consistency_proof(old, new).await?),
                    }))
                }
                AuditQuery::Receipt(ReceiptRequest {
                    position,
                    commit_hash: Some(hash),
                }) => {
                    // The caller's append returned the hash: the leaf comes from the tree,
                    // and nothing reads the log.
                    let hash = commit_hash(&hash)
                        .map_err(|e| docket_audit::AuditError::Receipt(e.message))?;
                    let receipt = docket_audit::Receipt::for_position(cp, position, hash).await?;
                    Some(AuditAnswer::Receipt(wire_receipt(&receipt)))
                }
                AuditQuery::Receipt(ReceiptRequest {
                    position,
                    commit_hash: None,
                }) => {
                    let commit = self
                        .log
                        .read_all(position - 1, 1)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            docket_audit::AuditError::Receipt(format!(
                                "commit {position} not found"
                            ))
                        })?;
                    let receipt = docket_audit::Receipt::build(cp, &commit).await?;
                    Some(AuditAnswer::Receipt(wire_receipt(&receipt)))
                }
            })
        };
        match tokio::time::timeout(WAIT, answer).await {
            Ok(Ok(Some(answer))) => Ok(answer),
            Ok(Ok(None)) => Err(BusError::unavailable(
                "no checkpoint has been signed yet".to_owned(),
            )),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(BusError::unavailable(
                "the checkpointer did not answer in time".to_owned(),
            )),
        }
    }
}

impl Handler for AuditApi {
    fn actors(&self) -> &TokenVerifier {
        &self.actors
    }

    /// The audit service owns no command; the catalogue never routes one here.
    async fn handle(&self, request: BusRequest) -> Result<CommandReply, BusError> {
        Err(BusError::unknown_command(request.kind.name()))
    }

    async fn query(&self, request: QueryRequest) -> Result<AuditAnswer, BusError> {
        if let Some(actor) = &request.actor {
            tracing::debug!(person = %actor.person, role = %actor.role, query = %request.query.kind(), "audit query");
        }
        AuditApi::query(self, request.query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_hashes_read_back_from_their_text() {
        let hash = CommitHash::of(b"a commit");
        assert_eq!(commit_hash(&hash.to_string()).ok(), Some(hash));
        for bad in ["", "00", &"g".repeat(64), &"é".repeat(32)] {
            assert!(commit_hash(bad).is_err(), "{bad}");
        }
    }
}
