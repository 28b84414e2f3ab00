//! The one error type of the runtime layer; backends turn engine errors into it.

use hostel_core::ErrorCode;

/// What went wrong talking to an engine.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine does not answer on its socket.
    #[error("container engine at {endpoint} does not answer")]
    EngineUnreachable {
        /// Socket path or URL.
        endpoint: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No such container, exec or image.
    #[error("{what} {name:?} not found in the engine")]
    NotFound {
        /// `container`, `image`, `exec`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// The name is taken or the object is in the wrong state.
    #[error("engine conflict on {name:?}: {message}")]
    Conflict {
        /// The object.
        name: String,
        /// What the engine said.
        message: String,
    },
    /// The engine refused or failed the request.
    #[error("engine refused {action}: {message}")]
    Engine {
        /// What was asked.
        action: String,
        /// What the engine said.
        message: String,
    },
    /// A host command or file needed by the storage backend failed.
    #[error("{action} failed: {message}")]
    Host {
        /// What was done.
        action: String,
        /// What it said.
        message: String,
    },
    /// The disk holding the homes is full.
    #[error("no space left for {action}")]
    NoSpace {
        /// What needed space.
        action: String,
    },
    /// Nothing in the workspace accepted a connection to this port.
    #[error("nothing listens on port {port} in {workspace}")]
    Refused {
        /// The workspace.
        workspace: String,
        /// The port on its loopback.
        port: u16,
    },
    /// A request the backend cannot honour.
    #[error("{0}")]
    Unsupported(String),
}

impl RuntimeError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RuntimeError::EngineUnreachable { .. } => ErrorCode::EngineUnreachable,
            RuntimeError::NotFound { .. } => ErrorCode::NotFound,
            RuntimeError::Conflict { .. } => ErrorCode::Conflict,
            RuntimeError::Unsupported(_) => ErrorCode::InvalidInput,
            RuntimeError::NoSpace { .. } | RuntimeError::Refused { .. } => ErrorCode::Unavailable,
            RuntimeError::Engine { .. } | RuntimeError::Host { .. } => ErrorCode::Internal,
        }
    }

    /// One concrete action for a person.
    pub fn hint(&self) -> Option<String> {
        match self {
            RuntimeError::EngineUnreachable { endpoint, .. } if endpoint.contains("incus") => {
                Some(format!(
                    "start Incus with `scripts/incus`, or set engine.socket in hostel.toml \
                     (now {endpoint})"
                ))
            }
            RuntimeError::EngineUnreachable { endpoint, .. } => Some(format!(
                "start the engine with `scripts/engine` (or `dockerd &`), or set engine.socket \
                 in hostel.toml (now {endpoint})"
            )),
            RuntimeError::NotFound { what: "image", .. } => {
                Some("build it with `hostel image build`".into())
            }
            RuntimeError::NoSpace { .. } => {
                Some("free space on the filesystem holding the hostel root, then retry".into())
            }
            RuntimeError::Host { .. } => {
                Some("run `hostel check` to see what the host lacks".into())
            }
            _ => None,
        }
    }
}
