//! The execution lifecycle, decided without I/O: given a state machine, an execution's record
//! and what happened (a step to run, a task's result, a token's answer, a timer, a stop), change
//! the record and return the [`Effect`]s the runtime must perform — events to append, a task
//! handler to call, a token to issue or expire, branch runs to start or abort, the end to
//! report. Time, randomness and new task tokens come in through [`Env`]; nothing here reads a
//! clock, a random generator or a database.

use super::definition::StateMachine;
use super::events::{is_activity, json_text, EventType, HistoryEvent};
use super::retry::{decide_retry, RetryDecision};
use super::step::{Action, Branch, Context, Failure, Next, Step, Tolerance, WaitUntil};
use super::timestamp::{after, format_time, parse_time, seconds_after};
use crate::model::ExecutionStatus;
use serde_json::{json, Value};

mod protocol;
mod record;
#[cfg(test)]
mod tests;

pub use protocol::{Effect, Env, Input, NewRun};
pub use record::{
    ExecutionRecord, ForkProgress, Invoking, PendingTask, Phase, TimerKind, ToleranceJson,
};

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
            let aborted = end_event(rec, EventType::MapIterationAborted, json!({}));
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
        Input::ActivityTaken { worker } => {
            if rec.status == ExecutionStatus::Running {
                out.push(Effect::Append(HistoryEvent::activity_started(&worker)));
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
        | Input::ActivityTaken { .. }
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
            "input": json_text(&rec.input),
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
                "output": json_text(&output),
                "outputDetails": { "truncated": false },
            });
            let event = end_event(rec, EventType::MapIterationSucceeded, details);
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
    let event = end_event(rec, EventType::MapIterationFailed, details);
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
                "input": json_text(&child.input),
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

/// The event a run that ended records, given as a Map iteration's `kind`
/// (MapIteration…Succeeded, …Failed or …Aborted): a Map iteration records it; a run with a
/// history of its own (a top-level execution, an iteration of a distributed Map) ends it with
/// the matching Execution… event and `outcome` as its details; a Parallel branch nothing.
fn end_event(rec: &ExecutionRecord, kind: EventType, outcome: Value) -> Option<HistoryEvent> {
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
