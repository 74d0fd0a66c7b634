//! The checkpointer's metrics: checkpoints signed, how much of the log they leave unsigned, and
//! how each witness answers (labelled `witness`, the witness key's name). A witness that refuses
//! shows as `docket_witness_refusals_total` rising and `docket_witness_alarm` at 1; one that is
//! down as `docket_witness_failures_total` rising and `docket_witness_up` at 0.

use super::{counter, gauge_set};

/// Counts a checkpoint signed and stored at `size`, the tree holding `tree_size` commits.
pub fn checkpoint_signed(size: u64, tree_size: u64) {
    counter(
        "docket_checkpoints_signed_total",
        "Checkpoints signed and stored by the checkpointer.",
        &[],
    )
    .inc();
    checkpoint_stored(size);
    self::tree_size(tree_size, size);
}

/// Sets the size of the latest stored checkpoint.
pub fn checkpoint_stored(size: u64) {
    gauge_set(
        "docket_checkpoint_size",
        "Tree size of the latest stored checkpoint.",
        &[],
        size as f64,
    );
}

/// Sets the tree's size and the commits no stored checkpoint covers yet.
pub fn tree_size(tree_size: u64, signed: u64) {
    gauge_set(
        "docket_checkpoint_unsigned_commits",
        "Commits in the checkpointer's tree that no stored checkpoint covers yet.",
        &[],
        tree_size.saturating_sub(signed) as f64,
    );
}

/// Sets how many witnesses cosigned the latest checkpoint, and the quorum it should meet.
pub fn checkpoint_cosignatures(count: usize, quorum: usize) {
    gauge_set(
        "docket_checkpoint_cosignatures",
        "Witness cosignatures on the latest checkpoint the checkpointer signed.",
        &[],
        count as f64,
    );
    gauge_set(
        "docket_checkpoint_witness_quorum",
        "Witness cosignatures a checkpoint should carry (--witness-quorum).",
        &[],
        quorum as f64,
    );
}

/// Counts one witness's answer to one checkpoint: `cosigned`, `refused` (an alarm) or `failed`
/// (down, timed out, a bad answer).
pub fn witness_answer(witness: &str, outcome: &'static str) {
    counter(
        "docket_witness_requests_total",
        "Checkpoints sent to a witness, by witness and outcome (cosigned, refused, failed).",
        &[("witness", witness), ("outcome", outcome)],
    )
    .inc();
    let (up, alarm) = match outcome {
        "cosigned" => (1.0, 0.0),
        "refused" => {
            counter(
                "docket_witness_refusals_total",
                "Checkpoints a witness refused to cosign: each one an alarm.",
                &[("witness", witness)],
            )
            .inc();
            (1.0, 1.0)
        }
        _ => {
            counter(
                "docket_witness_failures_total",
                "Checkpoints a witness did not answer (down, timed out, a bad answer).",
                &[("witness", witness)],
            )
            .inc();
            (0.0, 0.0)
        }
    };
    gauge_set(
        "docket_witness_up",
        "1 if the witness answered its last request, 0 if it did not.",
        &[("witness", witness)],
        up,
    );
    gauge_set(
        "docket_witness_alarm",
        "1 if the witness refused the last checkpoint it was sent.",
        &[("witness", witness)],
        alarm,
    );
}

/// Sets the size a witness last cosigned for this log (0 while unknown).
pub fn witness_cosigned_size(witness: &str, size: Option<u64>) {
    gauge_set(
        "docket_witness_cosigned_size",
        "Tree size of the latest checkpoint a witness cosigned for this log.",
        &[("witness", witness)],
        size.unwrap_or(0) as f64,
    );
}
