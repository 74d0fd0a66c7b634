//! Coverage in [`super::verify`]: how much of the export the signed checkpoints vouch for (rule
//! `coverage`), the checkpoint cadence the deployment declares in its log and the gaps longer
//! than it, and the one-line statement of what the verdict rests on.
//!
//! A gap: the commits after a checkpoint (or from the log's start) up to the next checkpoint,
//! or up to the head for the tail, whose recorded times run more than the declared `every_ms`
//! plus [`GAP_SLACK_MS`] past the first of them, or that are more than twice the declared
//! `every_commits`. The checkpointer signs within its cadence whenever the log grows, so a gap
//! means checkpoints were withheld from the export, or the checkpointer was not signing (it was
//! down: a declaration inside the gap shows where it started again). Gaps are reported, not
//! failed: only an anchor can prove a checkpoint was withheld.

use docket_log::Commit;

use super::pass::Pass;
use super::{failure, CadenceDeclaration, Coverage, Failure, Gap, VerifyOptions, COVERAGE};
use crate::export::rfc3339;

/// The stream the checkpointer declares its cadence on.
pub const CADENCE_STREAM: &str = "audit/checkpointer";
/// The declaration's event type.
pub const CADENCE_EVENT: &str = "audit.checkpoint_cadence";
/// Time allowed beyond the declared `every` before commits without a checkpoint are a gap.
pub const GAP_SLACK_MS: u64 = 2_000;

#[derive(serde::Deserialize)]
struct Declared {
    every_ms: u64,
    every_commits: u64,
}

impl Pass<'_> {
    /// Records a cadence declaration, if the commit is one (a malformed one is no declaration).
    pub(super) fn note_cadence(&mut self, position: u64, commit: &Commit) {
        if commit.stream.as_str() != CADENCE_STREAM {
            return;
        }
        for event in &commit.events {
            if event.type_name != CADENCE_EVENT {
                continue;
            }
            if let Ok(d) = serde_json::from_slice::<Declared>(&event.payload) {
                self.cadence.push(CadenceDeclaration {
                    position,
                    every_ms: d.every_ms,
                    every_commits: d.every_commits,
                });
            }
        }
    }

    /// Closes the segment of commits since the last checkpoint at `until` (recorded at
    /// `until_at`), reporting it if it is longer than the declared cadence allows.
    pub(super) fn judge_gap(&mut self, until: u64, until_at: i64, tail: bool) {
        let Some((start, start_at)) = self.segment.take() else {
            return;
        };
        let Some(cadence) = self
            .cadence
            .iter()
            .rev()
            .find(|d| d.position <= until)
            .cloned()
        else {
            return;
        };
        let after = start - 1;
        let commits = until - after;
        let span_ms = u64::try_from(until_at.saturating_sub(start_at) / 1000).unwrap_or(0);
        let too_long = cadence.every_ms > 0 && span_ms > cadence.every_ms + GAP_SLACK_MS;
        let too_many =
            cadence.every_commits > 0 && commits > cadence.every_commits.saturating_mul(2);
        if !(too_long || too_many) {
            return;
        }
        let started = self
            .cadence
            .iter()
            .find(|d| d.position >= start && d.position <= until)
            .map(|d| d.position);
        self.gaps.push(Gap {
            after,
            until,
            commits,
            span_ms,
            first_at: rfc3339(start_at),
            last_at: rfc3339(until_at),
            cadence,
            tail,
            checkpointer_started_at: started,
        });
    }

    /// The size the log key's checkpoints vouch for within the export.
    pub(super) fn signed_size(&self) -> u64 {
        if self.proof_to.is_some() {
            self.commits
        } else {
            self.last_good.map_or(0, |(size, _)| size)
        }
    }

    /// Rule `coverage`: a checkpoint at all, and one covering the head unless allowed.
    pub(super) fn check_coverage(&mut self, allow_unsigned_tail: bool) {
        self.count(COVERAGE, 1);
        let head = self.commits;
        if self.checkpoints_checked == 0 {
            self.failures.push(failure(
                head.min(1),
                COVERAGE,
                format!(
                    "the export holds no signed checkpoint: nothing vouches for its {head} commits"
                ),
            ));
            return;
        }
        let signed = self.signed_size();
        if signed < head && !allow_unsigned_tail {
            self.failures.push(failure(
                signed + 1,
                COVERAGE,
                format!(
                    "the last {} commits (positions {}..={head}) are past the last signed checkpoint (size {signed}): no signature vouches for them (--allow-unsigned-tail accepts that)",
                    head - signed,
                    signed + 1
                ),
            ));
        }
    }

    /// The coverage section of the report.
    pub(super) fn coverage(
        &self,
        options: &VerifyOptions,
        stopped: Option<&Failure>,
        verdict: Option<&Failure>,
    ) -> Coverage {
        let head = self.commits;
        let signed_size = self.signed_size();
        let witnesses: Vec<String> = self
            .anchors
            .witnesses
            .iter()
            .map(|w| w.name().to_owned())
            .collect();
        let with_witnesses = !witnesses.is_empty();
        let witnessed_size = with_witnesses.then(|| self.witnessed.as_ref().map_or(0, |w| w.0));
        let rests_on = self.rests_on(options, stopped, verdict, signed_size, witnessed_size);
        Coverage {
            head,
            signed_size,
            last_checkpoint_size: self
                .proof_to
                .map(|(size, _)| size)
                .or(self.last_good.map(|(size, _)| size)),
            proof_to: self.proof_to.map(|(size, _)| size),
            unsigned_commits: head - signed_size.min(head),
            unsigned_tail_allowed: options.allow_unsigned_tail,
            witness_quorum: if with_witnesses {
                self.anchors.effective_quorum()
            } else {
                0
            },
            witnesses,
            witnessed_size,
            witnessed_by: self
                .witnessed
                .as_ref()
                .map(|w| w.1.clone())
                .unwrap_or_default(),
            unwitnessed_commits: witnessed_size.map(|w| head - w.min(head)),
            cadence: self.cadence.clone(),
            gaps: self.gaps.clone(),
            anchors: self.anchor_checks.clone(),
            rests_on,
        }
    }

    fn rests_on(
        &self,
        options: &VerifyOptions,
        stopped: Option<&Failure>,
        verdict: Option<&Failure>,
        signed_size: u64,
        witnessed_size: Option<u64>,
    ) -> String {
        let head = self.commits;
        if let Some(f) = stopped {
            return format!(
                "nothing: the export failed its integrity checks at position {} (rule {})",
                f.position, f.rule
            );
        }
        if self.checkpoints_checked == 0 {
            return "nothing: the export holds no signed checkpoint".to_owned();
        }
        let failed: Vec<String> = self
            .anchor_checks
            .iter()
            .filter(|a| !a.ok)
            .map(|a| a.detail.clone())
            .collect();
        if !failed.is_empty() {
            return format!(
                "nothing: the export contradicts the auditor's anchors: {}",
                failed.join("; ")
            );
        }
        let mut out = format!(
            "the export's own checkpoints signed by {}, covering {signed_size} of {head} commits",
            self.key.vkey()
        );
        if signed_size < head {
            out.push_str(&format!(
                " (the last {} are vouched for by no signature)",
                head - signed_size
            ));
        }
        if let Some(m) = self.proof_to {
            out.push_str(&format!(
                ", the last by the consistency proof to the checkpoint of size {}",
                m.0
            ));
        }
        let anchors = &options.anchors;
        let trusted: Vec<String> = self
            .anchor_checks
            .iter()
            .filter(|a| a.kind == super::AnchorKind::TrustedCheckpoint)
            .filter_map(|a| a.size.map(|s| s.to_string()))
            .collect();
        if !trusted.is_empty() {
            out.push_str(&format!(
                "; consistent with the trusted checkpoint(s) of size {}",
                trusted.join(", ")
            ));
        }
        if let Some(w) = witnessed_size {
            let names: Vec<&str> = anchors.witnesses.iter().map(|w| w.name()).collect();
            out.push_str(&format!(
                "; cosigned by {} of the witnesses {} up to size {w}",
                anchors.effective_quorum(),
                names.join(", ")
            ));
            if w < head {
                out.push_str(&format!(
                    " (the last {} commits rest on the log key alone, or on nothing)",
                    head - w
                ));
            }
        }
        if anchors.is_empty() {
            out.push_str(
                ": no witness or trusted checkpoint anchors it, so whoever holds that key could have rewritten and re-signed it",
            );
        }
        if !self.gaps.is_empty() {
            out.push_str(&format!(
                "; {} gaps between checkpoints are longer than the declared cadence (checkpoints withheld, or the checkpointer not signing)",
                self.gaps.len()
            ));
        }
        if let Some(f) = verdict {
            out.push_str(&format!(
                "; but the verdict is FAILED (position {}, rule {})",
                f.position, f.rule
            ));
        }
        out
    }
}
