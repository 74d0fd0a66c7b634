//! The audit service: answers the audit queries (the latest or a covering signed checkpoint with
//! the witnesses' state, inclusion and consistency proofs from the checkpointer's tree, a
//! receipt for any position)
//! over NATS as [`docket_bus::AuditHandler`], and for the embedded HTTP endpoint.

use std::time::Duration;

use docket_audit::CheckpointerHandle;
use docket_bus::{AuditHandler, AuditQuery, BusError};
use docket_log::{AnyLog, EventLog};
use serde_json::{json, Value};

/// What the audit queries need; answers them over HTTP and, as an [`AuditHandler`], over NATS.
#[derive(Clone, Debug)]
pub struct AuditApi {
    /// The running checkpointer.
    pub checkpointer: CheckpointerHandle,
    /// The log, to read a commit for its receipt.
    pub log: AnyLog,
}

/// How long a query for a new checkpoint may wait.
const WAIT: Duration = Duration::from_secs(10);

fn unavailable(e: impl ToString) -> BusError {
    BusError::unavailable(e.to_string())
}

fn hashes(list: &[docket_audit::Hash]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
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

    /// Answers one query.
    pub async fn query(&self, query: AuditQuery) -> Result<Value, BusError> {
        let checked = match &query {
            AuditQuery::Checkpoint { covering: Some(p) } => self.within_head("position", *p).await,
            AuditQuery::Checkpoint { covering: None } => Ok(()),
            AuditQuery::InclusionProof { position, size } => {
                self.within_head("size", *size).await?;
                if *position == 0 || position > size {
                    Err(BusError::bad_request(format!(
                        "position {position} is outside the tree of size {size}"
                    )))
                } else {
                    Ok(())
                }
            }
            AuditQuery::ConsistencyProof { old, new } => {
                self.within_head("new size", *new).await?;
                if *old == 0 || old > new {
                    Err(BusError::bad_request(format!(
                        "old size {old} must be from 1 to the new size {new}"
                    )))
                } else {
                    Ok(())
                }
            }
            AuditQuery::Receipt { position } => self.within_head("position", *position).await,
        };
        checked?;
        let cp = &self.checkpointer;
        let answer = async {
            Ok::<Value, docket_audit::AuditError>(match query {
                AuditQuery::Checkpoint { covering } => {
                    let signed = match covering {
                        Some(position) => Some(cp.checkpoint_covering(position).await?),
                        None => cp.latest(),
                    };
                    // With the witnesses as the checkpointer sees them, for the dashboard.
                    let status = cp.status();
                    match signed {
                        Some(s) => json!({
                            "note": s.note,
                            "size": s.checkpoint.size,
                            "cosignatures": status.cosignatures,
                            "witness_quorum": status.witness_quorum,
                            "witnesses": status.witnesses,
                        }),
                        None => Value::Null,
                    }
                }
                AuditQuery::InclusionProof { position, size } => {
                    cp.wait_for_size(size).await?;
                    json!({
                        "position": position,
                        "size": size,
                        "leaf_hash": cp.leaf(position).await?.to_string(),
                        "root": cp.root_at(size).await?.to_string(),
                        "proof": hashes(&cp.inclusion_proof(position, size).await?),
                    })
                }
                AuditQuery::ConsistencyProof { old, new } => {
                    cp.wait_for_size(new).await?;
                    json!({
                        "old": old,
                        "new": new,
                        "old_root": cp.root_at(old).await?.to_string(),
                        "new_root": cp.root_at(new).await?.to_string(),
                        "proof": hashes(&cp.consistency_proof(old, new).await?),
                    })
                }
                AuditQuery::Receipt { position } => {
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
                    serde_json::to_value(&receipt).map_err(|e| {
                        docket_audit::AuditError::Receipt(format!("cannot encode: {e}"))
                    })?
                }
            })
        };
        match tokio::time::timeout(WAIT, answer).await {
            Ok(Ok(Value::Null)) => Err(BusError::unavailable(
                "no checkpoint has been signed yet".to_owned(),
            )),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(BusError::unavailable(
                "the checkpointer did not answer in time".to_owned(),
            )),
        }
    }
}

impl AuditHandler for AuditApi {
    async fn answer(&self, query: AuditQuery) -> Result<Value, BusError> {
        self.query(query).await
    }
}
