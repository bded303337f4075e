//! The lifecycle, decision by decision, on a clock that is a parameter.

use super::*;
use crate::engine::step::tests::machine;
use serde_json::json;
use time::OffsetDateTime;

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

#[test]
fn a_worker_taking_an_activity_task_is_in_the_history_while_the_execution_runs() {
    let m = callback_machine();
    let (mut rec, _) = waiting(&m);
    let taken = || Input::ActivityTaken {
        worker: "worker-7".into(),
    };
    let effects = apply(None, &mut rec, taken(), &env(1000));
    let [Effect::Append(event)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(event.kind, EventType::ActivityStarted);
    assert_eq!(event.details, json!({ "workerName": "worker-7" }));
    // The waiting task is untouched: the token still resumes it, its deadlines stand.
    assert!(rec.awaits_token_in("Ask"));
    assert_eq!(rec.timer_due_at, Some(stamp(3000)));

    let stop = Input::Stop {
        error: "E".into(),
        cause: "C".into(),
    };
    apply(None, &mut rec, stop, &env(1500));
    assert_eq!(rec.status, ExecutionStatus::Aborted);
    assert!(apply(None, &mut rec, taken(), &env(2000)).is_empty());
}
