//! Anchors in [`super::verify`] (rule `anchor`): what the auditor holds that the export's
//! author does not control.
//!
//! - A **trusted checkpoint** of size `n`, signed by the log's key: if `n` is at most the head,
//!   the export's root at `n` must be its root (else the export is a fork or a rewrite); if `n`
//!   is beyond the head, the export must carry that very checkpoint with the consistency proof
//!   from its head to it (else it is a rollback or a dropped tail: it cannot show it is a prefix
//!   of what the log signed).
//! - **Witnesses** with a quorum `K`: a checkpoint counts only if `K` of them cosigned it. The
//!   export must hold one, and the last one must cover the head (unless an unsigned tail is
//!   allowed). A history rewritten and re-signed with the deployment's own key carries no
//!   cosignature the witnesses made (they refuse what is inconsistent with what they cosigned),
//!   so its rewritten part is covered by none. An operator who withholds later checkpoints and
//!   presents an older, cosigned one with the log cut to match is caught by a trusted checkpoint
//!   (for example the witness's latest); the cosignature timestamps in the report show how old
//!   the witnessed state is.

use super::pass::Pass;
use super::{failure, AnchorCheck, AnchorKind, ANCHOR};

impl Pass<'_> {
    /// Checks every anchor, recording each and failing those the export cannot show it is
    /// consistent with.
    pub(super) fn check_anchors(&mut self, allow_unsigned_tail: bool) {
        let head = self.commits;
        let trusted = self.anchors.trusted.clone();
        for (i, text) in trusted.iter().enumerate() {
            self.count(ANCHOR, 1);
            let signed = match self.key.open(text) {
                Ok(s) => s,
                Err(e) => {
                    let detail = format!(
                        "trusted checkpoint {} is not a checkpoint signed by the log's key: {e}",
                        i + 1
                    );
                    self.anchor_fail(AnchorKind::TrustedCheckpoint, None, 0, detail);
                    continue;
                }
            };
            let (n, root) = (signed.checkpoint.size, signed.checkpoint.root);
            if n <= head {
                match self.tree.root_at(n) {
                    Ok(ours) if ours == root => self.anchor_ok(
                        AnchorKind::TrustedCheckpoint,
                        Some(n),
                        format!("the export's first {n} commits give its root {root}"),
                    ),
                    Ok(ours) => self.anchor_fail(
                        AnchorKind::TrustedCheckpoint,
                        Some(n),
                        n,
                        format!(
                            "the trusted checkpoint of size {n} has root {root}; the export's first {n} commits give {ours}: it is not the history that checkpoint signed (a fork or a rewrite)"
                        ),
                    ),
                    Err(e) => self.anchor_fail(
                        AnchorKind::TrustedCheckpoint,
                        Some(n),
                        n,
                        format!("the trusted checkpoint of size {n}: {e}"),
                    ),
                }
                continue;
            }
            match self.proof_to {
                Some((m, m_root)) if m == n && m_root == root => self.anchor_ok(
                    AnchorKind::TrustedCheckpoint,
                    Some(n),
                    format!(
                        "it is the checkpoint beyond the export's head, and the export's {head} commits are proved a prefix of it"
                    ),
                ),
                Some((m, m_root)) if m == n => self.anchor_fail(
                    AnchorKind::TrustedCheckpoint,
                    Some(n),
                    n,
                    format!(
                        "the trusted checkpoint of size {n} has root {root}; the export's checkpoint of that size says {m_root}: two histories signed (a fork)"
                    ),
                ),
                _ => self.anchor_fail(
                    AnchorKind::TrustedCheckpoint,
                    Some(n),
                    head + 1,
                    format!(
                        "the trusted checkpoint has size {n}, the export ends at {head}: it cannot show it is a prefix of what the log signed (a rollback, a dropped tail, or an export up to an earlier position)"
                    ),
                ),
            }
        }
        if self.anchors.witnesses.is_empty() {
            return;
        }
        self.count(ANCHOR, 1);
        let n = self.anchors.witnesses.len();
        let quorum = self.anchors.effective_quorum();
        let names: Vec<&str> = self.anchors.witnesses.iter().map(|w| w.name()).collect();
        let who = format!("{quorum} of the {n} witnesses ({})", names.join(", "));
        if quorum > n {
            let detail = format!("a quorum of {quorum} of {n} witnesses can never be met");
            self.anchor_fail(AnchorKind::Witnesses, None, 0, detail);
            return;
        }
        match self.witnessed.as_ref().map(|w| w.0) {
            None => self.anchor_fail(
                AnchorKind::Witnesses,
                None,
                head.min(1),
                format!(
                    "no checkpoint in the export is cosigned by {who}: nothing independent of the log's key vouches for it"
                ),
            ),
            Some(w) if w < head && !allow_unsigned_tail => self.anchor_fail(
                AnchorKind::Witnesses,
                Some(w),
                w + 1,
                format!(
                    "the last {} commits (positions {}..={head}) are covered by no checkpoint cosigned by {who}; the last cosigned one covers {w}",
                    head - w,
                    w + 1
                ),
            ),
            Some(w) => self.anchor_ok(
                AnchorKind::Witnesses,
                Some(w),
                format!("a checkpoint cosigned by {who} covers {w} of the {head} commits"),
            ),
        }
    }

    fn anchor_ok(&mut self, kind: AnchorKind, size: Option<u64>, detail: String) {
        self.anchor_checks.push(AnchorCheck {
            kind,
            size,
            ok: true,
            detail,
        });
    }

    fn anchor_fail(&mut self, kind: AnchorKind, size: Option<u64>, position: u64, detail: String) {
        self.failures
            .push(failure(position, ANCHOR, detail.clone()));
        self.anchor_checks.push(AnchorCheck {
            kind,
            size,
            ok: false,
            detail,
        });
    }
}
