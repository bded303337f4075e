//! The execution lifecycle, decided without I/O: given a state machine, an execution's record
//! and what happened (a step to run, a task's result, a token's answer, a timer, a stop), change
//! the record and return the [`Effect`]s the runtime must perform — events to append, a task
//! handler to call, a token to issue or expire, branch runs to start or abort, the end to
//! report. Time, randomness and new task tokens come in through [`Env`]; nothing here reads a
//! clock, a random generator or a database.

use super::definition::StateMachine;
use super::events::{is_activity, EventType, HistoryEvent};
use super::retry::{decide_retry, RetryDecision};
use super::step::{Action, Branch, Context, Failure, Next, Step, Tolerance, WaitUntil};
use super::timestamp::{after, format_time, parse_time, seconds_after};
use crate::model::ExecutionStatus;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Region and account in the ARNs we hand out, as AWS shapes them.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// AWS's limit on events in one execution's history; past it the execution fails.
pub const MAX_HISTORY_EVENTS: i64 = 25_000;

/// The role executions run as (`$$.Execution.RoleArn`) when their machine names none;
/// orderflow has no IAM, so it is fixed.
pub fn default_role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/orderflow")
}

/// The handler a Task's `Resource` names: the resource without its `.waitForTaskToken` suffix.
pub fn handler_name(resource: &str) -> &str {
    resource
        .strip_suffix(".waitForTaskToken")
        .unwrap_or(resource)
}

/// What happens next with an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Run `current_state` on `state_input` (or join its branches, when `fork` is set).
    Ready,
    /// Paused on a task token, a timer or its branches.
    Waiting,
    /// A branch run waiting for a free slot under MaxConcurrency.
    Queued,
    /// Ended.
    Done,
}

impl Phase {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Waiting => "waiting",
            Phase::Queued => "queued",
            Phase::Done => "done",
        }
    }

    /// Reads the stored spelling; anything unknown is an ended execution.
    pub fn parse(s: &str) -> Phase {
        match s {
            "ready" => Phase::Ready,
            "waiting" => Phase::Waiting,
            "queued" => Phase::Queued,
            _ => Phase::Done,
        }
    }
}

/// What a durable timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// A Wait state: go on to `timer_next` with `timer_output`.
    Wait,
    /// Run the current state again (Retry back-off).
    Retry,
    /// The pending callback's TimeoutSeconds or HeartbeatSeconds.
    TaskTimeout,
}

impl TimerKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Wait => "wait",
            TimerKind::Retry => "retry",
            TimerKind::TaskTimeout => "task_timeout",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<TimerKind> {
        match s {
            "wait" => Some(TimerKind::Wait),
            "retry" => Some(TimerKind::Retry),
            "task_timeout" => Some(TimerKind::TaskTimeout),
            _ => None,
        }
    }
}

/// How far the branches of a waiting Parallel or Map state have got.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForkProgress {
    /// The branch runs' `fork_key`.
    pub key: String,
    pub total: usize,
    /// Branch runs started so far (the rest are queued).
    pub started: usize,
    pub finished: usize,
    pub failed: usize,
    /// Most branch runs at a time (0: no limit).
    pub max_concurrency: usize,
    pub tolerance: ToleranceJson,
    pub map: bool,
    /// Set when the state must fail; the remaining branches are aborted.
    pub failure: Option<Failure>,
}

/// `Tolerance`, stored.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ToleranceJson {
    pub count: Option<u64>,
    pub percentage: Option<f64>,
}

impl From<Tolerance> for ToleranceJson {
    fn from(t: Tolerance) -> ToleranceJson {
        ToleranceJson {
            count: t.count,
            percentage: t.percentage,
        }
    }
}

impl From<ToleranceJson> for Tolerance {
    fn from(t: ToleranceJson) -> Tolerance {
        Tolerance {
            count: t.count,
            percentage: t.percentage,
        }
    }
}

/// A callback the execution waits for, as stored with its token.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTask {
    pub execution_id: String,
    pub state_name: String,
    pub state_input: Value,
    pub resource: String,
    pub status: String,
    /// TimeoutSeconds deadline.
    pub timeout_at: Option<String>,
    pub heartbeat_seconds: Option<u64>,
    /// Deadline for the next heartbeat.
    pub heartbeat_at: Option<String>,
    /// For an activity task: its activity's ARN and the input its worker gets.
    pub activity: Option<(String, Value)>,
}

impl PendingTask {
    /// The earlier of the timeout and heartbeat deadlines.
    pub fn deadline(&self) -> Option<String> {
        match (&self.timeout_at, &self.heartbeat_at) {
            (Some(a), Some(b)) => Some(a.min(b).clone()),
            (a, b) => a.clone().or_else(|| b.clone()),
        }
    }
}

/// A task handler call in flight: what the record needs to go on when its result comes back.
/// Never stored — the handler runs within the step that asked for it.
#[derive(Debug, Clone)]
pub struct Invoking {
    ctx: Context,
    state_input: Value,
    resource: String,
    wait_for_token: bool,
    timeout_seconds: Option<u64>,
    heartbeat_seconds: Option<u64>,
}

/// The lifecycle's view of one execution or branch run: everything the engine decides on.
/// The runtime keeps it in its row (plus what only storage needs).
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    pub id: String,
    pub name: String,
    pub state_machine: String,
    pub status: ExecutionStatus,
    pub phase: Phase,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub current_state: Option<String>,
    pub state_input: Option<Value>,
    pub timer_kind: Option<TimerKind>,
    pub timer_due_at: Option<String>,
    pub timer_output: Option<Value>,
    /// What the waiting Wait state's `Assign` set, applied when the timer fires.
    pub timer_assigned: Option<Map<String, Value>>,
    /// Where a Wait goes when its timer fires; `None` with a due time means the Wait ends the
    /// execution.
    pub timer_next: Option<String>,
    /// Retries each Retry rule of the current state has made since it was entered.
    pub retry_counts: Vec<u64>,
    pub started_at: String,
    /// When the definition's TimeoutSeconds runs out.
    pub deadline_at: Option<String>,
    pub stopped_at: Option<String>,
    /// Set on the branch runs of Parallel and Map states.
    pub parent_id: Option<String>,
    /// The top-level execution whose history a branch run writes to; `None` for a top-level
    /// execution and for an iteration of a distributed Map (an execution of its own).
    pub root_id: Option<String>,
    /// The (state, branch) path from the definition's top to the machine this run runs.
    pub scope: Vec<(String, usize)>,
    pub fork_key: Option<String>,
    pub branch_index: Option<i64>,
    /// A Map iteration's index (not set on Parallel branches).
    pub iteration: Option<i64>,
    /// The id of this run's last event in its history.
    pub last_event_id: i64,
    /// The current state's `…StateEntered` event.
    pub entered_event_id: Option<i64>,
    /// The role its state machine was given, when it started (`$$.Execution.RoleArn`).
    pub role_arn: Option<String>,
    /// While the current Parallel or Map state waits for its branches.
    pub fork: Option<ForkProgress>,
    /// Workflow variables this run assigned.
    pub variables: Map<String, Value>,
    /// A branch run's view of the enclosing scopes' variables.
    pub outer_variables: Map<String, Value>,
    /// A task handler this step is running (see [`Invoking`]).
    pub invoking: Option<Invoking>,
}

impl ExecutionRecord {
    /// A new running top-level execution about to run `start_at`; a branch run once the
    /// `parent_id` etc. are set.
    pub fn new(
        id: String,
        name: String,
        state_machine: String,
        start_at: &str,
        input: Value,
        now: &str,
    ) -> ExecutionRecord {
        ExecutionRecord {
            id,
            name,
            state_machine,
            status: ExecutionStatus::Running,
            phase: Phase::Ready,
            input: input.clone(),
            output: None,
            error: None,
            cause: None,
            current_state: Some(start_at.to_string()),
            state_input: Some(input),
            timer_kind: None,
            timer_due_at: None,
            timer_output: None,
            timer_assigned: None,
            timer_next: None,
            retry_counts: Vec::new(),
            started_at: now.to_string(),
            deadline_at: None,
            stopped_at: None,
            parent_id: None,
            root_id: None,
            scope: Vec::new(),
            fork_key: None,
            branch_index: None,
            iteration: None,
            last_event_id: 0,
            entered_event_id: None,
            role_arn: None,
            fork: None,
            variables: Map::new(),
            outer_variables: Map::new(),
            invoking: None,
        }
    }

    /// Every variable this run can read: the enclosing scopes', then its own.
    pub fn visible_variables(&self) -> Map<String, Value> {
        let mut all = self.outer_variables.clone();
        all.extend(self.variables.clone());
        all
    }

    /// The top-level execution whose history this run writes to.
    pub fn history_id(&self) -> &str {
        self.root_id.as_deref().unwrap_or(&self.id)
    }

    /// True when the next [`Input::Run`] enters a state, and so needs
    /// [`Env::next_event_id`] for its `…StateEntered` event.
    pub fn enters_a_state(&self) -> bool {
        self.status == ExecutionStatus::Running && self.phase == Phase::Ready && self.fork.is_none()
    }

    /// True when an [`Input::Run`] at `now` has something to do: the execution is running
    /// and ready, its timer is due, or its deadline has passed.
    pub fn has_work_at(&self, now: &str) -> bool {
        if self.status != ExecutionStatus::Running {
            return false;
        }
        if self.deadline_at.as_deref().is_some_and(|d| d <= now) {
            return true;
        }
        match self.phase {
            Phase::Done | Phase::Queued => false,
            Phase::Waiting => self.timer_due_at.as_deref().is_some_and(|due| due <= now),
            Phase::Ready => true,
        }
    }

    /// True when the execution waits in a Parallel or Map state for the branch runs of
    /// `fork_key`.
    pub fn awaits_branch_of(&self, fork_key: Option<&str>) -> bool {
        let waits_for = self.fork.as_ref().map(|f| f.key.as_str());
        self.status == ExecutionStatus::Running && waits_for.is_some() && waits_for == fork_key
    }

    /// True when the execution waits for the answer to a task token in `state`.
    pub fn awaits_token_in(&self, state: &str) -> bool {
        self.status == ExecutionStatus::Running
            && self.phase == Phase::Waiting
            && self.current_state.as_deref() == Some(state)
    }
}

/// What the runtime gives a decision from the world outside: the time, randomness, a fresh
/// task token (used only if a state needs one) and the id the next appended event will get.
#[derive(Debug, Clone)]
pub struct Env {
    pub now: OffsetDateTime,
    /// Seeds `$$`'s random functions (`States.UUID`, …) and Retry's `JitterStrategy: FULL`.
    pub seed: u64,
    /// A fresh task token, in case the state run issues one.
    pub token: String,
    /// The id of the next event of the history, for a step that enters a state.
    pub next_event_id: Option<i64>,
    /// A fresh random value, for names that must never repeat (the key of a fork).
    pub unique: u128,
    stamp: String,
}

impl Env {
    pub fn new(
        now: OffsetDateTime,
        seed: u64,
        token: String,
        next_event_id: Option<i64>,
        unique: u128,
    ) -> Env {
        Env {
            now,
            seed,
            token,
            next_event_id,
            unique,
            stamp: format_time(now),
        }
    }

    /// `now` as stored.
    pub fn stamp(&self) -> &str {
        &self.stamp
    }

    /// A uniform value in [0, 1) for `JitterStrategy: FULL`, drawn from the seed (but not
    /// equal to what `$$` sees of it).
    fn jitter(&self) -> f64 {
        let mut z = self.seed ^ 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What happened to an execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The execution was just created: its history starts.
    Start,
    /// Run one step: the current state, a due timer, or the join of its branches.
    Run,
    /// The handler an [`Effect::Invoke`] called returned.
    TaskReturned(Result<Value, Failure>),
    /// The answer to [`Effect::ExpireToken`]: the pending callback, consumed as timed out
    /// (`None`: nothing was pending).
    TokenExpired(Option<PendingTask>),
    /// SendTaskSuccess/SendTaskFailure consumed the token of `task`.
    TokenReturned {
        task: PendingTask,
        result: Result<Value, Failure>,
    },
    /// SendTaskHeartbeat for the pending `task` of `token`.
    Heartbeat { token: String, task: PendingTask },
    /// The answer to [`Effect::CollectOutputs`]: the branch runs' results in branch order.
    BranchOutputs(Vec<Value>),
    /// One of the branch runs of the Parallel or Map state this execution waits in ended
    /// (given to the waiting execution).
    BranchEnded {
        fork_key: Option<String>,
        succeeded: bool,
        error: Option<String>,
        cause: Option<String>,
    },
    /// The run's Parallel or Map state aborts it (given to the branch run; the runtime then
    /// aborts it and everything below it).
    AbortedByParent,
    /// StopExecution.
    Stop { error: String, cause: String },
    /// The effects of this step are performed: enforce the history limit.
    EndOfStep,
}

/// What the runtime must perform, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append an event to this run's history.
    Append(HistoryEvent),
    /// Call the handler of `resource` (a handler name); answer with [`Input::TaskReturned`].
    Invoke {
        state_name: String,
        resource: String,
        parameters: Value,
        task_token: Option<String>,
    },
    /// Store `token` for the pending `task`.
    AwaitToken {
        token: String,
        task: Box<PendingTask>,
    },
    /// Consume this run's pending token as timed out; answer with [`Input::TokenExpired`].
    ExpireToken,
    /// Move the heartbeat deadline of pending `token` to `at`.
    SetHeartbeat { token: String, at: String },
    /// Cancel this run's pending tokens.
    CloseTokens,
    /// Abort every unfinished run below this one (or only the branch runs of `fork_key`, and
    /// theirs), cancelling their tokens. With `say_so`, each branch run of `fork_key` still
    /// running is first given [`Input::AbortedByParent`].
    AbortBranches {
        fork_key: Option<String>,
        say_so: bool,
    },
    /// Store the branch runs of the current Parallel or Map state (their events numbered in
    /// this execution's history from now on).
    StartBranches { runs: Vec<NewRun> },
    /// Give queued branch run `index` of `fork_key` its [`Input::Start`].
    StartQueued { fork_key: String, index: usize },
    /// Other runs became ready: the worker should look for work.
    Wake,
    /// Read the results of the branch runs of `fork_key`; answer with [`Input::BranchOutputs`].
    CollectOutputs { fork_key: String },
    /// The run ended: its owner's hook runs (top-level), its Parallel or Map state is told
    /// (a branch run).
    Ended {
        status: ExecutionStatus,
        error: Option<String>,
        cause: Option<String>,
    },
}

/// A branch run a fork creates, with the events it starts with when it starts at once.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub record: ExecutionRecord,
    pub events: Vec<HistoryEvent>,
}

impl PartialEq for NewRun {
    fn eq(&self, other: &NewRun) -> bool {
        self.record.id == other.record.id && self.events == other.events
    }
}

/// Applies `input` to the execution `rec` at `env`: changes the record and returns what the
/// runtime must perform. `machine` is the machine the run's scope runs; `None` when the
/// definition lacks it, which fails the run (a stop or a heartbeat needs no machine).
pub fn apply(
    machine: Option<&StateMachine>,
    rec: &mut ExecutionRecord,
    input: Input,
    env: &Env,
) -> Vec<Effect> {
    let mut out = Vec::new();
    match input {
        Input::Start if rec.parent_id.is_some() => {
            rec.phase = Phase::Ready;
            out.extend(branch_started(rec).map(Effect::Append));
        }
        Input::BranchEnded {
            fork_key,
            succeeded,
            error,
            cause,
        } => {
            if rec.awaits_branch_of(fork_key.as_deref()) {
                branch_ended_in_fork(rec, succeeded, error, cause, &mut out);
            }
        }
        Input::AbortedByParent => {
            let aborted = branch_ended(rec, EventType::MapIterationAborted, json!({}));
            out.extend(aborted.map(Effect::Append));
        }
        Input::Stop { error, cause } => stop(rec, &error, &cause, env, &mut out),
        Input::Heartbeat { token, mut task } => {
            if let Some(seconds) = task.heartbeat_seconds {
                let at = seconds_after(env.now, seconds);
                task.heartbeat_at = Some(at.clone());
                out.push(Effect::SetHeartbeat { token, at });
                rec.timer_kind = Some(TimerKind::TaskTimeout);
                rec.timer_due_at = task.deadline();
            }
        }
        Input::EndOfStep => {
            if rec.status == ExecutionStatus::Running && rec.last_event_id >= MAX_HISTORY_EVENTS {
                let failure = Failure {
                    error: "States.Runtime".into(),
                    cause: format!(
                        "The execution reached the limit of {MAX_HISTORY_EVENTS} history events"
                    ),
                };
                fail(rec, failure, env, &mut out);
            }
        }
        Input::TokenExpired(None) => {}
        Input::Run if rec.status != ExecutionStatus::Running => {}
        input => match machine {
            Some(machine) => apply_to_state(machine, rec, input, env, &mut out),
            None => {
                let failure = Failure {
                    error: "States.Runtime".into(),
                    cause: "The branch's state machine is missing from the definition".into(),
                };
                fail(rec, failure, env, &mut out);
            }
        },
    }
    out
}

/// The inputs that concern the current state of `machine`.
fn apply_to_state(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    input: Input,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    match input {
        Input::Start => start(rec, machine, env, out),
        Input::Run => run(machine, rec, env, out),
        Input::TaskReturned(result) => task_returned(machine, rec, result, env, out),
        Input::TokenExpired(Some(task)) => token_expired(machine, rec, task, env, out),
        Input::TokenReturned { task, result } => {
            let ctx = context(rec, &task.state_name, env);
            rec.timer_kind = None;
            rec.timer_due_at = None;
            let step = match result {
                Ok(output) => {
                    Some(machine.task_succeeded(&task.state_name, &task.state_input, output, &ctx))
                }
                Err(failure) => task_failure(machine, rec, &ctx, &task.resource, failure, env, out),
            };
            if let Some(step) = step {
                perform(machine, rec, &ctx, &task.state_input, step, env, out);
            }
        }
        Input::BranchOutputs(outputs) => {
            let state_name = rec.current_state.clone().unwrap_or_default();
            let input = rec.state_input.clone().unwrap_or(Value::Null);
            let ctx = context(rec, &state_name, env);
            let step = machine.fork_succeeded(&state_name, &input, outputs, &ctx);
            perform(machine, rec, &ctx, &input, step, env, out);
        }
        Input::Stop { .. }
        | Input::Heartbeat { .. }
        | Input::EndOfStep
        | Input::TokenExpired(None)
        | Input::BranchEnded { .. }
        | Input::AbortedByParent => {}
    }
}

/// The execution starts: `ExecutionStarted`, and the definition's TimeoutSeconds begins.
fn start(rec: &mut ExecutionRecord, machine: &StateMachine, env: &Env, out: &mut Vec<Effect>) {
    rec.deadline_at = machine.timeout_seconds().map(|s| seconds_after(env.now, s));
    out.push(Effect::Append(HistoryEvent {
        kind: EventType::ExecutionStarted,
        details: json!({
            "input": rec.input.to_string(),
            "inputDetails": { "truncated": false },
            "roleArn": rec.role_arn.clone().unwrap_or_else(default_role_arn),
        }),
    }));
}

/// One step: the execution's deadline, a due timer, the join of its branches, or its state.
fn run(machine: &StateMachine, rec: &mut ExecutionRecord, env: &Env, out: &mut Vec<Effect>) {
    if !rec.has_work_at(env.stamp()) {
        return;
    }
    if rec.deadline_at.as_deref().is_some_and(|d| d <= env.stamp()) {
        time_out_execution(rec, env, out);
        return;
    }
    match rec.phase {
        Phase::Done | Phase::Queued => {}
        Phase::Waiting => match rec.timer_kind.take().unwrap_or(TimerKind::Wait) {
            TimerKind::Wait => fire_timer(rec, env, out),
            TimerKind::Retry => {
                rec.timer_due_at = None;
                run_state(machine, rec, env, true, out);
            }
            TimerKind::TaskTimeout => {
                rec.timer_due_at = None;
                out.push(Effect::ExpireToken);
            }
        },
        Phase::Ready if rec.fork.is_some() => join(machine, rec, env, out),
        Phase::Ready => run_state(machine, rec, env, false, out),
    }
}

/// Runs the current state. On a retry the state was never left, so its `…StateEntered`
/// event is not repeated.
fn run_state(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    env: &Env,
    retrying: bool,
    out: &mut Vec<Effect>,
) {
    let state_name = rec.current_state.clone().unwrap_or_default();
    let input = rec.state_input.clone().unwrap_or(Value::Null);
    let mut ctx = context(rec, &state_name, env);
    if !retrying {
        // The state's …StateEntered event is the first this step appends.
        ctx.entered_event_id = env.next_event_id;
    }
    let step = match machine.state(&state_name) {
        Some(state) => {
            if state.needs_task_token() {
                ctx.task_token = Some(env.token.clone());
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
    perform(machine, rec, &ctx, &input, step, env, out);
}

/// Every branch has ended, or one failure ends the state: gather the outputs (or apply Retry
/// and Catch to the failure) and leave the Parallel or Map state.
fn join(machine: &StateMachine, rec: &mut ExecutionRecord, env: &Env, out: &mut Vec<Effect>) {
    let Some(progress) = rec.fork.take() else {
        return;
    };
    let Some(failure) = progress.failure else {
        out.push(Effect::CollectOutputs {
            fork_key: progress.key,
        });
        return;
    };
    let state_name = rec.current_state.clone().unwrap_or_default();
    let input = rec.state_input.clone().unwrap_or(Value::Null);
    let ctx = context(rec, &state_name, env);
    let decision = match machine.state(&state_name) {
        Some(state) => decide_retry(state, &failure.error, &rec.retry_counts, env.jitter()),
        None => RetryDecision::GiveUp,
    };
    if let RetryDecision::Retry { retrier, delay_ms } = decision {
        schedule_retry(rec, retrier, delay_ms, env);
        return;
    }
    let step = machine.fork_failed(&state_name, &input, failure, &ctx);
    perform(machine, rec, &ctx, &input, step, env, out);
}

/// The handler of the task in flight returned.
fn task_returned(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    result: Result<Value, Failure>,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    let Some(call) = rec.invoking.take() else {
        return;
    };
    let ctx = &call.ctx;
    let state_input = &call.state_input;
    let step = match result {
        Ok(output) if call.wait_for_token => {
            out.push(Effect::Append(HistoryEvent::task_submitted(
                &call.resource,
                &output,
            )));
            let times = (call.timeout_seconds, call.heartbeat_seconds);
            await_token(
                rec,
                ctx,
                state_input,
                call.resource.clone(),
                None,
                times,
                env,
                out,
            );
            return;
        }
        Ok(output) => machine.task_succeeded(&ctx.state_name, state_input, output, ctx),
        Err(failure) => match task_failure(machine, rec, ctx, &call.resource, failure, env, out) {
            Some(step) => step,
            None => return,
        },
    };
    perform(machine, rec, ctx, state_input, step, env, out);
}

/// The pending callback's TimeoutSeconds or HeartbeatSeconds passed (its token is consumed):
/// the task fails with `States.Timeout` or `States.HeartbeatTimeout`.
fn token_expired(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    task: PendingTask,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    let now = env.stamp();
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
    let ctx = context(rec, &task.state_name, env);
    if let Some(step) = task_failure(machine, rec, &ctx, &task.resource, failure, env, out) {
        perform(machine, rec, &ctx, &task.state_input, step, env, out);
    }
}

/// A task failed (handler error, SendTaskFailure or timeout): schedule a retry if a Retry rule
/// says so and return None, or return the engine's Catch/fail step. A timeout is recorded as
/// `TaskTimedOut`, not `TaskFailed`.
fn task_failure(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    ctx: &Context,
    resource: &str,
    failure: Failure,
    env: &Env,
    out: &mut Vec<Effect>,
) -> Option<Step> {
    let state_input = rec.state_input.clone().unwrap_or(Value::Null);
    let timed_out = matches!(
        failure.error.as_str(),
        "States.Timeout" | "States.HeartbeatTimeout"
    );
    let decision = match machine.state(&ctx.state_name) {
        Some(state) => decide_retry(state, &failure.error, &rec.retry_counts, env.jitter()),
        None => RetryDecision::GiveUp,
    };
    let mut step = match decision {
        RetryDecision::Retry { retrier, delay_ms } => {
            let mut event = HistoryEvent::task_failed(resource, &failure.error, &failure.cause);
            if timed_out {
                event.kind = EventType::TaskTimedOut;
            }
            out.push(Effect::Append(event));
            schedule_retry(rec, retrier, delay_ms, env);
            return None;
        }
        RetryDecision::GiveUp => machine.task_failed(&ctx.state_name, &state_input, failure, ctx),
    };
    if timed_out {
        for event in &mut step.events {
            if event.kind == EventType::TaskFailed {
                event.kind = EventType::TaskTimedOut;
            }
        }
    }
    Some(step)
}

/// Counts a retry under rule `retrier` and arms the back-off timer that runs the state again.
fn schedule_retry(rec: &mut ExecutionRecord, retrier: usize, delay_ms: u64, env: &Env) {
    if rec.retry_counts.len() <= retrier {
        rec.retry_counts.resize(retrier + 1, 0);
    }
    rec.retry_counts[retrier] += 1;
    rec.phase = Phase::Waiting;
    rec.timer_kind = Some(TimerKind::Retry);
    rec.timer_due_at = Some(after(
        env.now,
        time::Duration::milliseconds(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
    ));
}

/// The Wait state's timer is due: leave the state and move on.
fn fire_timer(rec: &mut ExecutionRecord, env: &Env, out: &mut Vec<Effect>) {
    let output = rec.timer_output.take().unwrap_or(Value::Null);
    let name = rec.current_state.clone().unwrap_or_default();
    let mut exited = HistoryEvent::exited(EventType::WaitStateExited, &name, &output);
    if let Some(assigned) = rec.timer_assigned.take() {
        exited.show_assigned(&assigned);
        rec.variables.extend(assigned);
    }
    out.push(Effect::Append(exited));
    let next = match rec.timer_next.take() {
        Some(state) => Next::State(state),
        None => Next::End,
    };
    rec.timer_due_at = None;
    transition(rec, output, next, env, out);
}

/// Records a step's events and performs its action: a transition, a failure, a fork, a timer,
/// or a task (whose result comes back as [`Input::TaskReturned`]).
fn perform(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    ctx: &Context,
    state_input: &Value,
    mut step: Step,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    out.extend(step.events.into_iter().map(Effect::Append));
    if let Some(assigned) = step.assigned.take() {
        // A Wait's assignments take effect when it is left.
        if matches!(step.action, Action::Wait { .. }) {
            rec.timer_assigned = Some(assigned);
        } else {
            rec.variables.extend(assigned);
        }
    }
    match step.action {
        Action::Transition { output, next } => transition(rec, output, next, env, out),
        Action::Fail(failure) => fail(rec, failure, env, out),
        Action::Fork {
            branches,
            max_concurrency,
            tolerance,
            map,
            map_run,
        } => {
            let fork = Fork {
                branches,
                max_concurrency,
                tolerance,
                map,
                map_run,
            };
            start_fork(machine, rec, &ctx.state_name, fork, env, out);
        }
        Action::Wait {
            until,
            output,
            next,
        } => {
            let due = match until {
                WaitUntil::Seconds(s) => seconds_after(env.now, s),
                WaitUntil::Timestamp(ts) => match parse_time(&ts) {
                    Some(t) => format_time(t),
                    None => {
                        let failure = Failure {
                            error: "States.Runtime".into(),
                            cause: format!("'{ts}' is not an RFC 3339 timestamp"),
                        };
                        fail(rec, failure, env, out);
                        return;
                    }
                },
            };
            rec.phase = Phase::Waiting;
            rec.timer_kind = Some(TimerKind::Wait);
            rec.timer_due_at = Some(due);
            rec.timer_output = Some(output);
            rec.timer_next = match next {
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
            let times = (timeout_seconds, heartbeat_seconds);
            if is_activity(&resource) {
                // No handler: the task waits for a worker's GetActivityTask.
                let activity = Some((resource.clone(), parameters));
                await_token(rec, ctx, state_input, resource, activity, times, env, out);
                return;
            }
            out.push(Effect::Append(HistoryEvent::task_started(&resource)));
            out.push(Effect::Invoke {
                state_name: ctx.state_name.clone(),
                resource: handler_name(&resource).to_string(),
                parameters,
                task_token: ctx.task_token.clone().filter(|_| wait_for_token),
            });
            rec.invoking = Some(Invoking {
                ctx: ctx.clone(),
                state_input: state_input.clone(),
                resource,
                wait_for_token,
                timeout_seconds,
                heartbeat_seconds,
            });
        }
    }
}

/// What a Parallel or Map state asks to run.
struct Fork {
    branches: Vec<Branch>,
    max_concurrency: usize,
    tolerance: Tolerance,
    map: bool,
    map_run: Option<String>,
}

/// A Parallel or Map state creates its branch runs, starts as many as its MaxConcurrency
/// allows (the rest queue), and waits for them.
fn start_fork(
    machine: &StateMachine,
    rec: &mut ExecutionRecord,
    state: &str,
    fork: Fork,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    let key = format!("{:032x}", env.unique);
    if let Some(label) = &fork.map_run {
        let arn = format!(
            "arn:aws:states:{REGION}:{ACCOUNT}:mapRun:{}/{label}:{key}",
            rec.state_machine
        );
        out.push(Effect::Append(HistoryEvent {
            kind: EventType::MapRunStarted,
            details: json!({ "mapRunArn": arn }),
        }));
    }
    let total = fork.branches.len();
    let limit = match fork.max_concurrency {
        0 => total,
        n => n.min(total),
    };
    // A distributed Map's iterations are executions with histories of their own.
    let distributed = fork.map_run.is_some();
    let mut runs = Vec::with_capacity(total);
    for (index, branch) in fork.branches.into_iter().enumerate() {
        let step = (state.to_string(), branch.machine);
        let Some(sub) = machine.sub(std::slice::from_ref(&step)) else {
            let failure = Failure {
                error: "States.Runtime".into(),
                cause: format!("The state '{state}' has no branch {}", branch.machine),
            };
            return fail(rec, failure, env, out);
        };
        let mut child = ExecutionRecord::new(
            format!("{}/{key}/{index}", rec.history_id()),
            format!("{key}/{index}"),
            rec.state_machine.clone(),
            sub.start_at(),
            branch.input,
            env.stamp(),
        );
        child.phase = Phase::Queued;
        child.parent_id = Some(rec.id.clone());
        child.root_id = (!distributed).then(|| rec.history_id().to_string());
        child.scope = rec.scope.iter().cloned().chain([step]).collect();
        child.fork_key = Some(key.clone());
        child.branch_index = Some(index as i64);
        child.iteration = (fork.map && !distributed).then_some(index as i64);
        child.last_event_id = if distributed { 0 } else { rec.last_event_id };
        child.outer_variables = rec.visible_variables();
        child.role_arn = rec.role_arn.clone();
        let mut events = Vec::new();
        if index < limit {
            child.phase = Phase::Ready;
            events.extend(branch_started(&child));
        }
        runs.push(NewRun {
            record: child,
            events,
        });
    }
    out.push(Effect::StartBranches { runs });
    rec.fork = Some(ForkProgress {
        key,
        total,
        started: limit,
        finished: 0,
        failed: 0,
        max_concurrency: fork.max_concurrency,
        tolerance: fork.tolerance.into(),
        map: fork.map,
        failure: None,
    });
    if total == 0 {
        rec.phase = Phase::Ready;
    } else {
        rec.phase = Phase::Waiting;
        out.push(Effect::Wake);
    }
}

/// A branch run of the fork `rec` waits for ended: count it; a failure that ends the state
/// (any for Parallel, past the tolerance for Map) aborts the others; otherwise queued runs
/// start in its place; once all ended, or one failure ends the state, `rec` joins.
fn branch_ended_in_fork(
    rec: &mut ExecutionRecord,
    succeeded: bool,
    error: Option<String>,
    cause: Option<String>,
    out: &mut Vec<Effect>,
) {
    let Some(progress) = rec.fork.as_mut() else {
        return;
    };
    progress.finished += 1;
    if !succeeded {
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
                    error: error.unwrap_or_default(),
                    cause: cause.unwrap_or_default(),
                }
            });
            // Iterations still running are aborted: each says so in the history.
            out.push(Effect::AbortBranches {
                fork_key: Some(progress.key.clone()),
                say_so: progress.map,
            });
        }
    }
    if progress.failure.is_none() {
        let limit = match progress.max_concurrency {
            0 => progress.total,
            n => n,
        };
        while progress.started < progress.total && progress.started - progress.finished < limit {
            out.push(Effect::StartQueued {
                fork_key: progress.key.clone(),
                index: progress.started,
            });
            progress.started += 1;
        }
    }
    if progress.failure.is_some() || progress.finished == progress.total {
        rec.phase = Phase::Ready;
        out.push(Effect::Wake);
    }
}

/// The execution waits for its task token to come back (SendTaskSuccess/Failure), with
/// `TimeoutSeconds` and `HeartbeatSeconds` as `times`; an activity task also waits for a worker.
#[allow(clippy::too_many_arguments)]
fn await_token(
    rec: &mut ExecutionRecord,
    ctx: &Context,
    state_input: &Value,
    resource: String,
    activity: Option<(String, Value)>,
    (timeout_seconds, heartbeat_seconds): (Option<u64>, Option<u64>),
    env: &Env,
    out: &mut Vec<Effect>,
) {
    let token = ctx.task_token.clone().unwrap_or_else(|| env.token.clone());
    let task = PendingTask {
        execution_id: rec.id.clone(),
        state_name: ctx.state_name.clone(),
        state_input: state_input.clone(),
        resource,
        status: "pending".into(),
        timeout_at: timeout_seconds.map(|s| seconds_after(env.now, s)),
        heartbeat_seconds,
        heartbeat_at: heartbeat_seconds.map(|s| seconds_after(env.now, s)),
        activity,
    };
    rec.phase = Phase::Waiting;
    rec.timer_due_at = task.deadline();
    rec.timer_kind = rec.timer_due_at.as_ref().map(|_| TimerKind::TaskTimeout);
    out.push(Effect::AwaitToken {
        token,
        task: Box::new(task),
    });
}

/// Leaves the current state for `next`, or ends the run successfully. An output over the
/// payload limit fails the execution with `States.DataLimitExceeded`, as on AWS.
fn transition(
    rec: &mut ExecutionRecord,
    output: Value,
    next: Next,
    env: &Env,
    out: &mut Vec<Effect>,
) {
    if let Some(failure) = Failure::over_payload_limit(&output) {
        return fail(rec, failure, env, out);
    }
    match next {
        Next::State(state) => {
            rec.current_state = Some(state);
            rec.state_input = Some(output);
            rec.phase = Phase::Ready;
            rec.retry_counts.clear();
        }
        Next::End => {
            let details = json!({
                "output": output.to_string(),
                "outputDetails": { "truncated": false },
            });
            let event = if rec.parent_id.is_some() {
                branch_ended(rec, EventType::MapIterationSucceeded, details)
            } else {
                Some(HistoryEvent {
                    kind: EventType::ExecutionSucceeded,
                    details,
                })
            };
            out.extend(event.map(Effect::Append));
            rec.status = ExecutionStatus::Succeeded;
            rec.phase = Phase::Done;
            rec.output = Some(output);
            rec.stopped_at = Some(env.stamp().to_string());
            ended(rec, out);
        }
    }
}

/// Ends the run as failed.
fn fail(rec: &mut ExecutionRecord, failure: Failure, env: &Env, out: &mut Vec<Effect>) {
    out.push(Effect::CloseTokens);
    out.push(Effect::AbortBranches {
        fork_key: None,
        say_so: false,
    });
    rec.fork = None;
    // AWS leaves out an error or cause that the failure does not have.
    let mut details = json!({});
    for (key, text) in [("error", &failure.error), ("cause", &failure.cause)] {
        if !text.is_empty() {
            details[key] = json!(text);
        }
    }
    let event = if rec.parent_id.is_some() {
        branch_ended(rec, EventType::MapIterationFailed, details)
    } else {
        Some(HistoryEvent {
            kind: EventType::ExecutionFailed,
            details,
        })
    };
    out.extend(event.map(Effect::Append));
    rec.status = ExecutionStatus::Failed;
    rec.phase = Phase::Done;
    rec.error = Some(failure.error).filter(|e| !e.is_empty());
    rec.cause = Some(failure.cause).filter(|c| !c.is_empty());
    rec.stopped_at = Some(env.stamp().to_string());
    ended(rec, out);
}

/// The definition's TimeoutSeconds ran out: the execution ends as TIMED_OUT and any pending
/// callback token stops working.
fn time_out_execution(rec: &mut ExecutionRecord, env: &Env, out: &mut Vec<Effect>) {
    out.push(Effect::CloseTokens);
    out.push(Effect::AbortBranches {
        fork_key: None,
        say_so: false,
    });
    rec.fork = None;
    out.push(Effect::Append(HistoryEvent {
        kind: EventType::ExecutionTimedOut,
        details: json!({
            "error": "States.Timeout",
            "cause": "The execution ran longer than the state machine's TimeoutSeconds",
        }),
    }));
    rec.status = ExecutionStatus::TimedOut;
    rec.phase = Phase::Done;
    rec.timer_kind = None;
    rec.timer_due_at = None;
    rec.error = Some("States.Timeout".into());
    rec.stopped_at = Some(env.stamp().to_string());
    ended(rec, out);
}

/// StopExecution: branches aborted, tokens dead, `ExecutionAborted` (with `error` and `cause`
/// when given) ends the history. An execution already ended is left as it is.
fn stop(rec: &mut ExecutionRecord, error: &str, cause: &str, env: &Env, out: &mut Vec<Effect>) {
    if rec.status != ExecutionStatus::Running {
        return;
    }
    out.push(Effect::CloseTokens);
    out.push(Effect::AbortBranches {
        fork_key: None,
        say_so: false,
    });
    let mut details = json!({});
    for (key, text) in [("error", error), ("cause", cause)] {
        if !text.is_empty() {
            details[key] = Value::String(text.to_string());
        }
    }
    out.push(Effect::Append(HistoryEvent {
        kind: EventType::ExecutionAborted,
        details,
    }));
    rec.status = ExecutionStatus::Aborted;
    rec.phase = Phase::Done;
    rec.fork = None;
    rec.timer_kind = None;
    rec.timer_due_at = None;
    rec.error = Some(error.to_string()).filter(|e| !e.is_empty());
    rec.cause = Some(cause.to_string()).filter(|c| !c.is_empty());
    rec.stopped_at = Some(env.stamp().to_string());
    ended(rec, out);
}

fn ended(rec: &ExecutionRecord, out: &mut Vec<Effect>) {
    out.push(Effect::Ended {
        status: rec.status,
        error: rec.error.clone(),
        cause: rec.cause.clone(),
    });
}

/// The event a branch run that starts records: `ExecutionStarted` for an iteration of a
/// distributed Map (an execution of its own), `MapIterationStarted` for a Map iteration,
/// nothing for a Parallel branch.
fn branch_started(child: &ExecutionRecord) -> Option<HistoryEvent> {
    if child.root_id.is_none() {
        Some(HistoryEvent {
            kind: EventType::ExecutionStarted,
            details: json!({
                "input": child.input.to_string(),
                "inputDetails": { "truncated": false },
                "roleArn": child.role_arn.clone().unwrap_or_else(default_role_arn),
            }),
        })
    } else if child.iteration.is_some() {
        Some(HistoryEvent {
            kind: EventType::MapIterationStarted,
            details: json!({
                "name": child.scope.last().map(|(s, _)| s.as_str()).unwrap_or_default(),
                "index": child.iteration,
            }),
        })
    } else {
        None
    }
}

/// The event a branch run that ended records: a Map iteration `kind` (MapIteration…Succeeded,
/// …Failed or …Aborted); an iteration of a distributed Map ends its own history with the
/// matching Execution… event and `outcome` as its details; a Parallel branch nothing.
fn branch_ended(rec: &ExecutionRecord, kind: EventType, outcome: Value) -> Option<HistoryEvent> {
    if rec.root_id.is_none() {
        let kind = match kind {
            EventType::MapIterationSucceeded => EventType::ExecutionSucceeded,
            EventType::MapIterationFailed => EventType::ExecutionFailed,
            _ => EventType::ExecutionAborted,
        };
        Some(HistoryEvent {
            kind,
            details: outcome,
        })
    } else if rec.iteration.is_some() {
        Some(HistoryEvent {
            kind,
            details: json!({
                "name": rec.scope.last().map(|(s, _)| s.as_str()).unwrap_or_default(),
                "index": rec.iteration,
            }),
        })
    } else {
        None
    }
}

/// The `$$` context for running `state_name` of `rec`.
fn context(rec: &ExecutionRecord, state_name: &str, env: &Env) -> Context {
    Context {
        execution_id: rec.id.clone(),
        execution_name: rec.name.clone(),
        execution_input: rec.input.clone(),
        execution_start_time: rec.started_at.clone(),
        state_machine_id: format!(
            "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{}",
            rec.state_machine
        ),
        state_machine_name: rec.state_machine.clone(),
        state_name: state_name.to_string(),
        state_entered_time: env.stamp().to_string(),
        task_token: None,
        random_seed: env.seed,
        retry_count: rec.retry_counts.iter().sum(),
        role_arn: rec.role_arn.clone().unwrap_or_else(default_role_arn),
        variables: rec.visible_variables(),
        entered_event_id: rec.entered_event_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::parse;

    fn machine(definition: Value) -> StateMachine {
        match parse(&definition.to_string()) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    const START: OffsetDateTime = time::macros::datetime!(2026-03-04 05:06:07.000 UTC);

    /// The world `ms` milliseconds after `START`, with `seed`.
    fn env_at(ms: i64, seed: u64) -> Env {
        let now = START + time::Duration::milliseconds(ms);
        Env::new(now, seed, "a".repeat(64), Some(1), 0xfeed)
    }

    fn env(ms: i64) -> Env {
        env_at(ms, 7)
    }

    fn stamp(ms: i64) -> String {
        format_time(START + time::Duration::milliseconds(ms))
    }

    fn record(machine: &StateMachine, input: Value) -> ExecutionRecord {
        let mut rec = ExecutionRecord::new(
            "arn:aws:states:us-east-1:000000000000:execution:m:e".into(),
            "e".into(),
            "m".into(),
            machine.start_at(),
            input,
            &stamp(0),
        );
        let effects = apply(Some(machine), &mut rec, Input::Start, &env(0));
        assert_eq!(names(&effects), ["ExecutionStarted"]);
        rec
    }

    /// Each effect by name: an appended event by its type.
    fn names(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Append(event) => event.kind.as_str().to_string(),
                Effect::Invoke { .. } => "Invoke".into(),
                Effect::AwaitToken { .. } => "AwaitToken".into(),
                Effect::ExpireToken => "ExpireToken".into(),
                Effect::SetHeartbeat { .. } => "SetHeartbeat".into(),
                Effect::CloseTokens => "CloseTokens".into(),
                Effect::AbortBranches { .. } => "AbortBranches".into(),
                Effect::StartBranches { .. } => "StartBranches".into(),
                Effect::StartQueued { .. } => "StartQueued".into(),
                Effect::Wake => "Wake".into(),
                Effect::CollectOutputs { .. } => "CollectOutputs".into(),
                Effect::Ended { .. } => "Ended".into(),
            })
            .collect()
    }

    fn run(m: &StateMachine, rec: &mut ExecutionRecord, ms: i64) -> Vec<String> {
        names(&apply(Some(m), rec, Input::Run, &env(ms)))
    }

    fn returned(
        m: &StateMachine,
        rec: &mut ExecutionRecord,
        result: Result<Value, Failure>,
        ms: i64,
    ) -> Vec<String> {
        names(&apply(Some(m), rec, Input::TaskReturned(result), &env(ms)))
    }

    fn boom() -> Result<Value, Failure> {
        Err(Failure {
            error: "Boom".into(),
            cause: "it broke".into(),
        })
    }

    #[test]
    fn a_task_calls_its_handler_and_its_result_moves_the_execution_on() {
        let m = machine(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "test:echo", "Next": "P"},
            "P": {"Type": "Pass", "End": true}}}));
        let mut rec = record(&m, json!({"a": 1}));
        let effects = apply(Some(&m), &mut rec, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            ["TaskStateEntered", "TaskScheduled", "TaskStarted", "Invoke"]
        );
        assert!(
            matches!(&effects[3], Effect::Invoke { resource, parameters, task_token: None, .. }
            if resource == "test:echo" && parameters == &json!({"a": 1}))
        );
        assert_eq!(
            returned(&m, &mut rec, Ok(json!("done")), 0),
            ["TaskSucceeded", "TaskStateExited"]
        );
        assert_eq!(rec.current_state.as_deref(), Some("P"));
        assert_eq!(rec.state_input, Some(json!("done")));
        assert_eq!(
            run(&m, &mut rec, 0),
            [
                "PassStateEntered",
                "PassStateExited",
                "ExecutionSucceeded",
                "Ended"
            ]
        );
        assert_eq!(rec.status, ExecutionStatus::Succeeded);
        assert_eq!(rec.stopped_at, Some(stamp(0)));
    }

    #[test]
    fn a_failed_task_is_retried_after_its_back_off_without_entering_again_then_caught() {
        let m = machine(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "test:echo", "End": true,
                  "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3,
                             "MaxDelaySeconds": 5, "MaxAttempts": 2}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "C"}]},
            "C": {"Type": "Pass", "End": true}}}));
        let mut rec = record(&m, json!({}));
        run(&m, &mut rec, 0);
        assert_eq!(returned(&m, &mut rec, boom(), 0), ["TaskFailed"]);
        assert_eq!(rec.phase, Phase::Waiting);
        assert_eq!(rec.timer_kind, Some(TimerKind::Retry));
        assert_eq!(rec.timer_due_at, Some(stamp(2000)));
        assert_eq!(rec.retry_counts, [1]);
        assert!(run(&m, &mut rec, 1999).is_empty(), "not due yet");
        assert_eq!(
            run(&m, &mut rec, 2000),
            ["TaskScheduled", "TaskStarted", "Invoke"]
        );
        // 2 s × 3, capped at MaxDelaySeconds.
        assert_eq!(returned(&m, &mut rec, boom(), 2000), ["TaskFailed"]);
        assert_eq!(rec.timer_due_at, Some(stamp(7000)));
        assert_eq!(
            run(&m, &mut rec, 7000),
            ["TaskScheduled", "TaskStarted", "Invoke"]
        );
        assert_eq!(
            returned(&m, &mut rec, boom(), 7000),
            ["TaskFailed", "TaskStateExited"]
        );
        assert_eq!(rec.current_state.as_deref(), Some("C"));
        assert_eq!(rec.state_input.as_ref().unwrap()["error"]["Error"], "Boom");
        assert!(
            rec.retry_counts.is_empty(),
            "a new state counts its own retries"
        );
    }

    #[test]
    fn full_jitter_comes_from_the_seed() {
        let m = machine(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "test:echo", "End": true,
                  "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 10,
                             "JitterStrategy": "FULL"}]}}}));
        let due = |seed: u64| {
            let mut rec = record(&m, json!({}));
            apply(Some(&m), &mut rec, Input::Run, &env_at(0, seed));
            apply(
                Some(&m),
                &mut rec,
                Input::TaskReturned(boom()),
                &env_at(0, seed),
            );
            rec.timer_due_at.unwrap()
        };
        assert_eq!(due(1), due(1), "the same seed, the same delay");
        let dues: Vec<String> = (0..20).map(due).collect();
        assert!(
            dues.iter().all(|d| *d >= stamp(0) && *d <= stamp(10_000)),
            "{dues:?}"
        );
        assert!(dues.iter().any(|d| *d != dues[0]), "{dues:?}");
    }

    fn callback_machine() -> StateMachine {
        machine(json!({"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "test:echo.waitForTaskToken",
                    "Parameters": {"token.$": "$$.Task.Token"},
                    "TimeoutSeconds": 10, "HeartbeatSeconds": 3, "End": true}}}))
    }

    /// The callback machine's execution, waiting for its token since `START`.
    fn waiting(m: &StateMachine) -> (ExecutionRecord, PendingTask) {
        let mut rec = record(m, json!({}));
        let effects = apply(Some(m), &mut rec, Input::Run, &env(0));
        assert!(
            matches!(&effects[3], Effect::Invoke { task_token: Some(t), parameters, .. }
            if *t == "a".repeat(64) && parameters["token"] == json!(t))
        );
        let effects = apply(
            Some(m),
            &mut rec,
            Input::TaskReturned(Ok(json!({}))),
            &env(0),
        );
        assert_eq!(names(&effects), ["TaskSubmitted", "AwaitToken"]);
        let Some(Effect::AwaitToken { token, task }) = effects.into_iter().nth(1) else {
            unreachable!()
        };
        assert_eq!(token, "a".repeat(64));
        assert_eq!(task.timeout_at, Some(stamp(10_000)));
        assert_eq!(task.heartbeat_at, Some(stamp(3000)));
        assert_eq!(rec.timer_due_at, Some(stamp(3000)));
        assert_eq!(rec.timer_kind, Some(TimerKind::TaskTimeout));
        assert!(rec.awaits_token_in("Ask"));
        (rec, *task)
    }

    #[test]
    fn a_missed_heartbeat_times_the_task_out_as_task_timed_out() {
        let m = callback_machine();
        let (mut rec, mut task) = waiting(&m);
        // A heartbeat at 2 s moves the deadline to 5 s.
        let heartbeat = Input::Heartbeat {
            token: "t".into(),
            task: task.clone(),
        };
        let effects = apply(None, &mut rec, heartbeat, &env(2000));
        assert_eq!(
            effects,
            [Effect::SetHeartbeat {
                token: "t".into(),
                at: stamp(5000)
            }]
        );
        assert_eq!(rec.timer_due_at, Some(stamp(5000)));
        assert!(run(&m, &mut rec, 4999).is_empty());
        assert_eq!(run(&m, &mut rec, 5000), ["ExpireToken"]);
        task.heartbeat_at = Some(stamp(5000));
        let effects = apply(
            Some(&m),
            &mut rec,
            Input::TokenExpired(Some(task)),
            &env(5000),
        );
        assert_eq!(
            names(&effects),
            [
                "TaskTimedOut",
                "CloseTokens",
                "AbortBranches",
                "ExecutionFailed",
                "Ended"
            ]
        );
        assert_eq!(rec.status, ExecutionStatus::Failed);
        assert_eq!(rec.error.as_deref(), Some("States.HeartbeatTimeout"));
    }

    #[test]
    fn a_callback_past_its_timeout_seconds_fails_with_states_timeout() {
        let m = callback_machine();
        let (mut rec, mut task) = waiting(&m);
        task.heartbeat_at = Some(stamp(20_000));
        let effects = apply(
            Some(&m),
            &mut rec,
            Input::TokenExpired(Some(task)),
            &env(10_000),
        );
        assert_eq!(names(&effects)[0], "TaskTimedOut");
        assert_eq!(rec.error.as_deref(), Some("States.Timeout"));
        // Nothing was pending any more: nothing happens.
        let (mut rec, _) = waiting(&m);
        assert!(apply(Some(&m), &mut rec, Input::TokenExpired(None), &env(10_000)).is_empty());
        assert_eq!(rec.status, ExecutionStatus::Running);
    }

    #[test]
    fn a_returned_token_resumes_the_state() {
        let m = callback_machine();
        let (mut rec, task) = waiting(&m);
        let back = Input::TokenReturned {
            task,
            result: Ok(json!({"ok": true})),
        };
        let effects = apply(Some(&m), &mut rec, back, &env(1000));
        assert_eq!(
            names(&effects),
            [
                "TaskSucceeded",
                "TaskStateExited",
                "ExecutionSucceeded",
                "Ended"
            ]
        );
        assert_eq!(rec.output, Some(json!({"ok": true})));
        assert_eq!(rec.timer_due_at, None);
    }

    #[test]
    fn a_wait_arms_a_timer_and_leaves_when_it_is_due() {
        for (wait, due) in [
            (json!({"Seconds": 5}), stamp(5000)),
            (json!({"Timestamp": "2026-03-04T05:06:10Z"}), stamp(3000)),
        ] {
            let mut state = json!({"Type": "Wait", "Next": "P"});
            state
                .as_object_mut()
                .unwrap()
                .extend(wait.as_object().unwrap().clone());
            let m = machine(json!({"StartAt": "W", "States": {
                "W": state, "P": {"Type": "Pass", "End": true}}}));
            let mut rec = record(&m, json!({"k": 1}));
            assert_eq!(run(&m, &mut rec, 0), ["WaitStateEntered"]);
            assert_eq!(rec.timer_due_at.as_ref(), Some(&due));
            assert_eq!(rec.timer_kind, Some(TimerKind::Wait));
            let ms = (parse_time(&due).unwrap() - START).whole_milliseconds() as i64;
            assert!(run(&m, &mut rec, ms - 1).is_empty());
            assert_eq!(run(&m, &mut rec, ms), ["WaitStateExited"]);
            assert_eq!(rec.current_state.as_deref(), Some("P"));
            assert_eq!(rec.phase, Phase::Ready);
        }
    }

    #[test]
    fn an_execution_past_its_timeout_seconds_times_out() {
        let m = machine(json!({"TimeoutSeconds": 60, "StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 3600, "End": true}}}));
        let mut rec = record(&m, json!({}));
        assert_eq!(rec.deadline_at, Some(stamp(60_000)));
        run(&m, &mut rec, 0);
        assert!(!rec.has_work_at(&stamp(59_999)));
        assert!(rec.has_work_at(&stamp(60_000)));
        assert_eq!(
            run(&m, &mut rec, 60_000),
            ["CloseTokens", "AbortBranches", "ExecutionTimedOut", "Ended"]
        );
        assert_eq!(rec.status, ExecutionStatus::TimedOut);
        assert_eq!(rec.timer_due_at, None);
    }

    #[test]
    fn a_stop_aborts_and_an_ended_execution_stays_as_it_is() {
        let m = callback_machine();
        let (mut rec, _) = waiting(&m);
        let stop = || Input::Stop {
            error: "Halt".into(),
            cause: String::new(),
        };
        let effects = apply(None, &mut rec, stop(), &env(1));
        assert_eq!(
            names(&effects),
            ["CloseTokens", "AbortBranches", "ExecutionAborted", "Ended"]
        );
        let Effect::Append(aborted) = &effects[2] else {
            unreachable!()
        };
        assert_eq!(aborted.details, json!({"error": "Halt"}));
        assert_eq!(rec.status, ExecutionStatus::Aborted);
        assert!(apply(None, &mut rec, stop(), &env(2)).is_empty());
    }

    #[test]
    fn the_history_limit_fails_a_running_execution() {
        let m = machine(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
        let mut rec = record(&m, json!({}));
        rec.last_event_id = MAX_HISTORY_EVENTS - 1;
        assert!(apply(Some(&m), &mut rec, Input::EndOfStep, &env(0)).is_empty());
        rec.last_event_id = MAX_HISTORY_EVENTS;
        let effects = apply(Some(&m), &mut rec, Input::EndOfStep, &env(0));
        assert_eq!(names(&effects).last().map(String::as_str), Some("Ended"));
        assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
    }

    #[test]
    fn a_run_whose_machine_is_missing_fails() {
        let m = callback_machine();
        let mut rec = record(&m, json!({}));
        let effects = apply(None, &mut rec, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            ["CloseTokens", "AbortBranches", "ExecutionFailed", "Ended"]
        );
        assert!(rec.cause.unwrap().contains("missing"));
    }

    fn parallel(retry: Value) -> StateMachine {
        machine(
            json!({"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": true,
            "Retry": retry,
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]}}}),
        )
    }

    fn progress(failure: Option<Failure>) -> ForkProgress {
        ForkProgress {
            key: "k".into(),
            total: 2,
            started: 2,
            finished: 2,
            failed: usize::from(failure.is_some()),
            max_concurrency: 0,
            tolerance: ToleranceJson::default(),
            map: false,
            failure,
        }
    }

    #[test]
    fn a_parallel_state_forks_and_joins_its_branches_outputs_in_order() {
        let m = parallel(json!([]));
        let mut rec = record(&m, json!({"x": 1}));
        rec.last_event_id = 2;
        let effects = apply(Some(&m), &mut rec, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            [
                "ParallelStateEntered",
                "ParallelStateStarted",
                "StartBranches",
                "Wake"
            ]
        );
        let Effect::StartBranches { runs } = &effects[2] else {
            unreachable!()
        };
        let key = format!("{:032x}", 0xfeed);
        assert_eq!(runs.len(), 2);
        for (index, run) in runs.iter().enumerate() {
            let child = &run.record;
            assert_eq!(child.id, format!("{}/{key}/{index}", rec.id));
            assert_eq!(child.parent_id.as_deref(), Some(rec.id.as_str()));
            assert_eq!(child.root_id.as_deref(), Some(rec.id.as_str()));
            assert_eq!(child.scope, [("Both".to_string(), index)]);
            assert_eq!(child.state_input, Some(json!({"x": 1})));
            assert_eq!(child.last_event_id, 2, "it numbers on from its parent");
            assert_eq!(child.phase, Phase::Ready);
            assert!(run.events.is_empty(), "a Parallel branch starts silently");
        }
        assert_eq!(rec.phase, Phase::Waiting);
        let ended = |succeeded: bool, key: &str| Input::BranchEnded {
            fork_key: Some(key.to_string()),
            succeeded,
            error: None,
            cause: None,
        };
        // Not one of this fork's runs: nothing changes.
        assert!(apply(None, &mut rec, ended(false, "other"), &env(1)).is_empty());
        assert!(apply(None, &mut rec, ended(true, &key), &env(1)).is_empty());
        assert_eq!(rec.phase, Phase::Waiting);
        assert_eq!(
            names(&apply(None, &mut rec, ended(true, &key), &env(1))),
            ["Wake"]
        );
        assert_eq!(rec.phase, Phase::Ready);
        assert!(!rec.enters_a_state(), "a join enters nothing");
        let effects = apply(Some(&m), &mut rec, Input::Run, &env(5));
        assert_eq!(effects, [Effect::CollectOutputs { fork_key: key }]);
        let outputs = Input::BranchOutputs(vec![json!("a"), json!("b")]);
        let effects = apply(Some(&m), &mut rec, outputs, &env(5));
        assert_eq!(
            names(&effects),
            [
                "ParallelStateSucceeded",
                "ParallelStateExited",
                "ExecutionSucceeded",
                "Ended"
            ]
        );
        assert_eq!(rec.output, Some(json!(["a", "b"])));
    }

    #[test]
    fn a_map_starts_iterations_as_slots_free_and_fails_past_its_tolerance() {
        let m = machine(json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
            "MaxConcurrency": 1, "ToleratedFailureCount": 1, "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}));
        let mut rec = record(&m, json!([10, 20, 30]));
        let effects = apply(Some(&m), &mut rec, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            [
                "MapStateEntered",
                "MapStateStarted",
                "StartBranches",
                "Wake"
            ]
        );
        let Effect::StartBranches { runs } = &effects[2] else {
            unreachable!()
        };
        let phases: Vec<Phase> = runs.iter().map(|r| r.record.phase).collect();
        assert_eq!(phases, [Phase::Ready, Phase::Queued, Phase::Queued]);
        assert_eq!(runs[0].events.len(), 1);
        assert_eq!(runs[0].events[0].kind, EventType::MapIterationStarted);
        assert_eq!(
            runs[0].events[0].details,
            json!({"name": "Each", "index": 0})
        );
        assert!(runs[1].events.is_empty(), "a queued iteration starts later");
        let key = runs[0].record.fork_key.clone();
        let failed = || Input::BranchEnded {
            fork_key: key.clone(),
            succeeded: false,
            error: Some("E".into()),
            cause: None,
        };
        // One failure is tolerated: the next iteration takes the free slot.
        let effects = apply(None, &mut rec, failed(), &env(1));
        assert_eq!(
            effects,
            [Effect::StartQueued {
                fork_key: key.clone().unwrap(),
                index: 1
            }]
        );
        // A second is not: the rest are aborted, saying so, and the state joins.
        let effects = apply(None, &mut rec, failed(), &env(2));
        assert_eq!(
            effects,
            [
                Effect::AbortBranches {
                    fork_key: key.clone(),
                    say_so: true
                },
                Effect::Wake
            ]
        );
        assert_eq!(rec.phase, Phase::Ready);
        let failure = rec.fork.as_ref().and_then(|f| f.failure.clone()).unwrap();
        assert_eq!(failure.error, "States.ExceedToleratedFailureThreshold");
        assert_eq!(
            run(&m, &mut rec, 3),
            [
                "MapStateFailed",
                "CloseTokens",
                "AbortBranches",
                "ExecutionFailed",
                "Ended"
            ]
        );
        // The queued iteration that never started, given its start later, would say so.
        let mut queued = runs[2].record.clone();
        let effects = apply(None, &mut queued, Input::Start, &env(4));
        assert_eq!(names(&effects), ["MapIterationStarted"]);
        assert_eq!(queued.phase, Phase::Ready);
        let effects = apply(None, &mut queued, Input::AbortedByParent, &env(4));
        assert_eq!(names(&effects), ["MapIterationAborted"]);
    }

    #[test]
    fn a_failed_branch_retries_the_whole_state_then_fails_it() {
        let m = parallel(json!([{"ErrorEquals": ["Bad"], "IntervalSeconds": 1, "MaxAttempts": 1}]));
        let mut rec = record(&m, json!({}));
        run(&m, &mut rec, 0);
        let bad = Failure {
            error: "Bad".into(),
            cause: "branch".into(),
        };
        rec.fork = Some(progress(Some(bad.clone())));
        rec.phase = Phase::Ready;
        assert!(
            run(&m, &mut rec, 0).is_empty(),
            "the retry only arms a timer"
        );
        assert_eq!(rec.timer_kind, Some(TimerKind::Retry));
        assert_eq!(rec.timer_due_at, Some(stamp(1000)));
        assert_eq!(rec.fork, None);
        assert_eq!(
            run(&m, &mut rec, 1000),
            ["ParallelStateStarted", "StartBranches", "Wake"]
        );
        rec.fork = Some(progress(Some(bad)));
        rec.phase = Phase::Ready;
        assert_eq!(
            run(&m, &mut rec, 1000),
            [
                "ParallelStateFailed",
                "CloseTokens",
                "AbortBranches",
                "ExecutionFailed",
                "Ended"
            ]
        );
        assert_eq!(rec.error.as_deref(), Some("Bad"));
    }

    #[test]
    fn branch_runs_end_with_iteration_events_or_an_execution_of_their_own() {
        let m = machine(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
        let mut iteration = record(&m, json!(1));
        iteration.parent_id = Some("parent".into());
        iteration.root_id = Some("parent".into());
        iteration.scope = vec![("Each".into(), 0)];
        iteration.iteration = Some(3);
        let effects = apply(Some(&m), &mut iteration, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            [
                "PassStateEntered",
                "PassStateExited",
                "MapIterationSucceeded",
                "Ended"
            ]
        );
        let Effect::Append(ended) = &effects[2] else {
            unreachable!()
        };
        assert_eq!(ended.details, json!({"name": "Each", "index": 3}));

        let mut branch = record(&m, json!(1));
        branch.parent_id = Some("parent".into());
        branch.root_id = Some("parent".into());
        let effects = apply(Some(&m), &mut branch, Input::Run, &env(0));
        assert_eq!(
            names(&effects),
            ["PassStateEntered", "PassStateExited", "Ended"],
            "a Parallel branch"
        );

        let mut distributed = record(&m, json!(1));
        distributed.parent_id = Some("parent".into());
        let effects = apply(Some(&m), &mut distributed, Input::Run, &env(0));
        assert_eq!(names(&effects)[2], "ExecutionSucceeded");
        assert_eq!(
            branch_started(&distributed).map(|e| e.kind),
            Some(EventType::ExecutionStarted)
        );
        assert_eq!(
            branch_started(&iteration).map(|e| e.kind),
            Some(EventType::MapIterationStarted)
        );
        assert_eq!(branch_started(&branch), None);
    }
}
