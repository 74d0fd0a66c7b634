//! The guideline policy as data: versions with effective windows, the factor catalogue, the
//! prohibited grounds and which departures need approval; and the pure function that turns a
//! case's recorded facts into guidance. Guidance is never a decision.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{
    Code, EncounterPlace, EnforcementAction, InvalidValue, MannerOfEntry, PriorityCategory,
};

/// The policy files shipped with Docket: (file name, contents).
pub const SHIPPED: &[(&str, &str)] = &[(
    "guidelines-2021-09-30.toml",
    include_str!("../policy/guidelines-2021-09-30.toml"),
)];

/// A policy file that does not load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy {source_name}: {problem}")]
pub struct PolicyError {
    /// The file (or version) at fault.
    pub source_name: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Whether a factor weighs for or against enforcement action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// Weighs for action.
    Aggravating,
    /// Weighs against action.
    Mitigating,
}

/// One entry of the factor catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorDef {
    /// Stable code, cited in assessments and decisions.
    pub code: Code,
    /// Aggravating or mitigating.
    pub kind: FactorKind,
    /// The priority an aggravating factor points to.
    #[serde(default)]
    pub indicates: Option<PriorityCategory>,
    /// How much it counts in the totality (guidance only).
    pub weight: u32,
    /// What it means.
    pub description: String,
}

/// A ground that may never be cited.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundDef {
    /// Stable code.
    pub code: Code,
    /// What it means.
    pub description: String,
}

/// An interval in which a version was applied: `from` inclusive, `until` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First day applied.
    pub from: NaiveDate,
    /// First day no longer applied; open-ended if absent.
    #[serde(default)]
    pub until: Option<NaiveDate>,
}

impl Window {
    fn contains(&self, day: NaiveDate) -> bool {
        day >= self.from && self.until.is_none_or(|u| day < u)
    }

    fn overlaps(&self, other: &Window) -> bool {
        let a_end = self.until.unwrap_or(NaiveDate::MAX);
        let b_end = other.until.unwrap_or(NaiveDate::MAX);
        self.from < b_end && other.from < a_end
    }
}

/// A departure from guidance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepartureKind {
    /// An adverse enforcement action where the guidance is "not a priority".
    ActionWithoutPriority,
    /// Declining to act (or a non-adverse action) where the guidance is a priority.
    DeclinedPriority,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Departures {
    approval_required: Vec<DepartureKind>,
}

/// One version of the guideline policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Version id, e.g. `2021-09-30`; recorded with every decision.
    pub version: String,
    /// Human title.
    pub title: String,
    /// Interior apprehensions after unlawful entry after this day are border security.
    pub border_entry_cutoff: NaiveDate,
    /// Mitigating weight at which a border-security case is guided as not a priority.
    pub border_mitigation_threshold: u32,
    /// When this version applied.
    pub windows: Vec<Window>,
    departures: Departures,
    /// The factor catalogue.
    pub factors: Vec<FactorDef>,
    /// Grounds never to be cited.
    pub prohibited_grounds: Vec<GroundDef>,
}

/// The facts of a case the policy looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFacts {
    /// Where the person was encountered.
    pub place: EncounterPlace,
    /// How they entered, as far as known.
    pub manner_of_entry: MannerOfEntry,
    /// When they entered, if known.
    pub entry_date: Option<NaiveDate>,
    /// The factors the officer found present.
    pub factors: Vec<Code>,
}

/// What the policy says about a case: guidance, never a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guidance {
    /// The policy version that gave it.
    pub policy_version: String,
    /// The priority category, or not a priority.
    pub priority: PriorityCategory,
    /// Aggravating factors present.
    pub aggravating: Vec<Code>,
    /// Mitigating factors present.
    pub mitigating: Vec<Code>,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// A departure and whether it needs approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// Which departure.
    pub kind: DepartureKind,
    /// True if a supervisor other than the officer must approve it.
    pub needs_approval: bool,
}

impl Policy {
    /// Parses and validates one policy file.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Policy, PolicyError> {
        let err = |problem: String| PolicyError {
            source_name: source_name.to_owned(),
            problem,
        };
        let policy: Policy = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        policy.validate().map_err(err)?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), String> {
        if self.version.trim().is_empty() {
            return Err("version must not be empty".into());
        }
        if self.windows.is_empty() {
            return Err("at least one effective window is needed".into());
        }
        for (i, w) in self.windows.iter().enumerate() {
            if w.until.is_some_and(|u| u <= w.from) {
                return Err(format!("window {} ends before it starts", i + 1));
            }
            for other in &self.windows[i + 1..] {
                if w.overlaps(other) {
                    return Err(format!(
                        "windows starting {} and {} overlap",
                        w.from, other.from
                    ));
                }
            }
        }
        let mut codes = HashSet::new();
        for f in &self.factors {
            if !codes.insert(f.code.as_str()) {
                return Err(format!("factor {} is listed twice", f.code));
            }
            if f.weight == 0 {
                return Err(format!("factor {} has weight 0", f.code));
            }
            if f.kind == FactorKind::Mitigating && f.indicates.is_some() {
                return Err(format!(
                    "mitigating factor {} cannot indicate a priority",
                    f.code
                ));
            }
            if f.indicates == Some(PriorityCategory::NotAPriority) {
                return Err(format!("factor {} cannot indicate not_a_priority", f.code));
            }
            if f.description.trim().is_empty() {
                return Err(format!("factor {} has no description", f.code));
            }
        }
        for g in &self.prohibited_grounds {
            if !codes.insert(g.code.as_str()) {
                return Err(format!(
                    "code {} is listed twice (prohibited grounds and factors share one namespace)",
                    g.code
                ));
            }
        }
        Ok(())
    }

    /// True if this version applied at `at`.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        let day = at.date_naive();
        self.windows.iter().any(|w| w.contains(day))
    }

    /// The catalogue entry of a factor.
    pub fn factor(&self, code: &Code) -> Option<&FactorDef> {
        self.factors.iter().find(|f| &f.code == code)
    }

    /// True if `code` is a prohibited ground.
    pub fn is_prohibited(&self, code: &Code) -> bool {
        self.prohibited_grounds.iter().any(|g| &g.code == code)
    }

    /// True if departures of `kind` need a supervisor's approval.
    pub fn needs_approval(&self, kind: DepartureKind) -> bool {
        self.departures.approval_required.contains(&kind)
    }

    /// Evaluates a case's facts: the priority category (or not a priority), the factors present
    /// and the reasons. Unknown factor codes and prohibited grounds are errors naming the field.
    pub fn evaluate(&self, facts: &CaseFacts) -> Result<Guidance, InvalidValue> {
        let mut aggravating = Vec::new();
        let mut mitigating = Vec::new();
        let mut seen = HashSet::new();
        for code in &facts.factors {
            if self.is_prohibited(code) {
                return Err(InvalidValue::new(
                    "factors",
                    format!("{code} is a prohibited ground and can never be a factor"),
                ));
            }
            let Some(def) = self.factor(code) else {
                return Err(InvalidValue::new(
                    "factors",
                    format!("{code} is not a factor of policy {}", self.version),
                ));
            };
            if seen.insert(code.clone()) {
                match def.kind {
                    FactorKind::Aggravating => aggravating.push(def),
                    FactorKind::Mitigating => mitigating.push(def),
                }
            }
        }
        let weight = |defs: &[&FactorDef]| defs.iter().map(|d| d.weight).sum::<u32>();
        let names = |defs: &[&FactorDef]| {
            defs.iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut reasons = Vec::new();
        let national_security: Vec<&FactorDef> = aggravating
            .iter()
            .copied()
            .filter(|d| d.indicates == Some(PriorityCategory::NationalSecurity))
            .collect();
        let public_safety: Vec<&FactorDef> = aggravating
            .iter()
            .copied()
            .filter(|d| d.indicates != Some(PriorityCategory::NationalSecurity))
            .collect();
        let (mitigating_weight, safety_weight) = (weight(&mitigating), weight(&public_safety));

        let priority = if !national_security.is_empty() {
            reasons.push(format!(
                "national security indicators present: {}",
                names(&national_security)
            ));
            PriorityCategory::NationalSecurity
        } else if safety_weight > mitigating_weight {
            reasons.push(format!(
                "aggravating factors ({}, weight {safety_weight}) outweigh mitigating factors (weight {mitigating_weight}): a current threat to public safety is indicated on the totality of the facts",
                names(&public_safety)
            ));
            PriorityCategory::PublicSafety
        } else {
            if safety_weight > 0 {
                reasons.push(format!(
                    "aggravating factors ({}, weight {safety_weight}) do not outweigh mitigating factors ({}, weight {mitigating_weight})",
                    names(&public_safety),
                    names(&mitigating)
                ));
            }
            match self.border_case(facts) {
                Some(why) if mitigating_weight >= self.border_mitigation_threshold => {
                    reasons.push(format!(
                        "{why}, but mitigating factors ({}, weight {mitigating_weight}) weigh against action",
                        names(&mitigating)
                    ));
                    PriorityCategory::NotAPriority
                }
                Some(why) => {
                    reasons.push(why);
                    PriorityCategory::BorderSecurity
                }
                None => {
                    reasons.push(
                        "no priority category applies; being removable is not by itself a reason for enforcement action".into(),
                    );
                    PriorityCategory::NotAPriority
                }
            }
        };
        Ok(Guidance {
            policy_version: self.version.clone(),
            priority,
            aggravating: aggravating.iter().map(|d| d.code.clone()).collect(),
            mitigating: mitigating.iter().map(|d| d.code.clone()).collect(),
            reasons,
        })
    }

    /// Why a case meets the border-security definition, if it does.
    fn border_case(&self, facts: &CaseFacts) -> Option<String> {
        match (facts.place, facts.manner_of_entry, facts.entry_date) {
            (
                EncounterPlace::Border | EncounterPlace::PortOfEntry,
                MannerOfEntry::AttemptingUnlawfulEntry,
                _,
            ) => Some(
                "apprehended at the border or a port of entry while attempting to enter unlawfully"
                    .into(),
            ),
            (_, MannerOfEntry::EnteredUnlawfully, Some(entered))
                if entered > self.border_entry_cutoff =>
            {
                Some(format!(
                "apprehended in the United States after entering unlawfully on {entered}, after {}",
                self.border_entry_cutoff
            ))
            }
            _ => None,
        }
    }

    /// Whether taking `action` departs from `guidance`, and if so whether it needs approval.
    pub fn departure(&self, guidance: &Guidance, action: EnforcementAction) -> Option<Departure> {
        let priority = guidance.priority != PriorityCategory::NotAPriority;
        let kind = match (priority, action.is_adverse()) {
            (false, true) => DepartureKind::ActionWithoutPriority,
            (true, false) => DepartureKind::DeclinedPriority,
            _ => return None,
        };
        Some(Departure {
            kind,
            needs_approval: self.needs_approval(kind),
        })
    }
}

/// The guidance of a case's `facts` under `policy`, and whether taking `action` departs from
/// it: none of either when no version is in force or the case has no facts. What a proposed
/// decision records ([`crate::case::CaseCommand::ProposeDecision`]), and what an audit
/// re-derives from the assessment the case recorded.
pub fn guide(
    policy: Option<&Policy>,
    facts: Option<&CaseFacts>,
    action: EnforcementAction,
) -> Result<(Option<Guidance>, Option<Departure>), InvalidValue> {
    match (policy, facts) {
        (Some(policy), Some(facts)) => {
            let guidance = policy.evaluate(facts)?;
            let departure = policy.departure(&guidance, action);
            Ok((Some(guidance), departure))
        }
        _ => Ok((None, None)),
    }
}

/// Every policy version Docket knows.
#[derive(Clone, Debug)]
pub struct PolicySet {
    versions: Vec<Policy>,
}

impl PolicySet {
    /// The versions shipped in `policy/`.
    pub fn shipped() -> Result<PolicySet, PolicyError> {
        PolicySet::from_sources(SHIPPED)
    }

    /// Loads and validates versions from (name, TOML text) pairs; versions must be unique and
    /// their windows must not overlap.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<PolicySet, PolicyError> {
        let mut versions: Vec<Policy> = Vec::new();
        for (name, text) in sources {
            let policy = Policy::from_toml(name, text)?;
            for other in &versions {
                let clash = |problem: String| PolicyError {
                    source_name: (*name).to_owned(),
                    problem,
                };
                if other.version == policy.version {
                    return Err(clash(format!(
                        "version {} is defined twice",
                        policy.version
                    )));
                }
                if policy
                    .windows
                    .iter()
                    .any(|w| other.windows.iter().any(|o| w.overlaps(o)))
                {
                    return Err(clash(format!(
                        "its windows overlap those of version {}",
                        other.version
                    )));
                }
            }
            versions.push(policy);
        }
        Ok(PolicySet { versions })
    }

    /// The version in force at `at`, if any.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> Option<&Policy> {
        self.versions.iter().find(|p| p.in_force_at(at))
    }

    /// A version by id.
    pub fn get(&self, version: &str) -> Option<&Policy> {
        self.versions.iter().find(|p| p.version == version)
    }

    /// All versions.
    pub fn versions(&self) -> &[Policy] {
        &self.versions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shipped() -> Policy {
        PolicySet::shipped().unwrap().versions()[0].clone()
    }

    fn codes(list: &[&str]) -> Vec<Code> {
        list.iter()
            .map(|c| Code::parse("factor", c).unwrap())
            .collect()
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_shipped_policy_loads_with_its_windows() {
        let set = PolicySet::shipped().unwrap();
        for (day, in_force) in [
            (at(2021, 11, 28), false),
            (at(2021, 11, 29), true),
            (at(2022, 6, 9), true),
            (at(2022, 6, 10), false),
            (at(2023, 1, 1), false),
            (at(2023, 6, 23), true),
            (at(2025, 1, 19), true),
            (at(2025, 1, 20), false),
        ] {
            assert_eq!(set.in_force_at(day).is_some(), in_force, "{day}");
        }
        assert_eq!(set.get("2021-09-30").unwrap().factors.len(), 17);
    }

    #[test]
    fn guidance_follows_the_totality_of_facts() {
        let p = shipped();
        let interior = |factors: &[&str], manner, entry: Option<NaiveDate>| CaseFacts {
            place: EncounterPlace::Interior,
            manner_of_entry: manner,
            entry_date: entry,
            factors: codes(factors),
        };
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        let cases = [
            (
                interior(
                    &["terrorism_or_espionage", "family_impact"],
                    MannerOfEntry::Unknown,
                    None,
                ),
                PriorityCategory::NationalSecurity,
            ),
            (
                interior(
                    &["firearm_or_dangerous_weapon", "serious_prior_record"],
                    MannerOfEntry::Unknown,
                    None,
                ),
                PriorityCategory::PublicSafety,
            ),
            (
                interior(
                    &[
                        "grave_offense_and_sentence",
                        "lengthy_presence",
                        "family_impact",
                    ],
                    MannerOfEntry::Unknown,
                    None,
                ),
                PriorityCategory::NotAPriority,
            ),
            (
                interior(&[], MannerOfEntry::EnteredUnlawfully, d(2021, 3, 1)),
                PriorityCategory::BorderSecurity,
            ),
            (
                interior(&[], MannerOfEntry::EnteredUnlawfully, d(2020, 11, 1)),
                PriorityCategory::NotAPriority,
            ),
            (
                interior(&[], MannerOfEntry::EnteredUnlawfully, None),
                PriorityCategory::NotAPriority,
            ),
            (
                interior(
                    &["family_impact", "lengthy_presence"],
                    MannerOfEntry::EnteredUnlawfully,
                    d(2021, 3, 1),
                ),
                PriorityCategory::NotAPriority,
            ),
            (
                CaseFacts {
                    place: EncounterPlace::Border,
                    manner_of_entry: MannerOfEntry::AttemptingUnlawfulEntry,
                    entry_date: None,
                    factors: vec![],
                },
                PriorityCategory::BorderSecurity,
            ),
            (
                interior(&[], MannerOfEntry::EnteredLawfully, None),
                PriorityCategory::NotAPriority,
            ),
        ];
        for (facts, expected) in cases {
            let g = p.evaluate(&facts).unwrap();
            assert_eq!(g.priority, expected, "{facts:?}: {:?}", g.reasons);
            assert!(!g.reasons.is_empty());
            assert_eq!(g.policy_version, "2021-09-30");
        }
    }

    #[test]
    fn unknown_factors_and_prohibited_grounds_are_refused() {
        let p = shipped();
        let facts = |f: &[&str]| CaseFacts {
            place: EncounterPlace::Interior,
            manner_of_entry: MannerOfEntry::Unknown,
            entry_date: None,
            factors: codes(f),
        };
        let err = p.evaluate(&facts(&["made_up"])).unwrap_err();
        assert_eq!(err.field, "factors");
        let err = p.evaluate(&facts(&["national_origin"])).unwrap_err();
        assert!(err.problem.contains("prohibited"), "{}", err.problem);
    }

    #[test]
    fn departures_are_classified() {
        let p = shipped();
        let g = |priority| Guidance {
            policy_version: "x".into(),
            priority,
            aggravating: vec![],
            mitigating: vec![],
            reasons: vec![],
        };
        let d = p
            .departure(
                &g(PriorityCategory::NotAPriority),
                EnforcementAction::Arrest,
            )
            .unwrap();
        assert_eq!(d.kind, DepartureKind::ActionWithoutPriority);
        assert!(d.needs_approval);
        let d = p
            .departure(
                &g(PriorityCategory::PublicSafety),
                EnforcementAction::NoAction,
            )
            .unwrap();
        assert_eq!(d.kind, DepartureKind::DeclinedPriority);
        assert!(p
            .departure(
                &g(PriorityCategory::PublicSafety),
                EnforcementAction::Arrest
            )
            .is_none());
        assert!(p
            .departure(
                &g(PriorityCategory::NotAPriority),
                EnforcementAction::NoAction
            )
            .is_none());
    }

    #[test]
    fn guide_is_evaluate_then_departure_and_nothing_without_a_version_or_facts() {
        let p = shipped();
        let facts = CaseFacts {
            place: EncounterPlace::Border,
            manner_of_entry: MannerOfEntry::AttemptingUnlawfulEntry,
            entry_date: None,
            factors: vec![],
        };
        let (guidance, departure) =
            guide(Some(&p), Some(&facts), EnforcementAction::NoAction).unwrap();
        let expected = p.evaluate(&facts).unwrap();
        assert_eq!(expected.priority, PriorityCategory::BorderSecurity);
        assert_eq!(
            departure,
            p.departure(&expected, EnforcementAction::NoAction)
        );
        assert_eq!(
            departure.map(|d| d.kind),
            Some(DepartureKind::DeclinedPriority)
        );
        assert_eq!(guidance, Some(expected));
        let (_, none) = guide(Some(&p), Some(&facts), EnforcementAction::Arrest).unwrap();
        assert_eq!(none, None);
        assert_eq!(
            guide(None, Some(&facts), EnforcementAction::NoAction).unwrap(),
            (None, None)
        );
        assert_eq!(
            guide(Some(&p), None, EnforcementAction::NoAction).unwrap(),
            (None, None)
        );
        let bad = CaseFacts {
            factors: codes(&["no_such_factor"]),
            ..facts
        };
        assert!(guide(Some(&p), Some(&bad), EnforcementAction::NoAction).is_err());
    }

    #[test]
    fn bad_policy_files_give_clear_errors() {
        let good = SHIPPED[0].1;
        let cases = [
            (
                good.replace("version = \"2021-09-30\"", "version = \"\""),
                "version must not be empty",
            ),
            (
                good.replace("until = \"2022-06-10\"", "until = \"2021-01-01\""),
                "ends before it starts",
            ),
            (
                good.replace("until = \"2022-06-10\"", "until = \"2023-07-01\""),
                "overlap",
            ),
            (
                good.replace("code = \"religion\"", "code = \"family_impact\""),
                "listed twice",
            ),
            (good.replace("weight = 10", "weight = 0"), "weight 0"),
            (
                good.replace("title =", "colour = \"red\"\ntitle ="),
                "unknown field",
            ),
            (
                good.replace("code = \"race\"", "code = \"Race\""),
                "lowercase",
            ),
            (
                good.replace("\"declined_priority\"", "\"whatever\""),
                "unknown variant",
            ),
        ];
        for (text, expected) in cases {
            let err = Policy::from_toml("test.toml", &text).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{expected:?} not in {err}"
            );
            assert!(err.to_string().starts_with("policy test.toml:"));
        }
        let twice = PolicySet::from_sources(&[("a", good), ("b", good)]).unwrap_err();
        assert!(twice.problem.contains("defined twice"), "{twice}");
    }
}
