//! A case's proposals of a decision: what the officer proposes, the departures from guidance,
//! and what the supervisor does with each.

use super::*;

impl Planner<'_> {
    pub(super) fn proposals(
        &self,
        rng: &mut StdRng,
        scenario: Scenario,
        priority: Option<PriorityCategory>,
        factors: &[Code],
        encounter: &Encounter,
        force: Force,
    ) -> Vec<Proposal> {
        use EnforcementAction::*;
        // Without a version in force there is no guidance: the scenario stands in for it.
        let is_priority = match priority {
            Some(p) => p != PriorityCategory::NotAPriority,
            None => scenario != Scenario::Mitigating,
        };
        let follow = |rng: &mut StdRng| -> EnforcementAction {
            match (is_priority, priority) {
                (false, _) => weighted(
                    rng,
                    &[
                        (NoAction, 40),
                        (Release, 10),
                        (GrantDeferredAction, 8),
                        (AdministrativelyClose, 12),
                        (MoveToDismiss, 10),
                        (CancelNta, 8),
                        (Continue, 6),
                        (Stipulate, 3),
                        (JoinMotionToReopen, 3),
                    ],
                ),
                (true, Some(PriorityCategory::NationalSecurity)) => {
                    weighted(rng, &[(Arrest, 4), (Detain, 4), (IssueDetainer, 2)])
                }
                (true, Some(PriorityCategory::BorderSecurity)) => weighted(
                    rng,
                    &[
                        (Detain, 3),
                        (IssueNta, 3),
                        (ServeNta, 1),
                        (ExecuteRemovalOrder, 2),
                        (Arrest, 2),
                    ],
                ),
                (true, _) => weighted(
                    rng,
                    &[
                        (Arrest, 4),
                        (Detain, 3),
                        (IssueDetainer, 3),
                        (TakeCustodyUnderDetainer, 2),
                        (IssueNta, 3),
                        (FileNta, 2),
                        (ExecuteRemovalOrder, 1),
                        (Appeal, 1),
                    ],
                ),
            }
        };
        let depart_action = |rng: &mut StdRng| -> EnforcementAction {
            if is_priority {
                weighted(
                    rng,
                    &[
                        (NoAction, 3),
                        (Release, 3),
                        (GrantParole, 1),
                        (AdministrativelyClose, 1),
                    ],
                )
            } else {
                weighted(
                    rng,
                    &[(IssueNta, 4), (Arrest, 3), (Detain, 2), (ServeNta, 1)],
                )
            }
        };
        let departs = |action: EnforcementAction| -> bool {
            match (self.policy, priority) {
                (Some(policy), Some(priority)) => {
                    let guidance = docket_domain::policy::Guidance {
                        policy_version: policy.version.clone(),
                        priority,
                        aggravating: Vec::new(),
                        mitigating: Vec::new(),
                        reasons: Vec::new(),
                    };
                    policy
                        .departure(&guidance, action)
                        .is_some_and(|d| d.needs_approval)
                }
                _ => false,
            }
        };
        let depart = force.depart.or_else(|| {
            rng.gen_bool(0.08).then(|| {
                weighted(
                    rng,
                    &[
                        (Depart::Approve, 6),
                        (Depart::ReturnThenFollow, 1),
                        (Depart::ReturnThenApprove, 1),
                    ],
                )
            })
        });
        let first_action = match (force.action, depart) {
            (Some(a), None) => a,
            (_, Some(_)) => depart_action(rng),
            (None, None) => follow(rng),
        };
        let cited = |rng: &mut StdRng| -> Vec<Code> {
            if factors.is_empty() {
                return Vec::new();
            }
            let n = rng.gen_range(1..=factors.len());
            let mut c: Vec<Code> = factors.choose_multiple(rng, n).cloned().collect();
            c.sort();
            c
        };
        let priority_text = priority.map_or("no guideline version in force".to_owned(), |p| {
            format!("guidance: {}", p.code().replace('_', " "))
        });
        let make = |rng: &mut StdRng, action: EnforcementAction, supervision: Supervision| {
            let departs = departs(action);
            let reasons = if departs {
                let why = if action.is_adverse() {
                    [
                        "the person failed to appear at two hearings",
                        "a pending charge not yet reflected in the factors",
                        "the removal order is final and travel documents are ready",
                    ]
                } else {
                    [
                        "the person is the sole caregiver of a child with a disability",
                        "a pending T visa certification by the U.S. Attorney",
                        "cooperating witness in a federal prosecution",
                    ]
                };
                format!(
                    "{action} departs from the {priority_text}: {}; supervisor approval requested.",
                    why.choose(rng).unwrap_or(&"exceptional circumstances")
                )
            } else {
                format!(
                    "{action} on the totality of the facts ({priority_text}), after review of the whole record."
                )
            };
            let exception =
                (encounter.protected_area.is_some() && action.is_adverse()).then(|| {
                    [
                        "imminent threat to life: armed subject fled into the area",
                        "hot pursuit of a person who poses a public-safety threat",
                        "imminent risk of destruction of evidence in an ongoing criminal case",
                    ]
                    .choose(rng)
                    .unwrap_or(&"exigent circumstances")
                    .to_string()
                });
            Proposal {
                decision: DecisionId(self.ids.uuid(rng)),
                action,
                cited: cited(rng),
                reasons,
                exception,
                forget_exception: false,
                departs,
                supervision: if departs {
                    supervision
                } else {
                    Supervision::None
                },
            }
        };
        let returned = |rng: &mut StdRng| {
            Supervision::Return(
                [
                    "the reasons do not address the mitigating factors in the record",
                    "explain why the guidance should not be followed in this case",
                    "the criminal record shows a vacated conviction: reassess",
                ]
                .choose(rng)
                .unwrap_or(&"reconsider")
                .to_string(),
            )
        };
        let mut out = Vec::new();
        match depart {
            None | Some(Depart::Approve) => out.push(make(rng, first_action, Supervision::Approve)),
            Some(Depart::ReturnThenFollow) => {
                let r = returned(rng);
                out.push(make(rng, first_action, r));
                let action = follow(rng);
                out.push(make(rng, action, Supervision::Approve));
            }
            Some(Depart::ReturnThenApprove) => {
                let r = returned(rng);
                out.push(make(rng, first_action, r));
                out.push(make(rng, first_action, Supervision::Approve));
            }
        }
        // A proposal that does not depart needs no approval, so it cannot be returned either:
        // keep only the last one then (without a policy in force nothing departs).
        if out.len() > 1 && !out[0].departs {
            out.remove(0);
        }
        if let Some(first) = out.first_mut() {
            first.forget_exception = first.exception.is_some()
                && (force.forget_exception || (force.scenario.is_none() && rng.gen_bool(0.25)));
        }
        out
    }
}
