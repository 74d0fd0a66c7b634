//! The event codec, the machinery every aggregate's events share: every event type has a stable
//! name and a version, is encoded with postcard (the log) or JSON (interchange), and old versions
//! are upcast on read. A leaf: it knows no aggregate ([`crate::events`] is the sum over them).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The two encodings of an event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Compact, positional: the log and Rust services.
    Postcard,
    /// Self-describing: services in other languages.
    Json,
}

/// Why an event payload could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// No event type has this name.
    #[error("unknown event type {name:?}")]
    UnknownType {
        /// The name found.
        name: String,
    },
    /// The type is known but not this version.
    #[error("event type {name} has no version {version} (current is {current})")]
    UnknownVersion {
        /// The type.
        name: String,
        /// The version found.
        version: u16,
        /// The version this code writes.
        current: u16,
    },
    /// The bytes do not decode as that type and version.
    #[error("cannot decode {name} v{version}: {reason}")]
    Malformed {
        /// The type.
        name: String,
        /// The version.
        version: u16,
        /// The decoder's complaint.
        reason: String,
    },
    /// Encoding failed.
    #[error("cannot encode {name}: {reason}")]
    Encode {
        /// The type.
        name: String,
        /// The encoder's complaint.
        reason: String,
    },
}

/// Serialises one payload.
pub fn to_bytes<T: Serialize>(
    name: &str,
    value: &T,
    format: Format,
) -> Result<Vec<u8>, CodecError> {
    let encoded = match format {
        Format::Postcard => postcard::to_stdvec(value).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
    };
    encoded.map_err(|reason| CodecError::Encode {
        name: name.to_owned(),
        reason,
    })
}

/// Deserialises one payload.
pub fn from_bytes<T: DeserializeOwned>(
    name: &str,
    version: u16,
    bytes: &[u8],
    format: Format,
) -> Result<T, CodecError> {
    let decoded = match format {
        Format::Postcard => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
    };
    decoded.map_err(|reason| CodecError::Malformed {
        name: name.to_owned(),
        version,
        reason,
    })
}

/// Reading an older version of an aggregate's events. The default knows none.
pub trait Upcast: Sized {
    /// Decodes `name` at an old `version` into the current event, or says it cannot.
    fn upcast(name: &str, version: u16, bytes: &[u8], format: Format) -> Result<Self, CodecError> {
        let _ = (bytes, format);
        Err(CodecError::UnknownVersion {
            name: name.to_owned(),
            version,
            current: 0,
        })
    }
}

/// Declares an aggregate's event enum: each variant wraps one payload struct and has a stable
/// name and current version. Generates `name()`, `version()`, `at()`, `encode()`, `decode()` and
/// `TYPES`. Every payload records when it happened in a field `at`.
macro_rules! event_enum {
    ($(#[$doc:meta])* $enum:ident { $($(#[$vdoc:meta])* $variant:ident($payload:ty) = $name:literal v $version:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum $enum {
            $($(#[$vdoc])* #[serde(rename = $name)] $variant($payload)),+
        }

        impl $enum {
            /// Every event type of this enum: stable name and current version.
            pub const TYPES: &'static [(&'static str, u16)] = &[$(($name, $version)),+];

            /// The stable type name.
            pub fn name(&self) -> &'static str {
                match self { $($enum::$variant(_) => $name),+ }
            }

            /// The current version of this event's type.
            pub fn version(&self) -> u16 {
                match self { $($enum::$variant(_) => $version),+ }
            }

            /// When it happened, as the event records it (the time its command was decided).
            pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
                match self { $($enum::$variant(p) => p.at),+ }
            }

            /// Encodes the payload (without the name and version, which travel beside it).
            pub fn encode(&self, format: $crate::codec::Format) -> Result<Vec<u8>, $crate::codec::CodecError> {
                match self { $($enum::$variant(p) => $crate::codec::to_bytes($name, p, format)),+ }
            }

            /// Decodes a payload of type `name` at `version`, upcasting older versions.
            /// `Ok(None)` if `name` is not one of this enum's types.
            pub fn decode(
                name: &str,
                version: u16,
                bytes: &[u8],
                format: $crate::codec::Format,
            ) -> Result<Option<Self>, $crate::codec::CodecError> {
                match name {
                    $($name => {
                        if version == $version {
                            $crate::codec::from_bytes::<$payload>($name, version, bytes, format)
                                .map(|p| Some($enum::$variant(p)))
                        } else if version > $version {
                            Err($crate::codec::CodecError::UnknownVersion {
                                name: $name.to_owned(), version, current: $version,
                            })
                        } else {
                            <Self as $crate::codec::Upcast>::upcast($name, version, bytes, format)
                                .map(Some)
                                .map_err(|e| match e {
                                    $crate::codec::CodecError::UnknownVersion { name, version, .. } =>
                                        $crate::codec::CodecError::UnknownVersion { name, version, current: $version },
                                    other => other,
                                })
                        }
                    })+
                    _ => Ok(None),
                }
            }
        }
    };
}
pub(crate) use event_enum;
