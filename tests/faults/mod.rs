//! The fault suite (issue 7): real `docket` processes and real nats-servers under load while
//! things fail — the nats-server killed and restarted, a cluster node and then the stream
//! leader killed, services SIGKILLed in the middle of their reactions, `docket up` SIGKILLed
//! and restarted on its data, a webhook endpoint slow, down and back. A load generator records
//! every command it was told succeeded; a checker compares that with the log afterwards and
//! prints `FAULTS <scenario> acknowledged=… lost=… duplicated=… …`: lost and duplicated must be 0.

mod checker;
mod nats;
mod processes;
mod webhook;

/// The scenarios run one at a time: each kills processes and measures times, which other
/// scenarios running beside it on two cores would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
