//! The review tests' world (rules and properties alike): who its people are and which decisions
//! and cases they made, as numbers for `person`, `DecisionId` and `CaseId`.

// People.
pub const NONCITIZEN: u128 = 10;
pub const REP: u128 = 11;
pub const STRANGER: u128 = 12;
/// Made decision D1; also registered as a first-tier reviewer, to tempt a conflict.
pub const OFFICER: u128 = 20;
/// Approved decision D1; registered as a Senior Reviewing Official, likewise.
pub const APPROVER: u128 = 21;
pub const REVIEWER: u128 = 30;
/// Approved decision D2.
pub const REVIEWER2: u128 = 31;
pub const FAR_REVIEWER: u128 = 32;
pub const SRO: u128 = 40;
pub const SRO2: u128 = 41;
pub const DIRECTOR: u128 = 50;
pub const SYSTEM: u128 = 60;

// Decisions and their cases.
pub const D1: u128 = 100;
pub const D2: u128 = 101;
pub const C1: u128 = 200;
pub const C2: u128 = 201;
