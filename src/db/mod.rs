//! The SQLite database: one committer that owns the write connection and commits the writes
//! of many requests together (group commit), a pool of readers, a separate file for sign-in
//! sessions, migrations applied at open, and the timestamp format stored everywhere.
//!
//! The committer and the hot write paths ([`Db::write`]) run on a writer thread of their own,
//! and so do their statements: the runtime's and the order domain's go straight to SQLite on
//! it ([`WriteConn`]); the few others still make a trip to the thread sqlx keeps for the write
//! connection, which shares the writer's CPU, so that such a trip is a switch between two
//! threads on one core, not a wake-up of another core (on a virtual machine, an interrupt
//! through the hypervisor).

mod commit;

pub use commit::{BatchLimits, CommitStats, Committer, Durability, Savepoint, WriteConn, WriteTx};

use std::future::Future;
use std::sync::Arc;

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
    writer: Arc<WriterThread>,
}

/// The writer thread's runtime; it stops when the last [`Db`] handle is dropped.
#[derive(Debug)]
struct WriterThread {
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    /// Starts the thread, on one CPU of those this process may use.
    fn start() -> Result<WriterThread, sqlx::Error> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, runtime) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("orderflow-writer".into())
            .spawn(move || {
                pin_to_one_cpu();
                batch_scheduling();
                let built = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match built {
                    Ok(rt) => {
                        let _ = ready.send(Ok(rt.handle().clone()));
                        rt.block_on(async move {
                            let _ = stopped.await;
                        });
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })?;
        let runtime = runtime
            .recv()
            .map_err(|_| commit::failed("the writer thread did not start"))??;
        Ok(WriterThread {
            runtime,
            _stop: stop,
        })
    }

    /// Starts `job` on the writer thread at once and returns its result. A job that panics
    /// panics here. (Spawned before the returned future is polled, so that the job's future
    /// is moved once, to the task, and not carried inside the caller's.)
    fn run<T: Send + 'static>(
        &self,
        job: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Result<T, sqlx::Error>> {
        let running = self.runtime.spawn(job);
        async move {
            match running.await {
                Ok(value) => Ok(value),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(commit::failed("the writer thread has stopped")),
            }
        }
    }
}

/// How often the WAL is checkpointed while writes come in.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL pages past which the committer is asked to checkpoint between batches, so that SQLite
/// starts the WAL over (16 MB of 4 KB pages).
const WAL_PAGES_TO_START_OVER: i64 = 4096;

/// Copies committed pages from the WAL into the database file, on a connection of its own
/// and off the writer's CPU (SQLite's automatic checkpoints would run inside the writer's
/// commits: a quarter of its time, and the slowest commits), while the writer thread lives.
async fn checkpoints(pool: SqlitePool, writes: Committer, writer: std::sync::Weak<WriterThread>) {
    let mut seen = 0;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if writer.strong_count() == 0 {
            return;
        }
        let commits = writes
            .stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed);
        if commits == seen {
            continue;
        }
        seen = commits;
        let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await;
        match done {
            Ok((_, pages, _)) if pages >= WAL_PAGES_TO_START_OVER => {
                writes.checkpoint_between_batches()
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the WAL could not be checkpointed"),
        }
    }
}

/// Makes the write connection plan its statements without looking at the values bound to
/// them (SQLite's query planner stability guarantee). Otherwise, once `PRAGMA optimize` has
/// gathered STAT4 samples, binding a new value to a column that has them marks the
/// statement for preparing again, and the writer re-prepared its hot statements on almost
/// every use (5% of its instructions). Its statements are point lookups and writes by key,
/// whose plans no value changes; the readers, which run the console's searches, keep the
/// value-aware plans.
async fn stable_plans(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the locked handle guarantees no other thread uses the connection meanwhile;
    // QPSG takes an int (1: on) and a nullable int pointer for the setting read back.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            db,
            rusqlite::ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::os::raw::c_int,
            std::ptr::null_mut::<std::os::raw::c_int>(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(commit::failed(&format!(
            "SQLite refused a stable-plans setting (code {rc})"
        )))
    }
}

/// Puts the calling thread, and the threads it starts from now on (SQLite's thread for the
/// write connection), in Linux's batch scheduling class. A waking batch thread does not
/// preempt the running one: when the writer hands SQLite a statement, it goes on until it
/// waits for the answer, and SQLite, having answered, goes on until it waits for the next
/// statement, instead of each wake-up switching threads at once and again on its way back
/// (measured: 16 of 49 context switches per order were such preemptions). Best effort.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system call on the calling thread (pid 0) with a valid parameter.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
    }
}

/// Keeps the calling thread, and the threads it starts from now on, on the last CPU it may
/// use. Best effort: where the CPU set cannot be read or set, the thread stays as it is.
fn pin_to_one_cpu() {
    // SAFETY: `cpu_set_t` is plain bits, valid zeroed; the calls read and write only the
    // sets passed with their sizes, for the calling thread (pid 0).
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        let cpus = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        if let Some(cpu) = (0..cpus).rev().find(|&c| libc::CPU_ISSET(c, &allowed)) {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            libc::sched_setaffinity(0, size, &one);
        }
    }
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
        let thread = WriterThread::start()?;
        // Connected from the writer thread, so that SQLite's thread for it shares its CPU.
        let connect = SqlitePoolOptions::new()
            .max_connections(1)
            // The committer is its only user: no ping before each batch, no closing when idle.
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| Box::pin(stable_plans(conn)))
            // Checkpoints are made by `checkpoints`, off the writer's CPU.
            .connect_with(
                options
                    .clone()
                    // COMMIT does not wait for the disk; the committer syncs the WAL itself,
                    // off this connection, before it acknowledges anything (see
                    // `Durability::SyncWal`): what is acknowledged is on disk, as with FULL.
                    .synchronous(SqliteSynchronous::Normal)
                    // The committer runs statements through sqlx's thread and its own (see
                    // `WriteConn`): SQLite serializes the calls of both.
                    .serialized(true)
                    .pragma("wal_autocheckpoint", "0")
                    // The schema's `CHECK (status IN ('a', 'b', 'c', …))` lists make SQLite build
                    // and drop a temporary B-tree for each list on every write to the row: nine
                    // per order, a sixth of SQLite's work. This connection writes those columns
                    // only from enums whose spellings equal the lists (a test holds them
                    // together) and amounts parsed at the edge; every other connection to the
                    // file (the readers, the sqlite3 shell, a backup tool) still checks them.
                    .pragma("ignore_check_constraints", "ON")
                    // Each request's savepoint journals the pages it changes; kept in memory,
                    // not spilled to a temporary file past 64 KB (a third of all bytes the
                    // writer wrote went there).
                    .pragma("temp_store", "MEMORY"),
            );
        let writer = thread.run(connect).await??;
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
        // All opened now, from this thread, and kept: a reader connection opened later from the
        // writer thread would have its SQLite thread share the writer's CPU.
        let reader = SqlitePoolOptions::new()
            .min_connections(4)
            .max_lifetime(None)
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;
        let wal = {
            let mut name = options.get_filename().as_os_str().to_owned();
            name.push("-wal");
            std::path::PathBuf::from(name)
        };
        let writes = {
            let _on_writer_thread = thread.runtime.enter();
            Committer::start(writer, BatchLimits::default(), Durability::SyncWal(wal))
        };
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let thread = Arc::new(thread);
        tokio::spawn(checkpoints(
            checkpointer,
            writes.clone(),
            Arc::downgrade(&thread),
        ));
        Ok(Db {
            writes,
            reader,
            sessions,
            writer: thread,
        })
    }

    /// Runs `job`, a write path, on the writer thread: its trips to SQLite stay on one CPU.
    /// It takes its turn with [`Db::begin`] as any caller does. A job that panics panics
    /// here, in the caller.
    pub fn write<T, E>(
        &self,
        job: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> impl Future<Output = Result<T, E>>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let running = self.writer.run(job);
        async move { running.await? }
    }

    /// Runs a background task (the workflow worker) on the writer thread.
    pub fn spawn_writer<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.writer.runtime.spawn(task)
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
            query.execute(&mut **tx).await?;
            tx.commit().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "a background note could not be written");
        }
    });
}

/// A row read either way: through sqlx (the readers) or on the write connection's own thread
/// ([`WriteConn`]), so that a table's rows are decoded in one place.
pub trait Columns {
    fn try_get<T: Column>(&self, name: &str) -> Result<T, sqlx::Error>;
}

/// A value both ways of reading a row can decode.
pub trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn try_get<T: Column>(&self, name: &str) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, name)
    }
}

/// A row read on the writer thread ([`WriteConn`]). A column is looked for by name first just
/// after the last one read: decoders read columns in the order they were selected, so each
/// lookup compares one name instead of scanning the row's names (rusqlite's lookup by name,
/// which was a tenth of the writer thread's instructions with the order row's 22 columns).
pub struct RawRow<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    next: std::cell::Cell<usize>,
}

impl<'a, 'stmt> RawRow<'a, 'stmt> {
    fn new(row: &'a rusqlite::Row<'stmt>) -> RawRow<'a, 'stmt> {
        RawRow {
            row,
            next: std::cell::Cell::new(0),
        }
    }
}

impl Columns for RawRow<'_, '_> {
    fn try_get<T: Column>(&self, name: &str) -> Result<T, sqlx::Error> {
        let statement = self.row.as_ref();
        let count = statement.column_count();
        let start = self.next.get();
        let index = (0..count)
            .map(|k| (start + k) % count)
            .find(|&i| {
                statement
                    .column_name(i)
                    .is_ok_and(|column| column.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| sqlx::Error::ColumnNotFound(name.to_string()))?;
        self.next.set(index + 1);
        self.row.get(index).map_err(|e| sqlx::Error::ColumnDecode {
            index: name.to_string(),
            source: Box::new(e),
        })
    }
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

    /// A database in a directory of its own, removed when the directory is dropped.
    async fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
        let db = Db::open(&url).await.unwrap();
        (dir, db)
    }

    /// Write jobs run on the writer thread; one that panics fails its caller only.
    #[tokio::test]
    async fn a_write_job_that_panics_leaves_the_writer_thread_working() {
        let (_dir, db) = temp_db().await;
        let caller = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(async {
                    let bug: Vec<i64> = Vec::new();
                    Ok::<_, sqlx::Error>(bug[1])
                })
                .await
            }
        });
        assert!(caller.await.unwrap_err().is_panic(), "the caller sees it");
        let on_writer = db.clone();
        let (thread, orders) = db
            .write(async move {
                let mut tx = on_writer.begin().await?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
                    .fetch_one(&mut **tx)
                    .await?;
                tx.commit().await?;
                let thread = std::thread::current().name().map(str::to_string);
                Ok::<_, sqlx::Error>((thread, n))
            })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("orderflow-writer"));
        assert_eq!(orders, 0);
    }

    /// Write jobs started (from other threads, as requests are) while a request holds its turn
    /// join that request's batch, although a turn runs on the writer thread without ever
    /// waiting, which gives them no chance to ask for a turn before it ends. Statements made
    /// both ways (sqlx, and on the writer thread) land in the same transaction, savepoints
    /// included.
    #[tokio::test]
    async fn requests_started_during_a_turn_share_its_commit() {
        let (_dir, db) = temp_db().await;
        let tx = db.begin().await.unwrap();
        tx.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)", [])
            .unwrap();
        tx.commit().await.unwrap();
        let commits = || {
            db.commit_stats()
                .commits
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let before = commits();
        // As many requests as one batch holds.
        let batch = i64::try_from(commit::BatchLimits::default().requests).unwrap();
        let on_writer = db.clone();
        let started = db
            .write(async move {
                let tx = on_writer.begin().await?;
                tx.exec("INSERT INTO t (n) VALUES (0)", [])?;
                // Started from another thread while this turn is held: queued to run on the
                // writer thread, not yet asking for turns.
                let others = std::thread::scope(|scope| {
                    let start = || {
                        (1..batch)
                            .map(|n| {
                                let db = on_writer.clone();
                                on_writer.write(async move {
                                    let mut tx = db.begin().await?;
                                    if n % 2 == 0 {
                                        sqlx::query("INSERT INTO t (n) VALUES (?)")
                                            .bind(n)
                                            .execute(&mut **tx)
                                            .await?;
                                    } else {
                                        let nested = tx.savepoint()?;
                                        nested.exec("INSERT INTO t (n) VALUES (?)", [n])?;
                                        nested.commit()?;
                                        // Undone with its savepoint alone.
                                        let undone = tx.savepoint()?;
                                        undone.exec("INSERT INTO t (n) VALUES (?)", [n + 100])?;
                                    }
                                    tx.commit().await
                                })
                            })
                            .collect::<Vec<_>>()
                    };
                    scope.spawn(start).join()
                })
                .map_err(|_| commit::failed("the starting thread panicked"))?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(others)
            })
            .await
            .unwrap();
        for other in started {
            other.await.unwrap();
        }
        assert_eq!(commits() - before, 1, "{batch} requests, one commit");
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert_eq!(rows, (0..batch).collect::<Vec<i64>>());
    }

    /// Columns read on the writer thread are found by name in any order, case aside, and a
    /// name the query did not select is an error.
    #[tokio::test]
    async fn writer_rows_find_columns_by_name_in_any_order() {
        let (_dir, db) = temp_db().await;
        let tx = db.begin().await.unwrap();
        let read = tx
            .one("SELECT 1 AS a, 'two' AS b, 3.5 AS c", [], |row| {
                let c: f64 = row.try_get("c")?;
                let a: i64 = row.try_get("A")?;
                let b: String = row.try_get("b")?;
                let again: i64 = row.try_get("a")?;
                Ok((a, b, c, again))
            })
            .unwrap();
        assert_eq!(read, (1, "two".to_string(), 3.5, 1));
        let missing = tx.one("SELECT 1 AS a", [], |row| row.try_get::<i64>("z"));
        assert!(
            matches!(missing, Err(sqlx::Error::ColumnNotFound(ref name)) if name == "z"),
            "{missing:?}"
        );
        let mistyped = tx.one("SELECT 'x' AS a", [], |row| row.try_get::<i64>("a"));
        assert!(
            matches!(mistyped, Err(sqlx::Error::ColumnDecode { .. })),
            "{mistyped:?}"
        );
    }

    /// SQLite is compiled as `.cargo/config.toml` says: no process-wide page-cache group and
    /// no allocation counting, the two mutexes every connection's thread queued for.
    #[tokio::test]
    async fn sqlite_is_built_without_process_wide_mutexes() {
        let (_dir, db) = temp_db().await;
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    /// The writer makes no checkpoints of its own; the background checkpoints copy what it
    /// commits into the database file.
    #[tokio::test]
    async fn commits_reach_the_database_file_by_background_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.sqlite3");
        let db = Db::open(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let before = std::fs::metadata(&file).unwrap().len();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("CREATE TABLE blobs (b BLOB)")
            .execute(&mut **tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for _ in 0..50 {
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO blobs VALUES (zeroblob(32768))")
                .execute(&mut **tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let written = 50 * 32768;
        for _ in 0..100 {
            if std::fs::metadata(&file).unwrap().len() >= before + written {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the database file did not grow: the WAL was not checkpointed");
    }

    /// The write connection skips the schema's CHECK constraints (see `Db::open`): each
    /// column they guard is written from an enum, whose spellings must be exactly the list.
    #[tokio::test]
    async fn the_enums_spell_exactly_what_the_schemas_checks_allow() {
        use crate::engine::execution::{Phase, TimerKind};
        use crate::model::{ExecutionStatus, OrderStatus, Stage, TokenStatus};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.sqlite3").display());
        let db = Db::open(&url).await.unwrap();
        let spelled = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            names
        };
        let columns: [(&str, &str, Vec<String>); 6] = [
            (
                "orders",
                "status",
                spelled(&OrderStatus::ALL.map(OrderStatus::as_str)),
            ),
            ("orders", "stage", spelled(&Stage::ALL.map(Stage::as_str))),
            (
                "executions",
                "status",
                spelled(&ExecutionStatus::ALL.map(ExecutionStatus::as_str)),
            ),
            (
                "executions",
                "phase",
                spelled(&Phase::ALL.map(Phase::as_str)),
            ),
            (
                "executions",
                "timer_kind",
                spelled(&TimerKind::ALL.map(TimerKind::as_str)),
            ),
            (
                "task_tokens",
                "status",
                spelled(&TokenStatus::ALL.map(TokenStatus::as_str)),
            ),
        ];
        for (table, column, enum_spells) in columns {
            let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE name = ?")
                .bind(table)
                .fetch_one(&db.reader)
                .await
                .unwrap();
            let check = format!("CHECK ({column} IN (");
            let start = sql
                .find(&check)
                .unwrap_or_else(|| panic!("{table}.{column}: no CHECK"));
            let list = &sql[start + check.len()..];
            let list = &list[..list.find(')').unwrap()];
            let allowed: Vec<&str> = list
                .split(',')
                .map(|v| v.trim().trim_matches('\''))
                .collect();
            assert_eq!(spelled(&allowed), enum_spells, "{table}.{column}");
        }
    }

    /// Writes on the write connection skip the CHECK constraints; every other connection
    /// still has them.
    #[tokio::test]
    async fn only_the_write_connection_skips_check_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("i.sqlite3");
        let db = Db::open(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let ignored: i64 = {
            let mut tx = db.begin().await.unwrap();
            let on: i64 = sqlx::query_scalar("PRAGMA ignore_check_constraints")
                .fetch_one(&mut **tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            on
        };
        assert_eq!(ignored, 1);
        let other: i64 = sqlx::query_scalar("PRAGMA ignore_check_constraints")
            .fetch_one(&db.reader)
            .await
            .unwrap();
        assert_eq!(other, 0);
    }

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
