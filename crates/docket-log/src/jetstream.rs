//! The JetStream backend: the log as one NATS JetStream stream (placeholder, being written).

/// The log on NATS JetStream.
#[derive(Debug, Clone)]
pub struct JetStreamLog {}
