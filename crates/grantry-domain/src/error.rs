//! The one error type of Grantry's model and use cases. The HTTP layer maps each
//! [`ErrorKind`] to a status code in one place; `code` is the stable, documented
//! machine-readable code placed in Graph's error envelope.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
    /// The property or parameter the error is about, when there is one.
    pub target: Option<String>,
    /// For a conflict the database found: the name of the violated constraint (see
    /// `grantry_store::Constraint`).
    pub constraint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Error { kind, code: code.into(), message: message.into(), target: None, constraint: None }
    }
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }
    /// A request body property is missing or malformed.
    pub fn invalid_property(property: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "InvalidRequestBody", message).with_target(property)
    }
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "ResourceNotFound",
            format!("No {what} with id '{id}' exists (or you are not allowed to see it)."),
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "accessDenied", message)
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "InvalidAuthenticationToken", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "generalException", message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}
