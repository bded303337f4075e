//! The SQLite database: one writer connection that serialises every write, a pool of readers,
//! migrations applied at open, and the timestamp format stored everywhere.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// Both pools over one SQLite file.
#[derive(Clone, Debug)]
pub struct Db {
    /// Exactly one connection: every write transaction goes through it, so transactions never
    /// race for SQLite's write lock and a read-then-write inside one sees current data.
    pub writer: SqlitePool,
    /// Read-only queries (pages, API reads).
    pub reader: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:` is
    /// not supported: the readers must see the writer's file) and applies migrations.
    pub async fn open(url: &str) -> Result<Db, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge it, so `kill -9` or power loss
            // never loses an acknowledged order or decision.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Db { writer, reader })
    }
}

/// The current time as stored: RFC 3339 in UTC with milliseconds, fixed width so that text
/// order is time order.
pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// Formats a time the way [`now`] does.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_sort_as_times_and_parse_back() {
        let a = time::macros::datetime!(2026-01-02 03:04:05.006 UTC);
        let b = time::macros::datetime!(2026-01-02 03:04:05.060 UTC);
        assert_eq!(format_time(a), "2026-01-02T03:04:05.006Z");
        assert!(format_time(a) < format_time(b));
        assert_eq!(parse_time(&format_time(b)), Some(b));
    }
}
