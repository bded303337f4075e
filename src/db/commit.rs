//! Group commit. Every write transaction of the process goes through one committer, which owns
//! the database's one write connection. Requests queued while a commit is on its way to the
//! disk become the next batch: the committer runs them back to back inside one SQLite
//! transaction, each in a savepoint of its own, commits the batch with one fsync and only then
//! tells each request that its changes are durable. A request that fails, is dropped or panics
//! rolls back to its savepoint: the rest of its batch commits without it.
//!
//! Durability can be taken off the write connection ([`Durability::SyncWal`]): the connection
//! commits without waiting for the disk (SQLite's `synchronous=NORMAL` in WAL mode), and a
//! thread of its own syncs the WAL file, once for every batch committed meanwhile, before
//! their requests are told. The next batch runs while the disk works, so a batch can be cut
//! short (low latency) without paying a sync on the writer for it.
//!
//! The write connection is lent as a [`WriteConn`]: sqlx's connection, and a view of the same
//! SQLite handle through which the hot statements (and the committer's own) run on the
//! calling thread, without a trip to the thread sqlx runs the connection on.

use super::RawRow;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{SqliteConnection, SqlitePool};
use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// When a batch stops taking requests: once it holds `requests` of them or has run for
/// `time`, so that a request queued behind it is not kept waiting long. The time is a few
/// fsyncs' worth: a shorter cap makes batches so small that the disk, not the work, sets
/// the pace (2 ms gave batches of 2–3 orders at 16 clients).
///
/// The count keeps busy clients from moving in lockstep. With no cap, 16 clients placing
/// orders all landed in one batch: the writer then sat idle while that batch's sync and its
/// replies went out and the next requests came in, 1.3 ms of every 3.8 (traced). Capped at 8,
/// the requests left in the queue start the next batch at once, and the first batch's
/// clients are back before it ends: the writer was idle 19% of the time instead of 33%, and
/// orders/s rose 7–17% in three paired runs.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub requests: usize,
    pub time: Duration,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            requests: 8,
            time: Duration::from_millis(10),
        }
    }
}

/// When a batch's requests are told their changes are durable.
#[derive(Clone, Debug)]
pub enum Durability {
    /// As soon as COMMIT returns: the connection syncs (`synchronous=FULL`).
    Commit,
    /// Once this file, the write connection's WAL, has been synced after the COMMIT (the
    /// connection itself does not sync: `synchronous=NORMAL`).
    SyncWal(std::path::PathBuf),
}

/// The savepoint each request runs in, and the SQL that moves from one request to the next
/// (the batch's last savepoint is left for COMMIT to close). Savepoints the requests open
/// inside it ([`WriteConn::savepoint`]) are named by depth.
const BEGIN: &str = "BEGIN IMMEDIATE; SAVEPOINT orderflow_request";
const NEXT: &str = "RELEASE orderflow_request; SAVEPOINT orderflow_request";
const UNDO_NEXT: &str =
    "ROLLBACK TO orderflow_request; RELEASE orderflow_request; SAVEPOINT orderflow_request";
const UNDO: &str = "ROLLBACK TO orderflow_request";

/// Hands out turns on the write connection.
#[derive(Clone, Debug)]
pub struct Committer {
    requests: mpsc::UnboundedSender<oneshot::Sender<Result<WriteTx, String>>>,
    stats: Arc<CommitStats>,
    checkpoint: Arc<AtomicBool>,
}

/// Figures since the process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Commits made (each one fsync).
    pub commits: AtomicU64,
    /// Write requests committed.
    pub committed: AtomicU64,
    /// Write requests rolled back to their savepoint (errors, refusals, dropped requests).
    pub undone: AtomicU64,
    /// Requests waiting for their turn now.
    pub waiting: AtomicU64,
    /// Time spent in COMMIT, in microseconds.
    pub commit_micros: AtomicU64,
    /// Syncs of the WAL made for committed batches ([`Durability::SyncWal`]).
    pub syncs: AtomicU64,
}

/// What a request did with its turn.
enum Verdict {
    /// Keep the changes; say on this channel once they are durable.
    Keep(oneshot::Sender<Result<(), String>>),
    /// Roll them back.
    Undo,
}

struct Returned {
    conn: WriteConn,
    verdict: Verdict,
}

/// The write connection, inside the committer's open transaction. It dereferences to sqlx's
/// connection; [`WriteConn::exec`] and the queries beside it run statements on the same SQLite
/// connection directly, on the calling thread.
pub struct WriteConn {
    // Declared first, so dropped first: its prepared statements are finalized while the
    // connection they belong to is still open.
    raw: rusqlite::Connection,
    sqlx: SqliteConnection,
    /// Savepoints open inside the request's own.
    depth: usize,
}

impl std::fmt::Debug for WriteConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteConn")
            .field("depth", &self.depth)
            .finish()
    }
}

impl WriteConn {
    /// Takes `sqlx`, a connection opened in SQLite's serialized threading mode, and a view of
    /// its handle.
    async fn new(mut sqlx: SqliteConnection) -> Result<WriteConn, sqlx::Error> {
        let handle = sqlx.lock_handle().await?.as_raw_handle().as_ptr();
        // SAFETY: the handle stays open as long as `sqlx`, which this struct owns and drops
        // after the view (field order); the view only borrows it (it never closes it). The
        // connection is opened with SQLITE_OPEN_FULLMUTEX, so SQLite serializes calls made
        // through the view on this thread with any sqlx's thread still makes; and a request
        // only uses one of the two at a time, awaiting sqlx's answers before going on.
        let raw = unsafe { rusqlite::Connection::from_handle(handle) }.map_err(raw_error)?;
        raw.set_prepared_statement_cache_capacity(64);
        Ok(WriteConn {
            raw,
            sqlx,
            depth: 0,
        })
    }

    /// Runs one statement (prepared once per connection) and returns the rows it changed.
    pub fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, sqlx::Error> {
        let mut statement = self.raw.prepare_cached(sql).map_err(raw_error)?;
        statement.execute(params).map_err(raw_error)
    }

    /// The first row of a query, decoded by `decode`, if there is one.
    pub fn optional<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&RawRow<'_, '_>) -> Result<T, sqlx::Error>,
    ) -> Result<Option<T>, sqlx::Error> {
        let mut statement = self.raw.prepare_cached(sql).map_err(raw_error)?;
        let mut rows = statement.query(params).map_err(raw_error)?;
        match rows.next().map_err(raw_error)? {
            Some(row) => decode(&RawRow::new(row)).map(Some),
            None => Ok(None),
        }
    }

    /// The first row of a query, decoded by `decode`; `RowNotFound` if there is none.
    pub fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&RawRow<'_, '_>) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        self.optional(sql, params, decode)?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Every row of a query, each decoded by `decode`.
    pub fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut decode: impl FnMut(&RawRow<'_, '_>) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, sqlx::Error> {
        let mut statement = self.raw.prepare_cached(sql).map_err(raw_error)?;
        let mut rows = statement.query(params).map_err(raw_error)?;
        let mut all = Vec::new();
        while let Some(row) = rows.next().map_err(raw_error)? {
            all.push(decode(&RawRow::new(row))?);
        }
        Ok(all)
    }

    /// A savepoint inside this request's work: commit it to keep what was done in it; drop it
    /// (or roll it back) to undo that alone.
    pub fn savepoint(&mut self) -> Result<Savepoint<'_>, sqlx::Error> {
        self.depth += 1;
        let name = format!("orderflow_nested_{}", self.depth);
        if let Err(e) = self.raw.execute_batch(&format!("SAVEPOINT {name}")) {
            self.depth -= 1;
            return Err(raw_error(e));
        }
        Ok(Savepoint {
            conn: self,
            name,
            open: true,
        })
    }
}

impl Deref for WriteConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.sqlx
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.sqlx
    }
}

/// A savepoint on the write connection ([`WriteConn::savepoint`]).
pub struct Savepoint<'c> {
    conn: &'c mut WriteConn,
    name: String,
    open: bool,
}

impl Savepoint<'_> {
    /// Keeps what was done since the savepoint (as part of the enclosing work).
    pub fn commit(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        self.conn.depth -= 1;
        let release = format!("RELEASE {}", self.name);
        self.conn.raw.execute_batch(&release).map_err(raw_error)
    }

    /// Undoes what was done since the savepoint.
    pub fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        self.conn.depth -= 1;
        let undo = format!("ROLLBACK TO {0}; RELEASE {0}", self.name);
        self.conn.raw.execute_batch(&undo).map_err(raw_error)
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.undo() {
                tracing::error!(error = %e, "a savepoint could not be rolled back");
            }
        }
    }
}

impl Deref for Savepoint<'_> {
    type Target = WriteConn;
    fn deref(&self) -> &WriteConn {
        self.conn
    }
}

impl DerefMut for Savepoint<'_> {
    fn deref_mut(&mut self) -> &mut WriteConn {
        self.conn
    }
}

/// An error of a statement run on the calling thread ([`WriteConn::exec`] and the like), as
/// sqlx would report it: a
/// constraint broken is a database error of the same kind, a missing row is `RowNotFound`.
fn raw_error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            sqlx::Error::Database(Box::new(RawError {
                code: code.extended_code,
                message: message.unwrap_or_else(|| code.to_string()),
            }))
        }
        rusqlite::Error::QueryReturnedNoRows => sqlx::Error::RowNotFound,
        other => sqlx::Error::Decode(Box::new(other)),
    }
}

/// SQLite's answer to a statement run on the calling thread.
#[derive(Debug)]
struct RawError {
    code: i32,
    message: String,
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for RawError {}

impl DatabaseError for RawError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// One request's turn on the write connection: a savepoint inside the committer's open
/// transaction. It dereferences to the connection; [`WriteTx::commit`] keeps the changes and
/// waits until they are on disk, and dropping it (or [`WriteTx::rollback`]) undoes them.
pub struct WriteTx {
    conn: Option<WriteConn>,
    back: Option<oneshot::Sender<Returned>>,
}

impl Committer {
    /// Starts the committer on `pool`, which must hold the one write connection; its
    /// requests are told as `durability` says.
    pub fn start(pool: SqlitePool, limits: BatchLimits, durability: Durability) -> Committer {
        let (requests, queue) = mpsc::unbounded_channel();
        let stats = Arc::new(CommitStats::default());
        let checkpoint = Arc::new(AtomicBool::new(false));
        let tell = match durability {
            Durability::Commit => Tell::Now,
            Durability::SyncWal(wal) => Tell::AfterSync(Syncer::start(wal, stats.clone())),
        };
        let batches = Batches {
            pool,
            queue,
            stats: stats.clone(),
            limits,
            checkpoint: checkpoint.clone(),
            tell,
        };
        tokio::spawn(run(batches));
        Committer {
            requests,
            stats,
            checkpoint,
        }
    }

    /// Asks for a checkpoint of the WAL on the write connection between two batches, when no
    /// write can come in between. One running beside the writer never catches up with it
    /// under steady load, so SQLite never starts the WAL over and it only grows.
    pub fn checkpoint_between_batches(&self) {
        self.checkpoint.store(true, Ordering::Relaxed);
    }

    /// Waits for a turn on the write connection.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        let (lease, turn) = oneshot::channel();
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        self.requests
            .send(lease)
            .map_err(|_| failed("the committer has stopped"))?;
        match turn.await {
            Ok(Ok(tx)) => Ok(tx),
            Ok(Err(e)) => Err(failed(&e)),
            Err(_) => Err(failed("the committer has stopped")),
        }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }
}

impl WriteTx {
    /// Keeps this request's changes and returns once they are durable. If the batch's commit
    /// fails, nothing of the request was kept and the error says why.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let (ack, durable) = oneshot::channel();
        self.give_back(Verdict::Keep(ack));
        match durable.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(&e)),
            Err(_) => Err(failed("the committer stopped before committing")),
        }
    }

    /// Undoes this request's changes.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.give_back(Verdict::Undo);
        Ok(())
    }

    fn give_back(&mut self, verdict: Verdict) {
        if let (Some(conn), Some(back)) = (self.conn.take(), self.back.take()) {
            // If the committer is gone, dropping the connection rolls everything back.
            let _ = back.send(Returned { conn, verdict });
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        self.give_back(Verdict::Undo);
    }
}

impl Deref for WriteTx {
    type Target = WriteConn;
    fn deref(&self) -> &WriteConn {
        self.conn
            .as_ref()
            .expect("a WriteTx holds the connection until it is given back")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut WriteConn {
        self.conn
            .as_mut()
            .expect("a WriteTx holds the connection until it is given back")
    }
}

pub(super) fn failed(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("write failed: {why}")))
}

type Queue = mpsc::UnboundedReceiver<oneshot::Sender<Result<WriteTx, String>>>;
type Ack = oneshot::Sender<Result<(), String>>;

/// What the committer's loop works with.
struct Batches {
    pool: SqlitePool,
    queue: Queue,
    stats: Arc<CommitStats>,
    limits: BatchLimits,
    checkpoint: Arc<AtomicBool>,
    tell: Tell,
}

/// How a committed batch's requests are told.
enum Tell {
    Now,
    AfterSync(Syncer),
}

/// The thread that syncs the WAL for committed batches and then tells their requests.
struct Syncer {
    batches: std::sync::mpsc::Sender<Vec<Ack>>,
}

impl Syncer {
    fn start(wal: std::path::PathBuf, stats: Arc<CommitStats>) -> Syncer {
        let (batches, committed) = std::sync::mpsc::channel::<Vec<Ack>>();
        std::thread::Builder::new()
            .name("orderflow-sync".into())
            .spawn(move || sync_loop(&wal, &committed, &stats))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "the WAL sync thread did not start"));
        Syncer { batches }
    }
}

/// Waits for committed batches; syncs the WAL once for all that have come in by then; tells
/// their requests. A failed sync is final: a disk that lost writes once may have lost more,
/// so from then on no request is told its changes are durable.
fn sync_loop(
    wal: &std::path::Path,
    committed: &std::sync::mpsc::Receiver<Vec<Ack>>,
    stats: &CommitStats,
) {
    let mut broken: Option<String> = None;
    while let Ok(first) = committed.recv() {
        let mut acks = first;
        while let Ok(more) = committed.try_recv() {
            acks.extend(more);
        }
        if broken.is_none() {
            // Opened each time: the WAL is the file at this path now, whatever SQLite did.
            let synced = std::fs::OpenOptions::new()
                .write(true)
                .open(wal)
                .and_then(|file| file.sync_data());
            stats.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = synced {
                tracing::error!(error = %e, wal = %wal.display(), "the WAL could not be synced: no write is acknowledged from now on; restart orderflow");
                broken = Some(format!(
                    "the database's log could not be synced to disk: {e}"
                ));
            }
        }
        let told = match &broken {
            None => Ok(()),
            Some(why) => Err(why.clone()),
        };
        for ack in acks {
            let _ = ack.send(told.clone());
        }
    }
}

/// Takes the pool's one connection out of it for good (the committer is its only user).
async fn connect(pool: &SqlitePool) -> Result<WriteConn, sqlx::Error> {
    WriteConn::new(pool.acquire().await?.detach()).await
}

async fn run(batches: Batches) {
    let Batches {
        pool,
        mut queue,
        stats,
        limits,
        checkpoint,
        tell,
    } = batches;
    let mut held: Option<WriteConn> = None;
    while let Some(first) = queue.recv().await {
        let conn = match held.take() {
            Some(conn) => conn,
            None => match connect(&pool).await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::error!(error = %e, "the write connection could not be opened");
                    stats.waiting.fetch_sub(1, Ordering::Relaxed);
                    let _ = first.send(Err(e.to_string()));
                    continue;
                }
            },
        };
        // IMMEDIATE: take the write lock now, so that a CLI process writing the same file
        // makes this wait at the start (busy_timeout) rather than fail halfway.
        if let Err(e) = conn.raw.execute_batch(BEGIN) {
            tracing::error!(error = %e, "could not begin a write transaction");
            stats.waiting.fetch_sub(1, Ordering::Relaxed);
            let _ = first.send(Err(e.to_string()));
            // A transaction left open (a BEGIN whose savepoint failed) would refuse every
            // later one.
            let _ = conn.raw.execute_batch("ROLLBACK");
            held = Some(conn);
            continue;
        }
        let started = Instant::now();
        let mut lent = Some(conn);
        let mut acks = Vec::new();
        let mut turns = 0;
        let mut next = Some(first);
        let mut broken = None;
        while let Some(request) = next.take() {
            stats.waiting.fetch_sub(1, Ordering::Relaxed);
            turns += 1;
            let Some(mut conn) = lent.take() else { break };
            // Savepoints a request left open ended with its own.
            conn.depth = 0;
            let (back, returned) = oneshot::channel();
            let turn = WriteTx {
                conn: Some(conn),
                back: Some(back),
            };
            // A requester that gave up before its turn drops the turn: it comes back undone.
            let _ = request.send(Ok(turn));
            let Ok(Returned { conn, verdict }) = returned.await else {
                broken = Some("a request lost the connection".to_string());
                break;
            };
            let undone = match verdict {
                Verdict::Keep(ack) => {
                    acks.push(ack);
                    false
                }
                Verdict::Undo => {
                    stats.undone.fetch_add(1, Ordering::Relaxed);
                    true
                }
            };
            if turns < limits.requests && started.elapsed() < limits.time {
                next = queue.try_recv().ok();
                if next.is_none() {
                    // Requests started on this thread meanwhile have not asked for their turn
                    // yet (a turn runs on this thread without waiting for anything, so they
                    // had no chance): let them, or every batch would hold one request.
                    tokio::task::yield_now().await;
                    next = queue.try_recv().ok();
                }
            }
            let between = match (next.is_some(), undone) {
                (true, false) => Some(NEXT),
                (true, true) => Some(UNDO_NEXT),
                (false, true) => Some(UNDO),
                (false, false) => None,
            };
            if let Some(sql) = between {
                if let Err(e) = conn.raw.execute_batch(sql) {
                    if let Some(request) = next.take() {
                        stats.waiting.fetch_sub(1, Ordering::Relaxed);
                        let _ = request.send(Err(e.to_string()));
                    }
                    broken = Some(e.to_string());
                }
            }
            lent = Some(conn);
        }
        let result = match (&lent, broken) {
            (Some(conn), None) => {
                // COMMIT also closes the last request's savepoint.
                let committing = Instant::now();
                let result = conn.raw.execute_batch("COMMIT").map_err(|e| e.to_string());
                let took = committing.elapsed();
                crate::metrics::record_commit(acks.len(), took);
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
                result
            }
            (_, Some(why)) => Err(why),
            (None, None) => Err("a request lost the connection".into()),
        };
        if let (Err(_), Some(conn)) = (&result, &lent) {
            // Nothing of the batch stays.
            let _ = conn.raw.execute_batch("ROLLBACK");
        }
        match (&result, &tell) {
            (Err(e), _) => {
                tracing::error!(error = %e, requests = acks.len(), "a write batch failed");
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
            (Ok(()), Tell::Now) => {
                stats
                    .committed
                    .fetch_add(acks.len() as u64, Ordering::Relaxed);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
            }
            (Ok(()), Tell::AfterSync(syncer)) => {
                stats
                    .committed
                    .fetch_add(acks.len() as u64, Ordering::Relaxed);
                // If the sync thread is gone, the acks are dropped: each request hears that
                // the committer stopped before its changes were made durable.
                let _ = syncer.batches.send(acks);
            }
        }
        if let Some(conn) = &lent {
            if checkpoint.swap(false, Ordering::Relaxed) {
                let done = conn
                    .raw
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if let Err(e) = done {
                    tracing::warn!(error = %e, "the WAL could not be checkpointed");
                }
            }
        }
        // A connection lost with a request is replaced for the next batch.
        held = lent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    async fn committer(dir: &std::path::Path, limits: BatchLimits) -> (Committer, SqlitePool) {
        committer_with(dir, limits, Durability::Commit).await
    }

    async fn committer_with(
        dir: &std::path::Path,
        limits: BatchLimits,
        durability: Durability,
    ) -> (Committer, SqlitePool) {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("commit.sqlite3"))
            .create_if_missing(true)
            .serialized(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        let reader = SqlitePoolOptions::new()
            .connect_with(options.read_only(true))
            .await
            .unwrap();
        (Committer::start(pool, limits, durability), reader)
    }

    async fn insert(tx: &mut WriteTx, n: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO t (n) VALUES (?)")
            .bind(n)
            .execute(&mut ***tx)
            .await
            .map(|_| ())
    }

    /// A request, queued now, that inserts `n` and keeps it.
    fn spawn_insert(
        committer: &Committer,
        n: i64,
    ) -> tokio::task::JoinHandle<Result<(), sqlx::Error>> {
        let committer = committer.clone();
        tokio::spawn(async move {
            let mut tx = committer.begin().await?;
            insert(&mut tx, n).await?;
            tx.commit().await
        })
    }

    async fn rows(reader: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(reader)
            .await
            .unwrap()
    }

    /// Requests queued behind one another commit together, and the ones that fail, are
    /// dropped or panic take only their own changes with them.
    #[tokio::test]
    async fn a_batch_commits_once_and_a_bad_request_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits {
            requests: 100,
            time: Duration::from_secs(60),
        };
        let (committer, reader) = committer(dir.path(), limits).await;
        // The first request holds its turn until eight more wait behind it.
        let mut first = committer.begin().await.unwrap();
        insert(&mut first, 1).await.unwrap();
        let mut waiting = Vec::new();
        for n in 2..=9 {
            let committer = committer.clone();
            waiting.push(tokio::spawn(async move {
                let mut tx = committer.begin().await?;
                insert(&mut tx, n).await?;
                match n {
                    // Refused after writing: its row must go.
                    3 => Err(sqlx::Error::RowNotFound),
                    // Breaks a constraint: only its statement fails; it gives up.
                    5 => insert(&mut tx, 2).await,
                    // Panics while holding its turn.
                    7 => panic!("a request panicked"),
                    _ => tx.commit().await,
                }
            }));
        }
        while committer.stats().waiting.load(Ordering::Relaxed) < 8 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            rows(&reader).await,
            Vec::<i64>::new(),
            "nothing is visible yet"
        );
        first.commit().await.unwrap();
        let mut outcomes = Vec::new();
        for task in waiting {
            outcomes.push(match task.await {
                Ok(result) => result.is_ok(),
                Err(e) => {
                    assert!(e.is_panic());
                    false
                }
            });
        }
        assert_eq!(
            outcomes,
            [true, false, true, false, true, false, true, true],
            "requests 2..=9"
        );
        assert_eq!(rows(&reader).await, [1, 2, 4, 6, 8, 9]);
        let stats = committer.stats();
        assert_eq!(
            stats.commits.load(Ordering::Relaxed),
            1,
            "one batch, one commit"
        );
        assert_eq!(stats.committed.load(Ordering::Relaxed), 6);
        assert_eq!(stats.undone.load(Ordering::Relaxed), 3);
    }

    /// A full batch commits without the requests queued behind it; they start the next.
    #[tokio::test]
    async fn a_batch_holds_at_most_its_count_of_requests() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits {
            requests: 3,
            time: Duration::from_secs(60),
        };
        let (committer, reader) = committer(dir.path(), limits).await;
        let mut first = committer.begin().await.unwrap();
        insert(&mut first, 1).await.unwrap();
        let waiting: Vec<_> = (2..=7).map(|n| spawn_insert(&committer, n)).collect();
        while committer.stats().waiting.load(Ordering::Relaxed) < 6 {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        assert_eq!(rows(&reader).await, [1, 2, 3, 4, 5, 6, 7]);
        // 1–3, 4–6, then 7 alone.
        assert_eq!(committer.stats().commits.load(Ordering::Relaxed), 3);
    }

    /// With the WAL synced off the connection, a commit is acknowledged once a sync has been
    /// made after it; where the WAL cannot be synced, nothing is acknowledged from then on.
    #[tokio::test]
    async fn a_commit_is_acknowledged_only_once_the_wal_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("commit.sqlite3-wal");
        let durability = Durability::SyncWal(wal);
        let (committer, reader) =
            committer_with(dir.path(), BatchLimits::default(), durability).await;
        for n in 1..=3 {
            let mut tx = committer.begin().await.unwrap();
            insert(&mut tx, n).await.unwrap();
            tx.commit().await.unwrap();
            let syncs = committer.stats().syncs.load(Ordering::Relaxed);
            assert!(syncs >= 1, "commit {n} was acknowledged before any sync");
        }
        assert_eq!(rows(&reader).await, [1, 2, 3]);

        let other = tempfile::tempdir().unwrap();
        let unsyncable = Durability::SyncWal(other.path().join("no-such-dir").join("wal"));
        let (committer, _) = committer_with(other.path(), BatchLimits::default(), unsyncable).await;
        for n in 1..=2 {
            let mut tx = committer.begin().await.unwrap();
            insert(&mut tx, n).await.unwrap();
            let refused = tx.commit().await.unwrap_err().to_string();
            assert!(refused.contains("could not be synced"), "{refused}");
        }
    }

    /// A full disk (here: a page limit) can make SQLite roll back the whole transaction under
    /// a batch. Whatever its requests are told holds — a request told its changes are kept
    /// has them, one told they failed has none — and the next batch works.
    #[tokio::test]
    async fn a_batch_that_sqlite_rolls_back_tells_every_request_and_the_next_batch_works() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits {
            requests: 100,
            time: Duration::from_secs(60),
        };
        let (committer, reader) = committer(dir.path(), limits).await;
        let setup = committer.begin().await.unwrap();
        setup.exec("CREATE TABLE big (b BLOB)", []).unwrap();
        let pages: i64 = setup
            .one("PRAGMA page_count", [], |r| {
                crate::db::Columns::try_get(r, "page_count")
            })
            .unwrap();
        setup
            .optional(
                &format!("PRAGMA max_page_count = {}", pages + 2),
                [],
                |_| Ok(()),
            )
            .unwrap();
        setup.commit().await.unwrap();

        let mut first = committer.begin().await.unwrap();
        insert(&mut first, 1).await.unwrap();
        let filler = {
            let committer = committer.clone();
            tokio::spawn(async move {
                let tx = committer.begin().await?;
                tx.exec("INSERT INTO big (b) VALUES (zeroblob(1000000))", [])?;
                tx.commit().await
            })
        };
        let after = spawn_insert(&committer, 3);
        while committer.stats().waiting.load(Ordering::Relaxed) < 2 {
            tokio::task::yield_now().await;
        }
        let first = first.commit().await.is_ok();
        let filler = filler.await.unwrap();
        assert!(filler.is_err(), "a million bytes do not fit in two pages");
        let after = after.await.unwrap().is_ok();
        let mut kept = Vec::new();
        if first {
            kept.push(1);
        }
        if after {
            kept.push(3);
        }
        assert_eq!(rows(&reader).await, kept, "told kept: {first}, {after}");

        let mut next = committer.begin().await.unwrap();
        insert(&mut next, 4).await.unwrap();
        next.commit().await.unwrap();
        kept.push(4);
        assert_eq!(rows(&reader).await, kept);
    }

    /// A request that gives up while it waits takes no turn, and the next batch still works.
    #[tokio::test]
    async fn a_request_cancelled_in_the_queue_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (committer, reader) = committer(dir.path(), BatchLimits::default()).await;
        let mut first = committer.begin().await.unwrap();
        insert(&mut first, 1).await.unwrap();
        let queued = tokio::spawn({
            let committer = committer.clone();
            async move {
                let mut tx = committer.begin().await.unwrap();
                insert(&mut tx, 2).await.unwrap();
                tx.commit().await.unwrap();
            }
        });
        while committer.stats().waiting.load(Ordering::Relaxed) < 1 {
            tokio::task::yield_now().await;
        }
        queued.abort();
        let _ = queued.await;
        first.commit().await.unwrap();
        let mut later = committer.begin().await.unwrap();
        insert(&mut later, 3).await.unwrap();
        later.commit().await.unwrap();
        assert_eq!(rows(&reader).await, [1, 3]);
    }
}
