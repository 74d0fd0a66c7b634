//! The notification service's configuration: where to deliver, how to sign, how hard to try.

use std::fmt;
use std::time::Duration;

use crate::error::NotifyError;

/// How the notification service delivers. The secret is never logged: `Debug` redacts it, and
/// shows only the webhook's scheme and authority (webhook URLs often carry a token in their path).
#[derive(Clone)]
pub struct NotifyConfig {
    /// The one webhook every notification is POSTed to (`http://` or `https://`).
    pub webhook_url: String,
    /// The key of the `Docket-Signature` HMAC-SHA256, shared with the webhook's owner.
    pub secret: String,
    /// Attempts per notification (the first included) before it is abandoned.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How long one attempt (connect, request, response) may take.
    pub request_timeout: Duration,
    /// Attempts in flight at once, so one slow endpoint response does not hold up the others.
    pub concurrency: usize,
}

impl NotifyConfig {
    /// Defaults (8 attempts, backoff from 1 s doubling up to 5 min, 10 s per attempt, 16 at once)
    /// for a webhook and its secret.
    pub fn new(webhook_url: impl Into<String>, secret: impl Into<String>) -> Self {
        NotifyConfig {
            webhook_url: webhook_url.into(),
            secret: secret.into(),
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }

    /// Checks the settings; the service refuses to start with any of these wrong.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let bad = |reason: &str| {
            Err(NotifyError::Config {
                reason: reason.to_owned(),
            })
        };
        if self.secret.is_empty() {
            return bad("the webhook secret is empty");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be more than zero");
        }
        if self.initial_backoff > self.max_backoff {
            return bad("initial_backoff must not exceed max_backoff");
        }
        self.uri().map(|_| ())
    }

    /// The webhook URL, parsed and checked.
    pub(crate) fn uri(&self) -> Result<hyper::Uri, NotifyError> {
        let uri: hyper::Uri = self.webhook_url.parse().map_err(|e| NotifyError::Config {
            reason: format!("webhook url {}: {e}", redacted_url(&self.webhook_url)),
        })?;
        match uri.scheme_str() {
            Some("http") | Some("https") if uri.host().is_some() => Ok(uri),
            _ => Err(NotifyError::Config {
                reason: format!(
                    "webhook url {}: expected http://host/… or https://host/…",
                    redacted_url(&self.webhook_url)
                ),
            }),
        }
    }

    /// The webhook URL as it may be logged: scheme and authority only.
    pub fn redacted_url(&self) -> String {
        redacted_url(&self.webhook_url)
    }
}

/// `scheme://authority/…`, without user info, path or query.
fn redacted_url(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => {
            let host = uri.host().unwrap_or("?");
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}/…", uri.scheme_str().unwrap_or("?"))
        }
        Err(_) => "(unparsable)".to_owned(),
    }
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("webhook_url", &self.redacted_url())
            .field("secret", &"<redacted>")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("request_timeout", &self.request_timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_or_the_url_path() {
        let config = NotifyConfig::new("https://u:pw@hooks.example:8443/T0/B0/tok?x=1", "s3cr3t");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("tok") && !shown.contains("pw"), "{shown}");
        assert!(shown.contains("https://hooks.example:8443/…"), "{shown}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = NotifyConfig::new("http://127.0.0.1:9/hook", "k");
        assert!(ok.validate().is_ok());
        for (config, why) in [
            (
                NotifyConfig {
                    secret: String::new(),
                    ..ok.clone()
                },
                "secret",
            ),
            (
                NotifyConfig {
                    max_attempts: 0,
                    ..ok.clone()
                },
                "max_attempts",
            ),
            (
                NotifyConfig {
                    concurrency: 0,
                    ..ok.clone()
                },
                "concurrency",
            ),
            (
                NotifyConfig {
                    webhook_url: "ftp://x/".into(),
                    ..ok.clone()
                },
                "webhook url",
            ),
            (
                NotifyConfig {
                    webhook_url: "/relative".into(),
                    ..ok.clone()
                },
                "webhook url",
            ),
            (
                NotifyConfig {
                    initial_backoff: Duration::from_secs(10),
                    max_backoff: Duration::from_secs(1),
                    ..ok.clone()
                },
                "initial_backoff",
            ),
        ] {
            let err = config.validate().map(|_| ()).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(why)),
                "{why}: {err:?}"
            );
        }
    }
}
