//! `docket witness keygen` then `docket witness serve`, as an operator runs them: the real
//! binary, a cosignature asked for through `WitnessClient`, a rollback refused, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use docket_audit::witness::{
    add_signature_lines, CosignatureVerifier, WitnessClient, WitnessError,
};
use docket_audit::{CheckpointSigner, Tree};

#[test]
fn witness_keygen_then_serve_cosigns_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::docket_cmd()
        .args(["witness", "keygen", "--name", "witness.test/cli", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(vkey.starts_with("witness.test/cli+"), "{vkey}");
    let written = std::fs::read_to_string(dir.path().join("witness.vkey")).unwrap();
    assert_eq!(written.trim(), vkey);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("witness.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret key is private: {mode:o}");
    }

    // The log: a key file given as @FILE, the other way the flag takes it.
    let (log_skey, log_vkey) = docket_audit::note::generate_key("docket.test/cli-log").unwrap();
    let log_vkey_file = dir.path().join("log.vkey");
    std::fs::write(&log_vkey_file, format!("{log_vkey}\n")).unwrap();
    let mut child = crate::docket_cmd()
        .args(["witness", "serve", "--listen", "127.0.0.1:0", "--key"])
        .arg(dir.path().join("witness.key"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--log-vkey")
        .arg(format!("@{}", log_vkey_file.display()))
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
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("vkey {vkey}"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = WitnessClient::new(&url, &vkey).unwrap();
        let signer = CheckpointSigner::new(&log_skey).unwrap();
        let mut tree = Tree::new();
        for i in 0..10u32 {
            tree.push_commit(format!("commit {i}").as_bytes());
        }
        let note = signer.sign(10, tree.root()).unwrap().note;
        let timeout = Duration::from_secs(10);
        let cosig = client.add_checkpoint(0, &[], &note, timeout).await.unwrap();
        let cosigned = add_signature_lines(&note, &[cosig]).unwrap();
        CosignatureVerifier::new(&vkey)
            .unwrap()
            .verify(&cosigned)
            .unwrap();
        // A rollback to 5 is refused with the size it cosigned.
        let early = signer.sign(5, tree.root_at(5).unwrap()).unwrap().note;
        assert_eq!(
            client.add_checkpoint(0, &[], &early, timeout).await,
            Err(WitnessError::Conflict { size: 10 })
        );
    });

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
            "docket witness serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "docket witness serve exited with {exit}");
}
