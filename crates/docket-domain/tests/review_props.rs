//! Property tests of the review aggregate: random sequences of review commands by random actors
//! at advancing times, checking replay, one open tier, reviewer independence and deadlines.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union, ValueTree};
use proptest::test_runner::TestRunner;

use docket_domain::aggregate::{
    Aggregate, Context, Deadlines, DecisionParties, Directory, OfficerProfile, Rejection,
};
use docket_domain::events::Format;
use docket_domain::policy::PolicySet;
use docket_domain::review::{
    DeadlineKind, PriorityReason, RequesterCapacity, Review, ReviewCommand, ReviewEvent, Stage,
};
use docket_domain::values::{
    ANumber, Actor, CaseId, DecisionId, EnforcementAction, FieldOffice, ReferralTarget, ReviewId,
    ReviewOutcome, ReviewTier, Role,
};

use crate::support::review_world::*;
use crate::support::{person, MapDirectory};

const PEOPLE: &[u128] = &[
    NONCITIZEN,
    REP,
    STRANGER,
    OFFICER,
    APPROVER,
    REVIEWER,
    REVIEWER2,
    FAR_REVIEWER,
    SRO,
    SRO2,
    DIRECTOR,
    SYSTEM,
];

/// People in the roles they are registered in or could plausibly claim.
const ACTORS: &[(u128, Role)] = &[
    (NONCITIZEN, Role::Requester),
    (REP, Role::Requester),
    (STRANGER, Role::Requester),
    (OFFICER, Role::FirstTierReviewer),
    (OFFICER, Role::Officer),
    (APPROVER, Role::SeniorReviewingOfficial),
    (APPROVER, Role::Supervisor),
    (REVIEWER, Role::FirstTierReviewer),
    (REVIEWER2, Role::FirstTierReviewer),
    (FAR_REVIEWER, Role::FirstTierReviewer),
    (SRO, Role::SeniorReviewingOfficial),
    (SRO2, Role::SeniorReviewingOfficial),
    (DIRECTOR, Role::FieldOfficeDirector),
    (SYSTEM, Role::System),
    (STRANGER, Role::Auditor),
];

const UNKNOWN_DECISION: u128 = 102;

fn decision_id(n: u128) -> DecisionId {
    DecisionId(uuid::Uuid::from_u128(n))
}

fn case_id(n: u128) -> CaseId {
    CaseId(uuid::Uuid::from_u128(n))
}

fn a_number() -> ANumber {
    ANumber::parse("A012345678").unwrap()
}

fn world() -> MapDirectory {
    let profile = |role, office| OfficerProfile {
        role,
        office,
        trained_for: vec![],
    };
    let officers = [
        (OFFICER, profile(Role::FirstTierReviewer, FieldOffice::Nyc)),
        (
            APPROVER,
            profile(Role::SeniorReviewingOfficial, FieldOffice::Was),
        ),
        (REVIEWER, profile(Role::FirstTierReviewer, FieldOffice::Nyc)),
        (
            REVIEWER2,
            profile(Role::FirstTierReviewer, FieldOffice::Nyc),
        ),
        (
            FAR_REVIEWER,
            profile(Role::FirstTierReviewer, FieldOffice::Los),
        ),
        (
            SRO,
            profile(Role::SeniorReviewingOfficial, FieldOffice::Was),
        ),
        (
            SRO2,
            profile(Role::SeniorReviewingOfficial, FieldOffice::Was),
        ),
        (
            DIRECTOR,
            profile(Role::FieldOfficeDirector, FieldOffice::Nyc),
        ),
    ]
    .into_iter()
    .map(|(p, prof)| (person(p), prof))
    .collect();
    let decisions = [(D1, C1, APPROVER), (D2, C2, REVIEWER2)]
        .into_iter()
        .map(|(d, c, approver)| {
            let parties = DecisionParties {
                case: case_id(c),
                officer: person(OFFICER),
                approver: Some(person(approver)),
                office: FieldOffice::Nyc,
                a_number: a_number(),
                action: EnforcementAction::ExecuteRemovalOrder,
            };
            (decision_id(d), parties)
        })
        .collect();
    MapDirectory {
        officers,
        g28: [(a_number(), person(REP))].into_iter().collect(),
        decisions,
    }
}

fn policies() -> &'static PolicySet {
    static POLICIES: OnceLock<PolicySet> = OnceLock::new();
    POLICIES.get_or_init(|| PolicySet::shipped().unwrap())
}

/// Wednesday 13 March 2024, 09:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 13, 9, 0, 0).unwrap()
}

/// One step of a generated sequence.
#[derive(Clone, Debug)]
enum Op {
    /// The next step of a mostly valid path from the current state, by the right actor (`seed`
    /// varies the requester, the decision, the outcomes, and picks assignees that are sometimes
    /// not independent or not qualified).
    Next(u8),
    /// The System fires the earliest running deadline's timer at (or after) its due time.
    FireTimer,
    /// The System records the earliest running deadline missed without waiting for it.
    EarlyTimer,
    /// Any command by any actor.
    Random(ReviewCommand, u128, Role),
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    /// Minutes the clock moves before the step.
    advance: i64,
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> BoxedStrategy<T> {
    prop::sample::select(items).boxed()
}

fn outcome() -> BoxedStrategy<(ReviewOutcome, Option<ReferralTarget>)> {
    (
        pick(ReviewOutcome::ALL.to_vec()),
        prop::option::of(pick(ReferralTarget::ALL.to_vec())),
    )
        .boxed()
}

fn text() -> BoxedStrategy<String> {
    pick(vec![
        "grounds".to_owned(),
        "  ".to_owned(),
        "x".repeat(12_000),
    ])
}

fn command() -> BoxedStrategy<ReviewCommand> {
    let request = (
        pick(RequesterCapacity::ALL.to_vec()),
        pick(vec![(D1, C1), (D2, C2), (D1, C2), (UNKNOWN_DECISION, C1)]),
        pick(vec![EnforcementAction::Detain, EnforcementAction::NoAction]),
        prop::option::of(pick(vec!["es".to_owned(), "x".to_owned()])),
    )
        .prop_map(|(capacity, (decision, case), action, preferred_language)| {
            ReviewCommand::Request {
                review: ReviewId(uuid::Uuid::from_u128(1)),
                a_number: a_number(),
                capacity,
                case: case_id(case),
                decision: decision_id(decision),
                action,
                grounds: "my family depends on me".into(),
                preferred_language,
            }
        });
    let someone = || pick(PEOPLE.to_vec()).prop_map(person);
    Union::new(vec![
        request.boxed(),
        Just(ReviewCommand::Acknowledge).boxed(),
        pick(PriorityReason::ALL.to_vec())
            .prop_map(|reason| ReviewCommand::Prioritise { reason })
            .boxed(),
        someone()
            .prop_map(|reviewer| ReviewCommand::AssignReviewer { reviewer })
            .boxed(),
        text()
            .prop_map(|question| ReviewCommand::RequestInformation { question })
            .boxed(),
        text()
            .prop_map(|information| ReviewCommand::ProvideInformation { information })
            .boxed(),
        (outcome(), text())
            .prop_map(
                |((outcome, referred_to), reasons)| ReviewCommand::DecideTier1 {
                    outcome,
                    referred_to,
                    reasons,
                },
            )
            .boxed(),
        text()
            .prop_map(|grounds| ReviewCommand::RequestTier2 { grounds })
            .boxed(),
        someone()
            .prop_map(|official| ReviewCommand::AssignSeniorOfficial { official })
            .boxed(),
        (outcome(), text())
            .prop_map(
                |((outcome, referred_to), reasons)| ReviewCommand::DecideTier2 {
                    outcome,
                    referred_to,
                    reasons,
                },
            )
            .boxed(),
        prop::option::of(text())
            .prop_map(|reason| ReviewCommand::Withdraw { reason })
            .boxed(),
        pick(DeadlineKind::ALL.to_vec())
            .prop_map(|deadline| ReviewCommand::RecordDeadlineMissed { deadline })
            .boxed(),
    ])
    .boxed()
}

fn step() -> impl Strategy<Value = Step> {
    let op = prop_oneof![
        5 => any::<u8>().prop_map(Op::Next),
        1 => Just(Op::FireTimer),
        1 => Just(Op::EarlyTimer),
        3 => (command(), pick(ACTORS.to_vec())).prop_map(|(c, (p, r))| Op::Random(c, p, r)),
        1 => (command(), pick(PEOPLE.to_vec()), pick(Role::ALL.to_vec()))
            .prop_map(|(c, p, r)| Op::Random(c, p, r)),
    ];
    // Mostly minutes to hours; sometimes days, so that deadlines and windows pass.
    let advance = prop_oneof![3 => 0i64..600, 1 => 0i64..(40 * 24 * 60)];
    (op, advance).prop_map(|(op, advance)| Step { op, advance })
}

/// What the valid next step is from `state`, and who takes it.
fn next(state: &Review, seed: u8) -> (ReviewCommand, u128, Role) {
    let requester = match state.requester() {
        Some(p) if p == person(REP) => REP,
        _ => NONCITIZEN,
    };
    let outcome = ReviewOutcome::ALL[usize::from(seed) % ReviewOutcome::ALL.len()];
    let referred_to = (outcome == ReviewOutcome::Referred).then_some(ReferralTarget::CivilRights);
    let reviewer_of = |tier| {
        PEOPLE
            .iter()
            .copied()
            .find(|p| state.reviewer(tier) == Some(person(*p)))
            .unwrap_or(STRANGER)
    };
    // Now and then, a question from the assigned reviewer or the requester's answer instead.
    let role_of = |tier| match tier {
        ReviewTier::Tier1 => Role::FirstTierReviewer,
        ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
    };
    if let Some(tier) = state.open_tier().filter(|t| state.reviewer(*t).is_some()) {
        if seed % 5 == 3 {
            let question = "what changed since the decision?".to_owned();
            let command = ReviewCommand::RequestInformation { question };
            return (command, reviewer_of(tier), role_of(tier));
        }
        if seed % 5 == 4 && state.open_questions() > 0 {
            let information = "the court granted a stay".to_owned();
            let command = ReviewCommand::ProvideInformation { information };
            return (command, requester, Role::Requester);
        }
    }
    match state.stage() {
        Stage::NotRequested => {
            let (capacity, who) = if seed.is_multiple_of(2) {
                (RequesterCapacity::Noncitizen, NONCITIZEN)
            } else {
                (RequesterCapacity::Representative, REP)
            };
            let command = ReviewCommand::Request {
                review: ReviewId(uuid::Uuid::from_u128(1)),
                a_number: a_number(),
                capacity,
                case: case_id(if seed.is_multiple_of(3) { C2 } else { C1 }),
                decision: decision_id(if seed.is_multiple_of(3) { D2 } else { D1 }),
                action: EnforcementAction::ExecuteRemovalOrder,
                grounds: "removal would leave my children without a provider".into(),
                preferred_language: None,
            };
            (command, who, Role::Requester)
        }
        Stage::Requested => (ReviewCommand::Acknowledge, SYSTEM, Role::System),
        Stage::Acknowledged => {
            // OFFICER made both decisions; REVIEWER2 approved D2; FAR_REVIEWER is elsewhere.
            let pool = [
                REVIEWER,
                REVIEWER2,
                REVIEWER,
                OFFICER,
                FAR_REVIEWER,
                REVIEWER2,
            ];
            let reviewer = person(pool[usize::from(seed / 8) % pool.len()]);
            let command = ReviewCommand::AssignReviewer { reviewer };
            (command, DIRECTOR, Role::FieldOfficeDirector)
        }
        Stage::Tier1Assigned => {
            let command = ReviewCommand::DecideTier1 {
                outcome,
                referred_to,
                reasons: "weighed the whole record".into(),
            };
            (
                command,
                reviewer_of(ReviewTier::Tier1),
                Role::FirstTierReviewer,
            )
        }
        Stage::Tier1Decided => {
            let command = ReviewCommand::RequestTier2 {
                grounds: "tier 1 overlooked the children".into(),
            };
            (command, requester, Role::Requester)
        }
        Stage::Tier2Requested => {
            // APPROVER approved D1; the tier-1 reviewer is not a Senior Reviewing Official.
            let pool = [SRO, SRO2, SRO, APPROVER, reviewer_of(ReviewTier::Tier1)];
            let official = person(pool[usize::from(seed / 8) % pool.len()]);
            let command = ReviewCommand::AssignSeniorOfficial { official };
            (command, SRO, Role::SeniorReviewingOfficial)
        }
        Stage::Tier2Assigned => {
            let command = ReviewCommand::DecideTier2 {
                outcome,
                referred_to,
                reasons: "on the totality of the facts".into(),
            };
            (
                command,
                reviewer_of(ReviewTier::Tier2),
                Role::SeniorReviewingOfficial,
            )
        }
        Stage::Tier2Decided | Stage::Withdrawn => {
            let command = ReviewCommand::Withdraw { reason: None };
            (command, requester, Role::Requester)
        }
    }
}

/// What a sequence did, for the coverage check.
#[derive(Default)]
struct Seen {
    stages: BTreeSet<Stage>,
    events: BTreeSet<&'static str>,
    rejections: BTreeSet<&'static str>,
}

/// Runs a sequence, asserting the properties after every step.
fn check(steps: &[Step], seen: &mut Seen) -> Result<(), TestCaseError> {
    let world = world();
    let deadlines = Deadlines::default();
    let mut now = t0();
    let mut state = Review::default();
    let mut log: Vec<ReviewEvent> = Vec::new();
    for step in steps {
        now += Duration::minutes(step.advance);
        let (command, who, role) = match &step.op {
            Op::Next(seed) => next(&state, *seed),
            Op::FireTimer => {
                let earliest = state.due().into_iter().min_by_key(|(_, due)| *due);
                let Some((deadline, due)) = earliest else {
                    continue;
                };
                now = now.max(due);
                (
                    ReviewCommand::RecordDeadlineMissed { deadline },
                    SYSTEM,
                    Role::System,
                )
            }
            Op::EarlyTimer => {
                let earliest = state.due().into_iter().min_by_key(|(_, due)| *due);
                let Some((deadline, _)) = earliest else {
                    continue;
                };
                (
                    ReviewCommand::RecordDeadlineMissed { deadline },
                    SYSTEM,
                    Role::System,
                )
            }
            Op::Random(command, who, role) => (command.clone(), *who, *role),
        };
        let ctx = Context {
            actor: Actor {
                person: person(who),
                role,
            },
            now,
            policies: policies(),
            directory: &world,
            deadlines: &deadlines,
        };
        let before = state.clone();
        match state.decide(&command, &ctx) {
            Err(rejection) => {
                seen.rejections.insert(rejection.code());
                if let Rejection::Forbidden { .. } = rejection {
                    prop_assert!(!docket_domain::permissions::allowed(role, command.kind()));
                }
            }
            Ok(events) => {
                prop_assert!(!before.is_closed(), "a closed review accepted {command:?}");
                for event in &events {
                    seen.events.insert(event.name());
                    // (d) A deadline is recorded missed only if it was running and past due.
                    if let ReviewEvent::DeadlineMissed(e) = event {
                        prop_assert!(
                            before.due().contains(&(e.deadline, e.due)),
                            "{e:?} not among {:?}",
                            before.due()
                        );
                        prop_assert!(e.due <= now, "{e:?} recorded before its due time");
                    }
                    // Every event reads back as written, in both encodings.
                    for format in [Format::Postcard, Format::Json] {
                        let bytes = event.encode(format).unwrap();
                        let back =
                            ReviewEvent::decode(event.name(), event.version(), &bytes, format);
                        prop_assert_eq!(back, Ok(Some(event.clone())));
                    }
                    state = state.evolve(event);
                    log.push(event.clone());
                }
                // (a) The state is the fold of every event so far.
                prop_assert_eq!(&Review::fold(&log), &state);
                prop_assert!(state.stage() >= before.stage(), "stages only move forward");
            }
        }
        seen.stages.insert(state.stage());
        // (b) Never two open tiers.
        prop_assert!(state.open_tiers().len() <= 1, "{:?}", state.open_tiers());
        // (c) Reviewers are independent of the decision under review (and of each other).
        if let Some(request) = state.request() {
            let parties = world.decision(request.decision).unwrap();
            for tier in [ReviewTier::Tier1, ReviewTier::Tier2] {
                if let Some(reviewer) = state.reviewer(tier) {
                    prop_assert_ne!(reviewer, parties.officer);
                    prop_assert_ne!(Some(reviewer), parties.approver);
                }
            }
            if let (Some(one), Some(two)) = (
                state.reviewer(ReviewTier::Tier1),
                state.reviewer(ReviewTier::Tier2),
            ) {
                prop_assert_ne!(one, two);
            }
        }
    }
    Ok(())
}

fn sequences() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn review_sequences_keep_their_invariants(steps in sequences()) {
        check(&steps, &mut Seen::default())?;
    }
}

/// The generator reaches every stage, every event type and the interesting rejections, so the
/// properties above are not vacuous.
#[test]
fn review_sequences_cover_the_process() {
    let mut runner = TestRunner::deterministic();
    let strategy = sequences();
    let mut seen = Seen::default();
    for _ in 0..300 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        check(&steps, &mut seen).unwrap();
    }
    let all_stages: BTreeSet<Stage> = Stage::ALL.into_iter().collect();
    assert_eq!(seen.stages, all_stages);
    let all_events: BTreeSet<&str> = ReviewEvent::TYPES.iter().map(|(n, _)| *n).collect();
    assert_eq!(seen.events, all_events);
    for code in [
        "forbidden",
        "reviewer_not_independent",
        "reviewer_not_qualified",
        "reviewer_wrong_office",
        "not_assigned_reviewer",
        "tier1_not_decided",
        "not_requester",
        "review_closed",
        "deadline_not_passed",
        "deadline_not_pending",
        "tier2_window_closed",
    ] {
        assert!(
            seen.rejections.contains(code),
            "{code} never hit: {:?}",
            seen.rejections
        );
    }
}
