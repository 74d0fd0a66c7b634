//! One case: the paths the first cases are forced along, then its office and staff, encounter,
//! factors, records and G-28; its proposals and review come from `decisions.rs` and
//! `review.rs`.

use super::data::{city, crossing, office_weight, BORDER_OFFICES, SCENARIOS};
use super::*;

fn forced(index: usize) -> Force {
    use ReviewOutcome::*;
    use Scenario::*;
    let f = Force::default();
    match index {
        0 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::Approve),
            review: Some((Requester::Representative, Shape::Tier2(Upheld, Reversed))),
            ..f
        },
        1 => Force {
            scenario: Some(PublicSafety),
            untrained: true,
            action: Some(EnforcementAction::Detain),
            review: Some((Requester::Noncitizen, Shape::Tier1(Reversed))),
            ..f
        },
        2 => Force {
            scenario: Some(ProtectedArea),
            forget_exception: true,
            action: Some(EnforcementAction::Arrest),
            review: Some((Requester::Representative, Shape::Withdrawn)),
            ..f
        },
        3 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::ReturnThenFollow),
            ..f
        },
        4 => Force {
            scenario: Some(NationalSecurity),
            action: Some(EnforcementAction::Detain),
            review: Some((Requester::Noncitizen, Shape::Unacknowledged)),
            ..f
        },
        5 => Force {
            scenario: Some(BorderRecentEntry),
            action: Some(EnforcementAction::ExecuteRemovalOrder),
            review: Some((Requester::Representative, Shape::Tier1Open)),
            ..f
        },
        6 => Force {
            scenario: Some(PublicSafety),
            depart: Some(Depart::Approve),
            ..f
        },
        7 => Force {
            scenario: Some(BorderAttempt),
            review: Some((Requester::Noncitizen, Shape::Tier2Open(Referred))),
            ..f
        },
        8 => Force {
            scenario: Some(PublicSafety),
            review: Some((Requester::Representative, Shape::Tier2(Modified, Upheld))),
            ..f
        },
        9 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::ReturnThenApprove),
            review: Some((Requester::Noncitizen, Shape::Tier1(Upheld))),
            ..f
        },
        _ => f,
    }
}

impl Planner<'_> {
    /// Plans case `index`.
    pub(crate) fn case(
        &self,
        rng: &mut StdRng,
        index: usize,
        used: &mut HashSet<ANumber>,
    ) -> CasePlan {
        let force = forced(index);
        let scenario = force.scenario.unwrap_or_else(|| weighted(rng, &SCENARIOS));
        let office = if scenario == Scenario::BorderAttempt {
            *BORDER_OFFICES.choose(rng).unwrap_or(&FieldOffice::Elp)
        } else if force.untrained {
            // An office with an untrained officer.
            self.staff
                .offices
                .iter()
                .find(|(o, _)| !o.untrained.is_empty())
                .map_or(FieldOffice::Atl, |(o, _)| o.office)
        } else if index < FieldOffice::ALL.len() {
            // The first cases visit every office once.
            FieldOffice::ALL[index]
        } else {
            let weights: Vec<(FieldOffice, u32)> = FieldOffice::ALL
                .iter()
                .map(|o| (*o, office_weight(*o)))
                .collect();
            weighted(rng, &weights)
        };
        let staff = self.staff.office(office);
        let trained = staff.trained_officers();
        let officer = if force.untrained {
            staff.untrained.first().copied()
        } else {
            None
        }
        .or_else(|| staff.officers.choose(rng).copied())
        .unwrap_or(staff.director);
        let officer_trained = !staff.untrained.contains(&officer);
        let backup = trained
            .iter()
            .copied()
            .find(|o| *o != officer)
            .or_else(|| trained.first().copied())
            .unwrap_or(staff.director);
        let supervisor = *staff.supervisors.choose(rng).unwrap_or(&staff.director);
        let clerk = *staff.clerks.choose(rng).unwrap_or(&staff.director);

        let case = CaseId(self.ids.uuid(rng));
        // Distinct within the run, so each G-28 stream is one person's.
        let a_number = loop {
            let digits = format!("{:09}", rng.gen_range(1_000_000..=999_999_999u32));
            if let Ok(a) = ANumber::parse(&digits) {
                if used.insert(a) {
                    break a;
                }
            }
        };
        let encounter = self.encounter(rng, scenario, office);
        let (factors, narrative_hint) = self.factors(rng, scenario, &encounter);
        let priority = self.policy.and_then(|p| {
            p.evaluate(&docket_domain::policy::CaseFacts {
                place: encounter.place,
                manner_of_entry: encounter.manner_of_entry,
                entry_date: encounter.entry_date,
                factors: factors.clone(),
            })
            .ok()
            .map(|g| g.priority)
        });
        let records = self.records(rng, scenario, a_number);
        let narrative = format!(
            "Reviewed the whole record ({} record(s) attached, {} source(s) with nothing to attach). {narrative_hint} Factors found present: {}.",
            records.iter().filter(|r| matches!(r, RecordStep::Attach { .. })).count(),
            records.iter().filter(|r| matches!(r, RecordStep::Unavailable { .. })).count(),
            if factors.is_empty() { "none".to_owned() } else { factors.iter().map(Code::as_str).collect::<Vec<_>>().join(", ") },
        );
        let proposals = self.proposals(rng, scenario, priority, &factors, &encounter, force);
        let action = proposals
            .last()
            .map_or(EnforcementAction::NoAction, |p| p.action);
        let review = self.review(rng, office, action, force);
        let g28 = match (&review, rng.gen_bool(0.15)) {
            (Some(r), _) if r.requester == Requester::Representative => Some(self.g28(rng, false)),
            (None, true) => {
                let withdraw = rng.gen_bool(0.1);
                Some(self.g28(rng, withdraw))
            }
            (Some(_), true) => Some(self.g28(rng, false)),
            _ => None,
        };
        let mut proposals = proposals;
        if !officer_trained {
            // An untrained officer is refused before the protected-area rule is looked at.
            for p in &mut proposals {
                p.forget_exception = false;
            }
        }
        CasePlan {
            index,
            case,
            a_number,
            office,
            noncitizen: self.ids.person(rng),
            clerk,
            officer,
            officer_trained,
            backup,
            supervisor,
            director: staff.director,
            encounter,
            records,
            unavailable_by_clerk: rng.gen_bool(0.3),
            factors,
            narrative,
            priority,
            proposals,
            g28,
            review,
        }
    }

    fn encounter(&self, rng: &mut StdRng, scenario: Scenario, office: FieldOffice) -> Encounter {
        let at = self.start
            - Duration::days(rng.gen_range(1..=90))
            - Duration::seconds(rng.gen_range(0..86_400));
        let day = at.date_naive();
        let cutoff = self
            .policy
            .map_or(ymd(2020, 11, 1), |p| p.border_entry_cutoff);
        let settled = |rng: &mut StdRng| -> (MannerOfEntry, Option<NaiveDate>) {
            let latest = (cutoff - Duration::days(30)).min(day);
            match rng.gen_range(0..10) {
                0..=3 => (
                    MannerOfEntry::EnteredLawfully,
                    Some(day_between(rng, ymd(1988, 1, 1), latest)),
                ),
                4..=7 => (
                    MannerOfEntry::EnteredUnlawfully,
                    Some(day_between(rng, ymd(1990, 1, 1), latest)),
                ),
                _ => (MannerOfEntry::Unknown, None),
            }
        };
        let street = [
            "at a traffic stop",
            "at a residence",
            "at a county jail (detainer)",
            "at a workplace",
            "at the local ICE office (check-in)",
            "at a state prison (transfer)",
        ];
        let (place, manner, entry_date, location, protected_area) = match scenario {
            Scenario::BorderAttempt => (
                if rng.gen_bool(0.6) {
                    EncounterPlace::Border
                } else {
                    EncounterPlace::PortOfEntry
                },
                MannerOfEntry::AttemptingUnlawfulEntry,
                None,
                crossing(office).to_owned(),
                None,
            ),
            Scenario::BorderRecentEntry => {
                let from = cutoff + Duration::days(1);
                let entered = if from < day {
                    day_between(rng, from, day)
                } else {
                    day
                };
                (
                    EncounterPlace::Interior,
                    MannerOfEntry::EnteredUnlawfully,
                    Some(entered),
                    format!(
                        "{}, {}",
                        city(office),
                        street.choose(rng).unwrap_or(&"in the interior")
                    ),
                    None,
                )
            }
            Scenario::ProtectedArea => {
                let (manner, entry) = settled(rng);
                let area = *ProtectedArea::ALL
                    .choose(rng)
                    .unwrap_or(&ProtectedArea::School);
                (
                    EncounterPlace::Interior,
                    manner,
                    entry,
                    format!("{}, near a {}", city(office), area.code().replace('_', " ")),
                    Some(area),
                )
            }
            _ => {
                let (manner, entry) = settled(rng);
                (
                    EncounterPlace::Interior,
                    manner,
                    entry,
                    format!(
                        "{}, {}",
                        city(office),
                        street.choose(rng).unwrap_or(&"in the interior")
                    ),
                    None,
                )
            }
        };
        Encounter {
            at,
            location,
            place,
            manner_of_entry: manner,
            entry_date,
            protected_area,
        }
    }

    /// The factors present and a sentence for the narrative.
    fn factors(
        &self,
        rng: &mut StdRng,
        scenario: Scenario,
        encounter: &Encounter,
    ) -> (Vec<Code>, &'static str) {
        let public_safety = |rng: &mut StdRng| {
            let mut f = pick(rng, &self.factors.public_safety, 1, 3);
            // What mitigates never outweighs it here: one mitigating factor (at most 3) only
            // beside aggravating weight of 5 or more.
            if weight_of(self.policy, &f) >= 5 && rng.gen_bool(0.5) {
                f.extend(pick(rng, &self.factors.mitigating, 1, 1));
            }
            f
        };
        match scenario {
            Scenario::Mitigating => (
                pick(rng, &self.factors.mitigating, 1, 3),
                "No current threat to public safety; long-standing ties in the community.",
            ),
            Scenario::PublicSafety => (
                public_safety(rng),
                "Recent serious criminal conduct documented in the criminal record.",
            ),
            Scenario::NationalSecurity => {
                let mut f = pick(rng, &self.factors.national_security, 1, 1);
                if rng.gen_bool(0.3) {
                    f.extend(pick(rng, &self.factors.public_safety, 1, 1));
                }
                (
                    f,
                    "Investigative holdings indicate a danger to national security.",
                )
            }
            Scenario::BorderAttempt | Scenario::BorderRecentEntry => {
                let n = weighted(rng, &[(0usize, 50), (1, 35), (2, 15)]);
                (
                    pick(rng, &self.factors.mitigating, n, n),
                    if encounter.place == EncounterPlace::Interior {
                        "Entered unlawfully after the border-security cut-off."
                    } else {
                        "Apprehended while attempting to enter unlawfully."
                    },
                )
            }
            Scenario::ProtectedArea => {
                if rng.gen_bool(0.5) {
                    (
                        public_safety(rng),
                        "Encountered near a protected area; serious criminal conduct on record.",
                    )
                } else {
                    (
                        pick(rng, &self.factors.mitigating, 1, 2),
                        "Encountered near a protected area.",
                    )
                }
            }
        }
    }

    fn records(&self, rng: &mut StdRng, scenario: Scenario, a_number: ANumber) -> Vec<RecordStep> {
        let mut steps = Vec::new();
        let criminal = match scenario {
            Scenario::PublicSafety | Scenario::NationalSecurity => rng.gen_range(1..=3),
            Scenario::ProtectedArea => rng.gen_range(0..=2),
            Scenario::Mitigating => usize::from(rng.gen_bool(0.35)),
            _ => usize::from(rng.gen_bool(0.15)),
        };
        let administrative = if rng.gen_bool(0.9) {
            rng.gen_range(1..=2)
        } else {
            0
        };
        let investigative = match scenario {
            Scenario::NationalSecurity => rng.gen_range(1..=2),
            Scenario::PublicSafety => usize::from(rng.gen_bool(0.4)),
            _ => usize::from(rng.gen_bool(0.15)),
        };
        let states = ["TX", "CA", "NY", "FL", "IL", "AZ", "GA", "NJ", "WA", "CO"];
        for (source, count) in [
            (RecordSource::Criminal, criminal),
            (RecordSource::Administrative, administrative),
            (RecordSource::Investigative, investigative),
        ] {
            if count == 0 {
                let reason = match source {
                    RecordSource::Criminal => "no criminal history found in NCIC or III",
                    RecordSource::Administrative => "no prior A-file: first encounter",
                    RecordSource::Investigative => {
                        "no investigative holdings in TECS or HSI systems"
                    }
                };
                steps.push(RecordStep::Unavailable {
                    source,
                    reason: reason.to_owned(),
                });
                continue;
            }
            for k in 0..count {
                let n: u32 = rng.gen_range(100_000..999_999);
                let reference = match (source, k) {
                    (RecordSource::Criminal, 0) => {
                        format!("III rap sheet {}-{n}", states.choose(rng).unwrap_or(&"TX"))
                    }
                    (RecordSource::Criminal, _) => format!(
                        "{} court disposition {n}",
                        states.choose(rng).unwrap_or(&"TX")
                    ),
                    (RecordSource::Administrative, 0) => format!("A-file {a_number}"),
                    (RecordSource::Administrative, _) => format!("EARM encounter {n}"),
                    (RecordSource::Investigative, 0) => format!("TECS subject record {n}"),
                    (RecordSource::Investigative, _) => format!("HSI report of investigation {n}"),
                };
                steps.push(RecordStep::Attach {
                    record: RecordId(self.ids.uuid(rng)),
                    source,
                    reference,
                    content_hash: hash(rng),
                });
            }
        }
        steps
    }

    fn g28(&self, rng: &mut StdRng, withdraw: bool) -> G28 {
        let (representative, capacity) = *self
            .staff
            .representatives
            .choose(rng)
            .unwrap_or(&(PersonId(Uuid::nil()), RepresentativeCapacity::Attorney));
        let latest = self.start.date_naive() - Duration::days(1);
        G28 {
            representative,
            capacity,
            signed_on: day_between(rng, latest - Duration::days(60), latest),
            withdraw: withdraw
                .then(|| "the representative no longer represents the person".to_owned()),
        }
    }
}
