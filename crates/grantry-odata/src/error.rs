//! The single error type returned by every parser in this crate.

use std::fmt;

/// A syntax error in one query option.
///
/// `position` is a byte offset into the value of the option named by
/// `option` (for errors inside a nested `$expand` option it is an offset into
/// the whole `$expand` value, and `message` names the nested option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The query option the error is in, e.g. `"$filter"`. Errors that are
    /// not about any one option (an unknown `$` option) use `"query"`.
    pub option: &'static str,
    /// Byte offset of the offending token within the option's value.
    pub position: usize,
    /// What is wrong, phrased so that the caller knows what to fix.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(option: &'static str, position: usize, message: impl Into<String>) -> Self {
        Self { option, position, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Syntax error at position {} in '{}': {}", self.position, self.option, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Quotes a piece of user input for an error message, shortened so that a
/// huge value cannot blow up the message.
pub(crate) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut chars = text.chars();
    let short: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() { format!("{short}…") } else { short }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_format() {
        let err = ParseError::new("$filter", 14, "expected a closing ')'");
        assert_eq!(err.to_string(), "Syntax error at position 14 in '$filter': expected a closing ')'");
    }

    #[test]
    fn snippet_truncates_on_char_boundaries() {
        assert_eq!(snippet("abc"), "abc");
        let long = "é".repeat(50);
        assert_eq!(snippet(&long), format!("{}…", "é".repeat(40)));
    }
}
