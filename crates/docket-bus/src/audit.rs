//! The audit service over NATS: four queries on `docket.cmd.audit.<query>` (JSON bodies and
//! replies), answered by whichever process runs the checkpointer, as the NATS micro service
//! `docket-audit` in the queue group `docket-audit`:
//!
//! | subject | body | reply |
//! |---|---|---|
//! | `docket.cmd.audit.checkpoint` | `{}` or `{"covering": P}` | `{"note": "<signed checkpoint>"}` |
//! | `docket.cmd.audit.inclusion_proof` | `{"position": P, "size": N}` | `{position, size, leaf_hash, root, proof}` |
//! | `docket.cmd.audit.consistency_proof` | `{"old": M, "new": N}` | `{old, new, old_root, new_root, proof}` |
//! | `docket.cmd.audit.receipt` | `{"position": P}` | a receipt, as in command replies |
//!
//! Replies carry `Docket-Status: ok` or `error` with the structured error body, as commands do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BusError;
use crate::headers::{self, Headers};

/// The micro service name (and queue group) of the audit service.
pub const AUDIT_SERVICE: &str = "docket-audit";
/// The subject prefix of the audit queries.
pub const AUDIT_SUBJECT_PREFIX: &str = "docket.cmd.audit";

/// One audit query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditQuery {
    /// The latest signed checkpoint, or one covering a position (signed at once if needed).
    Checkpoint {
        /// A position the checkpoint must cover.
        covering: Option<u64>,
    },
    /// The inclusion proof of a commit in the tree of `size` commits.
    InclusionProof {
        /// The commit's position.
        position: u64,
        /// The tree size.
        size: u64,
    },
    /// The consistency proof between two tree sizes.
    ConsistencyProof {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The receipt of a commit.
    Receipt {
        /// The commit's position.
        position: u64,
    },
}

#[derive(Deserialize)]
struct CheckpointBody {
    covering: Option<u64>,
}

#[derive(Deserialize)]
struct InclusionBody {
    position: u64,
    size: u64,
}

#[derive(Deserialize)]
struct ConsistencyBody {
    old: u64,
    new: u64,
}

#[derive(Deserialize)]
struct ReceiptBody {
    position: u64,
}

/// The endpoint names, in order.
pub const AUDIT_ENDPOINTS: [&str; 4] = [
    "checkpoint",
    "inclusion_proof",
    "consistency_proof",
    "receipt",
];

impl AuditQuery {
    /// The endpoint (last subject token) of the query.
    pub fn endpoint(&self) -> &'static str {
        match self {
            AuditQuery::Checkpoint { .. } => "checkpoint",
            AuditQuery::InclusionProof { .. } => "inclusion_proof",
            AuditQuery::ConsistencyProof { .. } => "consistency_proof",
            AuditQuery::Receipt { .. } => "receipt",
        }
    }

    /// The query's subject.
    pub fn subject(&self) -> String {
        format!("{AUDIT_SUBJECT_PREFIX}.{}", self.endpoint())
    }

    /// The query's JSON body.
    pub fn body(&self) -> Value {
        match self {
            AuditQuery::Checkpoint { covering } => serde_json::json!({ "covering": covering }),
            AuditQuery::InclusionProof { position, size } => {
                serde_json::json!({ "position": position, "size": size })
            }
            AuditQuery::ConsistencyProof { old, new } => {
                serde_json::json!({ "old": old, "new": new })
            }
            AuditQuery::Receipt { position } => serde_json::json!({ "position": position }),
        }
    }

    /// Reads a query from its endpoint and JSON body (empty means `{}`).
    pub fn parse(endpoint: &str, body: &[u8]) -> Result<Self, BusError> {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        fn read<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, BusError> {
            serde_json::from_slice(body)
                .map_err(|e| BusError::bad_request(format!("bad audit query body: {e}")))
        }
        Ok(match endpoint {
            "checkpoint" => AuditQuery::Checkpoint {
                covering: read::<CheckpointBody>(body)?.covering,
            },
            "inclusion_proof" => {
                let b: InclusionBody = read(body)?;
                AuditQuery::InclusionProof {
                    position: b.position,
                    size: b.size,
                }
            }
            "consistency_proof" => {
                let b: ConsistencyBody = read(body)?;
                AuditQuery::ConsistencyProof {
                    old: b.old,
                    new: b.new,
                }
            }
            "receipt" => AuditQuery::Receipt {
                position: read::<ReceiptBody>(body)?.position,
            },
            other => return Err(BusError::unknown_command(&format!("audit.{other}"))),
        })
    }
}

/// What answers audit queries.
pub trait AuditHandler: Send + Sync + 'static {
    /// Answers one query with a JSON value.
    fn answer(&self, query: AuditQuery) -> impl Future<Output = Result<Value, BusError>> + Send;
}

/// A running audit service.
#[derive(Debug)]
pub struct AuditServiceHandle {
    service: Option<async_nats::service::Service>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl AuditServiceHandle {
    /// Stops taking queries, answers those already taken and deregisters.
    pub async fn stop(mut self) -> Result<(), BusError> {
        if let Some(service) = self.service.take() {
            service.stop().await.map_err(|e| {
                BusError::unavailable(format!("cannot stop the audit service: {e}"))
            })?;
        }
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .map_err(|e| BusError::internal(format!("the serving task failed: {e}")))?;
        }
        Ok(())
    }
}

fn reply_parts(result: Result<Value, BusError>) -> (Headers, Vec<u8>) {
    let (status, body) = match result {
        Ok(value) => (headers::STATUS_OK, serde_json::to_vec(&value)),
        Err(err) => (headers::STATUS_ERROR, serde_json::to_vec(&err)),
    };
    let headers = Headers::new()
        .with(headers::CONTENT_TYPE, "application/json")
        .with(headers::STATUS, status);
    (headers, body.unwrap_or_default())
}

/// Serves the audit queries over NATS until stopped.
pub async fn serve_audit_nats<H: AuditHandler>(
    client: async_nats::Client,
    version: &str,
    handler: H,
) -> Result<AuditServiceHandle, BusError> {
    let micro = client
        .service_builder()
        .description(format!(
            "Docket audit service: checkpoints, proofs and receipts on {AUDIT_SUBJECT_PREFIX}.*"
        ))
        .queue_group(AUDIT_SERVICE)
        .start(AUDIT_SERVICE, version)
        .await
        .map_err(|e| BusError::unavailable(format!("cannot register the audit service: {e}")))?;
    let group = micro.group_with_queue_group(AUDIT_SUBJECT_PREFIX, AUDIT_SERVICE);
    let mut endpoints = Vec::new();
    for name in AUDIT_ENDPOINTS {
        let endpoint = group.endpoint(name).await.map_err(|e| {
            BusError::unavailable(format!("cannot add the audit endpoint {name}: {e}"))
        })?;
        endpoints.push(endpoint.map(move |request| (name, request)).boxed());
    }
    let handler = Arc::new(handler);
    let mut requests = stream::select_all(endpoints);
    let serving = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        while let Some((name, request)) = requests.next().await {
            let handler = handler.clone();
            tasks.spawn(async move {
                let result = match AuditQuery::parse(name, &request.message.payload) {
                    Ok(query) => handler.answer(query).await,
                    Err(e) => Err(e),
                };
                let (headers, body) = reply_parts(result);
                let mut map = async_nats::HeaderMap::new();
                for (n, v) in headers.iter() {
                    map.insert(n, v);
                }
                if let Err(e) = request.respond_with_headers(Ok(body.into()), map).await {
                    tracing::warn!(endpoint = name, error = %e, "cannot send the audit reply");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    Ok(AuditServiceHandle {
        service: Some(micro),
        serving: Some(serving),
    })
}

/// Sends one audit query and reads its answer (waiting at most `timeout`).
pub async fn audit_query(
    client: &async_nats::Client,
    query: &AuditQuery,
    timeout: Duration,
) -> Result<Value, BusError> {
    let body = serde_json::to_vec(&query.body())
        .map_err(|e| BusError::internal(format!("cannot encode the query: {e}")))?;
    let request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(timeout));
    let message = client
        .send_request(query.subject(), request)
        .await
        .map_err(|e| BusError::unavailable(format!("audit service: {e}")))?;
    let ok = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::STATUS))
        .map(|v| v.as_str() == headers::STATUS_OK);
    match ok {
        Some(true) => serde_json::from_slice(&message.payload)
            .map_err(|e| BusError::internal(format!("unreadable audit reply: {e}"))),
        Some(false) => Err(serde_json::from_slice(&message.payload)
            .unwrap_or_else(|e| BusError::internal(format!("unreadable audit error: {e}")))),
        None => Err(BusError::internal(
            "audit reply without Docket-Status".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_through_subject_and_body() {
        for query in [
            AuditQuery::Checkpoint { covering: None },
            AuditQuery::Checkpoint { covering: Some(9) },
            AuditQuery::InclusionProof {
                position: 3,
                size: 9,
            },
            AuditQuery::ConsistencyProof { old: 4, new: 9 },
            AuditQuery::Receipt { position: 7 },
        ] {
            let subject = query.subject();
            let endpoint = subject.rsplit('.').next().unwrap_or_default();
            let body = serde_json::to_vec(&query.body()).unwrap_or_default();
            assert_eq!(AuditQuery::parse(endpoint, &body).ok(), Some(query));
        }
        assert!(AuditQuery::parse("receipt", b"{}").is_err());
        assert!(AuditQuery::parse("receipt", b"garbage").is_err());
        assert!(AuditQuery::parse("unknown", b"{}").is_err());
        assert_eq!(
            AuditQuery::parse("checkpoint", b"").ok(),
            Some(AuditQuery::Checkpoint { covering: None })
        );
    }
}

/// The audit queries over NATS, as an [`AuditHandler`]: for readers in other processes (the
/// dashboard) that want the audit service's answers through the same trait as an in-process one.
#[derive(Clone, Debug)]
pub struct NatsAudit {
    client: async_nats::Client,
    timeout: Duration,
}

impl NatsAudit {
    /// Queries through `client`, waiting at most `timeout` for each answer.
    pub fn new(client: async_nats::Client, timeout: Duration) -> Self {
        NatsAudit { client, timeout }
    }
}

impl AuditHandler for NatsAudit {
    async fn answer(&self, query: AuditQuery) -> Result<Value, BusError> {
        audit_query(&self.client, &query, self.timeout).await
    }
}
