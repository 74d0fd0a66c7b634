//! Workspace invariants from `docs/architecture.md`, checked from the `Cargo.toml` files and the
//! sources so that they cannot rot: crate layout, who may depend on what, lints, file headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Crates that may talk to NATS through async-nats.
const NATS_CRATES: &[&str] = &["docket-log", "docket-bus", "docket-bench"];
/// Crates that may depend on the test kit outside `[dev-dependencies]`.
const TESTKIT_USERS: &[&str] = &["docket-bench"];
/// Dependencies the pure domain crate must never have: runtimes, IO, clocks, randomness.
const DOMAIN_FORBIDDEN: &[&str] = &[
    "tokio",
    "async-nats",
    "futures-util",
    "rand",
    "tempfile",
    "axum",
    "hyper",
    "reqwest",
    "docket-log",
    "docket-bus",
    "tracing-subscriber",
];

struct Manifest {
    dir: PathBuf,
    value: toml::Value,
}

impl Manifest {
    fn name(&self) -> &str {
        self.value["package"]["name"].as_str().unwrap()
    }

    fn deps(&self, table: &str) -> BTreeMap<String, toml::Value> {
        self.value
            .get(table)
            .and_then(|t| t.as_table())
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn normal_deps(&self) -> BTreeMap<String, toml::Value> {
        self.deps("dependencies")
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn manifests() -> Vec<Manifest> {
    let mut out: Vec<Manifest> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            Manifest {
                value: toml::from_str(&text).unwrap(),
                dir,
            }
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    assert!(out.len() >= 3, "found the workspace crates");
    out
}

#[test]
fn each_folder_is_named_like_its_crate() {
    for m in manifests() {
        assert_eq!(m.dir.file_name().unwrap().to_str().unwrap(), m.name());
    }
}

#[test]
fn dependencies_and_lints_are_declared_once_in_the_workspace() {
    for m in manifests() {
        assert_eq!(
            m.value
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(|w| w.as_bool()),
            Some(true),
            "{} uses the workspace lints",
            m.name()
        );
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (dep, spec) in m.deps(table) {
                let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
                assert!(
                    inherited,
                    "{}: {table}.{dep} must be `workspace = true`",
                    m.name()
                );
            }
        }
    }
}

#[test]
fn only_the_log_bus_and_bench_crates_know_nats() {
    for m in manifests() {
        if m.normal_deps().contains_key("async-nats") {
            assert!(
                NATS_CRATES.contains(&m.name()),
                "{} must not depend on async-nats",
                m.name()
            );
        }
    }
}

#[test]
fn the_testkit_is_for_tests_only() {
    for m in manifests() {
        if m.normal_deps().contains_key("docket-testkit") {
            assert!(
                TESTKIT_USERS.contains(&m.name()),
                "{}: docket-testkit only in [dev-dependencies]",
                m.name()
            );
        }
    }
}

#[test]
fn the_domain_crate_is_pure() {
    for m in manifests().iter().filter(|m| m.name() == "docket-domain") {
        for dep in m.normal_deps().keys() {
            assert!(
                !DOMAIN_FORBIDDEN.contains(&dep.as_str()),
                "docket-domain must not depend on {dep}"
            );
        }
    }
}

#[test]
fn architecture_doc_has_a_section_per_crate() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    for m in manifests() {
        let heading = format!("### `{}`", m.name());
        assert!(
            doc.contains(&heading),
            "docs/architecture.md needs a section {heading}"
        );
    }
}

/// Every `.rs` file under `dir`, subfolders included (build output and golden data skipped), so a
/// module split into a folder stays under the same checks as a single file.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "target" && n != "golden")
            {
                walk(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = Vec::new();
    walk(&root().join("crates"), &mut files);
    walk(&root().join("tests"), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must open with a `//!` line",
            f.display()
        );
    }
}

#[test]
fn the_domain_code_reads_no_clock_randomness_or_io() {
    let src = root().join("crates/docket-domain/src");
    if !src.exists() {
        return;
    }
    const FORBIDDEN: &[&str] = &[
        "new_v4",
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "thread_rng",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "std::thread",
    ];
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut checked = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for token in FORBIDDEN {
            assert!(
                !text.contains(token),
                "{} uses {token}: the domain is pure",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 3);
}

/// The workspace crates each crate may depend on (`[dependencies]`): the intended graph of
/// `docs/architecture.md`, plus the exceptions recorded in `docs/adr/` (named beside them).
/// A new edge is a decision: add it here with its ADR, or do without it.
const ALLOWED_DEPS: &[(&str, &[&str])] = &[
    ("docket-domain", &[]),
    ("docket-log", &[]),
    ("docket-testkit", &[]),
    ("docket-runtime", &["docket-domain", "docket-log"]),
    // ADR 0007: the bus reads NATS URLs and credentials as the log does.
    ("docket-bus", &["docket-domain", "docket-log"]),
    (
        "docket-audit",
        &["docket-domain", "docket-log", "docket-runtime"],
    ),
    (
        "docket-notify",
        &["docket-domain", "docket-log", "docket-runtime"],
    ),
    // ADR 0005: notification facts, integrity checks and the audit queries.
    (
        "docket-dashboard",
        &[
            "docket-audit",
            "docket-bus",
            "docket-domain",
            "docket-log",
            "docket-notify",
            "docket-runtime",
        ],
    ),
    ("docket-demo", &["docket-bus", "docket-domain"]),
    (
        "docket-node",
        &[
            "docket-audit",
            "docket-bus",
            "docket-dashboard",
            "docket-domain",
            "docket-log",
            "docket-notify",
            "docket-runtime",
        ],
    ),
    // ADR 0001: the benchmarks build whole systems and start servers with the test kit.
    (
        "docket-bench",
        &[
            "docket-audit",
            "docket-bus",
            "docket-dashboard",
            "docket-demo",
            "docket-domain",
            "docket-log",
            "docket-node",
            "docket-notify",
            "docket-runtime",
            "docket-testkit",
        ],
    ),
    // The binary: flags to the node, the client commands, the auditor's tools, demo and bench.
    (
        "docket",
        &[
            "docket-audit",
            "docket-bench",
            "docket-bus",
            "docket-demo",
            "docket-domain",
            "docket-log",
            "docket-node",
            "docket-runtime",
        ],
    ),
];

#[test]
fn each_crate_depends_only_on_the_crates_the_architecture_allows() {
    let manifests = manifests();
    for m in &manifests {
        let Some((_, allowed)) = ALLOWED_DEPS.iter().find(|(name, _)| *name == m.name()) else {
            panic!(
                "{} is not in ALLOWED_DEPS (tests/architecture.rs): give it its place in the graph",
                m.name()
            );
        };
        for dep in m.normal_deps().keys().filter(|d| d.starts_with("docket")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{} must not depend on {dep} (the allowed graph is in tests/architecture.rs and \
                 docs/architecture.md; an exception needs an ADR)",
                m.name()
            );
        }
    }
    for (name, _) in ALLOWED_DEPS {
        assert!(
            manifests.iter().any(|m| m.name() == *name),
            "ALLOWED_DEPS names {name}, which is not a crate"
        );
    }
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_binary_holds_no_routes_and_no_reads_of_the_world() {
    // Composition, routes and reads of the services' state are the node's (`docket-node`): the
    // binary turns flags into a config and calls libraries.
    const FORBIDDEN: &[&str] = &[
        "axum",
        "Router",
        ".route(",
        "World::new",
        "docket_runtime::World;",
        ".world()",
        "docket_runtime::Executor",
        "docket_runtime::{",
    ];
    // Unit tests (`tests.rs` modules) may stand up a server to talk to.
    let files = rust_files(&root().join("crates/docket/src"));
    assert!(!files.is_empty());
    for path in files.into_iter().filter(|p| !p.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(&path).unwrap();
        for word in FORBIDDEN {
            assert!(
                !text.contains(word),
                "{} mentions {word:?}: that belongs in docket-node",
                path.display()
            );
        }
    }
}
