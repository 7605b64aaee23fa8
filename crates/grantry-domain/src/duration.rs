//! `Edm.Duration` values: ISO-8601 day-time durations (`P14D`, `PT8H`, `P1DT12H`), plus the
//! `str(timedelta)` form (`365 days, 0:00:00`) that the official Python SDK sends because of
//! a serializer bug. Output is always ISO-8601.

use chrono::Duration;

/// Parses an ISO-8601 day-time duration or a Python `str(timedelta)`.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("a duration must not be empty; use ISO-8601 such as 'P14D' or 'PT8H'".into());
    }
    if s.starts_with('P') || s.starts_with('p') || s.starts_with("-P") || s.starts_with("-p") {
        parse_iso(s)
    } else {
        parse_python_timedelta(s)
            .ok_or_else(|| format!("'{input}' is not a duration; use ISO-8601 such as 'P14D', 'PT8H' or 'P1DT12H'"))
    }
}

fn parse_iso(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not an ISO-8601 duration; use forms such as 'P14D', 'PT8H' or 'P1DT12H30M'");
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = &rest[1..]; // skip 'P'
    let mut total_ms: i128 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut seen_any = false;
    let mut seen_time_part = false;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'T' | 't' => {
                if in_time || !number.is_empty() {
                    return Err(bad());
                }
                in_time = true;
            }
            _ => {
                if number.is_empty() {
                    return Err(bad());
                }
                let unit_ms: f64 = match (c.to_ascii_uppercase(), in_time) {
                    ('W', false) => 7.0 * 86_400_000.0,
                    ('D', false) => 86_400_000.0,
                    ('H', true) => 3_600_000.0,
                    ('M', true) => 60_000.0,
                    ('S', true) => 1000.0,
                    ('Y', false) | ('M', false) => {
                        return Err(format!(
                            "'{s}' uses years or months, which have no fixed length; express the duration in days, e.g. 'P365D'"
                        ));
                    }
                    _ => return Err(bad()),
                };
                let value: f64 = number.parse().map_err(|_| bad())?;
                if !value.is_finite() || value > 1.0e9 {
                    return Err(bad());
                }
                total_ms += (value * unit_ms).round() as i128;
                number.clear();
                seen_any = true;
                seen_time_part |= in_time;
            }
        }
    }
    if !number.is_empty() || !seen_any || (in_time && !seen_time_part) {
        return Err(bad());
    }
    let ms = i64::try_from(total_ms).map_err(|_| bad())?;
    let d = Duration::try_milliseconds(ms).ok_or_else(bad)?;
    Ok(if negative { -d } else { d })
}

/// `[-]N day[s], H:MM:SS[.ffffff]` or `H:MM:SS[.ffffff]`.
fn parse_python_timedelta(s: &str) -> Option<Duration> {
    let (days, clock) = match s.split_once(',') {
        Some((d, rest)) => {
            let d = d.trim();
            let n = d.strip_suffix("days").or_else(|| d.strip_suffix("day"))?.trim();
            (n.parse::<i64>().ok()?, rest.trim())
        }
        None => (0, s),
    };
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.trim().parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(0..60).contains(&m) || !(0.0..60.0).contains(&sec) || h < 0 {
        return None;
    }
    let ms = (sec * 1000.0).round() as i64;
    Duration::try_days(days)?
        .checked_add(&Duration::try_hours(h)?)?
        .checked_add(&Duration::try_minutes(m)?)?
        .checked_add(&Duration::try_milliseconds(ms)?)
}

/// Formats as ISO-8601 (`P14D`, `PT8H`, `P1DT12H30M`, `PT0S`).
pub fn format(d: Duration) -> String {
    let negative = d < Duration::zero();
    let d = if negative { -d } else { d };
    let total_ms = d.num_milliseconds();
    let days = total_ms / 86_400_000;
    let mut rem = total_ms % 86_400_000;
    let hours = rem / 3_600_000;
    rem %= 3_600_000;
    let minutes = rem / 60_000;
    rem %= 60_000;
    let seconds = rem / 1000;
    let millis = rem % 1000;
    let mut out = String::from(if negative { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || millis > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if millis > 0 {
            out.push_str(&format!("{seconds}.{millis:03}S"));
        } else if seconds > 0 || (hours == 0 && minutes == 0) {
            out.push_str(&format!("{seconds}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        assert_eq!(parse("P14D").unwrap(), Duration::days(14));
        assert_eq!(parse("PT8H").unwrap(), Duration::hours(8));
        assert_eq!(parse("P1DT12H30M").unwrap(), Duration::days(1) + Duration::hours(12) + Duration::minutes(30));
        assert_eq!(parse("P2W").unwrap(), Duration::days(14));
        assert_eq!(parse("PT0S").unwrap(), Duration::zero());
        assert_eq!(parse("PT1.5S").unwrap(), Duration::milliseconds(1500));
        assert!(parse("P1Y").unwrap_err().contains("days"));
        for bad in ["P", "PT", "P1", "PD", "P1H", "14D", "P1DT", "abc", "P1.2.3D"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn python_timedelta_forms() {
        assert_eq!(parse("365 days, 0:00:00").unwrap(), Duration::days(365));
        assert_eq!(parse("1 day, 2:03:04").unwrap(), Duration::days(1) + Duration::seconds(7384));
        assert_eq!(parse("0:30:00").unwrap(), Duration::minutes(30));
        assert_eq!(parse("-1 day, 23:59:59").unwrap(), Duration::seconds(-1));
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["P14D", "PT8H", "P1DT12H30M", "PT0S", "PT1.500S", "P365D", "PT45S"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format(Duration::days(30)), "P30D");
        assert_eq!(format(Duration::zero()), "PT0S");
    }
}
