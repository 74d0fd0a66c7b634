//! The JetStream backend (being written).
