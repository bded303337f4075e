//! One step of an execution: ask the engine what the current state does, perform it (task
//! handlers, tokens, timers) and record the transition and its events on the caller's
//! transaction.

use super::store::{
    self, Execution, ForkProgress, PendingTask, Phase, TimerKind, FAILED, RUNNING, SUCCEEDED,
    TIMED_OUT,
};
use super::{
    new_token, well_formed_token, CallbackError, HandlerError, Runtime, RuntimeError, StepOutcome,
    TaskCall, MAX_HISTORY_EVENTS, MAX_PAYLOAD_BYTES,
};
use crate::db;
use crate::engine::{
    decide_retry, Action, Branch, Context, EventType, Failure, HistoryEvent, Next, RetryDecision,
    StateMachine, Step, Tolerance, WaitUntil,
};
use serde_json::{json, Value};
use sqlx::{Connection, SqliteConnection};

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
        if ex.status != RUNNING {
            return Ok(StepOutcome::Finished);
        }
        let root = self.definition(conn, ex.definition_id).await?;
        let now = db::now();
        let Some(machine) = root.sub(&ex.scope) else {
            let failure = Failure {
                error: "States.Runtime".into(),
                cause: "The branch's state machine is missing from the definition".into(),
            };
            fail(conn, &mut ex, failure, &now).await?;
            store::save_execution(conn, &mut ex).await?;
            self.settle(conn, &ex, &now).await?;
            self.ended_in(conn, &ex, None).await?;
            return Ok(StepOutcome::Finished);
        };
        if ex.deadline_at.as_deref().is_some_and(|d| d <= now.as_str()) {
            time_out_execution(conn, &mut ex, &now).await?;
            store::save_execution(conn, &mut ex).await?;
            self.ended_in(conn, &ex, None).await?;
            return Ok(StepOutcome::Finished);
        }
        match ex.phase {
            Phase::Done => return Ok(StepOutcome::Finished),
            Phase::Queued => return Ok(StepOutcome::Waiting),
            Phase::Waiting => {
                let due = ex
                    .timer_due_at
                    .as_deref()
                    .is_some_and(|due| due <= now.as_str());
                if !due {
                    return Ok(StepOutcome::Waiting);
                }
                match ex.timer_kind.take().unwrap_or(TimerKind::Wait) {
                    TimerKind::Wait => self.fire_timer(conn, &mut ex, &now).await?,
                    TimerKind::Retry => {
                        ex.timer_due_at = None;
                        self.run_state(conn, &mut ex, machine, &now, true).await?;
                    }
                    TimerKind::TaskTimeout => {
                        ex.timer_due_at = None;
                        self.time_out_task(conn, &mut ex, machine, &now).await?;
                    }
                }
            }
            Phase::Ready if ex.fork.is_some() => self.join(conn, &mut ex, machine, &now).await?,
            Phase::Ready => self.run_state(conn, &mut ex, machine, &now, false).await?,
        }
        if ex.status == RUNNING && ex.last_event_id >= MAX_HISTORY_EVENTS {
            let failure = Failure {
                error: "States.Runtime".into(),
                cause: format!(
                    "The execution reached the limit of {MAX_HISTORY_EVENTS} history events"
                ),
            };
            fail(conn, &mut ex, failure, &now).await?;
        }
        self.inner
            .metrics
            .steps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now_stands = outcome(&ex);
        if now_stands == StepOutcome::Ready && ex.parent_id.is_none() {
            // A top-level execution that runs on: nothing else reads its row in between, so
            // it is written once, by the step that pauses or ends it (or by `advance_in`).
            ex.unsaved = true;
        } else {
            store::save_execution(conn, &mut ex).await?;
            self.settle(conn, &ex, &now).await?;
            self.ended_in(conn, &ex, None).await?;
        }
        *kept = Some(ex);
        Ok(now_stands)
    }

    /// Once a branch run has ended, tells its Parallel/Map state: starts queued iterations,
    /// and makes the parent ready to join when all are done or one failure ends the state.
    pub(super) async fn settle(
        &self,
        conn: &mut SqliteConnection,
        child: &Execution,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let (Some(parent_id), Phase::Done) = (&child.parent_id, child.phase) else {
            return Ok(());
        };
        let Some(mut parent) = store::load_execution(conn, parent_id).await? else {
            return Ok(());
        };
        let Some(mut progress) = parent.fork.take() else {
            return Ok(());
        };
        if parent.status != RUNNING || child.fork_key.as_deref() != Some(progress.key.as_str()) {
            return Ok(());
        }
        progress.finished += 1;
        if child.status != SUCCEEDED {
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
                        error: child.error.clone().unwrap_or_default(),
                        cause: child.cause.clone().unwrap_or_default(),
                    }
                });
                if progress.map {
                    // Iterations still running are aborted: each says so in the history.
                    for id in store::running_branches(conn, &progress.key).await? {
                        if let Some(mut running) = store::load_execution(conn, &id).await? {
                            let aborted = EventType::MapIterationAborted;
                            branch_ended(conn, &mut running, aborted, json!({}), now).await?;
                            store::save_execution(conn, &mut running).await?;
                        }
                    }
                }
                store::abort_below(conn, &parent.id, Some(&progress.key), now).await?;
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
            parent.phase = Phase::Ready;
            self.wake();
        }
        parent.fork = Some(progress);
        store::save_execution(conn, &mut parent).await?;
        Ok(())
    }

    /// A Parallel or Map state starts its branch runs (up to its MaxConcurrency; the rest
    /// queue) and waits for them.
    #[allow(clippy::too_many_arguments)]
    async fn fork(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        state: &str,
        branches: Vec<Branch>,
        max_concurrency: usize,
        tolerance: Tolerance,
        map: bool,
        map_run: Option<String>,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        if let Some(label) = &map_run {
            let arn = format!(
                "arn:aws:states:{}:{}:mapRun:{}/{label}:{key}",
                super::REGION,
                super::ACCOUNT,
                ex.state_machine
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
            let step = (state.to_string(), branch.machine);
            let Some(sub) = machine.sub(std::slice::from_ref(&step)) else {
                let problem = format!("state '{state}' has no branch {}", branch.machine);
                return Err(RuntimeError::CorruptDefinition(ex.definition_id, problem));
            };
            let mut child = Execution::new_running(
                format!("{}/{key}/{index}", ex.history_id()),
                format!("{key}/{index}"),
                ex.state_machine.clone(),
                ex.definition_id,
                sub.start_at(),
                branch.input,
                now,
            );
            child.phase = Phase::Queued;
            child.parent_id = Some(ex.id.clone());
            // A distributed Map's iterations are executions with histories of their own.
            let distributed = map_run.is_some();
            child.root_id = (!distributed).then(|| ex.history_id().to_string());
            child.scope = ex.scope.iter().cloned().chain([step]).collect();
            child.fork_key = Some(key.clone());
            child.branch_index = Some(index as i64);
            child.iteration = (map && !distributed).then_some(index as i64);
            child.last_event_id = if distributed { 0 } else { ex.last_event_id };
            child.outer_variables = ex.visible_variables();
            child.role_arn = ex.role_arn.clone();
            store::insert_execution(conn, &child).await?;
            if index < limit {
                start_branch(conn, &mut child, &progress, now).await?;
                store::save_execution(conn, &mut child).await?;
            }
        }
        if total == 0 {
            progress.started = 0;
            ex.phase = Phase::Ready;
        } else {
            ex.phase = Phase::Waiting;
            self.wake();
        }
        ex.fork = Some(progress);
        Ok(())
    }

    /// Every branch has ended, or one failure ends the state: gather the outputs (or apply
    /// Retry and Catch to the failure) and leave the Parallel or Map state.
    async fn join(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let Some(progress) = ex.fork.take() else {
            return Ok(());
        };
        let state_name = ex.current_state.clone().unwrap_or_default();
        let input = ex.state_input.clone().unwrap_or(Value::Null);
        let ctx = context(ex, &state_name, now);
        let step = match progress.failure {
            Some(failure) => {
                let decision = match machine.state(&state_name) {
                    Some(state) => decide_retry(state, &failure.error, &ex.retry_counts, jitter()),
                    None => RetryDecision::GiveUp,
                };
                if let RetryDecision::Retry { retrier, delay_ms } = decision {
                    schedule_retry(ex, retrier, delay_ms);
                    return Ok(());
                }
                machine.fork_failed(&state_name, &input, failure, &ctx)
            }
            None => {
                let outputs = store::fork_outputs(conn, &progress.key).await?;
                machine.fork_succeeded(&state_name, &input, outputs, &ctx)
            }
        };
        self.apply(conn, ex, machine, &ctx, &input, step, now).await
    }

    /// Runs the current state. On a retry the state was never left, so its `…StateEntered`
    /// event is not repeated.
    async fn run_state(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        now: &str,
        retrying: bool,
    ) -> Result<(), RuntimeError> {
        let state_name = ex.current_state.clone().unwrap_or_default();
        let input = ex.state_input.clone().unwrap_or(Value::Null);
        let mut ctx = context(ex, &state_name, now);
        if !retrying {
            // The state's …StateEntered event is the first this step appends.
            ctx.entered_event_id = Some(store::next_event_id(conn, ex).await?);
        }
        let step = match machine.state(&state_name) {
            Some(state) => {
                if state.needs_task_token() {
                    ctx.task_token = Some(new_token());
                }
                let mut step = machine.enter(&state_name, &input, &ctx);
                if retrying {
                    step.events.retain(|e| {
                        !matches!(
                            e.kind,
                            EventType::TaskStateEntered
                                | EventType::ParallelStateEntered
                                | EventType::MapStateEntered
                        )
                    });
                }
                step
            }
            None => Step {
                action: Action::Fail(Failure {
                    error: "States.Runtime".into(),
                    cause: format!("The state '{state_name}' does not exist"),
                }),
                events: vec![],
                assigned: None,
            },
        };
        self.apply(conn, ex, machine, &ctx, &input, step, now).await
    }

    /// The pending callback's TimeoutSeconds or HeartbeatSeconds passed: its token stops
    /// working and the task fails with `States.Timeout` or `States.HeartbeatTimeout`.
    async fn time_out_task(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let Some((token, task)) = store::pending_token_of(conn, &ex.id).await? else {
            return Ok(());
        };
        if !store::consume_token(conn, &token, "timed_out", now).await? {
            return Ok(());
        }
        let heartbeat_missed = task.heartbeat_at.as_deref().is_some_and(|h| h <= now)
            && task.timeout_at.as_deref().is_none_or(|t| t > now);
        let failure = if heartbeat_missed {
            Failure {
                error: "States.HeartbeatTimeout".into(),
                cause: format!(
                    "No heartbeat within {} seconds",
                    task.heartbeat_seconds.unwrap_or(0)
                ),
            }
        } else {
            Failure {
                error: "States.Timeout".into(),
                cause: "The task did not finish within its TimeoutSeconds".into(),
            }
        };
        let ctx = context(ex, &task.state_name, now);
        if let Some(step) = self
            .task_failure(conn, ex, machine, &ctx, &task.resource, failure, now)
            .await?
        {
            self.apply(conn, ex, machine, &ctx, &task.state_input, step, now)
                .await?;
        }
        Ok(())
    }

    /// A task failed (handler error, SendTaskFailure or timeout): schedule a retry if a Retry
    /// rule says so and return None, or return the engine's Catch/fail step.
    #[allow(clippy::too_many_arguments)]
    async fn task_failure(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        ctx: &Context,
        resource: &str,
        failure: Failure,
        now: &str,
    ) -> Result<Option<Step>, RuntimeError> {
        let state_input = ex.state_input.clone().unwrap_or(Value::Null);
        let timed_out = matches!(
            failure.error.as_str(),
            "States.Timeout" | "States.HeartbeatTimeout"
        );
        let decision = match machine.state(&ctx.state_name) {
            Some(state) => decide_retry(state, &failure.error, &ex.retry_counts, jitter()),
            None => RetryDecision::GiveUp,
        };
        let mut step = match decision {
            RetryDecision::Retry { retrier, delay_ms } => {
                let mut event = HistoryEvent::task_failed(resource, &failure.error, &failure.cause);
                if timed_out {
                    event.kind = EventType::TaskTimedOut;
                }
                store::append_event(conn, ex, event.kind, &event.details, now).await?;
                schedule_retry(ex, retrier, delay_ms);
                return Ok(None);
            }
            RetryDecision::GiveUp => {
                machine.task_failed(&ctx.state_name, &state_input, failure, ctx)
            }
        };
        if timed_out {
            for event in &mut step.events {
                if event.kind == EventType::TaskFailed {
                    event.kind = EventType::TaskTimedOut;
                }
            }
        }
        Ok(Some(step))
    }

    /// The Wait state's timer is due: leave the state and move on.
    async fn fire_timer(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        now: &str,
    ) -> Result<(), RuntimeError> {
        let output = ex.timer_output.take().unwrap_or(Value::Null);
        let name = ex.current_state.clone().unwrap_or_default();
        let mut exited = HistoryEvent::exited(EventType::WaitStateExited, &name, &output);
        if let Some(assigned) = ex.timer_assigned.take() {
            exited.show_assigned(&assigned);
            ex.variables.extend(assigned);
        }
        store::append_event(conn, ex, exited.kind, &exited.details, now).await?;
        let next = match ex.timer_next.take() {
            Some(state) => Next::State(state),
            None => Next::End,
        };
        ex.timer_due_at = None;
        transition(conn, ex, output, next, now).await?;
        Ok(())
    }

    /// Records a step's events and performs its action; task results feed back into the engine
    /// until the state is left or the execution pauses.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        ex: &mut Execution,
        machine: &StateMachine,
        ctx: &Context,
        state_input: &Value,
        mut step: Step,
        now: &str,
    ) -> Result<(), RuntimeError> {
        loop {
            for event in &step.events {
                store::append_event(conn, ex, event.kind, &event.details, now).await?;
            }
            if let Some(assigned) = step.assigned.take() {
                // A Wait's assignments take effect when it is left.
                if matches!(step.action, Action::Wait { .. }) {
                    ex.timer_assigned = Some(assigned);
                } else {
                    ex.variables.extend(assigned);
                }
            }
            match step.action {
                Action::Transition { output, next } => {
                    transition(conn, ex, output, next, now).await?;
                }
                Action::Fail(failure) => fail(conn, ex, failure, now).await?,
                Action::Fork {
                    branches,
                    max_concurrency,
                    tolerance,
                    map,
                    map_run,
                } => {
                    let state = ctx.state_name.clone();
                    self.fork(
                        conn,
                        ex,
                        machine,
                        &state,
                        branches,
                        max_concurrency,
                        tolerance,
                        map,
                        map_run,
                        now,
                    )
                    .await?;
                }
                Action::Wait {
                    until,
                    output,
                    next,
                } => {
                    let due = match until {
                        WaitUntil::Seconds(s) => seconds_from_now(s),
                        WaitUntil::Timestamp(ts) => match db::parse_time(&ts) {
                            Some(t) => db::format_time(t),
                            None => {
                                let failure = Failure {
                                    error: "States.Runtime".into(),
                                    cause: format!("'{ts}' is not an RFC 3339 timestamp"),
                                };
                                fail(conn, ex, failure, now).await?;
                                return Ok(());
                            }
                        },
                    };
                    ex.phase = Phase::Waiting;
                    ex.timer_kind = Some(TimerKind::Wait);
                    ex.timer_due_at = Some(due);
                    ex.timer_output = Some(output);
                    ex.timer_next = match next {
                        Next::State(s) => Some(s),
                        Next::End => None,
                    };
                }
                Action::Invoke {
                    resource,
                    parameters,
                    wait_for_token,
                    timeout_seconds,
                    heartbeat_seconds,
                } => {
                    if crate::engine::is_activity(&resource) {
                        // No handler: the task waits for a worker's GetActivityTask.
                        let activity = Some((resource.clone(), parameters));
                        let times = (timeout_seconds, heartbeat_seconds);
                        await_token(conn, ex, ctx, state_input, resource, activity, times, now)
                            .await?;
                        return Ok(());
                    }
                    let started = HistoryEvent::task_started(&resource);
                    store::append_event(conn, ex, started.kind, &started.details, now).await?;
                    let call = TaskCall {
                        execution_id: ex.id.clone(),
                        state_machine: ex.state_machine.clone(),
                        state_name: ctx.state_name.clone(),
                        resource: handler_name(&resource).to_string(),
                        parameters,
                        task_token: ctx.task_token.clone().filter(|_| wait_for_token),
                    };
                    let result = self.invoke(conn, call).await?;
                    step = match result {
                        Ok(output) if wait_for_token => {
                            let submitted = HistoryEvent::task_submitted(&resource, &output);
                            let details = &submitted.details;
                            store::append_event(conn, ex, submitted.kind, details, now).await?;
                            let times = (timeout_seconds, heartbeat_seconds);
                            await_token(conn, ex, ctx, state_input, resource, None, times, now)
                                .await?;
                            return Ok(());
                        }
                        Ok(output) => {
                            machine.task_succeeded(&ctx.state_name, state_input, output, ctx)
                        }
                        Err(failure) => {
                            match self
                                .task_failure(conn, ex, machine, ctx, &resource, failure, now)
                                .await?
                            {
                                Some(step) => step,
                                None => return Ok(()),
                            }
                        }
                    };
                    continue;
                }
            }
            return Ok(());
        }
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
        let mut task = store::load_token(conn, token)
            .await?
            .ok_or(CallbackError::TaskDoesNotExist)?;
        if task.status != "pending" {
            return Err(CallbackError::TaskTimedOut);
        }
        let Some(seconds) = task.heartbeat_seconds else {
            return Ok(());
        };
        let at = seconds_from_now(seconds);
        store::set_heartbeat(conn, token, &at).await?;
        task.heartbeat_at = Some(at);
        if let Some(mut ex) = store::load_execution(conn, &task.execution_id).await? {
            ex.timer_kind = Some(TimerKind::TaskTimeout);
            ex.timer_due_at = task.deadline();
            store::save_execution(conn, &mut ex).await?;
        }
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
        let now = db::now();
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
        let waiting_here = ex.status == RUNNING
            && ex.phase == Phase::Waiting
            && ex.current_state.as_deref() == Some(task.state_name.as_str());
        if !waiting_here {
            return Err(CallbackError::TaskTimedOut);
        }
        let root = self.definition(conn, ex.definition_id).await?;
        let machine = root.sub(&ex.scope).ok_or(CallbackError::TaskDoesNotExist)?;
        let ctx = context(&ex, &task.state_name, &now);
        ex.timer_kind = None;
        ex.timer_due_at = None;
        let step = match result {
            Ok(output) => {
                Some(machine.task_succeeded(&task.state_name, &task.state_input, output, &ctx))
            }
            Err(failure) => {
                self.task_failure(conn, &mut ex, machine, &ctx, &task.resource, failure, &now)
                    .await?
            }
        };
        if let Some(step) = step {
            self.apply(conn, &mut ex, machine, &ctx, &task.state_input, step, &now)
                .await?;
        }
        store::save_execution(conn, &mut ex).await?;
        self.settle(conn, &ex, &now).await?;
        let mut now_stands = outcome(&ex);
        let id = ex.id.clone();
        if now_stands == StepOutcome::Ready {
            now_stands = self
                .advance_kept(conn, &id, Some(ex), super::INLINE_STEPS)
                .await?;
        }
        Ok((id, now_stands))
    }
}

/// Counts a retry under rule `retrier` and arms the back-off timer that runs the state again.
fn schedule_retry(ex: &mut Execution, retrier: usize, delay_ms: u64) {
    if ex.retry_counts.len() <= retrier {
        ex.retry_counts.resize(retrier + 1, 0);
    }
    ex.retry_counts[retrier] += 1;
    ex.phase = Phase::Waiting;
    ex.timer_kind = Some(TimerKind::Retry);
    ex.timer_due_at = Some(from_now(time::Duration::milliseconds(
        i64::try_from(delay_ms).unwrap_or(i64::MAX),
    )));
}

/// A branch run starts: `MapIterationStarted` for a Map iteration, and it becomes ready.
async fn start_branch(
    conn: &mut SqliteConnection,
    child: &mut Execution,
    progress: &ForkProgress,
    now: &str,
) -> Result<(), sqlx::Error> {
    if child.root_id.is_none() {
        // An iteration of a distributed Map: an execution of its own.
        let details = json!({
            "input": child.input.to_string(),
            "inputDetails": { "truncated": false },
            "roleArn": child.role_arn.clone().unwrap_or_else(super::role_arn),
        });
        store::append_event(conn, child, EventType::ExecutionStarted, &details, now).await?;
    } else if progress.map {
        let details = json!({
            "name": child.scope.last().map(|(s, _)| s.as_str()).unwrap_or_default(),
            "index": child.iteration,
        });
        store::append_event(conn, child, EventType::MapIterationStarted, &details, now).await?;
    }
    child.phase = Phase::Ready;
    Ok(())
}

/// A branch run ended: a Map iteration records `kind` (MapIteration…Succeeded, …Failed or
/// …Aborted); an iteration of a distributed Map ends its own history with the matching
/// Execution… event and `outcome` as its details; a Parallel branch records nothing of its own.
async fn branch_ended(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    kind: EventType,
    outcome: Value,
    now: &str,
) -> Result<(), sqlx::Error> {
    if ex.root_id.is_none() {
        let kind = match kind {
            EventType::MapIterationSucceeded => EventType::ExecutionSucceeded,
            EventType::MapIterationFailed => EventType::ExecutionFailed,
            _ => EventType::ExecutionAborted,
        };
        store::append_event(conn, ex, kind, &outcome, now).await?;
    } else if ex.iteration.is_some() {
        let details = json!({
            "name": ex.scope.last().map(|(s, _)| s.as_str()).unwrap_or_default(),
            "index": ex.iteration,
        });
        store::append_event(conn, ex, kind, &details, now).await?;
    }
    Ok(())
}

fn outcome(ex: &Execution) -> StepOutcome {
    match ex.phase {
        Phase::Ready => StepOutcome::Ready,
        Phase::Waiting | Phase::Queued => StepOutcome::Waiting,
        Phase::Done => StepOutcome::Finished,
    }
}

/// The stored time `delay` from now; delays past the year 9999 saturate there.
fn from_now(delay: time::Duration) -> String {
    time::OffsetDateTime::now_utc()
        .checked_add(delay)
        .filter(|t| t.year() <= 9999)
        .map(db::format_time)
        .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_string())
}

pub(super) fn seconds_from_now(seconds: u64) -> String {
    from_now(time::Duration::seconds(
        i64::try_from(seconds).unwrap_or(i64::MAX),
    ))
}

/// A uniform value in [0, 1) for `JitterStrategy: FULL`.
fn jitter() -> f64 {
    use rand::Rng;
    rand::thread_rng().gen::<f64>()
}

/// The `$$` context for running `state_name` of `ex`.
fn context(ex: &Execution, state_name: &str, now: &str) -> Context {
    Context {
        execution_id: ex.id.clone(),
        execution_name: ex.name.clone(),
        execution_input: ex.input.clone(),
        execution_start_time: ex.started_at.clone(),
        state_machine_id: format!(
            "arn:aws:states:{}:{}:stateMachine:{}",
            super::REGION,
            super::ACCOUNT,
            ex.state_machine
        ),
        state_machine_name: ex.state_machine.clone(),
        state_name: state_name.to_string(),
        state_entered_time: now.to_string(),
        task_token: None,
        random_seed: rand::random(),
        retry_count: ex.retry_counts.iter().sum(),
        role_arn: ex.role_arn.clone().unwrap_or_else(super::role_arn),
        variables: ex.visible_variables(),
        entered_event_id: ex.entered_event_id,
    }
}

/// The handler a Task's `Resource` names: the resource without its `.waitForTaskToken` suffix.
pub(super) fn handler_name(resource: &str) -> &str {
    resource
        .strip_suffix(".waitForTaskToken")
        .unwrap_or(resource)
}

/// The execution waits for its task token to come back (SendTaskSuccess/Failure), with
/// `TimeoutSeconds` and `HeartbeatSeconds` as `times`; an activity task also waits for a worker.
#[allow(clippy::too_many_arguments)]
async fn await_token(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    ctx: &Context,
    state_input: &Value,
    resource: String,
    activity: Option<(String, Value)>,
    (timeout_seconds, heartbeat_seconds): (Option<u64>, Option<u64>),
    now: &str,
) -> Result<(), sqlx::Error> {
    let token = ctx.task_token.clone().unwrap_or_else(new_token);
    let pending = PendingTask {
        execution_id: ex.id.clone(),
        state_name: ctx.state_name.clone(),
        state_input: state_input.clone(),
        resource,
        status: "pending".into(),
        timeout_at: timeout_seconds.map(seconds_from_now),
        heartbeat_seconds,
        heartbeat_at: heartbeat_seconds.map(seconds_from_now),
        activity,
    };
    store::insert_token(conn, &token, &pending, now).await?;
    ex.phase = Phase::Waiting;
    ex.timer_due_at = pending.deadline();
    ex.timer_kind = ex.timer_due_at.as_ref().map(|_| TimerKind::TaskTimeout);
    Ok(())
}

/// Leaves the current state for `next`, or ends the execution successfully. An output over
/// the payload limit fails the execution with `States.DataLimitExceeded`, as on AWS.
async fn transition(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    output: Value,
    next: Next,
    now: &str,
) -> Result<(), sqlx::Error> {
    if let Some(failure) = Failure::over_payload_limit(&output) {
        return fail(conn, ex, failure, now).await;
    }
    match next {
        Next::State(state) => {
            ex.current_state = Some(state);
            ex.state_input = Some(output);
            ex.phase = Phase::Ready;
            ex.retry_counts.clear();
        }
        Next::End => {
            let details = json!({
                "output": output.to_string(),
                "outputDetails": { "truncated": false },
            });
            if ex.parent_id.is_some() {
                branch_ended(conn, ex, EventType::MapIterationSucceeded, details, now).await?;
            } else {
                store::append_event(conn, ex, EventType::ExecutionSucceeded, &details, now).await?;
            }
            ex.status = SUCCEEDED.to_string();
            ex.phase = Phase::Done;
            ex.output = Some(output);
            ex.stopped_at = Some(now.to_string());
        }
    }
    Ok(())
}

/// The definition's TimeoutSeconds ran out: the execution ends as TIMED_OUT and any pending
/// callback token stops working.
async fn time_out_execution(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    now: &str,
) -> Result<(), sqlx::Error> {
    store::cancel_tokens(conn, &ex.id, now).await?;
    store::abort_below(conn, &ex.id, None, now).await?;
    ex.fork = None;
    let details = json!({
        "error": "States.Timeout",
        "cause": "The execution ran longer than the state machine's TimeoutSeconds",
    });
    store::append_event(conn, ex, EventType::ExecutionTimedOut, &details, now).await?;
    ex.status = TIMED_OUT.to_string();
    ex.phase = Phase::Done;
    ex.timer_kind = None;
    ex.timer_due_at = None;
    ex.error = Some("States.Timeout".into());
    ex.stopped_at = Some(now.to_string());
    Ok(())
}

/// Ends the execution as failed.
async fn fail(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    failure: Failure,
    now: &str,
) -> Result<(), sqlx::Error> {
    store::cancel_tokens(conn, &ex.id, now).await?;
    store::abort_below(conn, &ex.id, None, now).await?;
    ex.fork = None;
    // AWS leaves out an error or cause that the failure does not have.
    let mut details = json!({});
    for (key, text) in [("error", &failure.error), ("cause", &failure.cause)] {
        if !text.is_empty() {
            details[key] = json!(text);
        }
    }
    if ex.parent_id.is_some() {
        branch_ended(conn, ex, EventType::MapIterationFailed, details, now).await?;
    } else {
        store::append_event(conn, ex, EventType::ExecutionFailed, &details, now).await?;
    }
    ex.status = FAILED.to_string();
    ex.phase = Phase::Done;
    ex.error = Some(failure.error).filter(|e| !e.is_empty());
    ex.cause = Some(failure.cause).filter(|c| !c.is_empty());
    ex.stopped_at = Some(now.to_string());
    Ok(())
}
