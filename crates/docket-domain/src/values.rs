//! Value types with validating constructors: identifiers, A-numbers, field offices, codes and the
//! closed vocabularies of the process (actions, record sources, priorities, tiers, outcomes, roles).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Bad input for one field: which field, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct InvalidValue {
    /// The field (or type) that was being parsed.
    pub field: &'static str,
    /// What was wrong with it.
    pub problem: String,
}

impl InvalidValue {
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        InvalidValue {
            field,
            problem: problem.into(),
        }
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Parses an id from its text form.
            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                Uuid::parse_str(value.trim())
                    .map($name)
                    .map_err(|e| InvalidValue::new($field, format!("{value:?} is not a UUID: {e}")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                $name::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A case: one noncitizen's encounter and the decision about it.
    CaseId,
    "case id"
);
uuid_id!(
    /// A record attached to a case.
    RecordId,
    "record id"
);
uuid_id!(
    /// A decision about a case.
    DecisionId,
    "decision id"
);
uuid_id!(
    /// A review request and its process.
    ReviewId,
    "review id"
);
uuid_id!(
    /// A person acting in the system: officer, supervisor, reviewer, representative, requester.
    PersonId,
    "person id"
);

/// An Alien Registration Number: `A` followed by 9 digits.
///
/// Accepts 7 to 9 digits, with or without a leading `A` (and with dashes or spaces between
/// digits), and normalises to `A` + 9 zero-padded digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ANumber(u32);

impl ANumber {
    /// Parses and normalises an A-number.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let trimmed = value.trim();
        let body = trimmed
            .strip_prefix('A')
            .or_else(|| trimmed.strip_prefix('a'))
            .unwrap_or(trimmed);
        let digits: String = body.chars().filter(|c| *c != '-' && *c != ' ').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(
                "a_number",
                format!("{value:?}: expected 7 to 9 digits, optionally after 'A'"),
            ));
        }
        if !(7..=9).contains(&digits.len()) {
            return Err(InvalidValue::new(
                "a_number",
                format!("{value:?}: has {} digits, expected 7 to 9", digits.len()),
            ));
        }
        let n: u32 = digits
            .parse()
            .map_err(|e| InvalidValue::new("a_number", format!("{value:?}: {e}")))?;
        if n == 0 {
            return Err(InvalidValue::new(
                "a_number",
                format!("{value:?}: all zeros"),
            ));
        }
        Ok(ANumber(n))
    }

    /// The normalised text form, `A` + 9 digits.
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ANumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{:09}", self.0)
    }
}

impl FromStr for ANumber {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        ANumber::parse(s)
    }
}

impl Serialize for ANumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ANumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            ANumber::parse(&text).map_err(serde::de::Error::custom)
        } else {
            let n = u32::deserialize(d)?;
            if n == 0 || n > 999_999_999 {
                return Err(serde::de::Error::custom(format!(
                    "a_number {n} out of range"
                )));
            }
            Ok(ANumber(n))
        }
    }
}

/// Declares a closed vocabulary: a fieldless enum with stable snake_case codes, parsing that
/// names the field and lists the accepted codes, and `ALL` for exhaustive tests.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $code)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code.
            pub fn code(&self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Parses a code.
            pub fn parse(value: &str) -> Result<Self, $crate::values::InvalidValue> {
                match value.trim() {
                    $($code => Ok($name::$variant),)+
                    other => Err($crate::values::InvalidValue::new(
                        $field,
                        format!("unknown value {other:?}; expected one of: {}", [$($code),+].join(", ")),
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::values::InvalidValue;
            fn from_str(s: &str) -> Result<Self, $crate::values::InvalidValue> {
                $name::parse(s)
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// The 25 ICE ERO field offices (areas of responsibility).
    FieldOffice, "field_office" {
        Atl = "ATL", Bal = "BAL", Bos = "BOS", Buf = "BUF", Chi = "CHI", Dal = "DAL",
        Den = "DEN", Det = "DET", Elp = "ELP", Hlg = "HLG", Hou = "HOU", Los = "LOS",
        Mia = "MIA", Nol = "NOL", Nyc = "NYC", New = "NEW", Phi = "PHI", Pho = "PHO",
        Slc = "SLC", Sna = "SNA", Snd = "SND", Sfr = "SFR", Sea = "SEA", Spm = "SPM",
        Was = "WAS",
    }
);

vocabulary!(
    /// An enforcement action, or the decision not to act.
    EnforcementAction, "action" {
        /// Declining to act is itself a decision to record.
        NoAction = "no_action",
        StopOrQuestion = "stop_or_question",
        Arrest = "arrest",
        Search = "search",
        ServeSubpoena = "serve_subpoena",
        IssueDetainer = "issue_detainer",
        TakeCustodyUnderDetainer = "take_custody_under_detainer",
        IssueNta = "issue_nta",
        ServeNta = "serve_nta",
        FileNta = "file_nta",
        CancelNta = "cancel_nta",
        Detain = "detain",
        Release = "release",
        GrantDeferredAction = "grant_deferred_action",
        GrantParole = "grant_parole",
        ExecuteRemovalOrder = "execute_removal_order",
        MoveToDismiss = "move_to_dismiss",
        AdministrativelyClose = "administratively_close",
        Stipulate = "stipulate",
        Continue = "continue",
        Appeal = "appeal",
        JoinMotionToReopen = "join_motion_to_reopen",
    }
);

impl EnforcementAction {
    /// True for actions that move enforcement forward against the person (as opposed to
    /// declining, releasing, granting relief or closing a proceeding).
    pub fn is_adverse(&self) -> bool {
        use EnforcementAction::*;
        matches!(
            self,
            StopOrQuestion
                | Arrest
                | Search
                | ServeSubpoena
                | IssueDetainer
                | TakeCustodyUnderDetainer
                | IssueNta
                | ServeNta
                | FileNta
                | Detain
                | ExecuteRemovalOrder
                | Appeal
        )
    }
}

vocabulary!(
    /// Where a record comes from; the whole record means all three.
    RecordSource, "source" {
        Criminal = "criminal",
        Administrative = "administrative",
        Investigative = "investigative",
    }
);

vocabulary!(
    /// The guidance the policy gives for a case.
    PriorityCategory, "priority" {
        NationalSecurity = "national_security",
        PublicSafety = "public_safety",
        BorderSecurity = "border_security",
        NotAPriority = "not_a_priority",
    }
);

vocabulary!(
    /// The tier of a review.
    ReviewTier, "tier" {
        /// The local field office.
        Tier1 = "tier1",
        /// A Senior Reviewing Official at headquarters.
        Tier2 = "tier2",
    }
);

vocabulary!(
    /// How a review ends.
    ReviewOutcome, "outcome" {
        Upheld = "upheld",
        Modified = "modified",
        /// The action is withdrawn: released, removal order not executed, NTA cancelled, …
        Reversed = "reversed",
        /// Referred elsewhere (civil rights office, detention ombudsman, professional
        /// responsibility, the agency's court lawyers).
        Referred = "referred",
    }
);

vocabulary!(
    /// Where a review is referred to.
    ReferralTarget, "referred_to" {
        CivilRights = "civil_rights",
        DetentionOmbudsman = "detention_ombudsman",
        ProfessionalResponsibility = "professional_responsibility",
        CourtLawyers = "court_lawyers",
    }
);

vocabulary!(
    /// What a person may do in the system.
    Role, "role" {
        Officer = "officer",
        Supervisor = "supervisor",
        FieldOfficeDirector = "field_office_director",
        FirstTierReviewer = "first_tier_reviewer",
        SeniorReviewingOfficial = "senior_reviewing_official",
        /// Reads everything, changes nothing.
        Auditor = "auditor",
        /// Aggregates only, no personal data.
        Operations = "operations",
        /// The noncitizen or a recognised representative: their own requests only.
        Requester = "requester",
        /// Intake staff who open cases and attach records.
        IntakeClerk = "intake_clerk",
        /// Docket itself: timers and reactions.
        System = "system",
    }
);

vocabulary!(
    /// Where the person was encountered.
    EncounterPlace, "place" {
        /// At the border, between ports of entry.
        Border = "border",
        PortOfEntry = "port_of_entry",
        Interior = "interior",
    }
);

vocabulary!(
    /// How the person entered the United States, as far as known.
    MannerOfEntry, "manner_of_entry" {
        /// Attempting to enter unlawfully when apprehended.
        AttemptingUnlawfulEntry = "attempting_unlawful_entry",
        EnteredUnlawfully = "entered_unlawfully",
        EnteredLawfully = "entered_lawfully",
        Unknown = "unknown",
    }
);

vocabulary!(
    /// Protected areas where action is limited (memo of 27 October 2021).
    ProtectedArea, "protected_area" {
        School = "school",
        HealthCare = "health_care",
        PlaceOfWorship = "place_of_worship",
        ChildrenGather = "children_gather",
        SocialServices = "social_services",
        DisasterRelief = "disaster_relief",
        Ceremony = "ceremony",
        Demonstration = "demonstration",
    }
);

/// A code from the policy's catalogue (a factor or a prohibited ground): lowercase ASCII letters,
/// digits and `_`, 1 to 64 long. Which codes exist, and what they mean, is policy data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Code(String);

impl Code {
    /// Parses a code.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidValue> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Code(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                field,
                format!("{value:?}: expected 1 to 64 lowercase letters, digits or '_', starting with a letter"),
            ))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Code::parse("code", &text).map_err(serde::de::Error::custom)
    }
}

/// A SHA-256 content hash of a record, as 64 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Parses 64 hex digits (optionally prefixed `sha256:`).
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let hex = value.trim().strip_prefix("sha256:").unwrap_or(value.trim());
        if hex.len() != 64 {
            return Err(InvalidValue::new(
                "content_hash",
                format!(
                    "expected 64 hex digits of SHA-256, got {} characters",
                    hex.len()
                ),
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|e| {
            // The length is right (checked above), so the error names a bad character.
            let at = match e {
                hex::FromHexError::InvalidHexCharacter { index, .. } => index / 2 * 2,
                _ => 0,
            };
            let pair = String::from_utf8_lossy(&hex.as_bytes()[at..at + 2]);
            InvalidValue::new("content_hash", format!("{pair:?} is not a hex byte"))
        })?;
        Ok(ContentHash(out))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            ContentHash::parse(&text).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(ContentHash)
        }
    }
}

/// Who is acting: a person and the role they act in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The person.
    pub person: PersonId,
    /// The role they act in.
    pub role: Role,
}

/// Checks free text: trimmed, non-empty, at most `max` characters.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidValue> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(InvalidValue::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numbers_normalise() {
        for (input, expected) in [
            ("A012345678", "A012345678"),
            ("12345678", "A012345678"),
            ("1234567", "A001234567"),
            ("a123456789", "A123456789"),
            ("A-123-456-789", "A123456789"),
            (" 123 456 789 ", "A123456789"),
        ] {
            assert_eq!(
                ANumber::parse(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        for bad in [
            "",
            "A",
            "123456",
            "1234567890",
            "A12345678X",
            "B12345678",
            "000000000",
        ] {
            let err = ANumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "a_number", "{bad}");
        }
    }

    #[test]
    fn vocabularies_round_trip_and_name_the_field() {
        for office in FieldOffice::ALL {
            assert_eq!(FieldOffice::parse(office.code()).unwrap(), *office);
        }
        assert_eq!(FieldOffice::ALL.len(), 25);
        let err = FieldOffice::parse("XYZ").unwrap_err();
        assert_eq!(err.field, "field_office");
        assert!(err.problem.contains("NYC"), "{}", err.problem);
        assert_eq!(Role::parse("auditor").unwrap(), Role::Auditor);
        assert!(EnforcementAction::parse("deport").is_err());
    }

    #[test]
    fn codes_hashes_and_text_are_validated() {
        assert!(Code::parse("factor", "tender_age").is_ok());
        for bad in ["", "Tender", "9lives", "a-b", &"x".repeat(65)] {
            assert!(Code::parse("factor", bad).is_err(), "{bad}");
        }
        let h = "ab".repeat(32);
        assert_eq!(ContentHash::parse(&h).unwrap().to_string(), h);
        assert_eq!(
            ContentHash::parse(&format!("sha256:{h}"))
                .unwrap()
                .to_string(),
            h
        );
        assert!(ContentHash::parse("abc").is_err());
        assert!(ContentHash::parse(&"zz".repeat(32)).is_err());
        assert!(ContentHash::parse(&"+a".repeat(32)).is_err());
        assert!(ContentHash::parse(&"\u{e9}".repeat(32)).is_err());
        assert_eq!(text("reason", "  ok ", 10).unwrap(), "ok");
        assert!(text("reason", "   ", 10).is_err());
        assert!(text("reason", "toolong", 3).is_err());
    }
}
