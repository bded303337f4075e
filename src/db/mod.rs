//! The SQLite database: one committer that owns the write connection and commits the writes
//! of many requests together (group commit), a pool of readers, a separate file for sign-in
//! sessions, migrations applied at open, and the timestamp format stored everywhere.

mod commit;

pub use commit::{BatchLimits, CommitStats, Committer, WriteTx};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// The database: writes through the committer, reads from a pool, sessions in a file of
/// their own.
#[derive(Clone, Debug)]
pub struct Db {
    /// Every write transaction goes through it, one at a time, so transactions never race for
    /// SQLite's write lock and a read-then-write inside one sees current data.
    writes: Committer,
    /// Read-only queries (pages, API reads). WAL readers never wait for the writer.
    pub reader: SqlitePool,
    /// Sign-in sessions, in a file next to the database: a sign-in or a session's expiry
    /// never waits behind workflow writes (sessions end by the user's epoch, kept with the
    /// user, so nothing needs both files in one transaction).
    pub sessions: SqlitePool,
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
            // The committer holds its connection for good.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        // Gather the statistics the query planner lacks (bounded work, as SQLite advises for
        // a connection that is just opened), so the console's combined filters get good plans.
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&writer)
            .await?;
        let sessions_file = sessions_path(options.get_filename());
        let sessions = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().filename(sessions_file))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Db {
            writes: Committer::start(writer, BatchLimits::default()),
            reader,
            sessions,
        })
    }

    /// Waits for a turn on the write connection: a transaction of this request's own inside
    /// the committer's batch. Commit it to keep its changes; drop it to undo them.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        self.writes.begin().await
    }

    /// What the committer has done since the process started.
    pub fn commit_stats(&self) -> &CommitStats {
        self.writes.stats()
    }
}

/// Runs one bookkeeping statement (text parameters) in the background, for a note nobody
/// waits for, such as when a credential was last used; a failure is logged.
pub fn write_behind<const N: usize>(db: &Db, sql: &'static str, params: [String; N]) {
    let db = db.clone();
    tokio::spawn(async move {
        let written = async {
            let mut tx = db.begin().await?;
            let mut query = sqlx::query(sql);
            for p in params {
                query = query.bind(p);
            }
            query.execute(&mut *tx).await?;
            tx.commit().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "a background note could not be written");
        }
    });
}

/// `orderflow.sqlite3` keeps its sessions in `orderflow.sessions.sqlite3`.
fn sessions_path(db: &std::path::Path) -> std::path::PathBuf {
    let stem = db.file_stem().unwrap_or_default().to_string_lossy();
    let name = match db.extension() {
        Some(ext) => format!("{stem}.sessions.{}", ext.to_string_lossy()),
        None => format!("{stem}.sessions"),
    };
    db.with_file_name(name)
}

/// The current time as stored: RFC 3339 in UTC with milliseconds, fixed width so that text
/// order is time order.
pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// Formats and parses times the way [`now`] stores them.
pub use crate::engine::{format_time, parse_time};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_next_to_the_database() {
        use std::path::Path;
        let path = sessions_path(Path::new("/data/orderflow.sqlite3"));
        assert_eq!(path, Path::new("/data/orderflow.sessions.sqlite3"));
        assert_eq!(sessions_path(Path::new("db")), Path::new("db.sessions"));
    }

    #[test]
    fn stored_timestamps_sort_as_times_and_parse_back() {
        let a = time::macros::datetime!(2026-01-02 03:04:05.006 UTC);
        let b = time::macros::datetime!(2026-01-02 03:04:05.060 UTC);
        assert_eq!(format_time(a), "2026-01-02T03:04:05.006Z");
        assert!(format_time(a) < format_time(b));
        assert_eq!(parse_time(&format_time(b)), Some(b));
    }
}
