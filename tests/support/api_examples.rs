//! The examples of `docs/api.md` ("Every command, by example"), parsed for the tests that send
//! them: to the services in process (`crates/docket-node`) and to real `docket` processes
//! (`tests/e2e.rs`).

use serde_json::Value;

/// One example: command, actor header, request body, and the expected reply (success or error code).
pub struct Example {
    /// The command's name, e.g. `case.open`.
    pub command: String,
    /// The `Docket-Actor` header.
    pub actor: String,
    /// The JSON body, as written.
    pub body: String,
    /// The documented reply (for an error, only its `code` is checked).
    pub reply: Value,
    /// True if the documented reply is an error.
    pub error: bool,
}

/// The fenced JSON block following `from` in `doc`, and where it ends.
fn next_json_block(doc: &str, from: usize) -> (String, usize) {
    let start = doc[from..]
        .find("```json\n")
        .map(|i| from + i + 8)
        .expect("a json block");
    let end = doc[start..]
        .find("\n```")
        .map(|i| start + i)
        .expect("a closed json block");
    (doc[start..end].to_owned(), end + 4)
}

/// Every example of `docs/api.md`, in order.
pub fn examples() -> Vec<Example> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = doc[at..].find("<!-- example ") {
        let marker_start = at + i;
        let marker_end = marker_start + doc[marker_start..].find("-->").unwrap();
        let marker = doc[marker_start + 13..marker_end].trim();
        let (command, actor) = marker.split_once(" as ").expect("`<command> as <actor>`");
        let (body, after_body) = next_json_block(&doc, marker_end);
        let kind_marker = doc[after_body..]
            .find("<!-- ")
            .map(|j| after_body + j)
            .unwrap();
        let error = doc[kind_marker..].starts_with("<!-- error -->");
        assert!(
            error || doc[kind_marker..].starts_with("<!-- reply -->"),
            "after the example of {command}"
        );
        let (reply, next) = next_json_block(&doc, kind_marker);
        out.push(Example {
            command: command.to_owned(),
            actor: actor.to_owned(),
            body,
            reply: serde_json::from_str(&reply)
                .unwrap_or_else(|e| panic!("reply of {command}: {e}")),
            error,
        });
        at = next;
    }
    out
}

/// Checks one reply (status header and JSON body) against the example.
#[allow(dead_code)]
pub fn check_reply(example: &Example, failed: bool, reply: &Value) {
    check(example, failed, reply, true);
}

/// As [`check_reply`], but positions may differ from the document's (when other writers, such
/// as the notification service, share the log); they must still be acknowledged ones.
#[allow(dead_code)]
pub fn check_reply_except_positions(example: &Example, failed: bool, reply: &Value) {
    check(example, failed, reply, false);
}

fn check(example: &Example, failed: bool, reply: &Value, exact_positions: bool) {
    if !exact_positions && !example.error {
        assert!(!failed, "{}: {reply}", example.command);
        assert!(
            reply["position"].as_u64().is_some_and(|p| p > 0),
            "{}: {reply}",
            example.command
        );
        assert_eq!(
            reply["revision"], reply["position"],
            "{}: {reply}",
            example.command
        );
        assert_eq!(
            reply["events"], example.reply["events"],
            "{}: {reply}",
            example.command
        );
        assert_eq!(
            reply["duplicate"], example.reply["duplicate"],
            "{}: {reply}",
            example.command
        );
        return;
    }
    if example.error {
        assert!(
            failed,
            "{}: expected an error, got {reply}",
            example.command
        );
        assert_eq!(
            reply["code"], example.reply["code"],
            "{}: {reply}",
            example.command
        );
    } else {
        assert!(!failed, "{}: {reply}", example.command);
        assert_eq!(reply, &example.reply, "{} as documented", example.command);
    }
}
