//! The workload's fixed tables (which offices are on the border, how busy each is, their cities
//! and crossings, how often each scenario comes up) and the factor codes, drawn by category from
//! the shipped guideline policy so that an edit to the policy shows in the workload, or stops it
//! with an error, rather than being silently left out.

use docket_domain::policy::{FactorKind, PolicyError, PolicySet};

use super::*;

pub(super) const SCENARIOS: [(Scenario, u32); 6] = [
    (Scenario::Mitigating, 45),
    (Scenario::PublicSafety, 22),
    (Scenario::NationalSecurity, 3),
    (Scenario::BorderAttempt, 10),
    (Scenario::BorderRecentEntry, 10),
    (Scenario::ProtectedArea, 10),
];

/// Offices on the land borders, where border apprehensions happen.
pub(super) const BORDER_OFFICES: [FieldOffice; 8] = [
    FieldOffice::Elp,
    FieldOffice::Snd,
    FieldOffice::Hlg,
    FieldOffice::Pho,
    FieldOffice::Sna,
    FieldOffice::Buf,
    FieldOffice::Det,
    FieldOffice::Sea,
];

/// Relative case volume of each office (larger areas of responsibility see more).
pub(super) fn office_weight(office: FieldOffice) -> u32 {
    use FieldOffice::*;
    match office {
        Nyc | Los | Hou | Dal | Atl | Mia | Chi | Sna | Pho | Hlg => 3,
        Elp | Snd | Sfr | New | Nol | Was | Den => 2,
        _ => 1,
    }
}

pub(super) fn city(office: FieldOffice) -> &'static str {
    use FieldOffice::*;
    match office {
        Atl => "Atlanta, GA",
        Bal => "Baltimore, MD",
        Bos => "Boston, MA",
        Buf => "Buffalo, NY",
        Chi => "Chicago, IL",
        Dal => "Dallas, TX",
        Den => "Denver, CO",
        Det => "Detroit, MI",
        Elp => "El Paso, TX",
        Hlg => "Harlingen, TX",
        Hou => "Houston, TX",
        Los => "Los Angeles, CA",
        Mia => "Miami, FL",
        Nol => "New Orleans, LA",
        Nyc => "New York, NY",
        New => "Newark, NJ",
        Phi => "Philadelphia, PA",
        Pho => "Phoenix, AZ",
        Slc => "Salt Lake City, UT",
        Sna => "San Antonio, TX",
        Snd => "San Diego, CA",
        Sfr => "San Francisco, CA",
        Sea => "Seattle, WA",
        Spm => "St. Paul, MN",
        Was => "Washington, DC",
    }
}

pub(super) fn crossing(office: FieldOffice) -> &'static str {
    use FieldOffice::*;
    match office {
        Elp => "Ysleta port of entry",
        Snd => "San Ysidro port of entry",
        Hlg => "Brownsville Gateway International Bridge",
        Pho => "Nogales (DeConcini) port of entry",
        Sna => "Laredo, Juarez-Lincoln Bridge",
        Buf => "Peace Bridge",
        Det => "Ambassador Bridge",
        Sea => "Blaine, Peace Arch",
        _ => "a land port of entry",
    }
}

/// The shipped policy's factor codes the planner draws from, by category, in the catalogue's
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FactorCodes {
    /// Mitigating factors.
    pub mitigating: Vec<Code>,
    /// Aggravating factors that indicate a threat to public safety.
    pub public_safety: Vec<Code>,
    /// Aggravating factors that indicate a threat to national security.
    pub national_security: Vec<Code>,
}

impl FactorCodes {
    /// The factors of `policy` (the version in force at the start), or of the version staff
    /// are trained for when none is in force. An aggravating factor of a category the planner
    /// has no scenario for, or a category left empty, is an error: the workload would
    /// otherwise quietly stop covering part of the policy.
    pub(crate) fn of(policies: &PolicySet, policy: Option<&Policy>) -> Result<Self, PolicyError> {
        let policy = policy
            .or_else(|| policies.get(FALLBACK_POLICY_VERSION))
            .ok_or_else(|| PolicyError {
                source_name: FALLBACK_POLICY_VERSION.to_owned(),
                problem: "the demo plans factors from this version, which is not shipped"
                    .to_owned(),
            })?;
        let problem = |problem: String| PolicyError {
            source_name: policy.version.clone(),
            problem,
        };
        let mut codes = FactorCodes {
            mitigating: Vec::new(),
            public_safety: Vec::new(),
            national_security: Vec::new(),
        };
        for factor in &policy.factors {
            let list = match (factor.kind, factor.indicates) {
                (FactorKind::Mitigating, _) => &mut codes.mitigating,
                (FactorKind::Aggravating, Some(PriorityCategory::PublicSafety)) => {
                    &mut codes.public_safety
                }
                (FactorKind::Aggravating, Some(PriorityCategory::NationalSecurity)) => {
                    &mut codes.national_security
                }
                (FactorKind::Aggravating, other) => {
                    return Err(problem(format!(
                    "aggravating factor {} indicates {other:?}, for which the demo has no scenario",
                    factor.code
                )))
                }
            };
            list.push(factor.code.clone());
        }
        for (name, list) in [
            ("mitigating", &codes.mitigating),
            ("public-safety", &codes.public_safety),
            ("national-security", &codes.national_security),
        ] {
            if list.is_empty() {
                return Err(problem(format!(
                    "no {name} factors, which the demo's scenarios draw from"
                )));
            }
        }
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_text() -> String {
        docket_domain::policy::SHIPPED[0].1.to_owned()
    }

    #[test]
    fn every_shipped_factor_is_drawn_from() {
        let policies = PolicySet::shipped().unwrap();
        let policy = policies.get(FALLBACK_POLICY_VERSION).unwrap();
        let codes = FactorCodes::of(&policies, None).unwrap();
        assert_eq!(codes, FactorCodes::of(&policies, Some(policy)).unwrap());
        let drawn: Vec<&Code> = codes
            .mitigating
            .iter()
            .chain(&codes.public_safety)
            .chain(&codes.national_security)
            .collect();
        assert_eq!(drawn.len(), policy.factors.len());
        for factor in &policy.factors {
            assert!(drawn.contains(&&factor.code), "{}", factor.code);
        }
    }

    /// A factor the planner has no scenario for, or a category emptied, stops the demo.
    #[test]
    fn a_policy_the_planner_cannot_cover_is_an_error() {
        let moved = shipped_text().replacen(
            "indicates = \"national_security\"",
            "indicates = \"border_security\"",
            1,
        );
        let policies = PolicySet::from_sources(&[("edited.toml", &moved)]).unwrap();
        let err = FactorCodes::of(&policies, None).unwrap_err();
        assert!(
            err.problem
                .contains("terrorism_or_espionage indicates Some(BorderSecurity)"),
            "{err}"
        );

        let no_security = shipped_text().replace(
            "indicates = \"national_security\"",
            "indicates = \"public_safety\"",
        );
        let policies = PolicySet::from_sources(&[("edited.toml", &no_security)]).unwrap();
        let err = FactorCodes::of(&policies, None).unwrap_err();
        assert!(
            err.problem.contains("no national-security factors"),
            "{err}"
        );

        let renamed =
            shipped_text().replace("version = \"2021-09-30\"", "version = \"2030-01-01\"");
        let policies = PolicySet::from_sources(&[("edited.toml", &renamed)]).unwrap();
        assert!(FactorCodes::of(&policies, None).is_err());
    }
}
