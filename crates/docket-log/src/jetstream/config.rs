//! The backend's settings, the stream configuration Docket creates from them, and the checks
//! an existing stream and the server's version must pass.

use std::time::Duration;

use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType,
};

use super::{DEFAULT_STREAM_NAME, DEFAULT_SUBJECT_PREFIX};
use crate::commit;
use crate::{LogError, Result};

/// Settings of the JetStream backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// Name of the JetStream stream that holds the log.
    pub stream_name: String,
    /// Subject prefix; a log stream `<kind>/<id>` is the subject `<prefix>.<kind>.<id>`.
    pub subject_prefix: String,
    /// Replicas of the stream: 1, or 3 on a cluster.
    pub replicas: usize,
    /// How long the server remembers message ids for deduplication.
    pub duplicate_window: Duration,
    /// How long an append keeps retrying transient failures (server restarting, leader
    /// election) before it gives up with [`LogError::Unavailable`].
    pub max_retry: Duration,
    /// How long one request or publish acknowledgement is awaited.
    pub request_timeout: Duration,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            stream_name: DEFAULT_STREAM_NAME.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            max_retry: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl JetStreamConfig {
    /// Checks the settings before anything is sent to the server.
    pub(super) fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(LogError::Invalid { reason });
        let name_ok = !self.stream_name.is_empty()
            && self
                .stream_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return invalid(format!(
                "stream name {:?}: must be ASCII letters, digits, '-' or '_'",
                self.stream_name
            ));
        }
        let prefix_ok = self.subject_prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !prefix_ok {
            return invalid(format!(
                "subject prefix {:?}: must be dot-separated tokens without wildcards",
                self.subject_prefix
            ));
        }
        if self.replicas != 1 && self.replicas != 3 {
            return invalid(format!("replicas {}: must be 1 or 3", self.replicas));
        }
        if self.duplicate_window.is_zero() || self.request_timeout.is_zero() {
            return invalid("duplicate window and request timeout must be positive".into());
        }
        Ok(())
    }

    /// The stream configuration Docket creates.
    pub(super) fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream_name.clone(),
            description: Some("docket event log: append-only, hash-chained commits".into()),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_age: Duration::ZERO,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            ..StreamConfig::default()
        }
    }
}

/// Checks the server's version: Docket needs 2.10 or newer. Returns `(major, minor)`.
pub(crate) fn check_server_version(version: &str) -> Result<(u64, u64)> {
    let core = version
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let mut parts = core.split('.').map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return Err(LogError::Incompatible {
            reason: format!("cannot parse nats-server version {version:?}"),
        });
    };
    if (major, minor) < (2, 10) {
        return Err(LogError::Incompatible {
            reason: format!(
                "nats-server {version} is too old, docket needs 2.10 or newer: older servers \
                 silently drop stream and consumer settings they do not know (a consumer with \
                 filter_subjects sees the whole stream) and have no sync_interval to fsync every \
                 write"
            ),
        });
    }
    Ok((major, minor))
}

/// Lists what in an existing stream's configuration breaks the log's guarantees.
pub(crate) fn stream_problems(existing: &StreamConfig, wanted: &JetStreamConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: &str| {
        if !ok {
            problems.push(problem.to_owned());
        }
    };
    check(
        existing.deny_delete,
        "deny_delete is off: commits could be deleted",
    );
    check(
        existing.deny_purge,
        "deny_purge is off: the log could be purged",
    );
    check(
        !existing.allow_rollup,
        "rollups are allowed: a rollup erases commits",
    );
    check(existing.storage == StorageType::File, "storage is not file");
    check(
        existing.retention == RetentionPolicy::Limits,
        "retention is not limits: commits would be removed once consumed",
    );
    check(
        existing.max_messages <= 0
            && existing.max_bytes <= 0
            && existing.max_messages_per_subject <= 0
            && existing.max_age.is_zero(),
        "the stream has limits (max_msgs, max_bytes, max_msgs_per_subject or max_age) that \
         would discard commits",
    );
    check(
        existing
            .subjects
            .iter()
            .any(|s| *s == format!("{}.>", wanted.subject_prefix)),
        "the stream does not capture the configured subject prefix",
    );
    check(
        existing.allow_direct,
        "allow_direct is off: reads need direct get",
    );
    check(!existing.sealed, "the stream is sealed");
    check(existing.mirror.is_none(), "the stream is a mirror");
    check(
        existing.max_message_size <= 0
            || existing.max_message_size as usize > commit::MAX_COMMIT_BYTES,
        "max_msg_size is below the commit size limit",
    );
    check(
        existing.num_replicas.max(1) == wanted.replicas,
        "its replica count differs from the configured one",
    );
    check(
        !existing.allow_message_ttl,
        "per-message TTLs are allowed: commits could expire",
    );
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_older_than_2_10_are_refused() {
        for (version, expected) in [
            ("2.10.0", Some((2, 10))),
            ("2.15.1", Some((2, 15))),
            ("v2.11.0-RC.3", Some((2, 11))),
            ("3.0.0", Some((3, 0))),
            ("2.9.25", None),
            ("1.4.1", None),
            ("", None),
            ("banana", None),
        ] {
            let got = check_server_version(version);
            assert_eq!(got.as_ref().ok().copied(), expected, "{version}: {got:?}");
            if let Err(err) = got {
                assert!(matches!(err, LogError::Incompatible { .. }), "{err:?}");
            }
        }
        let err = check_server_version("2.9.25").unwrap_err().to_string();
        assert!(
            err.contains("2.10") && err.contains("sync_interval"),
            "{err}"
        );
    }

    #[test]
    fn the_created_stream_has_no_problems() {
        let config = JetStreamConfig::default();
        assert!(stream_problems(&config.stream_config(), &config).is_empty());
    }

    #[test]
    fn unsafe_stream_settings_are_reported() {
        let config = JetStreamConfig::default();
        let good = config.stream_config();
        let cases: Vec<(&str, StreamConfig)> = vec![
            (
                "deny_delete",
                StreamConfig {
                    deny_delete: false,
                    ..good.clone()
                },
            ),
            (
                "deny_purge",
                StreamConfig {
                    deny_purge: false,
                    ..good.clone()
                },
            ),
            (
                "rollup",
                StreamConfig {
                    allow_rollup: true,
                    ..good.clone()
                },
            ),
            (
                "limits",
                StreamConfig {
                    max_age: Duration::from_secs(60),
                    ..good.clone()
                },
            ),
            (
                "limits",
                StreamConfig {
                    max_messages: 10,
                    ..good.clone()
                },
            ),
            (
                "retention",
                StreamConfig {
                    retention: RetentionPolicy::WorkQueue,
                    ..good.clone()
                },
            ),
            (
                "storage",
                StreamConfig {
                    storage: StorageType::Memory,
                    ..good.clone()
                },
            ),
            (
                "subject prefix",
                StreamConfig {
                    subjects: vec!["other.>".into()],
                    ..good.clone()
                },
            ),
            (
                "replica",
                StreamConfig {
                    num_replicas: 3,
                    ..good.clone()
                },
            ),
            (
                "allow_direct",
                StreamConfig {
                    allow_direct: false,
                    ..good.clone()
                },
            ),
        ];
        for (what, existing) in cases {
            let problems = stream_problems(&existing, &config);
            assert_eq!(problems.len(), 1, "{what}: {problems:?}");
            assert!(problems[0].contains(what), "{what}: {problems:?}");
        }
    }

    #[test]
    fn configs_are_validated() {
        assert!(JetStreamConfig::default().validate().is_ok());
        for bad in [
            JetStreamConfig {
                replicas: 2,
                ..Default::default()
            },
            JetStreamConfig {
                stream_name: "A.B".into(),
                ..Default::default()
            },
            JetStreamConfig {
                subject_prefix: "docket.>".into(),
                ..Default::default()
            },
            JetStreamConfig {
                subject_prefix: "".into(),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(LogError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
