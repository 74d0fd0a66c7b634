//! `docket up` embedded, driven with `docket send` over its HTTP endpoint, stopped and started
//! again on the same data.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `docket up` on a free port; returns the process and its HTTP URL.
pub(crate) fn up(data: &std::path::Path) -> (Child, String) {
    up_with(data, &[])
}

/// Starts `docket up` on a free port with more flags; returns the process and its HTTP URL.
fn up_with(data: &std::path::Path, flags: &[&str]) -> (Child, String) {
    let mut child = crate::docket_cmd()
        .args(["up", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

fn send(url: &str, actor: &str, command: &str, fields: &[&str]) -> (bool, serde_json::Value) {
    let mut cmd = crate::docket_cmd();
    cmd.args(["send", command, "--as", actor, "--http", url]);
    for f in fields {
        cmd.args(["--set", f]);
    }
    let out = cmd.output().unwrap();
    let value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), value)
}

/// Sends SIGTERM and checks that the process stops cleanly within 20 s.
pub(crate) fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "docket up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "docket up exited with {exit}");
}

fn stop(mut child: Child) {
    // SIGTERM-like graceful stop is covered by the services' tests; here SIGKILL, as a crash.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn up_embedded_takes_commands_over_http_and_keeps_them_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = up(dir.path());
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let person = "00000000-0000-0000-0000-00000000000b";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[&format!("person={person}"), "office=NYC", "role=officer"],
    );
    assert!(ok, "{reply}");
    assert_eq!(reply["events"][0], "officer.registered");
    // Docket-After past the log's head is the caller's mistake, said clearly.
    let out = crate::docket_cmd()
        .args(["send", "officer.register", "--as", fod, "--http", &url])
        .args(["--after", "999999", "--set", &format!("person={person}")])
        .args(["--set", "office=NYC", "--set", "role=officer"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        refused["code"] == "bad_request" || stderr.contains("bad_request"),
        "{refused} {stderr}"
    );
    let position = reply["position"].as_u64().unwrap();
    // A refused command: structured error, non-zero exit, the system keeps serving.
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[&format!("person={person}"), "office=NYC", "role=officer"],
    );
    assert!(!ok);
    assert_eq!(reply["code"], "invalid_state", "{reply}");
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &["person=not-a-uuid", "office=NYC", "role=officer"],
    );
    assert!(!ok);
    assert_eq!(reply["code"], "bad_request", "{reply}");
    // Who acts is a signed token: `--as` must name a person and role, and a raw header that is
    // no token is refused by the service.
    let (ok, _) = send(
        &url,
        "nobody",
        "officer.register",
        &[&format!("person={person}")],
    );
    assert!(!ok);
    let out = crate::docket_cmd()
        .args([
            "send",
            "officer.register",
            "--token",
            "nobody",
            "--http",
            &url,
        ])
        .args(["--set", &format!("person={person}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(reply["code"], "bad_actor", "{reply}");
    stop(child);

    // Restarted on the same data: the registration is still there.
    let (child, url) = up(dir.path());
    let (ok, reply) = send(
        &url,
        fod,
        "officer.complete_training",
        &[
            &format!("person={person}"),
            "policy_version=2021-09-30",
            "module=web-based",
            "completed_on=2021-11-20",
        ],
    );
    assert!(ok, "{reply}");
    assert!(reply["position"].as_u64().unwrap() > position);
    stop(child);
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn help_lists_the_subcommands() {
    let out = crate::docket_cmd().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in [
        "up",
        "serve",
        "send",
        "case",
        "officer",
        "representation",
        "review",
        "commands",
        "demo",
        "audit",
        "token",
        "witness",
        "bench",
    ] {
        assert!(text.contains(sub), "--help lacks {sub}:\n{text}");
    }
    // A witness operator learns from --help what the witness is for, what it speaks, where its
    // memory lives and that losing that memory means a new key.
    for args in [
        &["witness", "--help"][..],
        &["witness", "serve", "--help"],
        &["witness", "keygen", "--help"],
    ] {
        let out = crate::docket_cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for needle in ["cosignature/v1", "rollback", "new key", "state"] {
            assert!(text.contains(needle), "{args:?} lacks {needle:?}:\n{text}");
        }
    }
    for args in [&["witness", "--help"][..], &["witness", "serve", "--help"]] {
        let out = crate::docket_cmd().args(args).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for needle in ["tlog-witness", "--state-dir", "--witness-vkey"] {
            assert!(text.contains(needle), "{args:?} lacks {needle:?}:\n{text}");
        }
    }
    let out = crate::docket_cmd().arg("commands").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("docket.cmd.intake.case_open"), "{text}");
}

#[test]
fn sigterm_stops_docket_up_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = up(dir.path());
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-00000000000c",
            "office=BOS",
            "role=supervisor",
        ],
    );
    assert!(ok, "{reply}");
    terminate(&mut child);
    // The reactions saved their checkpoints beside the segments on the way out.
    for consumer in ["review-deadlines", "assessment-guidance"] {
        let saved = std::fs::read_to_string(dir.path().join("checkpoints").join(consumer))
            .unwrap_or_else(|e| panic!("checkpoint {consumer}: {e}"));
        assert!(
            saved.trim().parse::<u64>().unwrap() >= 1,
            "{consumer}: {saved:?}"
        );
    }
    // The data directory is released and intact.
    let (child, url) = up(dir.path());
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-00000000000c",
            "office=BOS",
            "role=supervisor",
        ],
    );
    assert!(!ok);
    assert_eq!(
        reply["code"], "invalid_state",
        "the registration survived: {reply}"
    );
    stop(child);
}

#[test]
fn docket_up_exits_non_zero_naming_the_component_that_stopped_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = up(dir.path());
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-00000000000d",
            "office=SEA",
            "role=officer",
        ],
    );
    assert!(ok, "{reply}");
    terminate(&mut child);
    // The log loses its commits; the checkpoint signed over them stays: the checkpointer
    // refuses to go on, and the process must end (for systemd to see it), naming it.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut child = crate::docket_cmd()
        .args(["up", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("docket up kept running with a failed checkpointer");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("the checkpointer stopped"), "{stderr}");
}

#[test]
fn a_clean_stop_signs_the_tail_so_an_export_after_it_has_no_unsigned_commits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A cadence that never comes round during the test: only the final checkpoint can sign
    // these commits.
    let (mut child, url) = up_with(
        &data,
        &[
            "--checkpoint-every-ms",
            "3600000",
            "--checkpoint-every-commits",
            "1000000",
        ],
    );
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    for person in ["0d", "0e", "0f"] {
        let (ok, reply) = send(
            &url,
            fod,
            "officer.register",
            &[
                &format!("person=00000000-0000-0000-0000-0000000000{person}"),
                "office=BOS",
                "role=officer",
            ],
        );
        assert!(ok, "{reply}");
    }
    terminate(&mut child);

    let export = dir.path().join("export");
    let exported = crate::docket_cmd()
        .args(["audit", "export", "--json", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    // The cadence's declaration and the three registrations.
    let head = exported["manifest"]["head"].as_u64().unwrap();
    assert_eq!(head, 4, "{exported}");
    assert_eq!(exported["manifest"]["checkpoints"], 1, "{exported}");
    let note = std::fs::read_to_string(export.join("checkpoints").join(format!("{head:020}.note")))
        .unwrap_or_else(|e| panic!("no checkpoint of the head {head}: {e}"));
    assert_eq!(note.lines().nth(1), Some(head.to_string().as_str()));
}

/// A process killed when the test ends, passed or not (with its standard output, kept open so
/// that what it prints later does not fail).
struct Killed(
    Child,
    #[allow(dead_code)] Option<BufReader<std::process::ChildStdout>>,
);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `docket witness serve` for the log of `log_vkey`; returns it, its URL and its vkey.
fn witness(dir: &std::path::Path, name: &str, log_vkey: &str) -> (Killed, String, String) {
    let out = crate::docket_cmd()
        .args(["witness", "keygen", "--name", name, "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut child = crate::docket_cmd()
        .args(["witness", "serve", "--listen", "127.0.0.1:0", "--key"])
        .arg(dir.join("witness.key"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--log-vkey", log_vkey])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Killed(child, Some(stdout)), url, vkey)
}

#[test]
fn docket_up_with_two_witnesses_stores_checkpoints_both_cosigned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (skey, log_vkey) = docket_audit::note::generate_key("docket.test/witnessed").unwrap();
    let key = dir.path().join("log.key");
    std::fs::write(&key, format!("{skey}\n")).unwrap();
    let (w1_dir, w2_dir) = (dir.path().join("w1"), dir.path().join("w2"));
    let (_w1, url1, vkey1) = witness(&w1_dir, "witness.test/cli-one", &log_vkey);
    let (_w2, url2, vkey2) = witness(&w2_dir, "witness.test/cli-two", &log_vkey);
    let key_flag = key.display().to_string();
    let one = format!("{url1}=@{}", w1_dir.join("witness.vkey").display());
    let two = format!("{url2}={vkey2}");
    // More witnesses required than configured: refused at the start.
    let refused = crate::docket_cmd()
        .args(["up", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("refused"))
        .args(["--checkpoint-key", &key_flag, "--witness", &one])
        .args(["--witness-quorum", "2"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--witness-quorum 2"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let (child, url) = up_with(
        &data,
        &[
            "--checkpoint-key",
            &key_flag,
            "--witness",
            &one,
            "--witness",
            &two,
        ],
    );
    let mut child = Killed(child, None);
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-0000000000d1",
            "office=BOS",
            "role=officer",
        ],
    );
    assert!(ok, "{reply}");
    // Both witnesses answer: /metrics says so, and so does the dashboard's integrity panel.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = http_get(&url, "/metrics");
        let up =
            |name: &str| metrics.contains(&format!("docket_witness_up{{witness=\"{name}\"}} 1"));
        if up("witness.test/cli-one") && up("witness.test/cli-two") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let integrity = loop {
        let overview: serde_json::Value =
            serde_json::from_str(&http_get(&url, "/api/v1/dashboard/overview")).unwrap();
        if overview["integrity"]["verified"] == true {
            break overview["integrity"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{overview}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(integrity["witness_quorum"], 2, "{integrity}");
    assert_eq!(integrity["cosignatures"], 2, "{integrity}");
    assert_eq!(
        integrity["witnesses"].as_array().unwrap().len(),
        2,
        "{integrity}"
    );
    terminate(&mut child.0);

    // Every checkpoint stored, the final one too, carries both cosignatures.
    let export = dir.path().join("export");
    let exported = crate::docket_cmd()
        .args(["audit", "export", "--json", "--checkpoint-key", &key_flag])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    let head = exported["manifest"]["head"].as_u64().unwrap();
    let notes: Vec<_> = std::fs::read_dir(export.join("checkpoints"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!notes.is_empty());
    for vkey in [&vkey1, &vkey2] {
        let verifier = docket_audit::witness::CosignatureVerifier::new(vkey).unwrap();
        for note in &notes {
            verifier.verify(note).unwrap();
        }
    }
    assert!(export
        .join("checkpoints")
        .join(format!("{head:020}.note"))
        .exists());
}

#[test]
fn audit_keygen_makes_a_key_pair_that_signs_and_verifies_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::docket_cmd()
        .args([
            "audit",
            "keygen",
            "--origin",
            "docket.test/log",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vkey = printed["vkey"].as_str().unwrap();
    assert!(vkey.starts_with("docket.test/log+"), "{vkey}");
    let skey = std::fs::read_to_string(dir.path().join("checkpoint.key")).unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+docket.test/log+"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("checkpoint.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret key is private: {mode:o}");
    }
    let written = std::fs::read_to_string(dir.path().join("checkpoint.vkey")).unwrap();
    assert_eq!(written.trim(), vkey);
    let signer = docket_audit::CheckpointSigner::new(&skey).unwrap();
    let signed = signer.sign(7, docket_audit::leaf_hash(b"x")).unwrap();
    let opened = docket_audit::CheckpointVerifier::new(vkey)
        .unwrap()
        .open(&signed.note)
        .unwrap();
    assert_eq!(opened.checkpoint.size, 7);
    // A second run does not replace the key.
    let again = crate::docket_cmd()
        .args(["audit", "keygen", "--origin", "docket.test/log", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// A GET that must answer 200; the body.
pub(crate) fn http_get(url: &str, path: &str) -> String {
    let response = docket_testkit::http::blocking_get(&format!("{url}{path}"), &[]);
    let body = response.text();
    assert!(response.status == 200, "{}\n{body}", response.head());
    body
}

fn json_of(args: &[&str], data: &std::path::Path) -> serde_json::Value {
    let out = crate::docket_cmd()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn audit_history_replay_and_consistency_read_a_demo_log() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = up(dir.path());
    let demo = crate::docket_cmd()
        .args([
            "demo",
            "--cases",
            "12",
            "--concurrency",
            "4",
            "--http",
            &url,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    // The summary reports what the log holds, read back from the data directory: on today's
    // clock no guideline version is in force, so the log holds no guidance, whatever was planned.
    let said = String::from_utf8_lossy(&demo.stdout);
    assert!(
        said.contains("guidance    in the log: no_version 12"),
        "{said}"
    );
    assert!(said.contains("departures  in the log: 0 of 12"), "{said}");
    // A receipt for a commit, from the running system; it verifies offline with the public
    // key docket up made on first start.
    let receipt = http_get(&url, "/api/v1/audit/receipt?position=40");
    let receipt_file = dir.path().join("receipt.json");
    std::fs::write(&receipt_file, &receipt).unwrap();
    let vkey_file = dir.path().join("audit").join("checkpoint.vkey");
    let verified = crate::docket_cmd()
        .args(["audit", "verify-receipt", "--json", "--vkey"])
        .arg(format!("@{}", vkey_file.display()))
        .arg(&receipt_file)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{receipt}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let verified: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verified["position"], 40);
    // The same receipt fails against another key.
    let other = tempfile::tempdir().unwrap();
    let made = crate::docket_cmd()
        .args(["audit", "keygen", "--origin", "docket.local/log", "--out"])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let refused = crate::docket_cmd()
        .args(["audit", "verify-receipt", "--vkey"])
        .arg(format!(
            "@{}",
            other.path().join("checkpoint.vkey").display()
        ))
        .arg(&receipt_file)
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let mut child = child;
    terminate(&mut child);

    // Export and verify offline: honest, then with one byte flipped.
    let export = dir.path().join("export");
    let exported = crate::docket_cmd()
        .args(["audit", "export", "--json", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert!(
        exported["manifest"]["checkpoints"].as_u64().unwrap() >= 1,
        "{exported}"
    );
    // A stop leaves the commits after the last checkpoint unsigned until the checkpointer signs
    // a final one: the tail is allowed here, and its size must be what the export says. The
    // receipt the requester holds is an anchor: its checkpoint must be consistent.
    let verify_with = |dir: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        crate::docket_cmd()
            .args(["audit", "verify", "--json", "--vkey"])
            .arg(format!("@{}", vkey_file.display()))
            .arg(dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let verify = |dir: &std::path::Path| {
        verify_with(
            dir,
            &[
                "--allow-unsigned-tail".as_ref(),
                "--trusted-checkpoint".as_ref(),
                receipt_file.as_os_str(),
            ],
        )
    };
    let honest = verify(&export);
    assert!(
        honest.status.success(),
        "{}",
        String::from_utf8_lossy(&honest.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&honest.stdout).unwrap();
    let coverage = &report["coverage"];
    assert_eq!(
        coverage["unsigned_commits"], exported["unsigned_commits"],
        "{report}"
    );
    assert_eq!(
        coverage["signed_size"].as_u64().unwrap() + coverage["unsigned_commits"].as_u64().unwrap(),
        exported["manifest"]["head"].as_u64().unwrap(),
        "{report}"
    );
    assert_eq!(coverage["anchors"][0]["ok"], true, "{report}");

    // Output into a pipe nobody reads any more (`docket audit verify … | head`): no panic, and
    // the verdict is still the exit status.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let piped = crate::docket_cmd()
        .args(["audit", "verify", "--allow-unsigned-tail", "--vkey"])
        .arg(format!("@{}", vkey_file.display()))
        .arg(&export)
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // `--upto` a position that is no checkpoint's size: the next checkpoint and the
    // consistency proof to it come along, so it is signed throughout; the deployment's last
    // checkpoint, held as an anchor, shows it is a rollback.
    let upto = dir.path().join("export-upto");
    let exported_upto = crate::docket_cmd()
        .args(["audit", "export", "--json", "--upto", "101", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&upto)
        .output()
        .unwrap();
    assert!(exported_upto.status.success());
    let exported_upto: serde_json::Value = serde_json::from_slice(&exported_upto.stdout).unwrap();
    assert_eq!(exported_upto["unsigned_commits"], 0, "{exported_upto}");
    assert_eq!(exported_upto["signed_size"], 101, "{exported_upto}");
    let out = verify_with(&upto, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last_note = std::fs::read_dir(export.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "note"))
        .max()
        .unwrap();
    let rolled_back = verify_with(
        &upto,
        &["--trusted-checkpoint".as_ref(), last_note.as_os_str()],
    );
    assert_eq!(rolled_back.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&rolled_back.stdout).unwrap();
    assert_eq!(report["first_failure"]["rule"], "anchor", "{report}");
    // An export of that export keeps its checkpoints and its proof (the key signs the manifest).
    let again = dir.path().join("export-again");
    let key = dir.path().join("audit").join("checkpoint.key");
    let exported_again = crate::docket_cmd()
        .args(["audit", "export", "--json", "--data-dir"])
        .arg(&upto)
        .arg("--out")
        .arg(&again)
        .arg("--checkpoint-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        exported_again.status.success(),
        "{}",
        String::from_utf8_lossy(&exported_again.stderr)
    );
    let exported_again: serde_json::Value = serde_json::from_slice(&exported_again.stdout).unwrap();
    assert_eq!(
        exported_again["manifest"]["checkpoints"], exported_upto["manifest"]["checkpoints"],
        "{exported_again}"
    );
    assert!(verify_with(&again, &[]).status.success());
    // Without the key, an export of an export refuses and names the flag.
    let keyless = crate::docket_cmd()
        .args(["audit", "export", "--data-dir"])
        .arg(&upto)
        .arg("--out")
        .arg(dir.path().join("export-keyless"))
        .output()
        .unwrap();
    assert!(!keyless.status.success());
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("--checkpoint-key"));

    let segment = std::fs::read_dir(export.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let tampered = verify(&export);
    assert_eq!(tampered.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&tampered.stdout).unwrap();
    assert!(
        report["first_failure"]["position"].as_u64().unwrap() >= 1,
        "{report}"
    );

    let consistency = json_of(&["audit", "consistency"], dir.path());
    let decisions = consistency["decisions"].as_array().unwrap();
    assert!(decisions.len() >= 12, "{} decisions", decisions.len());
    let replay = json_of(&["audit", "replay", "--as-of", "999999999"], dir.path());
    let by_action: u64 = replay["summary"]["decisions_by_action"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        by_action as usize,
        decisions.len(),
        "replay and consistency agree"
    );
    assert_eq!(replay["summary"]["cases"], 12);

    // A decided case's timeline has its opening and its decision, with who and when.
    let case = decisions[0]["case"].as_str().unwrap();
    let history = json_of(&["audit", "history", case], dir.path());
    let events: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events[0], "case.opened", "{events:?}");
    assert!(events.contains(&"case.decision_recorded"), "{events:?}");
    assert!(history["entries"][0]["by"]
        .as_str()
        .unwrap()
        .starts_with("intake_clerk "));

    // As of the case's opening, the case exists and has no decision yet.
    let opened_at = history["entries"][0]["position"].as_u64().unwrap();
    let then = json_of(
        &["audit", "replay", "--as-of", &opened_at.to_string(), case],
        dir.path(),
    );
    assert_eq!(then["summary"]["position"], opened_at);
    assert_eq!(then["subject"]["stream"], format!("case/{case}"));
    assert!(then["subject"]["state"]
        .as_str()
        .unwrap()
        .contains("decisions: []"));

    // Text output, and a clear error for a subject that is nowhere.
    let text = crate::docket_cmd()
        .args(["audit", "consistency", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("By field office"));
    let missing = crate::docket_cmd()
        .args(["audit", "history", "A999999999", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nothing in the log concerns"));
}

/// A GET; the status and the body.
fn http_get_status(url: &str, path: &str) -> (u16, String) {
    let response = docket_testkit::http::blocking_get(&format!("{url}{path}"), &[]);
    (response.status, response.text())
}

/// Polls the overview until its position reaches `position`.
fn overview_at(url: &str, position: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o: serde_json::Value =
            serde_json::from_str(&http_get(url, "/api/v1/dashboard/overview")).unwrap();
        if o["position"].as_u64() >= Some(position) {
            return o;
        }
        assert!(std::time::Instant::now() < deadline, "{o}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_serves_the_dashboard_metrics_and_readiness_and_resumes_its_projection() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = up(dir.path());
    assert_eq!(http_get(&url, "/healthz"), "ok");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get_status(&url, "/readyz");
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status == 200, ready["ready"] == true, "{body}");
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(http_get(&url, "/").contains("Docket"));
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-00000000000b",
            "office=NYC",
            "role=officer",
        ],
    );
    assert!(ok, "{reply}");
    let position = reply["position"].as_u64().unwrap();
    let o = overview_at(&url, position);
    assert_eq!(o["position"], position);
    let metrics = http_get(&url, "/metrics");
    assert!(
        metrics.contains("docket_commands_total{command=\"officer.register\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    terminate(&mut child);
    // The snapshot was written at the stop; the next start resumes from it.
    assert!(dir.path().join("dashboard/dashboard.snapshot").exists());
    let (child, url) = up(dir.path());
    let o = overview_at(&url, position);
    assert_eq!(o["position"], position);
    let consumers = o["consumers"].as_array().unwrap();
    let own = consumers
        .iter()
        .find(|c| c["consumer"] == "dashboard")
        .unwrap();
    assert_eq!(own["lag"], 0, "{o}");
    stop(child);
}

#[test]
fn audit_import_restores_an_export_into_a_data_dir_that_docket_up_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url) = up(&data);
    let demo = crate::docket_cmd()
        .args(["demo", "--cases", "6", "--concurrency", "2", "--http", &url])
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    // A receipt given out before the backup.
    let old_receipt = dir.path().join("old-receipt.json");
    std::fs::write(
        &old_receipt,
        http_get(&url, "/api/v1/audit/receipt?position=20"),
    )
    .unwrap();
    terminate(&mut child);

    let export = dir.path().join("export");
    let exported = crate::docket_cmd()
        .args(["audit", "export", "--json", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    let head = exported["manifest"]["head"].as_u64().unwrap();
    let vkey = format!("@{}", data.join("audit").join("checkpoint.vkey").display());
    // The stop left commits after the last checkpoint: allowed (and reported).
    let import = |target: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        crate::docket_cmd()
            .args([
                "audit",
                "import",
                "--json",
                "--allow-unsigned-tail",
                "--vkey",
                &vkey,
            ])
            .arg(&export)
            .arg("--data-dir")
            .arg(target)
            .args(extra)
            .output()
            .unwrap()
    };
    let restored = dir.path().join("restored");
    let key = data.join("audit").join("checkpoint.key");
    let out = import(&restored, &["--checkpoint-key".as_ref(), key.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["head"], head, "{summary}");
    assert_eq!(summary["commits"], head, "{summary}");
    assert_eq!(
        summary["checkpoints"], exported["manifest"]["checkpoints"],
        "{summary}"
    );
    assert_eq!(summary["verify"]["ok"], true);
    assert!(restored.join("audit").join("checkpoint.key").exists());
    // The same commits, byte for byte, at the same positions.
    let segments = |d: &std::path::Path| -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    assert_eq!(segments(&restored), segments(&export.join("segments")));

    // A restored directory is not a target; nor is an export that does not verify.
    let again = import(&restored, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("segments")).unwrap();
    let fresh = dir.path().join("fresh");
    let bad = crate::docket_cmd()
        .args(["audit", "import", "--vkey", &vkey])
        .arg(&broken)
        .arg("--data-dir")
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("rule position"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(!fresh.exists());

    // docket up on the restored directory answers, and its checkpointer signs on with the key.
    let (mut child, url) = up(&restored);
    let fod = "00000000-0000-0000-0000-00000000000a/field_office_director";
    let (ok, reply) = send(
        &url,
        fod,
        "officer.register",
        &[
            "person=00000000-0000-0000-0000-0000000000cc",
            "office=NYC",
            "role=officer",
        ],
    );
    assert!(ok, "{reply}");
    let position = reply["position"].as_u64().unwrap();
    assert!(position > head, "{reply}");
    let receipt = dir.path().join("receipt.json");
    std::fs::write(
        &receipt,
        http_get(&url, &format!("/api/v1/audit/receipt?position={position}")),
    )
    .unwrap();
    let verify_receipt = |receipt: &std::path::Path, extra: &[&std::path::Path]| {
        let mut cmd = crate::docket_cmd();
        cmd.args(["audit", "verify-receipt", "--json", "--vkey", &vkey])
            .arg(receipt);
        if let [later, proof] = extra {
            cmd.arg("--later")
                .arg(later)
                .arg("--consistency-proof")
                .arg(proof);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let new_receipt = verify_receipt(&receipt, &[]);
    assert_eq!(new_receipt["position"], position);
    assert!(new_receipt["checkpoint_size"].as_u64().unwrap() >= position);
    // The receipt from before the backup verifies against the restored system's checkpoint.
    let old_size = verify_receipt(&old_receipt, &[])["checkpoint_size"]
        .as_u64()
        .unwrap();
    let later = dir.path().join("later.note");
    let note = http_get(&url, "/api/v1/audit/checkpoint");
    let later_size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(later_size >= position, "{note}");
    std::fs::write(&later, &note).unwrap();
    let consistency: serde_json::Value = serde_json::from_str(&http_get(
        &url,
        &format!("/api/v1/audit/consistency?old={old_size}&new={later_size}"),
    ))
    .unwrap();
    let proof = dir.path().join("proof.txt");
    let lines: Vec<&str> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    std::fs::write(&proof, lines.join("\n")).unwrap();
    let verified = verify_receipt(&old_receipt, &[&later, &proof]);
    assert_eq!(verified["later_size"], later_size);
    terminate(&mut child);

    // The restored deployment's log verifies, with every checkpoint the old one signed.
    let export2 = dir.path().join("export2");
    let exported2 = crate::docket_cmd()
        .args(["audit", "export", "--json", "--data-dir"])
        .arg(&restored)
        .arg("--out")
        .arg(&export2)
        .output()
        .unwrap();
    assert!(exported2.status.success());
    let verified = crate::docket_cmd()
        .args([
            "audit",
            "verify",
            "--json",
            "--allow-unsigned-tail",
            "--vkey",
            &vkey,
        ])
        .arg(&export2)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert!(report["commits_checked"].as_u64().unwrap() >= head);
    assert!(
        report["checkpoints_checked"].as_u64().unwrap()
            > exported["manifest"]["checkpoints"].as_u64().unwrap(),
        "{report}"
    );
}
