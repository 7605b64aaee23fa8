//! Longest text accepted in a request body, per property, and how much of a value an
//! error message may echo.
//!
//! Graph documents 256 characters for a user's or group's `displayName`, 64 for
//! `mailNickname` and 113 for `userPrincipalName`; it documents none for entitlement
//! management. Grantry applies 256 to every name, 1024 to descriptions, and 4000 to
//! every other text (justifications, answers, question texts), so one request cannot
//! store megabytes that every later read carries.

/// Names: `displayName`, `uniqueName`, `givenName`, `surname`, ...
pub const NAME_CHARS: usize = 256;
pub const DESCRIPTION_CHARS: usize = 1024;
/// Every other text property.
pub const TEXT_CHARS: usize = 4000;
/// How many characters of a value an error message echoes.
pub const ECHO_CHARS: usize = 64;
/// Longest error message sent to a client.
pub const MESSAGE_CHARS: usize = 1024;

/// The longest value accepted for the property named `key` (any case).
pub fn max_chars(key: &str) -> usize {
    match key.to_ascii_lowercase().as_str() {
        "displayname" | "uniquename" | "givenname" | "surname" | "jobtitle" | "department" | "companyname" => {
            NAME_CHARS
        }
        "mailnickname" => 64,
        "userprincipalname" => 113,
        "description" => DESCRIPTION_CHARS,
        _ => TEXT_CHARS,
    }
}

/// Why `value` cannot be stored in the property at `path` (too long, or a NUL character),
/// if it cannot.
pub fn check(path: &str, key: &str, value: &str) -> crate::Result<()> {
    // PostgreSQL text cannot hold U+0000, and no property needs it.
    if value.contains('\0') {
        return Err(crate::Error::invalid_property(
            path,
            format!("'{path}' contains the character U+0000, which text properties cannot hold."),
        ));
    }
    let max = max_chars(key);
    // Bytes bound characters from above: most values skip the count.
    if value.len() <= max {
        return Ok(());
    }
    let chars = value.chars().count();
    if chars <= max {
        return Ok(());
    }
    Err(crate::Error::invalid_property(
        path,
        format!("'{path}' is {chars} characters long; the limit is {max} characters."),
    ))
}

/// `value` as an error message may quote it: at most [`ECHO_CHARS`] characters, with an
/// ellipsis and the full length when it was cut.
pub fn excerpt(value: &str) -> String {
    if value.len() <= ECHO_CHARS {
        return value.to_string();
    }
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(ECHO_CHARS).collect();
    match chars.count() {
        0 => head,
        rest => format!("{head}… ({} characters)", ECHO_CHARS + rest),
    }
}

/// `message` cut to [`MESSAGE_CHARS`] characters (a last guard for messages that quote
/// client input without [`excerpt`]).
pub fn clip_message(message: &mut String) {
    if message.len() <= MESSAGE_CHARS {
        return;
    }
    if let Some((cut, _)) = message.char_indices().nth(MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_property_and_the_limit() {
        assert!(check("displayName", "displayName", &"a".repeat(256)).is_ok());
        let e = check("displayName", "displayName", &"a".repeat(257)).unwrap_err();
        assert_eq!(e.target.as_deref(), Some("displayName"));
        assert!(e.message.contains("257") && e.message.contains("256"), "{}", e.message);
        // Characters, not bytes.
        assert!(check("description", "description", &"é".repeat(1024)).is_ok());
        assert!(check("justification", "justification", &"x".repeat(4001)).is_err());
        assert!(check("displayName", "displayName", "a\0b").is_err());
    }

    #[test]
    fn echoes_are_short() {
        assert_eq!(excerpt("short"), "short");
        let long = excerpt(&"x".repeat(100_000));
        assert!(long.chars().count() < 100 && long.contains("100000 characters"), "{long}");
        let mut m = "é".repeat(5000);
        clip_message(&mut m);
        assert_eq!(m.chars().count(), MESSAGE_CHARS + 1);
    }
}
