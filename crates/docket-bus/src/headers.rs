//! The headers Docket reads and writes, and a small header list shared by both transports, so the
//! in-process transport needs no NATS types.

/// `application/json` (the default) or `application/postcard`, on requests and replies.
pub const CONTENT_TYPE: &str = "Content-Type";
/// Who is acting: `<person uuid>/<role code>`; read only by [`crate::actor::authenticate`].
pub const ACTOR: &str = "Docket-Actor";
/// Optional: 1 to 128 printable ASCII characters naming one attempt of a command, so that a
/// retry is answered with the original result.
pub const IDEMPOTENCY_KEY: &str = "Docket-Idempotency-Key";
/// Optional: a log position, usually the `position` of an earlier reply. The service decides the
/// command only once it has read the log up to there, so the command sees the caller's earlier
/// writes even when another service made them (read your writes across services).
pub const AFTER: &str = "Docket-After";
/// On every reply: `ok` (the body is a `CommandReply`) or `error` (the body is an error).
pub const STATUS: &str = "Docket-Status";
/// On error replies: the error's message (the NATS micro service convention).
pub const NATS_SERVICE_ERROR: &str = "Nats-Service-Error";
/// On error replies: the error's numeric class, see [`crate::BusError::status`].
pub const NATS_SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// `Docket-Status` of a successful reply.
pub const STATUS_OK: &str = "ok";
/// `Docket-Status` of an error reply.
pub const STATUS_ERROR: &str = "error";

/// A list of header names and values. Names compare case-insensitively; values never contain
/// CR or LF (they are replaced by spaces on insertion, as NATS headers cannot carry them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Sets `name` to `value`, replacing every earlier value of `name`.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.append(name, value);
    }

    /// Adds a value for `name`, keeping earlier ones.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        let mut value: String = value.into();
        if value.contains(['\r', '\n']) {
            value = value.replace(['\r', '\n'], " ");
        }
        self.entries.push((name.to_owned(), value));
    }

    /// The same headers with `name` set to `value`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (n, v) in iter {
            headers.append(n.as_ref(), v);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_values_single_line() {
        let mut h = Headers::new().with("Docket-Actor", "a");
        h.append("docket-actor", "b");
        assert_eq!(h.get_all("DOCKET-ACTOR").collect::<Vec<_>>(), ["a", "b"]);
        h.insert("Docket-Actor", "line\r\nbreak");
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("docket-actor"), Some("line  break"));
    }
}
