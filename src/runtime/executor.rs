//! One step of an execution: load its record, let the engine's lifecycle
//! (`engine::execution::apply`) decide, perform the effects it returns (events, task handlers,
//! tokens, branch runs) on the caller's transaction, and save.

use super::store::{self, Execution, ForkProgress, Phase};
use super::{
    new_token, well_formed_token, CallbackError, HandlerError, Runtime, RuntimeError, StepOutcome,
    TaskCall, MAX_PAYLOAD_BYTES,
};
use crate::engine::execution::{self, Effect, Env, ExecutionRecord, Input};
use crate::engine::{Branch, EventType, Failure, StateMachine, Tolerance};
use crate::model::ExecutionStatus;
use serde_json::{json, Value};
use sqlx::{Connection, SqliteConnection};

/// How a run ended, as the lifecycle reported it ([`Effect::Ended`]).
pub(super) struct Ending {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Runtime {
    /// Runs one step of the execution: the current state, or a due timer. `kept` holds the
    /// execution as the previous step of the same transaction left it (it is loaded if not),
    /// and this step's result for the next.
    #[tracing::instrument(level = "debug", skip(self, conn, kept))]
    pub(super) async fn step_in(
        &self,
        conn: &mut SqliteConnection,
        execution_id: &str,
        kept: &mut Option<Execution>,
    ) -> Result<StepOutcome, RuntimeError> {
        let mut ex = match kept.take() {
            // Only a running, ready execution is kept unsaved: this step saves it.
            Some(ex) => ex,
            None => store::load_execution(conn, execution_id)
                .await?
                .ok_or_else(|| RuntimeError::ExecutionDoesNotExist(execution_id.to_string()))?,
        };
        if ex.rec.status != ExecutionStatus::Running {
            return Ok(StepOutcome::Finished);
        }
        let root = self.definition(conn, ex.definition_id).await?;
        let machine = root.sub(&ex.rec.scope);
        let env = self.env(conn, &ex).await?;
        // A run whose part of the definition is missing fails at once (see `apply`).
        if machine.is_some() && !ex.rec.has_work_at(env.stamp()) {
            let now_stands = outcome(&ex);
            *kept = Some(ex);
            return Ok(now_stands);
        }
        let effects = execution::apply(machine, &mut ex.rec, Input::Run, &env);
        let mut ending = None;
        self.perform_all(conn, &mut ex, machine, effects, &env, &mut ending)
            .await?;
        let effects = execution::apply(machine, &mut ex.rec, Input::EndOfStep, &env);
        self.perform_all(conn, &mut ex, machine, effects, &env, &mut ending)
            .await?;
        self.inner
            .metrics
            .steps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now_stands = outcome(&ex);
        if now_stands == StepOutcome::Ready && ex.rec.parent_id.is_none() {
            // A top-level execution that runs on: nothing else reads its row in between, so
            // it is written once, by the step that pauses or ends it (or by `advance_in`).
            ex.unsaved = true;
        } else {
            self.save_and_tell(conn, &mut ex, ending, None, env.stamp())
                .await?;
        }
        *kept = Some(ex);
        Ok(now_stands)
    }

    /// What a decision about `ex` gets from outside: the clock's time, a random seed, a fresh
    /// task token, and (for a step that enters a state) the id its first event will get.
    pub(super) async fn env(
        &self,
        conn: &mut SqliteConnection,
        ex: &Execution,
    ) -> Result<Env, sqlx::Error> {
        let next_event_id = if ex.rec.enters_a_state() {
            Some(store::next_event_id(conn, ex).await?)
        } else {
            None
        };
        Ok(Env::new(
            self.inner.clock.now(),
            rand::random(),
            new_token(),
            next_event_id,
        ))
    }

    /// Writes the execution, tells its Parallel/Map state when a branch run ended, and its
    /// owner when an execution ended.
    pub(super) async fn save_and_tell(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        ending: Option<Ending>,
        by: Option<&str>,
        now: &str,
    ) -> Result<(), RuntimeError> {
        store::save_execution(conn, ex).await?;
        self.settle(conn, ex, now).await?;
        if let Some(ending) = ending {
            self.ended_in(conn, &ex.rec, &ending, by).await?;
        }
        Ok(())
    }

    /// Performs `effects` in order, and those of the inputs they answer with (a task's result,
    /// an expired token, the branches' outputs) until none is left. An [`Effect::Ended`] is
    /// kept in `ending` for after the save.
    pub(super) async fn perform_all(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: Option<&StateMachine>,
        mut effects: Vec<Effect>,
        env: &Env,
        ending: &mut Option<Ending>,
    ) -> Result<(), RuntimeError> {
        loop {
            let mut answer = None;
            for effect in effects {
                if let Some(input) = self.perform(conn, ex, machine, effect, env, ending).await? {
                    answer = Some(input);
                }
            }
            let Some(input) = answer else {
                return Ok(());
            };
            effects = execution::apply(machine, &mut ex.rec, input, env);
        }
    }

    /// Performs one effect; returns the input that answers it, if it has one.
    async fn perform(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: Option<&StateMachine>,
        effect: Effect,
        env: &Env,
        ending: &mut Option<Ending>,
    ) -> Result<Option<Input>, RuntimeError> {
        let now = env.stamp();
        match effect {
            Effect::Append(event) => {
                store::append_event(conn, ex, event.kind, &event.details, now).await?;
            }
            Effect::Invoke {
                state_name,
                resource,
                parameters,
                task_token,
            } => {
                let call = TaskCall {
                    execution_id: ex.rec.id.clone(),
                    state_machine: ex.rec.state_machine.clone(),
                    state_name,
                    resource,
                    parameters,
                    task_token,
                };
                return Ok(Some(Input::TaskReturned(self.invoke(conn, call).await?)));
            }
            Effect::AwaitToken { token, task } => {
                store::insert_token(conn, &token, &task, now).await?;
            }
            Effect::ExpireToken => {
                let expired = match store::pending_token_of(conn, &ex.rec.id).await? {
                    Some((token, task))
                        if store::consume_token(conn, &token, "timed_out", now).await? =>
                    {
                        Some(task)
                    }
                    _ => None,
                };
                return Ok(Some(Input::TokenExpired(expired)));
            }
            Effect::SetHeartbeat { token, at } => {
                store::set_heartbeat(conn, &token, &at).await?;
            }
            Effect::CloseTokens => store::cancel_tokens(conn, &ex.rec.id, now).await?,
            Effect::AbortBranches { fork_key } => {
                store::abort_below(conn, &ex.rec.id, fork_key.as_deref(), now).await?;
            }
            Effect::Fork {
                state,
                branches,
                max_concurrency,
                tolerance,
                map,
                map_run,
            } => {
                let machine = machine.ok_or_else(|| {
                    let problem = format!("state '{state}' forks outside its machine");
                    RuntimeError::CorruptDefinition(ex.definition_id, problem)
                })?;
                let fork = Fork {
                    state,
                    branches,
                    max_concurrency,
                    tolerance,
                    map,
                    map_run,
                };
                self.fork(conn, ex, machine, fork, now).await?;
            }
            Effect::CollectOutputs { fork_key } => {
                let outputs = store::fork_outputs(conn, &fork_key).await?;
                return Ok(Some(Input::BranchOutputs(outputs)));
            }
            Effect::Ended {
                status,
                error,
                cause,
            } => {
                *ending = Some(Ending {
                    status,
                    error,
                    cause,
                });
            }
        }
        Ok(None)
    }

    /// Once a branch run has ended, tells its Parallel/Map state: starts queued iterations,
    /// and makes the parent ready to join when all are done or one failure ends the state.
    pub(super) async fn settle(
        &self,
        conn: &mut SqliteConnection,
        child: &Execution,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let (Some(parent_id), Phase::Done) = (&child.rec.parent_id, child.rec.phase) else {
            return Ok(());
        };
        let Some(mut parent) = store::load_execution(conn, parent_id).await? else {
            return Ok(());
        };
        let Some(mut progress) = parent.rec.fork.take() else {
            return Ok(());
        };
        if parent.rec.status != ExecutionStatus::Running
            || child.rec.fork_key.as_deref() != Some(progress.key.as_str())
        {
            return Ok(());
        }
        progress.finished += 1;
        if child.rec.status != ExecutionStatus::Succeeded {
            progress.failed += 1;
            let tolerance = Tolerance::from(progress.tolerance);
            let fails_state =
                !progress.map || tolerance.exceeded(progress.failed as u64, progress.total as u64);
            if fails_state && progress.failure.is_none() {
                let tolerated =
                    progress.tolerance.count.is_some() || progress.tolerance.percentage.is_some();
                progress.failure = Some(if progress.map && tolerated {
                    Failure {
                        error: "States.ExceedToleratedFailureThreshold".into(),
                        cause: format!(
                            "{} of {} iterations failed, more than the Map state tolerates",
                            progress.failed, progress.total
                        ),
                    }
                } else {
                    Failure {
                        // A Fail state may give no error; the branch's failure then has none.
                        error: child.rec.error.clone().unwrap_or_default(),
                        cause: child.rec.cause.clone().unwrap_or_default(),
                    }
                });
                if progress.map {
                    // Iterations still running are aborted: each says so in the history.
                    for id in store::running_branches(conn, &progress.key).await? {
                        if let Some(mut running) = store::load_execution(conn, &id).await? {
                            let aborted = EventType::MapIterationAborted;
                            if let Some(e) =
                                execution::branch_ended(&running.rec, aborted, json!({}))
                            {
                                store::append_event(conn, &mut running, e.kind, &e.details, now)
                                    .await?;
                            }
                            store::save_execution(conn, &mut running).await?;
                        }
                    }
                }
                store::abort_below(conn, &parent.rec.id, Some(&progress.key), now).await?;
            }
        }
        if progress.failure.is_none() {
            let limit = if progress.max_concurrency == 0 {
                progress.total
            } else {
                progress.max_concurrency
            };
            while progress.started < progress.total && progress.started - progress.finished < limit
            {
                let index = progress.started;
                progress.started += 1;
                if let Some(id) = store::fork_branch(conn, &progress.key, index).await? {
                    if let Some(mut queued) = store::load_execution(conn, &id).await? {
                        start_branch(conn, &mut queued, &progress, now).await?;
                        store::save_execution(conn, &mut queued).await?;
                    }
                }
            }
        }
        if progress.failure.is_some() || progress.finished == progress.total {
            parent.rec.phase = Phase::Ready;
            self.wake();
        }
        parent.rec.fork = Some(progress);
        store::save_execution(conn, &mut parent).await?;
        Ok(())
    }

    /// A Parallel or Map state starts its branch runs (up to its MaxConcurrency; the rest
    /// queue) and waits for them.
    async fn fork(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        fork: Fork,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let Fork {
            state,
            branches,
            max_concurrency,
            tolerance,
            map,
            map_run,
        } = fork;
        let key = uuid::Uuid::new_v4().simple().to_string();
        if let Some(label) = &map_run {
            let arn = format!(
                "arn:aws:states:{}:{}:mapRun:{}/{label}:{key}",
                super::REGION,
                super::ACCOUNT,
                ex.rec.state_machine
            );
            let details = json!({ "mapRunArn": arn });
            store::append_event(conn, ex, EventType::MapRunStarted, &details, now).await?;
        }
        // The branch runs number their events on this execution's row from here on.
        store::share_event_count(conn, ex).await?;
        let total = branches.len();
        let limit = if max_concurrency == 0 {
            total
        } else {
            max_concurrency.min(total)
        };
        let mut progress = ForkProgress {
            key: key.clone(),
            total,
            started: limit,
            finished: 0,
            failed: 0,
            max_concurrency,
            tolerance: tolerance.into(),
            map,
            failure: None,
        };
        for (index, branch) in branches.into_iter().enumerate() {
            let step = (state.clone(), branch.machine);
            let Some(sub) = machine.sub(std::slice::from_ref(&step)) else {
                let problem = format!("state '{state}' has no branch {}", branch.machine);
                return Err(RuntimeError::CorruptDefinition(ex.definition_id, problem));
            };
            let mut rec = ExecutionRecord::new(
                format!("{}/{key}/{index}", ex.rec.history_id()),
                format!("{key}/{index}"),
                ex.rec.state_machine.clone(),
                sub.start_at(),
                branch.input,
                now,
            );
            rec.phase = Phase::Queued;
            rec.parent_id = Some(ex.rec.id.clone());
            // A distributed Map's iterations are executions with histories of their own.
            let distributed = map_run.is_some();
            rec.root_id = (!distributed).then(|| ex.rec.history_id().to_string());
            rec.scope = ex.rec.scope.iter().cloned().chain([step]).collect();
            rec.fork_key = Some(key.clone());
            rec.branch_index = Some(index as i64);
            rec.iteration = (map && !distributed).then_some(index as i64);
            rec.last_event_id = if distributed { 0 } else { ex.rec.last_event_id };
            rec.outer_variables = ex.rec.visible_variables();
            rec.role_arn = ex.rec.role_arn.clone();
            let mut child = Execution::new(rec, ex.definition_id);
            store::insert_execution(conn, &child).await?;
            if index < limit {
                start_branch(conn, &mut child, &progress, now).await?;
                store::save_execution(conn, &mut child).await?;
            }
        }
        if total == 0 {
            progress.started = 0;
            ex.rec.phase = Phase::Ready;
        } else {
            ex.rec.phase = Phase::Waiting;
            self.wake();
        }
        ex.rec.fork = Some(progress);
        Ok(())
    }

    /// Runs the handler of `resource` once for TestState, in a transaction that is rolled back:
    /// the result is reported, nothing it wrote is kept.
    pub async fn try_task(
        &self,
        state_name: &str,
        resource: &str,
        parameters: Value,
    ) -> Result<Result<Value, Failure>, RuntimeError> {
        let mut tx = self.db().begin().await?;
        let call = TaskCall {
            execution_id: String::new(),
            state_machine: String::new(),
            state_name: state_name.to_string(),
            resource: resource.to_string(),
            parameters,
            task_token: None,
        };
        let result = self.invoke(&mut tx, call).await;
        tx.rollback().await?;
        result
    }

    /// Calls the resource's handler inside a savepoint, so a failed task leaves nothing behind.
    /// Database errors abort the whole step.
    async fn invoke(
        &self,
        conn: &mut SqliteConnection,
        call: TaskCall,
    ) -> Result<Result<Value, Failure>, RuntimeError> {
        if let Some(owner) = self.inner.handlers.owner(&call.resource) {
            if owner != call.state_machine {
                return Ok(Err(Failure {
                    error: "States.TaskFailed".into(),
                    cause: format!(
                        "The resource '{}' belongs to the '{owner}' state machine; other state machines cannot call it",
                        call.resource
                    ),
                }));
            }
        }
        let Some(handler) = self.inner.handlers.get(&call.resource) else {
            return Ok(Err(Failure {
                error: "States.TaskFailed".into(),
                cause: format!(
                    "No task handler is registered for resource '{}'",
                    call.resource
                ),
            }));
        };
        let mut savepoint = conn.begin().await?;
        match handler.call(&mut savepoint, call).await {
            Ok(output) => {
                savepoint.commit().await?;
                Ok(Ok(output))
            }
            Err(HandlerError::Task(failure)) => {
                savepoint.rollback().await?;
                Ok(Err(failure))
            }
            Err(HandlerError::Database(e)) => Err(e.into()),
        }
    }

    /// SendTaskHeartbeat: moves the pending task's heartbeat deadline.
    pub(super) async fn heartbeat_in(
        &self,
        conn: &mut SqliteConnection,
        token: &str,
    ) -> Result<(), CallbackError> {
        if !well_formed_token(token) {
            return Err(CallbackError::InvalidToken);
        }
        let task = store::load_token(conn, token)
            .await?
            .ok_or(CallbackError::TaskDoesNotExist)?;
        if task.status != "pending" {
            return Err(CallbackError::TaskTimedOut);
        }
        if task.heartbeat_seconds.is_none() {
            return Ok(());
        }
        let Some(mut ex) = store::load_execution(conn, &task.execution_id).await? else {
            return Ok(());
        };
        let env = self.env(conn, &ex).await?;
        let heartbeat = Input::Heartbeat {
            token: token.to_string(),
            task,
        };
        let effects = execution::apply(None, &mut ex.rec, heartbeat, &env);
        let mut ending = None;
        self.perform_all(conn, &mut ex, None, effects, &env, &mut ending)
            .await?;
        store::save_execution(conn, &mut ex).await?;
        Ok(())
    }

    /// Resumes the task waiting on `token` with its result, exactly once.
    pub(super) async fn complete_task_in(
        &self,
        conn: &mut SqliteConnection,
        token: &str,
        result: Result<Value, Failure>,
    ) -> Result<(String, StepOutcome), CallbackError> {
        if !well_formed_token(token) {
            return Err(CallbackError::InvalidToken);
        }
        if let Ok(output) = &result {
            let size = output.to_string().len();
            if size > MAX_PAYLOAD_BYTES {
                return Err(CallbackError::InvalidOutput(size));
            }
        }
        let task = store::load_token(conn, token)
            .await?
            .ok_or(CallbackError::TaskDoesNotExist)?;
        let now = self.now();
        let consumed_as = if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        if task.status != "pending" || !store::consume_token(conn, token, consumed_as, &now).await?
        {
            return Err(CallbackError::TaskTimedOut);
        }
        let mut ex = store::load_execution(conn, &task.execution_id)
            .await?
            .ok_or_else(|| RuntimeError::ExecutionDoesNotExist(task.execution_id.clone()))?;
        if !ex.rec.awaits_token_in(&task.state_name) {
            return Err(CallbackError::TaskTimedOut);
        }
        let root = self.definition(conn, ex.definition_id).await?;
        let machine = root
            .sub(&ex.rec.scope)
            .ok_or(CallbackError::TaskDoesNotExist)?;
        let env = self.env(conn, &ex).await?;
        let effects = execution::apply(
            Some(machine),
            &mut ex.rec,
            Input::TokenReturned { task, result },
            &env,
        );
        let mut ending = None;
        self.perform_all(conn, &mut ex, Some(machine), effects, &env, &mut ending)
            .await?;
        self.save_and_tell(conn, &mut ex, ending, None, env.stamp())
            .await?;
        let mut now_stands = outcome(&ex);
        let id = ex.rec.id.clone();
        if now_stands == StepOutcome::Ready {
            now_stands = self
                .advance_kept(conn, &id, Some(ex), super::INLINE_STEPS)
                .await?;
        }
        Ok((id, now_stands))
    }
}

/// A Parallel or Map state's [`Effect::Fork`].
struct Fork {
    state: String,
    branches: Vec<Branch>,
    max_concurrency: usize,
    tolerance: Tolerance,
    map: bool,
    map_run: Option<String>,
}

/// A branch run starts: it records its first event (if any) and becomes ready.
async fn start_branch(
    conn: &mut SqliteConnection,
    child: &mut Execution,
    progress: &ForkProgress,
    now: &str,
) -> Result<(), sqlx::Error> {
    if let Some(event) = execution::branch_started(&mut child.rec, progress.map) {
        store::append_event(conn, child, event.kind, &event.details, now).await?;
    }
    Ok(())
}

fn outcome(ex: &Execution) -> StepOutcome {
    match ex.rec.phase {
        Phase::Ready => StepOutcome::Ready,
        Phase::Waiting | Phase::Queued => StepOutcome::Waiting,
        Phase::Done => StepOutcome::Finished,
    }
}
