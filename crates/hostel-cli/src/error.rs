//! How the CLI reports failure: `error: …`, a `caused by: …` per source, then `hint: …`, and an
//! exit code from the error's stable code.

use hostel_core::ErrorCode;
use hostel_service::ServiceError;

/// A failure ready to print.
#[derive(Debug)]
pub struct CliError {
    /// Stable code (decides the exit status).
    pub code: ErrorCode,
    /// The message.
    pub message: String,
    /// Each underlying cause.
    pub causes: Vec<String>,
    /// One action to take.
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: Option<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            causes: Vec::new(),
            hint,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.code.exit_code()
    }

    pub fn print(&self) {
        eprintln!("error: {}", self.message);
        for c in &self.causes {
            eprintln!("caused by: {c}");
        }
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
    }
}

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !e.to_string().contains(&text) {
                causes.push(text);
            }
            source = s.source();
        }
        CliError {
            code: e.code(),
            message: e.to_string(),
            causes,
            hint: e.hint(),
        }
    }
}

impl From<hostel_store::StoreError> for CliError {
    fn from(e: hostel_store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}
