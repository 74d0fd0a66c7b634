//! The checkpointer's metrics: checkpoints signed, how much of the log they leave unsigned, and
//! how each witness answers (labelled `witness`, the witness key's name). A witness that refuses
//! shows as `docket_witness_refusals_total` rising and `docket_witness_alarm` at 1; one that is
//! down as `docket_witness_failures_total` rising and `docket_witness_up` at 0.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A witness's name.
type Witness = [(&'static str, String); 1];
/// An outcome and a witness's name, in the order they render.
type OutcomeWitness = [(&'static str, String); 2];

/// What `docket_witness_requests_total` counts an answer as.
const ANSWERS: [&str; 3] = ["cosigned", "refused", "failed"];

/// The checkpointer's metric families (`CheckpointerConfig::metrics`). Cheap to clone. The
/// default is registered nowhere (for tests and tools that do not serve `/metrics`).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    signed: Counter,
    size: Gauge,
    unsigned: Gauge,
    cosignatures: Gauge,
    quorum: Gauge,
    requests: Family<OutcomeWitness, Counter>,
    refusals: Family<Witness, Counter>,
    failures: Family<Witness, Counter>,
    up: Family<Witness, Gauge>,
    alarm: Family<Witness, Gauge>,
    cosigned_size: Family<Witness, Gauge>,
}

/// A count or size as a gauge's value.
fn value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// The checkpointer's families, registered into `registry`. The witness families have a
    /// series per configured witness, from the checkpointer's start.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register(
            "docket_checkpoints_signed",
            "Checkpoints signed and stored by the checkpointer",
            m.signed.clone(),
        );
        registry.register(
            "docket_checkpoint_size",
            "Tree size of the latest stored checkpoint",
            m.size.clone(),
        );
        registry.register(
            "docket_checkpoint_unsigned_commits",
            "Commits in the checkpointer's tree that no stored checkpoint covers yet",
            m.unsigned.clone(),
        );
        registry.register(
            "docket_checkpoint_cosignatures",
            "Witness cosignatures on the latest checkpoint the checkpointer signed",
            m.cosignatures.clone(),
        );
        registry.register(
            "docket_checkpoint_witness_quorum",
            "Witness cosignatures a checkpoint should carry (--witness-quorum)",
            m.quorum.clone(),
        );
        registry.register(
            "docket_witness_requests",
            "Checkpoints sent to a witness, by witness and outcome (cosigned, refused, failed)",
            m.requests.clone(),
        );
        registry.register(
            "docket_witness_refusals",
            "Checkpoints a witness refused to cosign: each one an alarm",
            m.refusals.clone(),
        );
        registry.register(
            "docket_witness_failures",
            "Checkpoints a witness did not answer (down, timed out, a bad answer)",
            m.failures.clone(),
        );
        registry.register(
            "docket_witness_up",
            "1 if the witness answered its last request, 0 if it did not",
            m.up.clone(),
        );
        registry.register(
            "docket_witness_alarm",
            "1 if the witness refused the last checkpoint it was sent",
            m.alarm.clone(),
        );
        registry.register(
            "docket_witness_cosigned_size",
            "Tree size of the latest checkpoint a witness cosigned for this log",
            m.cosigned_size.clone(),
        );
        m
    }

    /// Creates a configured witness's counters at 0 (its `up` waits for its first answer).
    pub(super) fn witness_configured(&self, witness: &str) {
        for outcome in ANSWERS {
            self.requests.get_or_create_owned(&[
                ("outcome", outcome.to_owned()),
                ("witness", witness.to_owned()),
            ]);
        }
        self.refusals
            .get_or_create_owned(&[("witness", witness.to_owned())]);
        self.failures
            .get_or_create_owned(&[("witness", witness.to_owned())]);
        self.alarm
            .get_or_create_owned(&[("witness", witness.to_owned())]);
    }

    /// Counts a checkpoint signed and stored at `size`, the tree holding `tree_size` commits.
    pub(super) fn checkpoint_signed(&self, size: u64, tree_size: u64) {
        self.signed.inc();
        self.checkpoint_stored(size);
        self.tree_size(tree_size, size);
    }

    /// Sets the size of the latest stored checkpoint.
    pub(super) fn checkpoint_stored(&self, size: u64) {
        self.size.set(value(size));
    }

    /// Sets the commits no stored checkpoint covers yet, of a tree of `tree_size`.
    pub(super) fn tree_size(&self, tree_size: u64, signed: u64) {
        self.unsigned.set(value(tree_size.saturating_sub(signed)));
    }

    /// Sets how many witnesses cosigned the latest checkpoint, and the quorum it should meet.
    pub(super) fn checkpoint_cosignatures(&self, count: usize, quorum: usize) {
        self.cosignatures.set(value(count as u64));
        self.quorum.set(value(quorum as u64));
    }

    /// Counts one witness's answer to one checkpoint: `cosigned`, `refused` (an alarm) or
    /// `failed` (down, timed out, a bad answer).
    pub(super) fn witness_answer(&self, witness: &str, outcome: &'static str) {
        let name = || [("witness", witness.to_owned())];
        self.requests
            .get_or_create(&[
                ("outcome", outcome.to_owned()),
                ("witness", witness.to_owned()),
            ])
            .inc();
        let (up, alarm) = match outcome {
            "cosigned" => (1, 0),
            "refused" => {
                self.refusals.get_or_create(&name()).inc();
                (1, 1)
            }
            _ => {
                self.failures.get_or_create(&name()).inc();
                (0, 0)
            }
        };
        self.up.get_or_create(&name()).set(up);
        self.alarm.get_or_create(&name()).set(alarm);
    }

    /// Sets the size a witness last cosigned for this log (0 while unknown).
    pub(super) fn witness_cosigned_size(&self, witness: &str, size: Option<u64>) {
        self.cosigned_size
            .get_or_create(&[("witness", witness.to_owned())])
            .set(value(size.unwrap_or(0)));
    }
}
