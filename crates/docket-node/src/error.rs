//! Why a node could not start or stopped on its own.

use crate::supervise::ComponentFailure;

/// Why a node could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration cannot work; the message names the setting.
    #[error("{0}")]
    Config(String),
    /// Starting something failed.
    #[error("{what}: {source}")]
    Start {
        /// What was being started.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A component stopped while the node ran, which stops the node.
    #[error("the {} stopped: {}", .0.component, .0.error)]
    Component(ComponentFailure),
}

/// Adds what was being done to an error.
pub(crate) trait ResultExt<T> {
    fn context(self, what: impl Into<String>) -> Result<T, NodeError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, NodeError> {
        self.map_err(|e| NodeError::Start {
            what: what.into(),
            source: Box::new(e),
        })
    }
}
