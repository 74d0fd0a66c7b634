//! A case's review: who asks, how each tier is assigned, asked about and ended.

use super::*;

impl Planner<'_> {
    pub(super) fn review(
        &self,
        rng: &mut StdRng,
        office: FieldOffice,
        action: EnforcementAction,
        force: Force,
    ) -> Option<ReviewPlan> {
        use ReviewOutcome::*;
        if !action.is_adverse() {
            return None;
        }
        let (requester, shape) = match force.review {
            Some(r) => r,
            None if force.scenario.is_some() => return None,
            None => {
                if !rng.gen_bool(0.4) {
                    return None;
                }
                let requester = if rng.gen_bool(0.55) {
                    Requester::Representative
                } else {
                    Requester::Noncitizen
                };
                let t1 = weighted(
                    rng,
                    &[(Upheld, 50), (Modified, 15), (Reversed, 25), (Referred, 10)],
                );
                let escalate = t1 != Reversed && rng.gen_bool(0.35);
                let shape = weighted(
                    rng,
                    &[
                        (Shape::Unacknowledged, 4),
                        (Shape::Withdrawn, 6),
                        (Shape::Tier1Open, 6),
                        (Shape::Tier1(t1), 84),
                    ],
                );
                let shape = match shape {
                    Shape::Tier1(t1) if escalate => {
                        match weighted(rng, &[(0, 85), (1, 10), (2, 5)]) {
                            0 => Shape::Tier2(
                                t1,
                                weighted(
                                    rng,
                                    &[(Upheld, 50), (Reversed, 25), (Modified, 15), (Referred, 10)],
                                ),
                            ),
                            1 => Shape::Tier2Open(t1),
                            _ => Shape::Withdrawn,
                        }
                    }
                    other => other,
                };
                (requester, shape)
            }
        };
        let staff = self.staff.office(office);
        let reviewer = *staff.reviewers.choose(rng).unwrap_or(&staff.director);
        let prioritise = match action {
            EnforcementAction::Arrest
            | EnforcementAction::Detain
            | EnforcementAction::TakeCustodyUnderDetainer
            | EnforcementAction::IssueDetainer => Some(PriorityReason::Detained),
            EnforcementAction::ExecuteRemovalOrder => Some(PriorityReason::RemovalImminent),
            _ => None,
        }
        .filter(|_| force.review.is_some() || rng.gen_bool(0.8));
        let grounds = [
            "primary caregiver of two U.S. citizen children",
            "pending U visa application as a victim of a crime",
            "the conviction relied on was vacated in 2019",
            "twenty years of continuous residence and a U.S. citizen spouse",
            "the officer did not weigh a serious medical condition requiring treatment",
            "the arrest took place at a clinic without a recorded exigency",
            "eligible for cancellation of removal; hearing already scheduled",
        ];
        let questions = [
            (
                "please send the letter from the treating physician",
                "letter from Dr. Alvarez attached (diagnosis and treatment plan)",
            ),
            (
                "provide proof of the children's school enrolment",
                "enrolment certificates for both children attached",
            ),
            (
                "send the court order vacating the conviction",
                "certified copy of the order of vacatur attached",
            ),
        ];
        let reasons_for = |outcome: ReviewOutcome| -> &'static str {
            match outcome {
                Upheld => "the whole record supports the action under the guidelines",
                Modified => {
                    "action modified: detention replaced by release on an alternative to detention"
                }
                Reversed => "action withdrawn: mitigating factors outweigh; release ordered",
                Referred => "referred: the request raises a matter for another office",
            }
        };
        let decided = |rng: &mut StdRng, outcome: ReviewOutcome| TierEnd::Decided {
            outcome,
            referred_to: (outcome == Referred).then(|| {
                *ReferralTarget::ALL
                    .choose(rng)
                    .unwrap_or(&ReferralTarget::CivilRights)
            }),
            reasons: reasons_for(outcome).to_owned(),
        };
        let withdrawn = |rng: &mut StdRng| {
            TierEnd::Withdrawn(
                [
                    "released on bond; no longer needed",
                    "the requester chose to pursue relief in immigration court",
                    "resolved with the field office",
                ]
                .choose(rng)
                .unwrap_or(&"withdrawn")
                .to_string(),
            )
        };
        let ask = |rng: &mut StdRng, p: f64| {
            (force.review.is_some() || rng.gen_bool(p)).then(|| {
                let (q, a) = questions.choose(rng).unwrap_or(&questions[0]);
                ((*q).to_owned(), (*a).to_owned())
            })
        };
        let chief = self
            .staff
            .senior_officials
            .first()
            .copied()
            .unwrap_or(staff.director);
        let official = *self
            .staff
            .senior_officials
            .choose(rng)
            .unwrap_or(&staff.director);
        let tier2 = |rng: &mut StdRng, end: TierEnd| Tier2 {
            grounds: "tier 1 did not weigh the family's circumstances".to_owned(),
            assigner: chief,
            official,
            ask: ask(rng, 0.2).filter(|_| !matches!(end, TierEnd::Open)),
            end,
        };
        let (acknowledge, tier1, tier2) = match shape {
            Shape::Unacknowledged => (false, TierEnd::Open, None),
            Shape::Tier1Open => (true, TierEnd::Open, None),
            Shape::Withdrawn => (true, withdrawn(rng), None),
            Shape::Tier1(o) => (true, decided(rng, o), None),
            Shape::Tier2(o1, o2) => {
                let end = decided(rng, o2);
                (true, decided(rng, o1), Some(tier2(rng, end)))
            }
            Shape::Tier2Open(o1) => (true, decided(rng, o1), Some(tier2(rng, TierEnd::Open))),
        };
        let ask = if matches!(shape, Shape::Tier1(_) | Shape::Tier2(..)) {
            ask(rng, 0.3)
        } else {
            None
        };
        Some(ReviewPlan {
            review: ReviewId(self.ids.uuid(rng)),
            requester,
            grounds: grounds.choose(rng).unwrap_or(&grounds[0]).to_string(),
            language: weighted(
                rng,
                &[
                    (None, 65),
                    (Some("es"), 25),
                    (Some("pt-BR"), 3),
                    (Some("ht"), 3),
                    (Some("vi"), 2),
                    (Some("zh-Hans"), 2),
                ],
            )
            .map(str::to_owned),
            acknowledge,
            prioritise: prioritise.filter(|_| acknowledge),
            reviewer,
            ask,
            tier1,
            tier2,
        })
    }
}
