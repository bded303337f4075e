//! The one timestamp format of executions, history and timers: RFC 3339 in UTC with
//! milliseconds, fixed width, so that text order is time order.

use time::OffsetDateTime;

/// Formats a time as stored.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
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
