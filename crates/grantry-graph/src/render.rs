//! The dialect every rendering follows.

/// The dialect of the URL root: `/v1.0` or `/beta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    V1,
    Beta,
}

impl Dialect {
    /// The URL root segment.
    pub fn root(self) -> &'static str {
        match self {
            Dialect::V1 => "v1.0",
            Dialect::Beta => "beta",
        }
    }
    pub fn is_beta(self) -> bool {
        self == Dialect::Beta
    }
    /// Chooses between the v1.0 and beta spelling of a name.
    pub fn pick(self, v1: &'static str, beta: &'static str) -> &'static str {
        match self {
            Dialect::V1 => v1,
            Dialect::Beta => beta,
        }
    }
}
