//! Recognisers for the literal forms whose syntax is more than "digits" or
//! "quoted text": GUIDs, dates, date-times and durations. They work on bytes
//! (all of these forms are ASCII) and never index out of bounds.

/// Whether `bytes` is exactly a GUID in 8-4-4-4-12 hex form (any case).
pub(crate) fn is_guid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// Which kind of temporal literal [`scan_temporal`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    Date,
    DateTimeOffset,
}

/// Scans a date (`2024-05-01`) or a date-time with offset
/// (`2024-05-01T10:00[:00[.1234567]](Z|±hh:mm)`) at the start of `bytes` and
/// returns its kind and length, or a message saying what is malformed.
/// Calendar ranges are checked (month 1–12, day within the month, …).
pub(crate) fn scan_temporal(bytes: &[u8]) -> Result<(Temporal, usize), String> {
    const DATE_HINT: &str = "invalid date literal; expected a date such as 2024-05-01";
    const TIME_HINT: &str = "invalid date-time literal; expected a time such as 2024-05-01T10:00:00Z after the date";

    let mut cursor = Cursor { bytes, pos: 0 };
    let year = cursor.fixed_digits(4).ok_or(DATE_HINT)?;
    let month = cursor.eat(b'-').then(|| cursor.fixed_digits(2)).flatten().ok_or(DATE_HINT)?;
    let day = cursor.eat(b'-').then(|| cursor.fixed_digits(2)).flatten().ok_or(DATE_HINT)?;
    if !(1..=12).contains(&month) {
        return Err(format!("invalid date literal; month {month:02} is out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("invalid date literal; day {day:02} is out of range for {year:04}-{month:02}"));
    }
    if !(cursor.eat(b'T') || cursor.eat(b't')) {
        return Ok((Temporal::Date, cursor.pos));
    }

    let hour = cursor.fixed_digits(2).ok_or(TIME_HINT)?;
    let minute = cursor.eat(b':').then(|| cursor.fixed_digits(2)).flatten().ok_or(TIME_HINT)?;
    let mut second = 0;
    if cursor.eat(b':') {
        second = cursor.fixed_digits(2).ok_or(TIME_HINT)?;
        if cursor.eat(b'.') {
            let fraction = cursor.digit_run();
            if !(1..=12).contains(&fraction) {
                return Err("invalid date-time literal; expected 1 to 12 digits of fractional seconds".into());
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("invalid date-time literal; the time {hour:02}:{minute:02}:{second:02} is out of range"));
    }

    const ZONE_HINT: &str = "invalid date-time literal; expected a time zone such as 'Z' or '+02:00' after the time";
    if cursor.eat(b'Z') || cursor.eat(b'z') {
        return Ok((Temporal::DateTimeOffset, cursor.pos));
    }
    if !(cursor.eat(b'+') || cursor.eat(b'-')) {
        return Err(ZONE_HINT.into());
    }
    let offset_hours = cursor.fixed_digits(2).ok_or(ZONE_HINT)?;
    let offset_minutes = cursor.eat(b':').then(|| cursor.fixed_digits(2)).flatten().ok_or(ZONE_HINT)?;
    if offset_hours > 23 || offset_minutes > 59 {
        return Err("invalid date-time literal; the time-zone offset is out of range".into());
    }
    Ok((Temporal::DateTimeOffset, cursor.pos))
}

/// Whether `text` is an ISO 8601 duration such as `P30D`, `PT12H`,
/// `-P1DT2H30M15.5S` or `P1Y2M`. At least one component is required and
/// components must appear in order.
pub(crate) fn is_duration(text: &str) -> bool {
    let mut cursor = Cursor { bytes: text.as_bytes(), pos: 0 };
    cursor.eat(b'-');
    if !(cursor.eat(b'P') || cursor.eat(b'p')) {
        return false;
    }
    let Some(date_parts) = cursor.components(b"YMWD", false) else {
        return false;
    };
    let mut time_parts = 0;
    if cursor.eat(b'T') || cursor.eat(b't') {
        match cursor.components(b"HMS", true) {
            Some(count) if count > 0 => time_parts = count,
            _ => return false,
        }
    }
    date_parts + time_parts > 0 && cursor.pos == text.len()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.pos += 1;
        }
        matched
    }

    /// Consumes a run of ASCII digits and returns its length.
    fn digit_run(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consumes exactly `count` digits and returns their value.
    fn fixed_digits(&mut self, count: usize) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos.checked_add(count)?)?;
        let mut value = 0u32;
        for digit in digits {
            if !digit.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(digit - b'0');
        }
        self.pos += count;
        Some(value)
    }

    /// Consumes `<digits><unit>` components whose units appear in `units`
    /// order (case-insensitively); the last unit may carry a fraction when
    /// `fraction_on_last` is set (seconds). Returns how many were consumed,
    /// or `None` when a component is malformed.
    fn components(&mut self, units: &[u8], fraction_on_last: bool) -> Option<usize> {
        let mut remaining = units;
        let mut count = 0;
        while self.digit_run() > 0 {
            let fraction = self.eat(b'.');
            if fraction && self.digit_run() == 0 {
                return None;
            }
            let unit = self.peek()?.to_ascii_uppercase();
            let index = remaining.iter().position(|&allowed| allowed == unit)?;
            if fraction && !(fraction_on_last && units.last() == Some(&unit)) {
                return None;
            }
            self.pos += 1;
            remaining = remaining.get(index + 1..).unwrap_or_default();
            count += 1;
        }
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid(b"a914b616-e04e-476b-aa37-91038f0b165b"));
        assert!(is_guid(b"A914B616-E04E-476B-AA37-91038F0B165B"));
        assert!(!is_guid(b"a914b616-e04e-476b-aa37-91038f0b165"));
        assert!(!is_guid(b"a914b616xe04e-476b-aa37-91038f0b165b"));
        assert!(!is_guid(b"g914b616-e04e-476b-aa37-91038f0b165b"));
    }

    #[test]
    fn temporals() {
        assert_eq!(scan_temporal(b"2024-05-01"), Ok((Temporal::Date, 10)));
        assert_eq!(scan_temporal(b"2024-05-01 and"), Ok((Temporal::Date, 10)));
        for text in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00Z",
            "2024-05-01T10:00:00.1234567+00:00",
            "2024-02-29T23:59:59-05:30",
        ] {
            assert_eq!(scan_temporal(text.as_bytes()), Ok((Temporal::DateTimeOffset, text.len())), "{text}");
        }
        for bad in [
            "2024-13-01",
            "2023-02-29",
            "2024-05-1",
            "2024-05-01T25:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10",
            "2024-05-01T10:00:00+0100",
        ] {
            assert!(scan_temporal(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        for good in ["P30D", "PT12H", "-P1DT2H30M15.5S", "P1Y2M", "P2W", "PT0.5S"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "P", "PT", "30D", "P1H", "PT1D", "P1D2Y", "P1.5D", "P1DX", "P-1D"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
