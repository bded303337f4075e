//! One step of an execution: load its record, let the engine's lifecycle
//! (`engine::execution::apply`) decide, perform the effects it returns (events, task handlers,
//! tokens, branch runs) on the caller's transaction, and save.

use super::store::{self, Execution, Phase, TaskUndo};
use super::{
    new_token, well_formed_token, CallbackError, HandlerError, Runtime, RuntimeError, StepOutcome,
    TaskCall, MAX_PAYLOAD_BYTES,
};
use crate::db::WriteConn;
use crate::engine::execution::{self, Effect, Env, Input};
use crate::engine::{Failure, StateMachine};
use crate::model::{ExecutionStatus, TokenStatus};
use serde_json::Value;

/// How a run ended, as the lifecycle reported it ([`Effect::Ended`]).
pub(super) struct Ending {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Runtime {
    /// Runs one step of the execution: the current state, or a due timer. `kept` holds the
    /// execution as the previous step of the same transaction left it (it is loaded if not),
    /// and this step's result for the next. A task handler that fails is undone as
    /// `task_undo` says.
    #[tracing::instrument(level = "debug", skip(self, conn, kept))]
    pub(super) async fn step_in(
        &self,
        conn: &mut WriteConn,
        execution_id: &str,
        kept: &mut Option<Execution>,
        task_undo: TaskUndo,
    ) -> Result<StepOutcome, RuntimeError> {
        let mut ex = match kept.take() {
            // Only a running, ready execution is kept unsaved: this step saves it.
            Some(ex) => ex,
            None => store::load_execution(conn, execution_id)?
                .ok_or_else(|| RuntimeError::ExecutionDoesNotExist(execution_id.to_string()))?,
        };
        if ex.rec.status != ExecutionStatus::Running {
            return Ok(StepOutcome::Finished);
        }
        ex.task_undo = task_undo;
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
            self.save_and_tell(conn, &mut ex, ending, None, &env)
                .await?;
        }
        *kept = Some(ex);
        Ok(now_stands)
    }

    /// What a decision about `ex` gets from outside: the clock's time, a random seed, a fresh
    /// task token, and (for a step that enters a state) the id its first event will get.
    pub(super) async fn env(
        &self,
        conn: &mut WriteConn,
        ex: &Execution,
    ) -> Result<Env, sqlx::Error> {
        let next_event_id = if ex.rec.enters_a_state() {
            Some(store::next_event_id(conn, ex)?)
        } else {
            None
        };
        Ok(Env::new(
            self.inner.clock.now(),
            rand::random(),
            new_token(),
            next_event_id,
            rand::random(),
        ))
    }

    /// Writes the execution, tells its Parallel/Map state when a branch run ended, and its
    /// owner when an execution ended.
    pub(super) async fn save_and_tell(
        &self,
        conn: &mut WriteConn,
        ex: &mut Execution,
        ending: Option<Ending>,
        by: Option<&str>,
        env: &Env,
    ) -> Result<(), RuntimeError> {
        store::save_execution(conn, ex)?;
        self.settle(conn, ex, env).await?;
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
        conn: &mut WriteConn,
        ex: &mut Execution,
        machine: Option<&StateMachine>,
        mut effects: Vec<Effect>,
        env: &Env,
        ending: &mut Option<Ending>,
    ) -> Result<(), RuntimeError> {
        loop {
            let mut answer = None;
            for effect in effects {
                if let Some(input) = self.perform(conn, ex, effect, env, ending).await? {
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
        conn: &mut WriteConn,
        ex: &mut Execution,
        effect: Effect,
        env: &Env,
        ending: &mut Option<Ending>,
    ) -> Result<Option<Input>, RuntimeError> {
        let now = env.stamp();
        match effect {
            Effect::Append(event) => {
                store::append_event(conn, ex, event.kind, &event.details, now)?;
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
                    now: env.now,
                };
                let returned = self.invoke(conn, call, ex.task_undo).await?;
                return Ok(Some(Input::TaskReturned(returned)));
            }
            Effect::AwaitToken { token, task } => {
                store::insert_token(conn, &token, &task, now)?;
            }
            Effect::SetHeartbeat { token, at } => {
                store::set_heartbeat(conn, &token, &at)?;
            }
            Effect::CloseTokens => store::cancel_tokens(conn, &ex.rec.id, now)?,
            rare @ (Effect::ExpireToken
            | Effect::AbortBranches { .. }
            | Effect::StartBranches { .. }
            | Effect::StartQueued { .. }
            | Effect::CollectOutputs { .. }) => {
                // Boxed: their futures are large, and the common effects should not carry
                // that size (it is copied with every step's future).
                return Box::pin(self.perform_rare(conn, ex, rare, env)).await;
            }
            Effect::Wake => self.wake(),
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

    /// The effects of forks, joins and expired tokens: rare, and with large futures.
    async fn perform_rare(
        &self,
        conn: &mut WriteConn,
        ex: &mut Execution,
        effect: Effect,
        env: &Env,
    ) -> Result<Option<Input>, RuntimeError> {
        let now = env.stamp();
        match effect {
            Effect::ExpireToken => {
                let expired = match store::pending_token_of(conn, &ex.rec.id)? {
                    Some((token, task))
                        if store::consume_token(conn, &token, TokenStatus::TimedOut, now)? =>
                    {
                        Some(task)
                    }
                    _ => None,
                };
                return Ok(Some(Input::TokenExpired(expired)));
            }
            Effect::AbortBranches { fork_key, say_so } => {
                if let (true, Some(key)) = (say_so, &fork_key) {
                    for id in store::running_branches(conn, key)? {
                        if let Some(mut running) = store::load_execution(conn, &id)? {
                            let aborted = Input::AbortedByParent;
                            let effects = execution::apply(None, &mut running.rec, aborted, env);
                            record_events(conn, &mut running, effects, now).await?;
                            store::save_execution(conn, &mut running)?;
                        }
                    }
                }
                store::abort_below(conn, &ex.rec.id, fork_key.as_deref(), now)?;
            }
            Effect::StartBranches { runs } => {
                // The branch runs number their events on this execution's row from here on.
                store::share_event_count(conn, ex)?;
                for run in runs {
                    let mut child = Execution::new(run.record, ex.definition_id);
                    store::insert_execution(conn, &child)?;
                    if !run.events.is_empty() {
                        for event in run.events {
                            store::append_event(conn, &mut child, event.kind, &event.details, now)?;
                        }
                        store::save_execution(conn, &mut child)?;
                    }
                }
            }
            Effect::StartQueued { fork_key, index } => {
                if let Some(id) = store::fork_branch(conn, &fork_key, index)? {
                    if let Some(mut queued) = store::load_execution(conn, &id)? {
                        let effects = execution::apply(None, &mut queued.rec, Input::Start, env);
                        record_events(conn, &mut queued, effects, now).await?;
                        store::save_execution(conn, &mut queued)?;
                    }
                }
            }
            Effect::CollectOutputs { fork_key } => {
                let outputs = store::fork_outputs(conn, &fork_key)?;
                return Ok(Some(Input::BranchOutputs(outputs)));
            }
            _ => unreachable!("perform_rare is given only the effects it handles"),
        }
        Ok(None)
    }

    /// Once a branch run has ended, tells its Parallel/Map state (which may start queued
    /// runs, abort the others, or become ready to join).
    pub(super) async fn settle(
        &self,
        conn: &mut WriteConn,
        child: &Execution,
        env: &Env,
    ) -> Result<(), RuntimeError> {
        let (Some(parent_id), Phase::Done) = (&child.rec.parent_id, child.rec.phase) else {
            return Ok(());
        };
        let Some(mut parent) = store::load_execution(conn, parent_id)? else {
            return Ok(());
        };
        if !parent.rec.awaits_branch_of(child.rec.fork_key.as_deref()) {
            return Ok(());
        }
        let ended = Input::BranchEnded {
            fork_key: child.rec.fork_key.clone(),
            succeeded: child.rec.status == ExecutionStatus::Succeeded,
            error: child.rec.error.clone(),
            cause: child.rec.cause.clone(),
        };
        let effects = execution::apply(None, &mut parent.rec, ended, env);
        for effect in effects {
            // Telling a fork of its branches answers with no input.
            self.perform(conn, &mut parent, effect, env, &mut None)
                .await?;
        }
        store::save_execution(conn, &mut parent)?;
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
            now: self.clock().now(),
        };
        let result = self.invoke(&mut tx, call, TaskUndo::Savepoint).await;
        tx.rollback().await?;
        result
    }

    /// Calls the resource's handler; a failed task leaves nothing behind (`undo` says how).
    /// Database errors abort the whole step.
    async fn invoke(
        &self,
        conn: &mut WriteConn,
        call: TaskCall,
        undo: TaskUndo,
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
        if undo == TaskUndo::Rerun {
            return match handler.call(conn, call).await {
                Ok(output) => Ok(Ok(output)),
                Err(HandlerError::Task(_)) => Err(RuntimeError::Rerun),
                Err(HandlerError::Database(e)) => Err(e.into()),
            };
        }
        let mut savepoint = conn.savepoint()?;
        match handler.call(&mut savepoint, call).await {
            Ok(output) => {
                savepoint.commit()?;
                Ok(Ok(output))
            }
            Err(HandlerError::Task(failure)) => {
                savepoint.rollback()?;
                Ok(Err(failure))
            }
            Err(HandlerError::Database(e)) => Err(e.into()),
        }
    }

    /// SendTaskHeartbeat: moves the pending task's heartbeat deadline.
    pub(super) async fn heartbeat_in(
        &self,
        conn: &mut WriteConn,
        token: &str,
    ) -> Result<(), CallbackError> {
        if !well_formed_token(token) {
            return Err(CallbackError::InvalidToken);
        }
        let task = store::load_token(conn, token)?.ok_or(CallbackError::TaskDoesNotExist)?;
        if task.status != "pending" {
            return Err(CallbackError::TaskTimedOut);
        }
        if task.heartbeat_seconds.is_none() {
            return Ok(());
        }
        let id = task.execution_id.clone();
        let heartbeat = Input::Heartbeat {
            token: token.to_string(),
            task,
        };
        Ok(self.give_outside_state(conn, &id, heartbeat).await?)
    }

    /// A worker took the activity task of execution `id`: its history says so.
    pub(super) async fn activity_taken_in(
        &self,
        conn: &mut WriteConn,
        id: &str,
        worker: &str,
    ) -> Result<(), RuntimeError> {
        let taken = Input::ActivityTaken {
            worker: worker.to_string(),
        };
        self.give_outside_state(conn, id, taken).await
    }

    /// Gives execution `id` an input its state machine has no say in (a heartbeat, a worker
    /// taking its activity task), performs what the lifecycle decides and saves the execution.
    async fn give_outside_state(
        &self,
        conn: &mut WriteConn,
        id: &str,
        input: Input,
    ) -> Result<(), RuntimeError> {
        let Some(mut ex) = store::load_execution(conn, id)? else {
            return Ok(());
        };
        let env = self.env(conn, &ex).await?;
        let effects = execution::apply(None, &mut ex.rec, input, &env);
        let mut ending = None;
        self.perform_all(conn, &mut ex, None, effects, &env, &mut ending)
            .await?;
        store::save_execution(conn, &mut ex)?;
        Ok(())
    }

    /// Resumes the task waiting on `token` with its result, exactly once.
    pub(super) async fn complete_task_in(
        &self,
        conn: &mut WriteConn,
        token: &str,
        result: Result<Value, Failure>,
        guard: super::RunGuard,
    ) -> Result<(String, StepOutcome), CallbackError> {
        if !well_formed_token(token) {
            return Err(CallbackError::InvalidToken);
        }
        if let Ok(output) = &result {
            let size = crate::engine::json_len(output);
            if size > MAX_PAYLOAD_BYTES {
                return Err(CallbackError::InvalidOutput(size));
            }
        }
        let now = self.now();
        let consumed_as = if result.is_ok() {
            TokenStatus::Succeeded
        } else {
            TokenStatus::Failed
        };
        let Some(task) = store::take_token(conn, token, consumed_as, &now)? else {
            return Err(match store::load_token(conn, token)? {
                Some(_) => CallbackError::TaskTimedOut,
                None => CallbackError::TaskDoesNotExist,
            });
        };
        let mut ex = store::load_execution(conn, &task.execution_id)?
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
        let id = ex.rec.id.clone();
        if outcome(&ex) == StepOutcome::Ready && ex.rec.parent_id.is_none() {
            // A top-level execution that runs on at once is written once, by the steps that
            // follow, as a step leaves it (nothing else reads its row in between).
            ex.unsaved = true;
        } else {
            self.save_and_tell(conn, &mut ex, ending, None, &env)
                .await?;
        }
        let mut now_stands = outcome(&ex);
        if now_stands == StepOutcome::Ready {
            now_stands = self
                .run_kept(conn, &id, ex, super::INLINE_STEPS, guard)
                .await?;
        }
        Ok((id, now_stands))
    }
}

/// Appends the events of `effects`, the decision about a run other than the step's own (a
/// branch run started or aborted by its Parallel or Map state): such decisions only append.
async fn record_events(
    conn: &mut WriteConn,
    ex: &mut Execution,
    effects: Vec<Effect>,
    now: &str,
) -> Result<(), sqlx::Error> {
    for effect in effects {
        if let Effect::Append(event) = effect {
            store::append_event(conn, ex, event.kind, &event.details, now)?;
        } else {
            debug_assert!(
                false,
                "a branch run's start or abort only appends: {effect:?}"
            );
        }
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
