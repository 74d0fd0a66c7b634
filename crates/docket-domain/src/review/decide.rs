//! The review aggregate's rules: `decide` (who may take which step, when, with what) and
//! `evolve` (what each event does to the state).

use super::event::*;
use super::state::{Tier, TierDecision};
use super::{RequesterCapacity, Review, ReviewCommand, Stage, MAX_REASON, MAX_TEXT};
use crate::aggregate::{Aggregate, Context, Rejection};
use crate::stream::AggregateKind;
use crate::values::{
    text, EnforcementAction, InvalidValue, PersonId, ReferralTarget, ReviewOutcome, ReviewTier,
    Role,
};

impl Review {
    fn request_review(
        &self,
        command: &ReviewCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<ReviewEvent>, Rejection> {
        let ReviewCommand::Request {
            review,
            a_number,
            capacity,
            case,
            decision,
            action,
            grounds,
            preferred_language,
        } = command
        else {
            return Err(Rejection::state("not a review request"));
        };
        if self.request.is_some() {
            return Err(Rejection::state("the review was already requested"));
        }
        if *action == EnforcementAction::NoAction {
            return Err(Rejection::rule(
                "not_reviewable",
                "declining to act is not an enforcement action that can be reviewed",
            ));
        }
        let grounds = text("grounds", grounds, MAX_TEXT)?;
        let preferred_language = preferred_language.as_deref().map(language).transpose()?;
        let parties = ctx.directory.decision(*decision).ok_or_else(|| {
            Rejection::rule(
                "decision_not_found",
                format!("no recorded decision {decision}"),
            )
        })?;
        if parties.a_number != *a_number || parties.case != *case || parties.action != *action {
            return Err(Rejection::rule(
                "decision_mismatch",
                format!("decision {decision} is not a {action} of {a_number} in case {case}"),
            ));
        }
        if *capacity == RequesterCapacity::Representative
            && !ctx.directory.has_g28(*a_number, ctx.actor.person)
        {
            return Err(Rejection::rule(
                "not_represented",
                format!("no G-28 on file for {a_number} names {}", ctx.actor.person),
            ));
        }
        let acknowledge_due = ctx.deadlines.acknowledge_due(ctx.now).ok_or_else(|| {
            out_of_range(
                "acknowledge_business_days",
                ctx.deadlines.acknowledge_business_days,
            )
        })?;
        let decision_due = ctx
            .deadlines
            .tier1_due(ctx.now)
            .ok_or_else(|| out_of_range("tier1_days", ctx.deadlines.tier1_days))?;
        Ok(vec![ReviewEvent::Requested(ReviewRequested {
            review: *review,
            a_number: *a_number,
            capacity: *capacity,
            case: *case,
            decision: *decision,
            action: *action,
            grounds,
            acknowledge_due,
            decision_due,
            by: ctx.actor,
            at: ctx.now,
            preferred_language,
        })])
    }

    /// A requester acts only on their own review, and a representative only while their G-28
    /// is still on file.
    fn check_requester(
        &self,
        request: &ReviewRequested,
        ctx: &Context<'_>,
    ) -> Result<(), Rejection> {
        if ctx.actor.person != request.by.person {
            return Err(Rejection::rule(
                "not_requester",
                "only the person who asked for this review may act on it as requester",
            ));
        }
        if request.capacity == RequesterCapacity::Representative
            && !ctx.directory.has_g28(request.a_number, ctx.actor.person)
        {
            return Err(Rejection::rule(
                "not_represented",
                format!("the G-28 for {} is no longer on file", request.a_number),
            ));
        }
        Ok(())
    }

    /// Checks that `person` may be assigned to review `tier`: registered in the right role,
    /// independent of the decision (and, for tier 2, of tier 1), and for tier 1 in the office.
    fn check_assignee(
        &self,
        request: &ReviewRequested,
        tier: ReviewTier,
        person: PersonId,
        ctx: &Context<'_>,
    ) -> Result<(), Rejection> {
        let role = match tier {
            ReviewTier::Tier1 => Role::FirstTierReviewer,
            ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
        };
        if self.reviewer(tier) == Some(person) {
            return Err(Rejection::rule(
                "already_assigned",
                format!("{person} is already assigned to {tier}"),
            ));
        }
        let profile = ctx
            .directory
            .officer(person)
            .filter(|p| p.role == role)
            .ok_or_else(|| {
                Rejection::rule(
                    "reviewer_not_qualified",
                    format!("{person} is not registered as {role}"),
                )
            })?;
        let parties = ctx.directory.decision(request.decision).ok_or_else(|| {
            Rejection::rule(
                "decision_not_found",
                format!("no recorded decision {}", request.decision),
            )
        })?;
        if person == parties.officer || parties.approver == Some(person) {
            return Err(Rejection::rule(
                "reviewer_not_independent",
                format!("{person} made or approved the decision under review"),
            ));
        }
        if tier == ReviewTier::Tier2 && self.reviewer(ReviewTier::Tier1) == Some(person) {
            return Err(Rejection::rule(
                "reviewer_not_independent",
                format!("{person} decided tier 1 of this review"),
            ));
        }
        if tier == ReviewTier::Tier1 && profile.office != parties.office {
            return Err(Rejection::rule(
                "reviewer_wrong_office",
                format!(
                    "tier 1 is reviewed in {}, and {person} is in {}",
                    parties.office, profile.office
                ),
            ));
        }
        Ok(())
    }

    /// Checks that the actor is the reviewer assigned to `tier`, in that tier's role.
    fn check_assigned(&self, tier: ReviewTier, ctx: &Context<'_>) -> Result<(), Rejection> {
        let role = match tier {
            ReviewTier::Tier1 => Role::FirstTierReviewer,
            ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
        };
        if ctx.actor.role == role && self.reviewer(tier) == Some(ctx.actor.person) {
            Ok(())
        } else {
            Err(Rejection::rule(
                "not_assigned_reviewer",
                format!("only the reviewer assigned to {tier} may do this"),
            ))
        }
    }

    fn decide_tier(
        &self,
        tier: ReviewTier,
        outcome: ReviewOutcome,
        referred_to: Option<ReferralTarget>,
        reasons: &str,
        ctx: &Context<'_>,
    ) -> Result<(ReviewOutcome, Option<ReferralTarget>, String), Rejection> {
        let assigned = match tier {
            ReviewTier::Tier1 => Stage::Tier1Assigned,
            ReviewTier::Tier2 => Stage::Tier2Assigned,
        };
        if self.stage() != assigned {
            return Err(Rejection::state(format!(
                "{tier} cannot be decided when the review is {:?}",
                self.stage()
            )));
        }
        self.check_assigned(tier, ctx)?;
        match (outcome, referred_to) {
            (ReviewOutcome::Referred, None) => {
                return Err(Rejection::rule(
                    "referral_target_required",
                    "a referral must say where it is referred to",
                ))
            }
            (ReviewOutcome::Referred, Some(_)) | (_, None) => {}
            (other, Some(target)) => {
                return Err(Rejection::rule(
                    "referral_target_unexpected",
                    format!("outcome {other} is not a referral, yet names {target}"),
                ))
            }
        }
        let reasons = text("reasons", reasons, MAX_TEXT)?;
        Ok((outcome, referred_to, reasons))
    }
}

impl Aggregate for Review {
    const KIND: AggregateKind = AggregateKind::Review;

    type Command = ReviewCommand;
    type Event = ReviewEvent;

    fn decide(
        &self,
        command: &ReviewCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<ReviewEvent>, Rejection> {
        ctx.authorize(command.kind())?;
        if let ReviewCommand::Request { .. } = command {
            return self.request_review(command, ctx);
        }
        let Some(request) = &self.request else {
            return Err(Rejection::state("the review has not been requested"));
        };
        if ctx.actor.role == Role::Requester {
            self.check_requester(request, ctx)?;
        }
        if self.is_closed() {
            return Err(Rejection::rule(
                "review_closed",
                format!("the review is closed ({:?})", self.stage()),
            ));
        }
        let stage = self.stage();
        let event = match command {
            ReviewCommand::Request { .. } => {
                return Err(Rejection::state("the review was already requested"))
            }
            ReviewCommand::Acknowledge => {
                if self.acknowledged_at.is_some() {
                    return Err(Rejection::state("the request was already acknowledged"));
                }
                ReviewEvent::Acknowledged(Acknowledged {
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::Prioritise { reason } => {
                if self.priority.contains(reason) {
                    return Err(Rejection::rule(
                        "already_prioritised",
                        format!("the review is already prioritised as {reason}"),
                    ));
                }
                let decision_due = match self.open_tier() {
                    None => None,
                    Some(tier) => {
                        let (field, days) = match tier {
                            ReviewTier::Tier1 => {
                                ("tier1_priority_days", ctx.deadlines.tier1_priority_days)
                            }
                            ReviewTier::Tier2 => {
                                ("tier2_priority_days", ctx.deadlines.tier2_priority_days)
                            }
                        };
                        match self.tier(tier) {
                            None => None,
                            Some(t) => Some(TierDue {
                                tier,
                                due: ctx
                                    .deadlines
                                    .prioritised_due(tier, ctx.now, t.decision_due)
                                    .ok_or_else(|| out_of_range(field, days))?,
                            }),
                        }
                    }
                };
                ReviewEvent::Prioritised(Prioritised {
                    reason: *reason,
                    decision_due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::AssignReviewer { reviewer } => {
                if !matches!(stage, Stage::Acknowledged | Stage::Tier1Assigned) {
                    return Err(Rejection::state(format!(
                        "a tier-1 reviewer cannot be assigned when the review is {stage:?}"
                    )));
                }
                self.check_assignee(request, ReviewTier::Tier1, *reviewer, ctx)?;
                ReviewEvent::ReviewerAssigned(ReviewerAssigned {
                    reviewer: *reviewer,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RequestInformation { question } => {
                let tier = self.open_tier().ok_or_else(no_open_tier)?;
                self.check_assigned(tier, ctx)?;
                let question = text("question", question, MAX_TEXT)?;
                ReviewEvent::InformationRequested(InformationRequested {
                    tier,
                    question,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::ProvideInformation { information } => {
                if self.open_questions == 0 {
                    return Err(Rejection::rule(
                        "no_information_requested",
                        "no information request is waiting for an answer",
                    ));
                }
                let information = text("information", information, MAX_TEXT)?;
                ReviewEvent::InformationProvided(InformationProvided {
                    information,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::DecideTier1 {
                outcome,
                referred_to,
                reasons,
            } => {
                let (outcome, referred_to, reasons) =
                    self.decide_tier(ReviewTier::Tier1, *outcome, *referred_to, reasons, ctx)?;
                let tier2_request_closes =
                    ctx.deadlines.tier2_request_closes(ctx.now).ok_or_else(|| {
                        out_of_range("tier2_request_days", ctx.deadlines.tier2_request_days)
                    })?;
                ReviewEvent::Tier1Decided(Tier1Decided {
                    outcome,
                    referred_to,
                    reasons,
                    tier2_request_closes,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RequestTier2 { grounds } => {
                if self.tier2.is_some() {
                    return Err(Rejection::rule(
                        "tier2_already_requested",
                        "tier 2 was already asked for",
                    ));
                }
                let Some(closes) = self.tier2_request_closes else {
                    return Err(Rejection::rule(
                        "tier1_not_decided",
                        "tier 2 can be asked for only after the tier-1 outcome",
                    ));
                };
                if ctx.now >= closes {
                    return Err(Rejection::rule(
                        "tier2_window_closed",
                        format!("the window to ask for tier 2 closed at {closes}"),
                    ));
                }
                let grounds = text("grounds", grounds, MAX_TEXT)?;
                let prioritised = self.is_prioritised();
                let decision_due =
                    ctx.deadlines
                        .tier2_due(ctx.now, prioritised)
                        .ok_or_else(|| {
                            if prioritised {
                                out_of_range(
                                    "tier2_priority_days",
                                    ctx.deadlines.tier2_priority_days,
                                )
                            } else {
                                out_of_range("tier2_days", ctx.deadlines.tier2_days)
                            }
                        })?;
                ReviewEvent::Tier2Requested(Tier2Requested {
                    grounds,
                    decision_due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::AssignSeniorOfficial { official } => {
                if !matches!(stage, Stage::Tier2Requested | Stage::Tier2Assigned) {
                    return Err(Rejection::state(format!(
                        "a Senior Reviewing Official cannot be assigned when the review is {stage:?}"
                    )));
                }
                self.check_assignee(request, ReviewTier::Tier2, *official, ctx)?;
                ReviewEvent::SeniorOfficialAssigned(SeniorOfficialAssigned {
                    official: *official,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::DecideTier2 {
                outcome,
                referred_to,
                reasons,
            } => {
                let (outcome, referred_to, reasons) =
                    self.decide_tier(ReviewTier::Tier2, *outcome, *referred_to, reasons, ctx)?;
                let overrides_tier1 = self
                    .tier_decision(ReviewTier::Tier1)
                    .is_some_and(|t1| (t1.outcome, t1.referred_to) != (outcome, referred_to));
                ReviewEvent::Tier2Decided(Tier2Decided {
                    outcome,
                    referred_to,
                    reasons,
                    overrides_tier1,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::Withdraw { reason } => {
                if self.open_tier().is_none() {
                    return Err(no_open_tier());
                }
                let reason = reason
                    .as_deref()
                    .map(|r| text("reason", r, MAX_REASON))
                    .transpose()?;
                ReviewEvent::Withdrawn(Withdrawn {
                    reason,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RecordDeadlineMissed { deadline } => {
                if self.missed.contains(deadline) {
                    return Err(Rejection::rule(
                        "deadline_already_recorded",
                        format!("the {deadline} deadline was already recorded as missed"),
                    ));
                }
                let Some((_, due)) = self.pending().into_iter().find(|(k, _)| k == deadline) else {
                    return Err(Rejection::rule(
                        "deadline_not_pending",
                        format!("no {deadline} deadline is running: its step is done or not due"),
                    ));
                };
                if ctx.now < due {
                    return Err(Rejection::rule(
                        "deadline_not_passed",
                        format!("the {deadline} deadline passes at {due}, not before"),
                    ));
                }
                ReviewEvent::DeadlineMissed(DeadlineMissed {
                    deadline: *deadline,
                    due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
        };
        Ok(vec![event])
    }

    fn evolve(mut self, event: &ReviewEvent) -> Self {
        match event {
            ReviewEvent::Requested(e) => {
                self.request = Some(e.clone());
                self.tier1 = Some(Tier::new(e.decision_due));
            }
            ReviewEvent::Acknowledged(e) => self.acknowledged_at = Some(e.at),
            ReviewEvent::Prioritised(e) => {
                if !self.priority.contains(&e.reason) {
                    self.priority.push(e.reason);
                }
                if let Some(d) = &e.decision_due {
                    if let Some(t) = self.tier_mut(d.tier) {
                        t.decision_due = d.due;
                    }
                }
            }
            ReviewEvent::ReviewerAssigned(e) => {
                if let Some(t) = self.tier1.as_mut() {
                    t.reviewer = Some(e.reviewer);
                }
            }
            ReviewEvent::InformationRequested(_) => {
                self.open_questions = self.open_questions.saturating_add(1);
            }
            ReviewEvent::InformationProvided(_) => self.open_questions = 0,
            ReviewEvent::Tier1Decided(e) => {
                if let Some(t) = self.tier1.as_mut() {
                    t.decision = Some(TierDecision {
                        outcome: e.outcome,
                        referred_to: e.referred_to,
                        reasons: e.reasons.clone(),
                        by: e.by,
                        at: e.at,
                    });
                }
                self.tier2_request_closes = Some(e.tier2_request_closes);
                self.open_questions = 0;
            }
            ReviewEvent::Tier2Requested(e) => self.tier2 = Some(Tier::new(e.decision_due)),
            ReviewEvent::SeniorOfficialAssigned(e) => {
                if let Some(t) = self.tier2.as_mut() {
                    t.reviewer = Some(e.official);
                }
            }
            ReviewEvent::Tier2Decided(e) => {
                if let Some(t) = self.tier2.as_mut() {
                    t.decision = Some(TierDecision {
                        outcome: e.outcome,
                        referred_to: e.referred_to,
                        reasons: e.reasons.clone(),
                        by: e.by,
                        at: e.at,
                    });
                }
                self.open_questions = 0;
            }
            ReviewEvent::Withdrawn(e) => self.withdrawn = Some(e.clone()),
            ReviewEvent::DeadlineMissed(e) => {
                if !self.missed.contains(&e.deadline) {
                    self.missed.push(e.deadline);
                }
            }
        }
        self
    }
}

fn no_open_tier() -> Rejection {
    Rejection::rule("no_open_tier", "no tier of this review is in progress")
}

fn out_of_range(field: &'static str, days: u32) -> Rejection {
    Rejection::Invalid(InvalidValue::new(
        "deadlines",
        format!("{field} = {days} puts the deadline out of range"),
    ))
}

/// Checks a language tag: 2 to 35 ASCII letters, digits and `-`, starting with a letter.
fn language(value: &str) -> Result<String, InvalidValue> {
    let tag = value.trim();
    let ok = (2..=35).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_alphabetic())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(tag.to_owned())
    } else {
        Err(InvalidValue::new(
            "preferred_language",
            format!("{value:?}: expected a language tag such as \"es\" or \"pt-BR\""),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::language;

    #[test]
    fn language_tags_are_checked_and_trimmed() {
        assert_eq!(language(" pt-BR ").unwrap(), "pt-BR");
        for bad in ["", "e", "1a", "es_ES", &"a".repeat(36)] {
            assert_eq!(
                language(bad).unwrap_err().field,
                "preferred_language",
                "{bad:?}"
            );
        }
    }
}
