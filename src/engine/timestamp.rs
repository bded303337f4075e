//! The one timestamp format of executions, history and timers: RFC 3339 in UTC with
//! milliseconds, fixed width, so that text order is time order.

use time::OffsetDateTime;

/// Formats a time as stored. Digits are written directly (a step formats several times,
/// and `format!` spent ten times as long); a year outside 0–9999 falls back to `format!`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fields = [
        (u32::try_from(t.year()).unwrap_or(u32::MAX), 4),
        (u32::from(u8::from(t.month())), 2),
        (u32::from(t.day()), 2),
        (u32::from(t.hour()), 2),
        (u32::from(t.minute()), 2),
        (u32::from(t.second()), 2),
        (u32::from(t.millisecond()), 3),
    ];
    if fields[0].0 > 9999 {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            fields[1].0,
            fields[2].0,
            fields[3].0,
            fields[4].0,
            fields[5].0,
            fields[6].0
        );
    }
    let mut out = String::with_capacity(24);
    for ((value, width), after) in fields.into_iter().zip(['-', '-', 'T', ':', ':', '.', 'Z']) {
        let mut digits = [b'0'; 4];
        let mut rest = value;
        for d in digits[..width].iter_mut().rev() {
            *d += (rest % 10) as u8;
            rest /= 10;
        }
        digits[..width]
            .iter()
            .for_each(|&d| out.push(char::from(d)));
        out.push(after);
    }
    out
}

/// Parses an RFC 3339 timestamp (as stored, or as given in a definition).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// The stored time `delay` after `now`; times past the year 9999 saturate there.
pub fn after(now: OffsetDateTime, delay: time::Duration) -> String {
    now.checked_add(delay)
        .filter(|t| t.year() <= 9999)
        .map(format_time)
        .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_string())
}

/// The stored time `seconds` after `now`.
pub fn seconds_after(now: OffsetDateTime, seconds: u64) -> String {
    after(
        now,
        time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stored_times_are_fixed_width_utc_with_milliseconds() {
        let cases = [
            (
                datetime!(2026-01-02 03:04:05.006 UTC),
                "2026-01-02T03:04:05.006Z",
            ),
            (
                datetime!(2026-12-31 23:59:59.999 UTC),
                "2026-12-31T23:59:59.999Z",
            ),
            (
                datetime!(0001-01-01 00:00:00 UTC),
                "0001-01-01T00:00:00.000Z",
            ),
            (
                datetime!(9999-12-31 23:59:59.999 UTC),
                "9999-12-31T23:59:59.999Z",
            ),
            // Another offset is stored as UTC.
            (
                datetime!(2026-03-01 01:30:00.5 +02:00),
                "2026-02-28T23:30:00.500Z",
            ),
        ];
        for (time, stored) in cases {
            assert_eq!(format_time(time), stored);
            assert_eq!(parse_time(stored), Some(time));
        }
    }
}
