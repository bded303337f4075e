//! The durable executor. It owns executions, history, task tokens and timers in SQLite: it
//! drives engine steps, commits each transition with its events in one transaction, resumes
//! by task token exactly once, and picks every unfinished execution up again after a restart.
//! It performs effects; deciding what they are is the engine's job.

mod catalog;
mod clock;
mod executor;
pub mod handlers;
mod store;

pub use catalog::{ActivityInfo, MachineInfo, MAX_TAGS};
pub use clock::{Clock, ManualClock, SystemClock};

pub use crate::model::ExecutionStatus;
pub use handlers::{
    EndHook, Ended, HandlerError, HandlerFuture, HookFuture, Registry, TaskCall, TaskHandler,
};
pub use store::{FAILED, RUNNING, SUCCEEDED, TIMED_OUT};

use crate::db::WriteConn;
use crate::db::{self, Db};
use crate::engine::{self, StateMachine};
use crate::model::EventRow;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

pub use crate::engine::execution::{ACCOUNT, MAX_HISTORY_EVENTS, REGION};

pub use crate::engine::MAX_PAYLOAD_BYTES;

/// Steps one request may run inline before leaving the rest to the background worker.
pub const INLINE_STEPS: usize = 200;

/// Why the runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("state machine '{0}' does not exist")]
    StateMachineDoesNotExist(String),
    #[error("execution '{0}' does not exist")]
    ExecutionDoesNotExist(String),
    #[error("an execution named '{0}' already exists")]
    ExecutionAlreadyExists(String),
    #[error("invalid execution name '{0}': use 1 to 80 letters, digits, '-' or '_'")]
    InvalidName(String),
    #[error("the execution input is {0} bytes; the limit is {MAX_PAYLOAD_BYTES}")]
    InputTooLarge(usize),
    #[error("invalid definition: {0}")]
    InvalidDefinition(#[from] engine::DefinitionError),
    #[error("the stored definition {0} no longer parses: {1}")]
    CorruptDefinition(i64, String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A step panicked and what it had written could not be undone on its own.
    #[error("a step of the execution panicked: {0}")]
    Panicked(String),
    /// A task handler failed (or a step panicked) in a run whose caller undoes failed tasks
    /// ([`store::TaskUndo::Rerun`]); it leaves the runtime only for a caller that asked for
    /// [`RunGuard::Rerun`], which then does its work again.
    #[error("a task failed and its run must be undone and run again")]
    Rerun,
}

impl RuntimeError {
    /// True when trying the same step again cannot help: the execution's stored data is
    /// unusable. (Other database errors, such as a full disk, may pass.)
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            RuntimeError::CorruptDefinition(..)
                | RuntimeError::StateMachineDoesNotExist(_)
                | RuntimeError::Panicked(_)
                | RuntimeError::Database(
                    sqlx::Error::Decode(_)
                        | sqlx::Error::ColumnDecode { .. }
                        | sqlx::Error::ColumnNotFound(_)
                )
        )
    }
}

/// Why a callback (SendTaskSuccess/SendTaskFailure) was refused, named as AWS names it.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("Invalid Token: the task token is malformed")]
    InvalidToken,
    #[error("Task Token does not exist")]
    TaskDoesNotExist,
    #[error("Task Timed Out: the task was already completed, failed or timed out")]
    TaskTimedOut,
    #[error("the task output is {0} bytes; the limit is {MAX_PAYLOAD_BYTES}")]
    InvalidOutput(usize),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// An execution just started, held until it runs: pass it to [`Runtime::run_started`] on the
/// transaction it was started in.
#[must_use = "an execution is written in full only when it runs"]
#[derive(Debug)]
pub struct Started {
    id: String,
    ex: store::Execution,
}

impl Started {
    /// Its id (an ARN).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// How a run of steps inside a caller's transaction is kept from taking the caller's other
/// writes with it when a task fails or a step panics (both rare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunGuard {
    /// The run has a savepoint of its own: such a step is undone alone and the run goes on
    /// carefully. Two more trips to SQLite.
    Savepoint,
    /// None: such a step ends the call with [`RuntimeError::Rerun`], and the caller drops its
    /// whole transaction and does its work again with [`RunGuard::Savepoint`].
    Rerun,
}

/// How an execution stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// More steps can run now.
    Ready,
    /// Paused on a task token or a timer.
    Waiting,
    /// Ended (succeeded or failed).
    Finished,
}

/// What one call of the worker's step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Empty,
}

/// A summary of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub id: String,
    pub name: String,
    pub state_machine: String,
    pub status: String,
    pub current_state: Option<String>,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: String,
    pub stopped_at: Option<String>,
}

/// Handle to the executor; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Counters since the process started, for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// Execution steps committed or run inline.
    pub steps: std::sync::atomic::AtomicU64,
    /// Worker steps that failed with an error (and were retried).
    pub worker_errors: std::sync::atomic::AtomicU64,
    /// Steps that panicked: each failed its execution with `States.Runtime`.
    pub step_panics: std::sync::atomic::AtomicU64,
    /// Times the background worker died and was started again.
    pub worker_restarts: std::sync::atomic::AtomicU64,
    /// Runs undone and run again step by step because a task failed or a step panicked.
    pub reruns: std::sync::atomic::AtomicU64,
}

struct Inner {
    db: Db,
    metrics: Metrics,
    handlers: Registry,
    /// Parsed definitions by id; a definition never changes once stored.
    definitions: RwLock<HashMap<i64, Arc<StateMachine>>>,
    wake: Notify,
    /// Counts commits that may have changed what pages show (see [`Runtime::subscribe`]).
    changes: tokio::sync::watch::Sender<u64>,
    /// Every "now" the runtime reads.
    clock: Arc<dyn Clock>,
}

impl Runtime {
    /// A runtime on the system clock.
    pub fn new(db: Db, handlers: Registry) -> Runtime {
        Runtime::with_clock(db, handlers, Arc::new(SystemClock))
    }

    /// A runtime that reads the time from `clock` (tests give it a [`ManualClock`]).
    pub fn with_clock(db: Db, handlers: Registry, clock: Arc<dyn Clock>) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                db,
                metrics: Metrics::default(),
                handlers,
                definitions: RwLock::new(HashMap::new()),
                wake: Notify::new(),
                changes: tokio::sync::watch::Sender::new(0),
                clock,
            }),
        }
    }

    /// The clock the runtime reads.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The current time, as stored.
    fn now(&self) -> String {
        db::format_time(self.inner.clock.now())
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Executions by status, and pending task tokens, as stored now.
    pub async fn gauges(&self) -> Result<(Vec<(String, i64)>, i64), RuntimeError> {
        let by_status = sqlx::query_as(
            "SELECT status, COUNT(*) FROM executions WHERE parent_id IS NULL GROUP BY status",
        )
        .fetch_all(&self.db().reader)
        .await?;
        let pending =
            sqlx::query_scalar("SELECT COUNT(*) FROM task_tokens WHERE status = 'pending'")
                .fetch_one(&self.db().reader)
                .await?;
        Ok((by_status, pending))
    }

    /// Creates or updates state machine `name`. The definition is validated first; running
    /// executions keep the definition they started with.
    pub async fn put_state_machine(
        &self,
        name: &str,
        definition: &str,
    ) -> Result<(), RuntimeError> {
        validate_name(name)?;
        let machine = self.parse_definition(Some(name), definition)?;
        let now = self.now();
        let tx = self.db().begin().await?;
        let id = store::intern_definition(&tx, definition, &now)?;
        store::upsert_machine(&tx, name, id, &now)?;
        tx.commit().await?;
        self.cache(id, Arc::new(machine));
        Ok(())
    }

    /// Parses and validates a definition for state machine `name` (`None`: any user's
    /// machine, as ValidateStateMachineDefinition checks it). Besides the engine's checks, a
    /// Task may not name a resource that another state machine owns (the order workflow's
    /// `orderflow:*` handlers).
    pub fn parse_definition(
        &self,
        name: Option<&str>,
        definition: &str,
    ) -> Result<StateMachine, engine::DefinitionError> {
        let machine = engine::parse(definition)?;
        let problems: Vec<_> = machine
            .task_resources()
            .into_iter()
            .filter_map(|(location, resource)| {
                let owner = self
                    .inner
                    .handlers
                    .owner(engine::execution::handler_name(resource))?;
                (Some(owner) != name).then(|| {
                    engine::Problem::new(
                        "SCHEMA_VALIDATION_FAILED",
                        location,
                        format!(
                            "The resource '{resource}' belongs to the '{owner}' state machine; \
                             other state machines cannot call it"
                        ),
                    )
                })
            })
            .collect();
        if problems.is_empty() {
            Ok(machine)
        } else {
            Err(engine::DefinitionError { problems })
        }
    }

    /// Runs the end hook of the state machine of `ex`, if `ex` is a top-level execution, on
    /// the caller's transaction: it ended as `ending` says.
    async fn ended_in(
        &self,
        conn: &mut WriteConn,
        ex: &engine::execution::ExecutionRecord,
        ending: &executor::Ending,
        by: Option<&str>,
    ) -> Result<(), RuntimeError> {
        if ex.parent_id.is_some() || ending.status == ExecutionStatus::Running {
            return Ok(());
        }
        let Some(hook) = self.inner.handlers.end_hook(&ex.state_machine) else {
            return Ok(());
        };
        let ended = Ended {
            execution_id: &ex.id,
            status: ending.status,
            error: ending.error.as_deref(),
            cause: ending.cause.as_deref(),
            by,
            now: self.clock().now(),
        };
        Ok(hook.ended(conn, ended).await?)
    }

    fn cache(&self, id: i64, machine: Arc<StateMachine>) {
        if let Ok(mut map) = self.inner.definitions.write() {
            map.insert(id, machine);
        }
    }

    async fn definition(
        &self,
        conn: &mut WriteConn,
        id: i64,
    ) -> Result<Arc<StateMachine>, RuntimeError> {
        if let Some(m) = self
            .inner
            .definitions
            .read()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return Ok(m);
        }
        let body = store::definition_body(conn, id)?
            .ok_or_else(|| RuntimeError::CorruptDefinition(id, "missing".into()))?;
        let machine = Arc::new(
            engine::parse(&body).map_err(|e| RuntimeError::CorruptDefinition(id, e.to_string()))?,
        );
        self.cache(id, machine.clone());
        Ok(machine)
    }

    /// Starts an execution inside the caller's transaction. It is written in full when it runs
    /// ([`Runtime::run_started`], on the same transaction); the caller commits.
    pub async fn start_execution_in(
        &self,
        conn: &mut WriteConn,
        state_machine: &str,
        name: Option<&str>,
        input: Value,
    ) -> Result<Started, RuntimeError> {
        let name = match name {
            Some(n) => {
                validate_name(n)?;
                n.to_string()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let (definition_id, machine_role) = store::machine_definition(conn, state_machine)?
            .ok_or_else(|| RuntimeError::StateMachineDoesNotExist(state_machine.to_string()))?;
        let machine = self.definition(conn, definition_id).await?;
        let size = engine::json_len(&input);
        if size > MAX_PAYLOAD_BYTES {
            return Err(RuntimeError::InputTooLarge(size));
        }
        let id = execution_arn(state_machine, &name);
        let now = self.now();
        let mut rec = engine::execution::ExecutionRecord::new(
            id.clone(),
            name,
            state_machine.to_string(),
            machine.start_at(),
            input,
            &now,
        );
        rec.role_arn = machine_role;
        let mut ex = store::Execution::new(rec, definition_id);
        let env = self.env(conn, &ex).await?;
        let start = engine::execution::Input::Start;
        let effects = engine::execution::apply(Some(&machine), &mut ex.rec, start, &env);
        // Its id and its name are unique: a second start with either is refused here.
        if let Err(e) = store::insert_execution(conn, &ex) {
            return Err(match e.as_database_error() {
                Some(d) if d.is_unique_violation() => {
                    RuntimeError::ExecutionAlreadyExists(ex.rec.name)
                }
                _ => e.into(),
            });
        }
        let mut ending = None;
        self.perform_all(conn, &mut ex, Some(&machine), effects, &env, &mut ending)
            .await?;
        // Its first events are written with its first steps.
        ex.unsaved = true;
        Ok(Started { id, ex })
    }

    /// Runs an execution started on this transaction up to `max_steps` steps (at least, it
    /// writes it), guarded as `guard` says.
    pub async fn run_started(
        &self,
        conn: &mut WriteConn,
        started: Started,
        max_steps: usize,
        guard: RunGuard,
    ) -> Result<StepOutcome, RuntimeError> {
        let Started { id, ex } = started;
        self.run_kept(conn, &id, ex, max_steps, guard).await
    }

    /// Runs the execution `kept` as the caller holds it, guarded as `guard` says.
    pub(super) async fn run_kept(
        &self,
        conn: &mut WriteConn,
        id: &str,
        kept: store::Execution,
        max_steps: usize,
        guard: RunGuard,
    ) -> Result<StepOutcome, RuntimeError> {
        use futures_util::FutureExt;
        if guard == RunGuard::Savepoint {
            return self.advance_kept(conn, id, Some(kept), max_steps).await;
        }
        let run =
            std::panic::AssertUnwindSafe(Box::pin(self.run_steps(conn, id, Some(kept), max_steps)))
                .catch_unwind()
                .await;
        match run {
            Ok(Err(RuntimeError::Rerun)) | Err(_) => {
                self.inner
                    .metrics
                    .reruns
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(RuntimeError::Rerun)
            }
            Ok(done) => done,
        }
    }

    /// Starts an execution in its own transaction, runs it as far as it goes right away, and
    /// returns its id once committed.
    pub async fn start_execution(
        &self,
        state_machine: &str,
        name: Option<&str>,
        input: Value,
    ) -> Result<String, RuntimeError> {
        let mut tx = self.db().begin().await?;
        let started = self
            .start_execution_in(&mut tx, state_machine, name, input)
            .await?;
        let id = started.id().to_string();
        let outcome = self
            .run_started(&mut tx, started, INLINE_STEPS, RunGuard::Savepoint)
            .await?;
        tx.commit().await?;
        self.after_commit(outcome);
        Ok(id)
    }

    /// Runs up to `max_steps` steps of the execution in the caller's transaction. A step that
    /// panics is undone and fails its execution with `States.Runtime`; nothing else is harmed.
    pub async fn advance_in(
        &self,
        conn: &mut WriteConn,
        execution_id: &str,
        max_steps: usize,
    ) -> Result<StepOutcome, RuntimeError> {
        self.advance_kept(conn, execution_id, None, max_steps).await
    }

    /// [`Runtime::advance_in`] from the execution as the caller holds it, if it does.
    ///
    /// The steps run in one savepoint and their task handlers in none of their own. A handler
    /// that fails or a step that panics (both rare) undoes them all, and they run again as
    /// [`Runtime::advance_carefully`] runs them, which costs two more trips to SQLite per
    /// step and per task.
    pub(super) async fn advance_kept(
        &self,
        conn: &mut WriteConn,
        execution_id: &str,
        kept: Option<store::Execution>,
        max_steps: usize,
    ) -> Result<StepOutcome, RuntimeError> {
        use futures_util::FutureExt;
        // A saved execution loads again after the undo; an unsaved one would be lost with it.
        let again = kept.as_ref().filter(|ex| ex.unsaved).cloned();
        let mut savepoint = conn.savepoint()?;
        // Boxed: a step's future is large, and would otherwise be carried (and copied) inside
        // every caller's.
        let run = std::panic::AssertUnwindSafe(Box::pin(self.run_steps(
            &mut savepoint,
            execution_id,
            kept,
            max_steps,
        )))
        .catch_unwind()
        .await;
        match run {
            Ok(Ok(outcome)) => {
                savepoint.commit()?;
                return Ok(outcome);
            }
            Ok(Err(RuntimeError::Rerun)) | Err(_) => savepoint.rollback()?,
            Ok(Err(e)) => return Err(e),
        }
        self.inner
            .metrics
            .reruns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.advance_carefully(conn, execution_id, again, max_steps)
            .await
    }

    /// Up to `max_steps` steps, a failed task stopping them with [`RuntimeError::Rerun`].
    async fn run_steps(
        &self,
        conn: &mut WriteConn,
        execution_id: &str,
        mut kept: Option<store::Execution>,
        max_steps: usize,
    ) -> Result<StepOutcome, RuntimeError> {
        let mut outcome = StepOutcome::Ready;
        for _ in 0..max_steps {
            outcome = self
                .step_in(conn, execution_id, &mut kept, store::TaskUndo::Rerun)
                .await?;
            if outcome != StepOutcome::Ready {
                break;
            }
        }
        save_unsaved(conn, kept).await?;
        Ok(outcome)
    }

    /// Up to `max_steps` steps, each in a savepoint and each task handler in one of its own:
    /// a failed task is undone alone, and a step that panics is undone and fails its
    /// execution with `States.Runtime`, keeping the steps before it.
    async fn advance_carefully(
        &self,
        conn: &mut WriteConn,
        execution_id: &str,
        mut kept: Option<store::Execution>,
        max_steps: usize,
    ) -> Result<StepOutcome, RuntimeError> {
        use futures_util::FutureExt;
        let mut outcome = StepOutcome::Ready;
        // `kept`: the execution as the last step left it, so the next need not read it again;
        // while it runs on it is written only when it pauses, ends or the loop stops.
        for _ in 0..max_steps {
            // What a panicking step must not take with it: the steps before it.
            let before = kept.as_ref().filter(|ex| ex.unsaved).cloned();
            let mut savepoint = conn.savepoint()?;
            let step = std::panic::AssertUnwindSafe(Box::pin(self.step_in(
                &mut savepoint,
                execution_id,
                &mut kept,
                store::TaskUndo::Savepoint,
            )))
            .catch_unwind()
            .await;
            outcome = match step {
                Ok(result) => {
                    let outcome = result?;
                    savepoint.commit()?;
                    outcome
                }
                Err(panic) => {
                    kept = None;
                    let message = panic_message(&panic);
                    self.inner
                        .metrics
                        .step_panics
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(execution = %execution_id, panic = %message, "a step panicked; failing its execution");
                    savepoint
                        .rollback()
                        .map_err(|_| RuntimeError::Panicked(message.clone()))?;
                    if let Some(mut before) = before {
                        store::save_execution(conn, &mut before)?;
                    }
                    let cause = format!("orderflow failed while running this execution: {message}");
                    self.fail_unrunnable_in(conn, execution_id, &cause).await?;
                    StepOutcome::Finished
                }
            };
            if outcome != StepOutcome::Ready {
                break;
            }
        }
        save_unsaved(conn, kept).await?;
        Ok(outcome)
    }

    /// Fails the top-level execution that `id` belongs to with `States.Runtime` and `cause`,
    /// without reading its state, and tells its owner.
    async fn fail_unrunnable_in(
        &self,
        conn: &mut WriteConn,
        id: &str,
        cause: &str,
    ) -> Result<(), RuntimeError> {
        let root = store::fail_unrunnable(conn, id, cause, &self.now())?;
        if let Some(ex) = store::load_execution(conn, &root).ok().flatten() {
            let ending = executor::Ending {
                status: ex.rec.status,
                error: ex.rec.error.clone(),
                cause: ex.rec.cause.clone(),
            };
            self.ended_in(conn, &ex.rec, &ending, None).await?;
        } else if let Some(machine) = store::execution_machine(conn, &root)? {
            // The stored state no longer loads: tell the owner from the columns alone.
            if let Some(hook) = self.inner.handlers.end_hook(&machine) {
                let ended = Ended {
                    execution_id: &root,
                    status: ExecutionStatus::Failed,
                    error: Some("States.Runtime"),
                    cause: Some(cause),
                    by: None,
                    now: self.clock().now(),
                };
                hook.ended(conn, ended).await?;
            }
        }
        Ok(())
    }

    /// Tells the worker to look for work once the caller's transaction has committed, if the
    /// execution still has steps to run.
    pub fn after_commit(&self, outcome: StepOutcome) {
        self.changed();
        if outcome == StepOutcome::Ready {
            self.wake();
        }
    }

    /// Tells subscribers that something was committed (an execution moved, an order changed).
    pub fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees a new value after each commit that may change what pages show:
    /// live pages refresh on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Wakes the background worker.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// SendTaskSuccess inside the caller's transaction: consumes the token exactly once and runs
    /// the execution on as far as it goes. Returns the execution id.
    pub async fn send_task_success_in(
        &self,
        conn: &mut WriteConn,
        token: &str,
        output: Value,
        guard: RunGuard,
    ) -> Result<(String, StepOutcome), CallbackError> {
        self.complete_task_in(conn, token, Ok(output), guard).await
    }

    /// SendTaskFailure inside the caller's transaction.
    pub async fn send_task_failure_in(
        &self,
        conn: &mut WriteConn,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(String, StepOutcome), CallbackError> {
        let failure = engine::Failure {
            error: error.to_string(),
            cause: cause.to_string(),
        };
        self.complete_task_in(conn, token, Err(failure), RunGuard::Savepoint)
            .await
    }

    /// SendTaskSuccess in its own transaction.
    pub async fn send_task_success(
        &self,
        token: &str,
        output: Value,
    ) -> Result<String, CallbackError> {
        let mut tx = self.db().begin().await?;
        let (id, outcome) = self
            .send_task_success_in(&mut tx, token, output, RunGuard::Savepoint)
            .await?;
        tx.commit().await?;
        self.after_commit(outcome);
        Ok(id)
    }

    /// SendTaskFailure in its own transaction.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<String, CallbackError> {
        let mut tx = self.db().begin().await?;
        let (id, outcome) = self
            .send_task_failure_in(&mut tx, token, error, cause)
            .await?;
        tx.commit().await?;
        self.after_commit(outcome);
        Ok(id)
    }

    /// SendTaskHeartbeat: the worker behind `token` is still busy; its HeartbeatSeconds
    /// deadline starts again.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        let mut tx = self.db().begin().await?;
        self.heartbeat_in(&mut tx, token).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// The worker's unit of work: find one execution that can move (ready, or a due timer),
    /// run it as far as it goes in one transaction, commit.
    pub async fn try_execute_task(&self) -> Result<Outcome, RuntimeError> {
        let mut tx = self.db().begin().await?;
        let Some(id) = store::next_runnable(&tx, &self.now())? else {
            return Ok(Outcome::Empty);
        };
        match self.advance_in(&mut tx, &id, INLINE_STEPS).await {
            Ok(_) => tx.commit().await?,
            Err(e) if e.is_permanent() => {
                // Retrying would fail the same way and hold up every other execution: end
                // this one (its whole tree) as failed instead.
                tx.rollback().await?;
                tracing::error!(execution = %id, error = %e, "execution cannot go on; failing it");
                let mut tx = self.db().begin().await?;
                let cause = format!("orderflow could not run this execution: {e}");
                self.fail_unrunnable_in(&mut tx, &id, &cause).await?;
                tx.commit().await?;
            }
            Err(e) => return Err(e),
        }
        Ok(Outcome::Done)
    }

    /// Runs every runnable execution until none is left (tests and start-up use it).
    pub async fn run_until_idle(&self) -> Result<usize, RuntimeError> {
        let mut n = 0;
        while self.try_execute_task().await? == Outcome::Done {
            n += 1;
        }
        Ok(n)
    }

    /// Starts the background worker: it resumes whatever was running before a restart, fires
    /// timers when due, and picks up work that requests left for it. The worker is
    /// supervised: should it ever die, it is started again.
    pub fn spawn_worker(&self) -> tokio::task::JoinHandle<()> {
        let rt = self.clone();
        // On the writer thread: nearly all the worker does is write transactions.
        self.db().spawn_writer(async move {
            loop {
                let worker = tokio::spawn(rt.clone().work());
                if let Err(e) = worker.await {
                    if e.is_cancelled() {
                        return;
                    }
                    rt.inner
                        .metrics
                        .worker_restarts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error = %e, "the workflow worker died; starting it again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    }

    /// The worker's loop; it only ends by panicking.
    async fn work(self) {
        let rt = self;
        loop {
            match rt.try_execute_task().await {
                Ok(Outcome::Done) => rt.changed(),
                Ok(Outcome::Empty) => {
                    let pause = rt.pause_until_next_timer().await;
                    tokio::select! {
                        _ = rt.inner.wake.notified() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                Err(e) => {
                    rt.inner
                        .metrics
                        .worker_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error = %e, "workflow step failed; retrying shortly");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn pause_until_next_timer(&self) -> Duration {
        const IDLE: Duration = Duration::from_secs(5);
        let Ok(mut conn) = self.db().reader.acquire().await else {
            return IDLE;
        };
        let due = store::next_timer(&mut conn).await.ok().flatten();
        let Some(due) = due.as_deref().and_then(db::parse_time) else {
            return IDLE;
        };
        let left = due - self.inner.clock.now();
        Duration::try_from(left).unwrap_or(Duration::ZERO).min(IDLE)
    }

    /// The `Resource` (as written) of the task waiting on `token`, if the token exists.
    pub async fn token_resource(&self, token: &str) -> Result<Option<String>, RuntimeError> {
        let mut conn = self.db().reader.acquire().await?;
        Ok(store::read_token(&mut conn, token)
            .await?
            .map(|task| task.resource))
    }

    /// An execution's summary.
    pub async fn describe_execution(
        &self,
        id: &str,
    ) -> Result<Option<ExecutionInfo>, RuntimeError> {
        let mut conn = self.db().reader.acquire().await?;
        Ok(store::read_execution(&mut conn, id)
            .await?
            .map(|ex| ExecutionInfo {
                id: ex.rec.id,
                name: ex.rec.name,
                state_machine: ex.rec.state_machine,
                status: ex.rec.status.as_str().to_string(),
                current_state: ex.rec.current_state,
                input: ex.rec.input,
                output: ex.rec.output,
                error: ex.rec.error,
                cause: ex.rec.cause,
                started_at: ex.rec.started_at,
                stopped_at: ex.rec.stopped_at,
            }))
    }

    /// An execution's history events, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<EventRow>, RuntimeError> {
        let mut conn = self.db().reader.acquire().await?;
        Ok(store::history(&mut conn, id).await?)
    }
}

/// The ARN of state machine `name`.
pub fn state_machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}

/// The ARN of activity `name`.
pub fn activity_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:activity:{name}")
}

/// The ARN of execution `name` of `state_machine`.
pub fn execution_arn(state_machine: &str, name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{state_machine}:{name}")
}

/// The role executions run as (`$$.Execution.RoleArn`); orderflow has no IAM, so it is fixed.
pub fn role_arn() -> String {
    engine::execution::default_role_arn()
}

/// AWS's rule for state machine and execution names, kept to the safe subset.
pub(crate) fn validate_name(name: &str) -> Result<(), RuntimeError> {
    let ok = (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidName(name.to_string()))
    }
}

/// Writes the execution a run of steps kept in memory, if it changed since it was saved.
async fn save_unsaved(
    conn: &mut WriteConn,
    kept: Option<store::Execution>,
) -> Result<(), sqlx::Error> {
    if let Some(mut ex) = kept.filter(|ex| ex.unsaved) {
        store::save_execution(conn, &mut ex)?;
    }
    Ok(())
}

/// The text a panic was raised with.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into())
}

/// A fresh task token: 256 random bits, hex-encoded.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// True when `token` has the shape of a token we issue.
fn well_formed_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}
