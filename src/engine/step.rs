//! Running one state: from a state, its input and the context, decide what happens next
//! (transition, task invocation, timer or failure) and which history events record it.
//!
//! Data flows as in AWS: raw input → `InputPath` → `Parameters` → (task) → `ResultSelector` →
//! `ResultPath` (merged into the *raw* input) → `OutputPath`. A `Catch` writes
//! `{"Error", "Cause"}` into the raw input at its own `ResultPath` and skips `OutputPath`.

use super::choice::Test;
use super::definition::{
    error_matches, Batcher, Body, Catcher, FailState, ForkState, InputOutput, MapOptions, Payload,
    Quantity, State, StateMachine, TaskState, Text, Transition, WaitFor,
};
use super::events::{EventType, HistoryEvent};
use super::intrinsics::Random;
use super::jsonata::{Ata, Scope, States};
use super::paths::{Path, Template, TemplateError, VARIABLES};
use serde_json::{json, Map, Value};

/// What the runtime knows about the execution; exposed to paths as `$$`.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `$$.Execution.Id` (an ARN-like string).
    pub execution_id: String,
    /// `$$.Execution.Name`.
    pub execution_name: String,
    /// `$$.Execution.Input`.
    pub execution_input: Value,
    /// `$$.Execution.StartTime` (RFC 3339).
    pub execution_start_time: String,
    /// `$$.StateMachine.Id`.
    pub state_machine_id: String,
    /// `$$.StateMachine.Name`.
    pub state_machine_name: String,
    /// `$$.State.Name`.
    pub state_name: String,
    /// `$$.State.EnteredTime`.
    pub state_entered_time: String,
    /// `$$.Task.Token`; the `Task` object is absent when this is `None`.
    pub task_token: Option<String>,
    /// Seeds `States.UUID` and `States.MathRandom`; the runtime draws a fresh one per step.
    pub random_seed: u64,
    /// `$$.State.RetryCount`: retries of the current state so far.
    pub retry_count: u64,
    /// `$$.Execution.RoleArn`.
    pub role_arn: String,
    /// The workflow variables this state can read (`$name`), as they were when it was entered.
    pub variables: Map<String, Value>,
    /// The id of the state's `…StateEntered` event, when the runtime knows it; error causes
    /// cite it as AWS's do.
    pub entered_event_id: Option<i64>,
}

impl Context {
    /// The context object as `$$` paths see it.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "Execution": {
                "Id": self.execution_id,
                "Name": self.execution_name,
                "Input": self.execution_input,
                "StartTime": self.execution_start_time,
                "RoleArn": self.role_arn,
                "RedriveCount": 0,
            },
            "StateMachine": { "Id": self.state_machine_id, "Name": self.state_machine_name },
            "State": {
                "Name": self.state_name,
                "EnteredTime": self.state_entered_time,
                "RetryCount": self.retry_count,
            },
        });
        if let Some(token) = &self.task_token {
            out["Task"] = json!({ "Token": token });
        }
        out
    }
}

/// The outcome of running (part of) a state.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What the runtime must do.
    pub action: Action,
    /// Events to append to the history, in order.
    pub events: Vec<HistoryEvent>,
    /// Workflow variables the state's (or its Catch rule's) `Assign` sets; they take effect
    /// for the states that follow.
    pub assigned: Option<Map<String, Value>>,
}

/// One branch run a Parallel or Map state asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Which of the state's machines runs: the Parallel branch, or 0 for a Map's processor.
    pub machine: usize,
    /// The input of the branch's first state.
    pub input: Value,
}

/// How many of a Map's iterations may fail before the Map state fails.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tolerance {
    /// `ToleratedFailureCount`.
    pub count: Option<u64>,
    /// `ToleratedFailurePercentage` (0 to 100).
    pub percentage: Option<f64>,
}

impl Tolerance {
    /// True when `failed` of `total` iterations is more than tolerated.
    pub fn exceeded(&self, failed: u64, total: u64) -> bool {
        if failed == 0 {
            return false;
        }
        let by_count = self.count.is_some_and(|c| failed <= c);
        let by_share = self
            .percentage
            .is_some_and(|p| total > 0 && (failed as f64) * 100.0 / (total as f64) <= p);
        !(by_count || by_share)
    }
}

/// What the runtime must do after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The state is done: continue at `next` (or end the execution successfully) with
    /// `output`. Pass, Choice, Succeed (next = End), completed Tasks and caught task errors
    /// return this.
    Transition {
        /// The state's output, the next state's input.
        output: Value,
        /// Where to go.
        next: Next,
    },
    /// A Parallel or Map state: run each branch (in order: branch or item index) to its end,
    /// at most `max_concurrency` at a time (0: all at once), then call `fork_succeeded` with
    /// their outputs, or `fork_failed`. `map` says whether iteration events are due.
    Fork {
        branches: Vec<Branch>,
        max_concurrency: usize,
        tolerance: Tolerance,
        map: bool,
        /// A distributed Map's run name: its iterations are executions of their own, and the
        /// runtime records `MapRunStarted` with the Map Run's ARN.
        map_run: Option<String>,
    },
    /// A Task: invoke `resource` (as written, `.waitForTaskToken` included) with `parameters` (the
    /// effective input after InputPath + Parameters), then call `task_succeeded` /
    /// `task_failed` — at once for a plain task, or when the token comes back when
    /// `wait_for_token` is true.
    Invoke {
        /// The resource to call.
        resource: String,
        /// The task's input.
        parameters: Value,
        /// True when completion arrives later with the task token.
        wait_for_token: bool,
        /// The callback's `TimeoutSeconds` (or `TimeoutSecondsPath`, resolved).
        timeout_seconds: Option<u64>,
        /// Its `HeartbeatSeconds` (or `HeartbeatSecondsPath`, resolved).
        heartbeat_seconds: Option<u64>,
    },
    /// A Wait state: arm a durable timer; when it fires, emit `WaitStateExited` and transition.
    Wait {
        /// When the timer fires.
        until: WaitUntil,
        /// The state's output.
        output: Value,
        /// Where to go afterwards.
        next: Next,
    },
    /// The execution fails (Fail state, or an unhandled error).
    Fail(Failure),
}

/// Where an execution goes after a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The named state.
    State(String),
    /// The execution ends successfully.
    End,
}

/// When a Wait state's timer fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitUntil {
    /// This many seconds after the state was entered.
    Seconds(u64),
    /// At this RFC 3339 timestamp, as given.
    Timestamp(String),
}

/// An error name and cause, as AWS reports them (`States.Runtime`, a Fail state's `Error`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// The error name.
    pub error: String,
    /// A human-readable cause.
    pub cause: String,
}

/// AWS's limit on an execution's input and any state's output (256 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Deepest nesting of objects and arrays a state's output or a variable may have. Payloads
/// are kept as JSON text, and JSON is read back at most 128 levels deep (wrappers included),
/// so a loop that wraps its data once per lap must stop here rather than become unreadable.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// How deeply objects and arrays nest in `value` (0 for a scalar); walks without recursion.
pub fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

impl Failure {
    /// `States.DataLimitExceeded` when `output` is over the payload limit, as AWS fails a
    /// state whose result is too large, or nested deeper than `MAX_PAYLOAD_DEPTH`.
    pub fn over_payload_limit(output: &Value) -> Option<Failure> {
        let depth = nesting_depth(output);
        if depth > MAX_PAYLOAD_DEPTH {
            return Some(Failure::new(
                "States.DataLimitExceeded",
                format!("The state/task returned a result nested {depth} levels deep, over the maximum of {MAX_PAYLOAD_DEPTH}"),
            ));
        }
        let size = crate::engine::json_len(output);
        (size > MAX_PAYLOAD_BYTES).then(|| {
            Failure::new(
                "States.DataLimitExceeded",
                format!("The state/task returned a result of {size} bytes, over the maximum of {MAX_PAYLOAD_BYTES}"),
            )
        })
    }

    fn new(error: &str, cause: impl Into<String>) -> Failure {
        Failure {
            error: error.to_string(),
            cause: cause.into(),
        }
    }
}

impl From<&Transition> for Next {
    fn from(t: &Transition) -> Next {
        match t {
            Transition::Next(name) => Next::State(name.clone()),
            Transition::End => Next::End,
        }
    }
}

/// AWS's limit on one variable, and on all the variables one `Assign` sets (256 KiB).
const MAX_VARIABLE_BYTES: usize = 256 * 1024;

/// What a JSONata field can see of `$states` besides the input.
#[derive(Debug, Clone, Copy, Default)]
struct Seen<'v> {
    result: Option<&'v Value>,
    error_output: Option<&'v Value>,
}

/// Collects events while a state runs, so every exit (success or failure) carries them.
struct Run<'a> {
    state: &'a State,
    ctx: &'a Context,
    /// The state's input (`$states.input`).
    input: &'a Value,
    /// Where a JSONata evaluation failed (empty when no field is to blame), for the
    /// `EvaluationFailed` event.
    evaluation_failed: std::cell::RefCell<Option<String>>,
    /// `$$`, built the first time a path or template asks for it.
    context: std::cell::OnceCell<Value>,
    /// The random generator's state, carried from one template to the next.
    seed: std::cell::Cell<u64>,
    /// What `Assign` evaluated to, once it has been.
    assigned: std::cell::RefCell<Option<Map<String, Value>>>,
    events: Vec<HistoryEvent>,
}

impl<'a> Run<'a> {
    fn new(state: &'a State, ctx: &'a Context, input: &'a Value) -> Run<'a> {
        Run {
            state,
            ctx,
            input,
            evaluation_failed: std::cell::RefCell::new(None),
            context: std::cell::OnceCell::new(),
            seed: std::cell::Cell::new(ctx.random_seed),
            assigned: std::cell::RefCell::new(None),
            events: Vec::new(),
        }
    }

    /// The context object for `reads` (a path or condition that reads it, or not): built
    /// only when it is read, for most states never.
    fn context_if(&self, reads: bool) -> &Value {
        static UNREAD: Value = Value::Null;
        if reads {
            self.context()
        } else {
            &UNREAD
        }
    }

    /// The context object, with this state's name.
    fn context(&self) -> &Value {
        self.context.get_or_init(|| {
            let mut context = self.ctx.to_json();
            context["State"]["Name"] = Value::String(self.state.name.clone());
            if !self.ctx.variables.is_empty() {
                context[VARIABLES] = Value::Object(self.ctx.variables.clone());
            }
            context
        })
    }

    fn push(&mut self, event: HistoryEvent) {
        self.events.push(event);
    }

    /// Evaluates an `Assign` block against `value` (the state's result, effective input or
    /// error output); the values are recorded on the state's exited event.
    fn assign(&self, template: Option<&Payload>, value: &Value, seen: Seen) -> Result<(), Failure> {
        if let Some(template) = template {
            let assigned = match self.payload(template, "Assign", value, self.context(), seen)? {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let mut total = 0;
            for (name, value) in &assigned {
                let size = super::events::json_text(value).len();
                total += size;
                let depth = nesting_depth(value);
                if depth > MAX_PAYLOAD_DEPTH {
                    return Err(self.data_limit(format!(
                        "The variable '{name}' is nested {depth} levels deep, over the maximum of {MAX_PAYLOAD_DEPTH}"
                    )));
                }
                if size > MAX_VARIABLE_BYTES {
                    return Err(Failure::new(
                        "States.DataLimitExceeded",
                        format!("{}The variable '{name}' is {size} bytes, over the limit of {MAX_VARIABLE_BYTES} bytes for one variable", self.prefix()),
                    ));
                }
            }
            if total > MAX_VARIABLE_BYTES {
                return Err(Failure::new(
                    "States.DataLimitExceeded",
                    format!("{}The variables of one Assign total {total} bytes, over the limit of {MAX_VARIABLE_BYTES} bytes", self.prefix()),
                ));
            }
            *self.assigned.borrow_mut() = Some(assigned);
        }
        Ok(())
    }

    /// The `EvaluationFailed` event of a JSONata failure, once.
    fn evaluation_failed(&mut self, result: &Result<Action, Failure>) {
        if let (Err(failure), Some(location)) = (result, self.evaluation_failed.take()) {
            let mut details = json!({
                "cause": failure.cause,
                "error": failure.error,
                "state": self.state.name,
            });
            if !location.is_empty() {
                details["location"] = Value::String(location);
            }
            self.events.push(HistoryEvent {
                kind: EventType::EvaluationFailed,
                details,
            });
        }
    }

    fn finish(mut self, result: Result<Action, Failure>) -> Step {
        let failed = result.is_err();
        self.evaluation_failed(&result);
        let assigned = self.assigned.into_inner().filter(|_| !failed);
        if let Some(assigned) = &assigned {
            let exited = self
                .events
                .iter_mut()
                .rev()
                .find(|e| e.kind.as_str().ends_with("Exited"));
            if let Some(event) = exited {
                event.show_assigned(assigned);
            }
        }
        Step {
            action: result.unwrap_or_else(Action::Fail),
            events: std::mem::take(&mut self.events),
            assigned,
        }
    }

    fn name(&self) -> &str {
        &self.state.name
    }

    /// `InputPath`: `null` gives `{}`; a path matching nothing is `States.Runtime`.
    fn input_path(&self, io: &InputOutput, raw: &Value) -> Result<Value, Failure> {
        self.apply_path(io.input_path.as_ref(), raw)
    }

    /// `OutputPath`: as `InputPath`; `$` hands the value on without copying it.
    fn output_path(&self, io: &InputOutput, value: Value) -> Result<Value, Failure> {
        match &io.output_path {
            Some(path) if path.is_whole_input() => Ok(value),
            path => self.apply_path(path.as_ref(), &value),
        }
    }

    /// `InputPath` then `Parameters`, reading the raw input in place when InputPath is `$`.
    fn effective_input(
        &self,
        io: &InputOutput,
        parameters: Option<&Payload>,
        raw: &Value,
    ) -> Result<Value, Failure> {
        match (&io.input_path, parameters) {
            (Some(path), Some(template)) if path.is_whole_input() => {
                self.payload(template, "Arguments", raw, self.context(), Seen::default())
            }
            _ => {
                let effective = self.input_path(io, raw)?;
                self.render(parameters, effective)
            }
        }
    }

    fn apply_path(&self, path: Option<&Path>, value: &Value) -> Result<Value, Failure> {
        let Some(path) = path else {
            return Ok(Value::Object(Map::new()));
        };
        let selected = path
            .select(value, self.context_if(path.reads_context()))
            .map_err(|e| self.data_limit(e))?;
        selected.ok_or_else(|| {
            self.runtime(format!(
                "Invalid path '{}' : No results for path: {}",
                path.text(),
                path.canonical()
            ))
        })
    }

    fn render(&self, template: Option<&Payload>, input: Value) -> Result<Value, Failure> {
        match template {
            None => Ok(input),
            Some(t) => self.payload(t, "Arguments", &input, self.context(), Seen::default()),
        }
    }

    /// A JSONPath template rendered on `input`, or JSONata values evaluated (`field` names
    /// them in errors); `context` is `$$` / `$states.context`.
    fn payload(
        &self,
        payload: &Payload,
        field: &str,
        input: &Value,
        context: &Value,
        seen: Seen,
    ) -> Result<Value, Failure> {
        match payload {
            Payload::Path(t) => self.render_ref(t, input, context),
            Payload::Ata(a) => self.ata_with(a, field, seen, context),
        }
    }

    /// Evaluates JSONata values of this state.
    fn ata(&self, ata: &Ata, field: &str, seen: Seen) -> Result<Value, Failure> {
        self.ata_with(ata, field, seen, self.context())
    }

    fn ata_with(
        &self,
        ata: &Ata,
        field: &str,
        seen: Seen,
        context: &Value,
    ) -> Result<Value, Failure> {
        if let Some(fixed) = ata.fixed() {
            return Ok(fixed.clone());
        }
        let mut context = context.clone();
        if let Value::Object(fields) = &mut context {
            fields.remove(VARIABLES);
        }
        let entered = super::choice::parse_timestamp(&self.ctx.state_entered_time)
            .map_or(0.0, |t| (t.unix_timestamp_nanos() / 1_000_000) as f64);
        let states = States {
            input: self.input,
            result: seen.result,
            error_output: seen.error_output,
            context: &context,
        };
        let scope = Scope::new(states, &self.ctx.variables, entered, self.seed.get());
        let value = ata.eval(&scope, field);
        self.seed.set(scope.seed());
        value.map_err(|e| self.query_failure(e.location, e.message))
    }

    /// How AWS opens the cause of an error inside this state.
    fn prefix(&self) -> String {
        match self.ctx.entered_event_id {
            Some(id) => format!(
                "An error occurred while executing the state '{}' (entered at the event id #{id}). ",
                self.name()
            ),
            None => format!(
                "An error occurred while executing the state '{}'. ",
                self.name()
            ),
        }
    }

    /// A `States.Runtime` failure of this state, worded like AWS's.
    fn runtime(&self, detail: impl std::fmt::Display) -> Failure {
        Failure::new("States.Runtime", format!("{}{detail}", self.prefix()))
    }

    /// A `States.DataLimitExceeded` failure of this state.
    fn data_limit(&self, detail: impl std::fmt::Display) -> Failure {
        Failure::new(
            "States.DataLimitExceeded",
            format!("{}{detail}", self.prefix()),
        )
    }

    /// A `States.QueryEvaluationError` of this state, blamed on `location` (may be empty).
    fn query_failure(&self, location: String, message: impl std::fmt::Display) -> Failure {
        *self.evaluation_failed.borrow_mut() = Some(location);
        Failure::new(
            "States.QueryEvaluationError",
            format!("{}{message}", self.prefix()),
        )
    }

    /// A JSONata field that must give a value of type `expected` (`array`, `boolean`, …).
    fn ata_typed(
        &self,
        ata: &Ata,
        field: &str,
        seen: Seen,
        expected: &str,
    ) -> Result<Value, Failure> {
        let value = self.ata(ata, field, seen)?;
        let actual = json_type(&value);
        if actual == expected || (expected == "number" && value.is_number()) {
            return Ok(value);
        }
        let text = match ata {
            Ata::Expr(_) | Ata::Object(_) | Ata::Array(_) => format!("{ata}"),
            Ata::Fixed(v) => v.to_string(),
        };
        Err(self.query_failure(
            field.to_string(),
            format!(
                "The JSONata expression '{text}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{actual}' for value: {value}"
            ),
        ))
    }

    /// A Task's, Parallel's or Map's output from its result: JSONPath's ResultSelector,
    /// Assign, ResultPath and OutputPath, or JSONata's Assign and Output.
    fn result(
        &self,
        io: &InputOutput,
        selector: Option<&Payload>,
        result_path: Option<&Path>,
        result: Value,
    ) -> Result<Value, Failure> {
        if self.state.jsonata {
            let seen = Seen {
                result: Some(&result),
                error_output: None,
            };
            let output = self.state.output.as_ref();
            return self.conclude(self.state.assign.as_ref(), output, seen, || result.clone());
        }
        let selected = self.render(selector, result)?;
        self.assign(self.state.assign.as_ref(), &selected, Seen::default())?;
        let combined = self.result_path(result_path, self.input, selected)?;
        self.output_path(io, combined)
    }

    /// A JSONata state's end: its `Assign` and its `Output` (else `default`), both reading
    /// `$states` as `seen` and the variables as they were before the state.
    fn conclude(
        &self,
        assign: Option<&Payload>,
        output: Option<&Ata>,
        seen: Seen,
        default: impl FnOnce() -> Value,
    ) -> Result<Value, Failure> {
        self.assign(assign, self.input, seen)?;
        match output {
            Some(output) => self.ata(output, "Output", seen),
            None => Ok(default()),
        }
    }

    /// Renders a payload template; intrinsic failures are `States.IntrinsicFailure`, paths
    /// matching nothing `States.Runtime`.
    fn render_ref(&self, t: &Template, input: &Value, context: &Value) -> Result<Value, Failure> {
        let mut rng = Random::new(self.seed.get());
        let rendered = t.render(input, context, &mut rng);
        self.seed.set(rng.state());
        rendered.map_err(|e| match e {
            TemplateError::Intrinsic { .. } => {
                Failure::new("States.IntrinsicFailure", format!("{}{e}", self.prefix()))
            }
            TemplateError::TooLarge(e) => self.data_limit(e),
            other => self.runtime(other),
        })
    }

    /// `ResultPath`: `null` keeps the raw input; a mismatch is `States.ResultPathMatchFailure`.
    fn result_path(
        &self,
        path: Option<&Path>,
        raw: &Value,
        result: Value,
    ) -> Result<Value, Failure> {
        match path {
            None => Ok(raw.clone()),
            Some(p) => p
                .put(raw.clone(), result)
                .map_err(|e| Failure::new("States.ResultPathMatchFailure", e.to_string())),
        }
    }
}

impl StateMachine {
    /// Runs state `state` on `input`. Events returned: e.g. [PassStateEntered,
    /// PassStateExited], [TaskStateEntered, TaskScheduled], [ChoiceStateEntered,
    /// ChoiceStateExited], [WaitStateEntered], [SucceedStateEntered, SucceedStateExited],
    /// [FailStateEntered]. On a runtime error inside the state (bad path etc.) returns
    /// `Action::Fail` with AWS's error name (`States.Runtime`, `States.NoChoiceMatched`, …) and
    /// the events emitted up to that point.
    pub fn enter(&self, state: &str, input: &Value, ctx: &Context) -> Step {
        let Some(found) = self.state(state) else {
            return unknown_state(state);
        };
        let mut run = Run::new(found, ctx, input);
        let result = match &found.body {
            Body::Pass(pass) => {
                run.push(HistoryEvent::entered(
                    EventType::PassStateEntered,
                    state,
                    input,
                ));
                let out = (|| {
                    if found.jsonata {
                        let seen = Seen::default();
                        return run.conclude(
                            found.assign.as_ref(),
                            found.output.as_ref(),
                            seen,
                            || input.clone(),
                        );
                    }
                    let effective =
                        run.effective_input(&pass.io, pass.parameters.as_ref(), input)?;
                    let result = pass.result.clone().unwrap_or(effective);
                    run.assign(found.assign.as_ref(), &result, Seen::default())?;
                    let combined = run.result_path(pass.result_path.as_ref(), input, result)?;
                    run.output_path(&pass.io, combined)
                })();
                out.map(|output| {
                    run.push(HistoryEvent::exited(
                        EventType::PassStateExited,
                        state,
                        &output,
                    ));
                    Action::Transition {
                        output,
                        next: (&pass.transition).into(),
                    }
                })
            }
            Body::Task(task) => {
                run.push(HistoryEvent::entered(
                    EventType::TaskStateEntered,
                    state,
                    input,
                ));
                (|| {
                    let effective = run.input_path(&task.io, input)?;
                    let seconds = |fixed: Option<u64>, path: &Option<Path>, field: &str| match (
                        fixed, path,
                    ) {
                        (Some(n), _) => Ok(Some(n)),
                        (None, Some(path)) => {
                            let value = run.apply_path(Some(path), &effective)?;
                            whole_seconds(&value).filter(|n| *n > 0).map(Some).ok_or_else(
                                    || {
                                        run.runtime(format!("{field} '{}' must select a positive whole number, not {value}", path.text()),
                                        )
                                    },
                                )
                        }
                        (None, None) => Ok(None),
                    };
                    let computed = |expr: &Option<Ata>,
                                    field: &str|
                     -> Result<Option<u64>, Failure> {
                        let Some(expr) = expr else { return Ok(None) };
                        let value = run.ata_typed(expr, field, Seen::default(), "number")?;
                        match whole_seconds(&value).filter(|n| *n > 0) {
                            Some(n) => Ok(Some(n)),
                            None => Err(run.query_failure(
                                field.to_string(),
                                format!("The JSONata expression '{expr}' specified for the field '{field}' must give a positive whole number, not {value}"),
                            )),
                        }
                    };
                    let timeout_seconds = match computed(&task.timeout_expr, "TimeoutSeconds")? {
                        Some(n) => Some(n),
                        None => seconds(
                            task.timeout_seconds,
                            &task.timeout_seconds_path,
                            "TimeoutSecondsPath",
                        )?,
                    };
                    let heartbeat_seconds =
                        match computed(&task.heartbeat_expr, "HeartbeatSeconds")? {
                            Some(n) => Some(n),
                            None => seconds(
                                task.heartbeat_seconds,
                                &task.heartbeat_seconds_path,
                                "HeartbeatSecondsPath",
                            )?,
                        };
                    let parameters = run.render(task.parameters.as_ref(), effective)?;
                    let region = ctx.execution_id.split(':').nth(3).unwrap_or_default();
                    let activity = super::events::is_activity(&task.resource);
                    run.push(if activity {
                        HistoryEvent::activity_scheduled(
                            &task.resource,
                            &parameters,
                            timeout_seconds,
                            heartbeat_seconds,
                        )
                    } else {
                        HistoryEvent::task_scheduled(
                            region,
                            &task.resource,
                            &parameters,
                            timeout_seconds,
                            heartbeat_seconds,
                        )
                    });
                    Ok(Action::Invoke {
                        resource: task.resource.clone(),
                        parameters,
                        // An activity's result, too, comes back with its task token.
                        wait_for_token: task.wait_for_token || activity,
                        timeout_seconds,
                        heartbeat_seconds,
                    })
                })()
            }
            Body::Choice(choice) => {
                run.push(HistoryEvent::entered(
                    EventType::ChoiceStateEntered,
                    state,
                    input,
                ));
                let chosen = (|| {
                    let effective = run.input_path(&choice.io, input)?;
                    let mut matched = None;
                    for rule in &choice.choices {
                        let holds = match &rule.test {
                            Test::Path(condition) => condition
                                .holds(&effective, run.context_if(condition.reads_context()))
                                .map_err(|cause| run.runtime(cause))?,
                            Test::Ata(condition) => run
                                .ata_typed(condition, "Condition", Seen::default(), "boolean")?
                                .as_bool()
                                .unwrap_or(false),
                        };
                        if holds {
                            matched = Some(rule);
                            break;
                        }
                    }
                    // A matching rule's Assign and Output stand in for the state's.
                    let (next, assign, output) = match matched {
                        Some(rule) => (
                            rule.next.clone(),
                            rule.assign.as_ref(),
                            rule.output.as_ref(),
                        ),
                        None => {
                            let next = choice.default.clone().ok_or_else(|| {
                                Failure::new(
                                    "States.NoChoiceMatched",
                                    format!("No Choice rule of state '{state}' matched the input, and it has no Default"),
                                )
                            })?;
                            (next, found.assign.as_ref(), found.output.as_ref())
                        }
                    };
                    if found.jsonata {
                        let output = run.conclude(assign, output, Seen::default(), || effective)?;
                        return Ok((output, next));
                    }
                    run.assign(assign, &effective, Seen::default())?;
                    Ok((run.output_path(&choice.io, effective)?, next))
                })();
                chosen.map(|(output, next)| {
                    run.push(HistoryEvent::exited(
                        EventType::ChoiceStateExited,
                        state,
                        &output,
                    ));
                    Action::Transition {
                        output,
                        next: Next::State(next),
                    }
                })
            }
            Body::Wait(wait) => {
                run.push(HistoryEvent::entered(
                    EventType::WaitStateEntered,
                    state,
                    input,
                ));
                (|| {
                    let effective = run.input_path(&wait.io, input)?;
                    let until = wait_until(&run, &wait.wait, &effective)?;
                    let output = if found.jsonata {
                        run.conclude(
                            found.assign.as_ref(),
                            found.output.as_ref(),
                            Seen::default(),
                            || effective,
                        )?
                    } else {
                        run.assign(found.assign.as_ref(), &effective, Seen::default())?;
                        run.output_path(&wait.io, effective)?
                    };
                    Ok(Action::Wait {
                        until,
                        output,
                        next: (&wait.transition).into(),
                    })
                })()
            }
            Body::Succeed(io) => {
                run.push(HistoryEvent::entered(
                    EventType::SucceedStateEntered,
                    state,
                    input,
                ));
                let out = match &found.output {
                    Some(output) => run.ata(output, "Output", Seen::default()),
                    None => run
                        .input_path(io, input)
                        .and_then(|effective| run.output_path(io, effective)),
                };
                out.map(|output| {
                    run.push(HistoryEvent::exited(
                        EventType::SucceedStateExited,
                        state,
                        &output,
                    ));
                    Action::Transition {
                        output,
                        next: Next::End,
                    }
                })
            }
            Body::Fail(fail) => {
                run.push(HistoryEvent::entered(
                    EventType::FailStateEntered,
                    state,
                    input,
                ));
                fail_with(&run, fail, input).map(Action::Fail)
            }
            Body::Parallel(fork) => {
                run.push(HistoryEvent::entered(
                    EventType::ParallelStateEntered,
                    state,
                    input,
                ));
                let started = run
                    .effective_input(&fork.io, fork.parameters.as_ref(), input)
                    .map(|effective| {
                        run.push(HistoryEvent::bare(EventType::ParallelStateStarted));
                        Action::Fork {
                            branches: (0..fork.branches.len())
                                .map(|machine| Branch {
                                    machine,
                                    input: effective.clone(),
                                })
                                .collect(),
                            max_concurrency: 0,
                            tolerance: Tolerance::default(),
                            map: false,
                            map_run: None,
                        }
                    });
                fork_not_started(&mut run, started, EventType::ParallelStateFailed)
            }
            Body::Map(fork) => {
                run.push(HistoryEvent::entered(
                    EventType::MapStateEntered,
                    state,
                    input,
                ));
                let started = map_fork(&mut run, fork, input);
                fork_not_started(&mut run, started, EventType::MapStateFailed)
            }
        };
        run.finish(result)
    }

    /// Every branch of Parallel or Map state `state` (entered with `state_input`) succeeded
    /// with `outputs`, in branch or item order: ResultSelector, ResultPath and OutputPath
    /// apply to the array. Events: [ParallelStateSucceeded | MapStateSucceeded, …Exited].
    pub fn fork_succeeded(
        &self,
        state: &str,
        state_input: &Value,
        outputs: Vec<Value>,
        ctx: &Context,
    ) -> Step {
        let Some((found, fork, map)) = self.fork_state(state) else {
            return not_a_fork(state);
        };
        let mut run = Run::new(found, ctx, state_input);
        let (succeeded, _, exited) = fork_events(map);
        if fork.map.as_ref().is_some_and(|m| m.map_run.is_some()) {
            run.push(HistoryEvent::bare(EventType::MapRunSucceeded));
        }
        run.push(HistoryEvent::bare(succeeded));
        let output = run.result(
            &fork.io,
            fork.result_selector.as_ref(),
            fork.result_path.as_ref(),
            Value::Array(outputs),
        );
        let action = match output {
            Ok(output) => {
                run.push(HistoryEvent::exited(exited, state, &output));
                Ok(Action::Transition {
                    output,
                    next: (&fork.transition).into(),
                })
            }
            Err(failure) => catch(&mut run, &fork.catch, exited, state_input, failure),
        };
        run.finish(action)
    }

    /// A branch failed (or a Map's failures passed its tolerance): events
    /// [ParallelStateFailed | MapStateFailed], then the state's `Catch` as for a Task.
    pub fn fork_failed(
        &self,
        state: &str,
        state_input: &Value,
        failure: Failure,
        ctx: &Context,
    ) -> Step {
        let Some((found, fork, map)) = self.fork_state(state) else {
            return not_a_fork(state);
        };
        let mut run = Run::new(found, ctx, state_input);
        let (_, failed, exited) = fork_events(map);
        if fork.map.as_ref().is_some_and(|m| m.map_run.is_some()) {
            let mut map_run = HistoryEvent::bare(EventType::MapRunFailed);
            map_run.details = json!({ "error": failure.error, "cause": failure.cause });
            run.push(map_run);
        }
        run.push(HistoryEvent::bare(failed));
        let action = catch(&mut run, &fork.catch, exited, state_input, failure);
        run.finish(action)
    }

    /// The Parallel or Map state called `name`, and whether it is a Map.
    fn fork_state(&self, name: &str) -> Option<(&State, &ForkState, bool)> {
        let state = self.state(name)?;
        match &state.body {
            Body::Parallel(f) => Some((state, f, false)),
            Body::Map(f) => Some((state, f, true)),
            _ => None,
        }
    }

    /// The task of Task state `state` (entered with `state_input`) returned `result`: applies
    /// ResultSelector, ResultPath and OutputPath. Events: [TaskSucceeded, TaskStateExited].
    /// A `States.ResultPathMatchFailure` here is handled by the state's `Catch` like a task
    /// error; `States.Runtime` never is.
    pub fn task_succeeded(
        &self,
        state: &str,
        state_input: &Value,
        result: Value,
        ctx: &Context,
    ) -> Step {
        let Some((found, task)) = self.task(state) else {
            return not_a_task(state);
        };
        let mut run = Run::new(found, ctx, state_input);
        run.push(HistoryEvent::task_succeeded(&task.resource, &result));
        let output = run.result(
            &task.io,
            task.result_selector.as_ref(),
            task.result_path.as_ref(),
            result,
        );
        let action = match output {
            Ok(output) => {
                run.push(HistoryEvent::exited(
                    EventType::TaskStateExited,
                    state,
                    &output,
                ));
                Ok(Action::Transition {
                    output,
                    next: (&task.transition).into(),
                })
            }
            Err(failure) => catch(
                &mut run,
                &task.catch,
                EventType::TaskStateExited,
                state_input,
                failure,
            ),
        };
        run.finish(action)
    }

    /// The task failed: events [TaskFailed{error, cause}]; then, if a `Catch` rule matches,
    /// [TaskStateExited] and a transition to its `Next` with `{"Error", "Cause"}` written at
    /// its `ResultPath`; otherwise `Action::Fail(failure)`.
    pub fn task_failed(
        &self,
        state: &str,
        state_input: &Value,
        failure: Failure,
        ctx: &Context,
    ) -> Step {
        let Some((found, task)) = self.task(state) else {
            return not_a_task(state);
        };
        let mut run = Run::new(found, ctx, state_input);
        run.push(HistoryEvent::task_failed(
            &task.resource,
            &failure.error,
            &failure.cause,
        ));
        let action = catch(
            &mut run,
            &task.catch,
            EventType::TaskStateExited,
            state_input,
            failure,
        );
        run.finish(action)
    }

    fn task(&self, name: &str) -> Option<(&State, &TaskState)> {
        let state = self.state(name)?;
        match &state.body {
            Body::Task(task) => Some((state, task)),
            _ => None,
        }
    }
}

/// Routes `failure` to the first matching `Catch` rule, or fails the execution.
/// Applies the first `Catch` rule matching the failure: `{"Error", "Cause"}` at its
/// ResultPath, the `exited` event, and a transition to its `Next`. No match: the failure.
fn catch(
    run: &mut Run<'_>,
    catchers: &[Catcher],
    exited: EventType,
    state_input: &Value,
    failure: Failure,
) -> Result<Action, Failure> {
    let Some(catcher) = catchers
        .iter()
        .find(|c| error_matches(&c.error_equals, &failure.error))
    else {
        return Err(failure);
    };
    let error_output = json!({ "Error": failure.error, "Cause": failure.cause });
    // A Catch rule's Assign replaces the state's own.
    *run.assigned.borrow_mut() = None;
    let output = if run.state.jsonata {
        let seen = Seen {
            result: None,
            error_output: Some(&error_output),
        };
        let assign = catcher.assign.as_ref();
        run.conclude(assign, catcher.output.as_ref(), seen, || {
            error_output.clone()
        })?
    } else {
        run.assign(catcher.assign.as_ref(), &error_output, Seen::default())?;
        run.result_path(catcher.result_path.as_ref(), state_input, error_output)?
    };
    let name = run.name().to_string();
    run.push(HistoryEvent::exited(exited, &name, &output));
    Ok(Action::Transition {
        output,
        next: Next::State(catcher.next.clone()),
    })
}

fn wait_until(run: &Run<'_>, wait: &WaitFor, effective: &Value) -> Result<WaitUntil, Failure> {
    let read = |path: &Path| {
        let selected = path
            .select(effective, run.context_if(path.reads_context()))
            .map_err(|e| run.data_limit(e))?;
        selected.ok_or_else(|| {
            run.runtime(format!(
                "The path '{}' matched nothing in the input",
                path.text()
            ))
        })
    };
    match wait {
        WaitFor::Expr {
            seconds: true,
            value,
        } => {
            let n = run.ata_typed(value, "Seconds", Seen::default(), "number")?;
            whole_seconds(&n).map(WaitUntil::Seconds).ok_or_else(|| {
                run.query_failure(
                    "Seconds".into(),
                    format!("The Seconds field must be a non-negative whole number, not {n}"),
                )
            })
        }
        WaitFor::Expr {
            seconds: false,
            value,
        } => {
            let ts = run.ata_typed(value, "Timestamp", Seen::default(), "string")?;
            let ts = ts.as_str().unwrap_or_default();
            match super::choice::parse_timestamp(ts) {
                Some(_) => Ok(WaitUntil::Timestamp(ts.to_string())),
                None => Err(run.query_failure(
                    "Timestamp".into(),
                    format!("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {ts}"),
                )),
            }
        }
        WaitFor::Seconds(s) => Ok(WaitUntil::Seconds(*s)),
        WaitFor::Timestamp(ts) => Ok(WaitUntil::Timestamp(ts.clone())),
        WaitFor::SecondsPath(path) => {
            let value = read(path)?;
            let shown = value_text(&value);
            match shown.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(WaitUntil::Seconds(n as u64)),
                Ok(_) => Err(run.runtime(format!(
                    "The SecondsPath parameter references a negative value: {} == {shown}",
                    path.text()
                ))),
                Err(_) => Err(run.runtime(format!(
                    "The SecondsPath parameter cannot be parsed as a long value: {} == {shown}",
                    path.text()
                ))),
            }
        }
        WaitFor::TimestampPath(path) => {
            let value = read(path)?;
            match value.as_str() {
                Some(ts) if super::choice::parse_timestamp(ts).is_some() => {
                    Ok(WaitUntil::Timestamp(ts.to_string()))
                }
                _ => Err(run.runtime(format!(
                    "TimestampPath '{}' must point to an RFC 3339 timestamp, not {value}",
                    path.text()
                ))),
            }
        }
    }
}

/// A non-negative whole number of seconds, accepting `5` and `5.0`.
fn whole_seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64).then_some(f as u64)
    })
}

fn fail_with(run: &Run<'_>, fail: &FailState, input: &Value) -> Result<Failure, Failure> {
    let text = |field: &str, source: &Option<Text>| -> Result<String, Failure> {
        match source {
            None => Ok(String::new()),
            Some(Text::Fixed(s)) => Ok(s.clone()),
            Some(Text::Expr(e)) => {
                let field = field.trim_end_matches("Path");
                let value = run.ata_typed(e, field, Seen::default(), "string")?;
                Ok(value.as_str().unwrap_or_default().to_string())
            }
            Some(Text::Call(call)) => match run.render_ref(call, input, run.context())? {
                Value::String(s) => Ok(s),
                other => Err(run.runtime(format!(
                    "{field} must give a string, not {other}"
                ))),
            },
            Some(Text::Path(path)) => match path.select(input, run.context()) {
                Err(e) => Err(run.data_limit(e)),
                Ok(Some(Value::String(s))) => Ok(s),
                Ok(None) => Err(run.runtime(format!(
                    "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{input}'",
                    path.text()
                ))),
                Ok(Some(other)) => Err(run.runtime(format!(
                    "{field} '{}' must point to a string, not {other}",
                    path.text()
                ))),
            },
        }
    };
    Ok(Failure {
        error: text("ErrorPath", &fail.error)?,
        cause: text("CausePath", &fail.cause)?,
    })
}

fn unknown_state(state: &str) -> Step {
    Step {
        action: Action::Fail(Failure::new(
            "States.Runtime",
            format!("The state '{state}' does not exist in the state machine"),
        )),
        events: Vec::new(),
        assigned: None,
    }
}

/// A JSONata failure while starting a Parallel or Map state is followed by its `failed` event,
/// as on AWS.
fn fork_not_started(
    run: &mut Run<'_>,
    started: Result<Action, Failure>,
    failed: EventType,
) -> Result<Action, Failure> {
    if started.is_err() && run.evaluation_failed.borrow().is_some() {
        run.evaluation_failed(&started);
        run.push(HistoryEvent::bare(failed));
    }
    started
}

/// A Map's or a Parallel's …Succeeded, …Failed and …Exited events.
fn fork_events(map: bool) -> (EventType, EventType, EventType) {
    if map {
        (
            EventType::MapStateSucceeded,
            EventType::MapStateFailed,
            EventType::MapStateExited,
        )
    } else {
        (
            EventType::ParallelStateSucceeded,
            EventType::ParallelStateFailed,
            EventType::ParallelStateExited,
        )
    }
}

fn not_a_fork(state: &str) -> Step {
    Step {
        action: Action::Fail(Failure::new(
            "States.Runtime",
            format!("The state '{state}' is not a Parallel or Map state"),
        )),
        events: Vec::new(),
        assigned: None,
    }
}

/// A Map state's iterations: the items (ItemsPath), each through ItemSelector with
/// `$$.Map.Item.Index` and `.Value`, grouped by ItemBatcher if any.
fn map_fork(run: &mut Run<'_>, fork: &ForkState, input: &Value) -> Result<Action, Failure> {
    let default = MapOptions {
        items_path: None,
        items: None,
        max_concurrency: None,
        tolerated_count: None,
        tolerated_percentage: None,
        batch: None,
        map_run: None,
    };
    let options = fork.map.as_ref().unwrap_or(&default);
    let effective = run.input_path(&fork.io, input)?;
    let items = match (&options.items_path, &options.items) {
        (_, Some(items)) => run.ata_typed(items, "Items", Seen::default(), "array")?,
        (None, None) => effective.clone(),
        (Some(path), None) => run.apply_path(Some(path), &effective)?,
    };
    let Value::Array(items) = items else {
        if run.state.jsonata {
            let message = format!("Map state input must be an array but was: {items}");
            return Err(run.query_failure(String::new(), message));
        }
        return Err(run.runtime(format!(
            "The Map state's items must be a JSON array, but ItemsPath selected {}",
            items
        )));
    };
    let amount = |q: &Option<Quantity>, field: &str| -> Result<Option<f64>, Failure> {
        match q {
            None => Ok(None),
            Some(Quantity::Fixed(n)) => Ok(Some(*n)),
            Some(Quantity::Expr(e)) => {
                let value = run.ata_typed(e, field, Seen::default(), "number")?;
                match value.as_f64().filter(|n| *n >= 0.0) {
                    Some(n) => Ok(Some(n)),
                    None => Err(run.query_failure(
                        field.to_string(),
                        format!("The JSONata expression '{e}' specified for the field '{field}' must give a number of at least 0, not {value}"),
                    )),
                }
            }
            Some(Quantity::Path(path)) => {
                let value = run.apply_path(Some(path), &effective)?;
                // AWS reads the value's text as a number: "2" will do, 1.5 is no integer.
                let float = field == "ToleratedFailurePercentage";
                let shown = value_text(&value);
                let number = match float {
                    true => shown.parse::<f64>().ok().filter(|n| n.is_finite()),
                    false => shown.parse::<i64>().ok().map(|n| n as f64),
                };
                let number = number
                    .ok_or_else(|| {
                        let kind = if float { "float" } else { "integer" };
                        run.runtime(format!(
                            "The {field}Path field refers to value \"{shown}\" which is not a valid {kind}: {}",
                            path.text()
                        ))
                    })?;
                if float && !(0.0..=100.0).contains(&number) {
                    return Err(run.runtime(format!("{field} must be between 0 and 100.")));
                }
                if number < 0.0 {
                    return Err(run.runtime(format!("{field} cannot be negative.")));
                }
                Ok(Some(number))
            }
        }
    };
    let max_concurrency =
        amount(&options.max_concurrency, "MaxConcurrency")?.unwrap_or(0.0) as usize;
    let tolerance = Tolerance {
        count: amount(&options.tolerated_count, "ToleratedFailureCount")?.map(|n| n as u64),
        percentage: amount(&options.tolerated_percentage, "ToleratedFailurePercentage")?,
    };
    let mut selected = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let mut context = run.context().clone();
        context["Map"] = json!({ "Item": { "Index": index, "Value": &item } });
        // In ItemSelector `$` is the Map state's input; the item is `$$.Map.Item.Value`.
        selected.push(match &fork.parameters {
            Some(selector) => run.payload(
                selector,
                "ItemSelector",
                &effective,
                &context,
                Seen::default(),
            )?,
            None => item,
        });
    }
    let inputs = match &options.batch {
        None => selected,
        Some(batcher) => batches(
            run,
            batcher,
            selected,
            &effective,
            amount(&batcher.max_items, "MaxItemsPerBatch")?,
        )?,
    };
    let mut started = HistoryEvent::bare(EventType::MapStateStarted);
    started.details = json!({ "length": inputs.len() });
    run.push(started);
    Ok(Action::Fork {
        branches: inputs
            .into_iter()
            .map(|input| Branch { machine: 0, input })
            .collect(),
        max_concurrency,
        tolerance,
        map: true,
        map_run: options.map_run.clone(),
    })
}

/// ItemBatcher: `{"Items": [...]}` of at most `max_items` each, with `BatchInput` if given.
fn batches(
    run: &Run<'_>,
    batcher: &Batcher,
    items: Vec<Value>,
    effective: &Value,
    max_items: Option<f64>,
) -> Result<Vec<Value>, Failure> {
    let size = max_items
        .map(|n| n as usize)
        .filter(|n| *n > 0)
        .unwrap_or(items.len().max(1));
    let batch_input = match &batcher.batch_input {
        Some(t) => {
            let context = run.context();
            Some(run.payload(t, "BatchInput", effective, context, Seen::default())?)
        }
        None => None,
    };
    Ok(items
        .chunks(size)
        .map(|chunk| {
            let mut batch = json!({ "Items": chunk });
            if let Some(extra) = &batch_input {
                batch["BatchInput"] = extra.clone();
            }
            batch
        })
        .collect())
}

fn not_a_task(state: &str) -> Step {
    Step {
        action: Action::Fail(Failure::new(
            "States.Runtime",
            format!("The state '{state}' is not a Task state, so it has no task to complete"),
        )),
        events: Vec::new(),
        assigned: None,
    }
}

/// A value as AWS quotes it in messages: a string as is, anything else as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSONata's name for the type of a JSON value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::definition::parse;
    use super::*;
    use serde_json::json;

    /// Parses a definition every test here expects to be valid.
    pub(in crate::engine) fn machine(definition: Value) -> StateMachine {
        match parse(&definition.to_string()) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// A one-state machine: `state` named "S", ending the execution.
    fn single(mut state: Value) -> StateMachine {
        let ends = matches!(
            state["Type"].as_str(),
            Some("Pass" | "Task" | "Wait" | "Parallel" | "Map")
        );
        if ends && state.get("Next").is_none() {
            state["End"] = json!(true);
        }
        machine(json!({"StartAt": "S", "States": {"S": state}}))
    }

    fn ctx() -> Context {
        Context {
            execution_id: "arn:aws:states:us-east-1:123456789012:execution:m:run-1".into(),
            execution_name: "run-1".into(),
            execution_input: json!({"start": true}),
            execution_start_time: "2024-01-01T00:00:00Z".into(),
            state_machine_id: "arn:aws:states:us-east-1:123456789012:stateMachine:m".into(),
            state_machine_name: "m".into(),
            state_name: String::new(),
            state_entered_time: "2024-01-01T00:00:01Z".into(),
            task_token: None,
            random_seed: 0,
            retry_count: 0,
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            variables: Map::new(),
            entered_event_id: None,
        }
    }

    fn output(step: &Step) -> Option<&Value> {
        match &step.action {
            Action::Transition { output, .. } | Action::Wait { output, .. } => Some(output),
            _ => None,
        }
    }

    fn failure(step: &Step) -> Option<&Failure> {
        match &step.action {
            Action::Fail(f) => Some(f),
            _ => None,
        }
    }

    fn kinds(step: &Step) -> Vec<EventType> {
        step.events.iter().map(|e| e.kind).collect()
    }

    /// Runs a Task state through enter and task_succeeded, returning the final step.
    fn run_task(m: &StateMachine, input: &Value, result: Value) -> (Step, Step) {
        let entered = m.enter("S", input, &ctx());
        let done = m.task_succeeded("S", input, result, &ctx());
        (entered, done)
    }

    #[test]
    fn aws_input_and_output_processing_examples() {
        // The AWS "InputPath, Parameters and ResultSelector" and "ResultPath" documentation
        // examples, as (state, input, task result, expected parameters, expected output).
        let cases = [
            (
                json!({"Type": "Task", "Resource": "r", "InputPath": "$.dataset2"}),
                json!({"comment": "Example for InputPath.", "dataset1": {"val1": 1, "val2": 2, "val3": 3},
                       "dataset2": {"val1": "a", "val2": "b", "val3": "c"}}),
                json!("done"),
                json!({"val1": "a", "val2": "b", "val3": "c"}),
                json!("done"),
            ),
            (
                json!({"Type": "Task", "Resource": "r", "Parameters": {
                    "comment": "Selecting what I care about.",
                    "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability",
                                  "StaticValue": "foo"}}}),
                json!({"comment": "Example for Parameters.", "product": {"details": {"color": "blue", "size": "small",
                       "material": "cotton"}, "availability": "in stock", "sku": "2317", "cost": "$23"}}),
                json!(null),
                json!({"comment": "Selecting what I care about.", "MyDetails": {"size": "small",
                       "exists": "in stock", "StaticValue": "foo"}}),
                json!(null),
            ),
            (
                json!({"Type": "Task", "Resource": "r", "ResultSelector": {
                    "ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
                    "ResultPath": "$.EMROutput"}),
                json!({"cluster": "c"}),
                json!({"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
                       "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}),
                json!({"cluster": "c"}),
                json!({"cluster": "c", "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE",
                       "ResourceType": "elasticmapreduce"}}),
            ),
            (
                json!({"Type": "Task", "Resource": "r", "ResultPath": "$.taskresult"}),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!("Hello, Step Functions!"),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions",
                       "taskresult": "Hello, Step Functions!"}),
            ),
            (
                json!({"Type": "Task", "Resource": "r", "ResultPath": null}),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!("Hello, Step Functions!"),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
            ),
            (
                json!({"Type": "Task", "Resource": "r"}),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!("Hello, Step Functions!"),
                json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"}),
                json!("Hello, Step Functions!"),
            ),
            (
                json!({"Type": "Task", "Resource": "r", "ResultPath": "$.strings.lambdaresult"}),
                json!({"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                       "lambda": {"who": "AWS Step Functions"}}),
                json!("Hello, AWS Step Functions!"),
                json!({"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                       "lambda": {"who": "AWS Step Functions"}}),
                json!({"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                       "lambda": {"who": "AWS Step Functions"},
                       "strings": {"lambdaresult": "Hello, AWS Step Functions!"}}),
            ),
            (
                // The combined InputPath / ResultPath / OutputPath example.
                json!({"Type": "Task", "Resource": "r", "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult",
                       "OutputPath": "$.data"}),
                json!({"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                       "lambda": {"who": "AWS Step Functions"}}),
                json!("Hello, AWS Step Functions!"),
                json!({"who": "AWS Step Functions"}),
                json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}),
            ),
        ];
        for (i, (state, input, result, parameters, expected)) in cases.into_iter().enumerate() {
            let m = single(state);
            let (entered, done) = run_task(&m, &input, result);
            let invoked = match &entered.action {
                Action::Invoke { parameters, .. } => Some(parameters),
                _ => None,
            };
            assert_eq!(invoked, Some(&parameters), "case {i} parameters");
            assert_eq!(output(&done), Some(&expected), "case {i} output");
            assert_eq!(
                kinds(&done),
                [EventType::TaskSucceeded, EventType::TaskStateExited]
            );
        }
    }

    #[test]
    fn pass_state_result_and_result_path_as_in_aws_docs() {
        // The AWS Pass state example: Result placed at $.coords.
        let m = single(
            json!({"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                              "ResultPath": "$.coords"}),
        );
        let input = json!({"georefOf": "Home"});
        let step = m.enter("S", &input, &ctx());
        assert_eq!(
            output(&step),
            Some(
                &json!({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}})
            )
        );
        assert_eq!(
            step.action,
            Action::Transition {
                output: output(&step).cloned().unwrap_or_default(),
                next: Next::End
            }
        );
        assert_eq!(
            kinds(&step),
            [EventType::PassStateEntered, EventType::PassStateExited]
        );
        assert_eq!(step.events[0].details["input"], json!(input.to_string()));
    }

    #[test]
    fn null_input_path_and_output_path_give_empty_objects() {
        let m =
            single(json!({"Type": "Pass", "InputPath": null, "ResultPath": "$.r", "Result": 1}));
        assert_eq!(
            output(&m.enter("S", &json!({"a": 1}), &ctx())),
            Some(&json!({"a": 1, "r": 1}))
        );
        let m = single(json!({"Type": "Pass", "InputPath": null}));
        assert_eq!(
            output(&m.enter("S", &json!({"a": 1}), &ctx())),
            Some(&json!({}))
        );
        let m = single(json!({"Type": "Pass", "OutputPath": null}));
        assert_eq!(
            output(&m.enter("S", &json!({"a": 1}), &ctx())),
            Some(&json!({}))
        );
    }

    #[test]
    fn parameters_path_matching_nothing_fails_with_states_runtime_and_aws_cause() {
        let m = single(json!({"Type": "Pass", "Parameters": {"x.$": "$.x"}}));
        let step = m.enter("S", &json!({"a": 1}), &ctx());
        let f = failure(&step);
        assert_eq!(f.map(|f| f.error.as_str()), Some("States.Runtime"));
        let cause = f.map(|f| f.cause.as_str()).unwrap_or_default();
        assert!(cause.contains("'S'"), "{cause}");
        assert!(
            cause.contains(r#"The JSONPath '$.x' specified for the field 'x.$' could not be found in the input '{"a":1}'"#),
            "{cause}"
        );
        assert_eq!(kinds(&step), [EventType::PassStateEntered]);
    }

    #[test]
    fn intrinsics_render_in_parameters_and_their_failures_are_intrinsic_failures() {
        let m = single(json!({"Type": "Pass", "Parameters": {
            "m.$": "States.Format('x {}', $.a)",
            "id.$": "States.UUID()"
        }}));
        let step = m.enter("S", &json!({"a": 1}), &ctx());
        let out = output(&step).cloned().unwrap_or_default();
        assert_eq!(out["m"], json!("x 1"));
        assert_eq!(out["id"].as_str().map(str::len), Some(36));

        let m =
            single(json!({"Type": "Pass", "Parameters": {"i.$": "States.ArrayGetItem($.l, 2)"}}));
        let step = m.enter("S", &json!({"l": [1]}), &ctx());
        let f = failure(&step);
        assert_eq!(f.map(|f| f.error.as_str()), Some("States.IntrinsicFailure"));
        let cause = f.map(|f| f.cause.as_str()).unwrap_or_default();
        assert!(
            cause.contains("'S'") && cause.contains("States.ArrayGetItem"),
            "{cause}"
        );
    }

    #[test]
    fn input_path_matching_nothing_fails_with_states_runtime() {
        let m = single(json!({"Type": "Task", "Resource": "r", "InputPath": "$.missing"}));
        let step = m.enter("S", &json!({}), &ctx());
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
        assert!(failure(&step).is_some_and(|f| f.cause.contains("$['missing']")));
        assert_eq!(kinds(&step), [EventType::TaskStateEntered]);
    }

    #[test]
    fn result_path_into_a_non_object_fails_with_result_path_match_failure() {
        let m = single(json!({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b"}));
        let step = m.enter("S", &json!({"a": "text"}), &ctx());
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.ResultPathMatchFailure")
        );
    }

    #[test]
    fn task_entry_schedules_with_context_token_and_strips_the_suffix() {
        let m = single(
            json!({"Type": "Task", "Resource": "orderflow:approve.waitForTaskToken",
            "TimeoutSeconds": 300,
            "Parameters": {"OrderID.$": "$.OrderID", "TaskToken.$": "$$.Task.Token", "Run.$": "$$.Execution.Name",
                           "Me.$": "$$.State.Name"}}),
        );
        let mut context = ctx();
        context.task_token = Some("tok-1".into());
        let step = m.enter("S", &json!({"OrderID": 7}), &context);
        let expected_parameters =
            json!({"OrderID": 7, "TaskToken": "tok-1", "Run": "run-1", "Me": "S"});
        assert_eq!(
            step.action,
            Action::Invoke {
                resource: "orderflow:approve.waitForTaskToken".into(),
                parameters: expected_parameters.clone(),
                wait_for_token: true,
                timeout_seconds: Some(300),
                heartbeat_seconds: None,
            }
        );
        assert_eq!(
            kinds(&step),
            [EventType::TaskStateEntered, EventType::TaskScheduled]
        );
        let scheduled = &step.events[1].details;
        assert_eq!(scheduled["resource"], json!("approve.waitForTaskToken"));
        assert_eq!(scheduled["resourceType"], json!("orderflow"));
        assert_eq!(scheduled["region"], json!("us-east-1"));
        assert_eq!(
            scheduled["parameters"],
            json!(expected_parameters.to_string())
        );
        assert_eq!(scheduled["timeoutInSeconds"], json!(300));
    }

    #[test]
    fn task_token_is_absent_from_context_unless_set() {
        assert!(ctx().to_json().get("Task").is_none());
        let m = single(json!({"Type": "Pass", "Parameters": {"t.$": "$$.Task.Token"}}));
        assert_eq!(
            failure(&m.enter("S", &json!({}), &ctx())).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
    }

    fn catching_machine() -> StateMachine {
        machine(json!({"StartAt": "S", "States": {
            "S": {"Type": "Task", "Resource": "r", "Next": "Done", "Catch": [
                {"ErrorEquals": ["CustomError"], "Next": "Custom", "ResultPath": "$.error"},
                {"ErrorEquals": ["States.ALL"], "Next": "Fallback"}
            ]},
            "Done": {"Type": "Succeed"},
            "Custom": {"Type": "Pass", "End": true},
            "Fallback": {"Type": "Pass", "End": true}
        }}))
    }

    #[test]
    fn caught_task_error_moves_to_the_catcher_with_error_at_its_result_path() {
        let m = catching_machine();
        let input = json!({"order": 1});
        let step = m.task_failed("S", &input, Failure::new("CustomError", "boom"), &ctx());
        assert_eq!(
            step.action,
            Action::Transition {
                output: json!({"order": 1, "error": {"Error": "CustomError", "Cause": "boom"}}),
                next: Next::State("Custom".into())
            }
        );
        assert_eq!(
            kinds(&step),
            [EventType::TaskFailed, EventType::TaskStateExited]
        );
        assert_eq!(step.events[0].details["error"], json!("CustomError"));
        assert_eq!(step.events[0].details["cause"], json!("boom"));

        let step = m.task_failed("S", &input, Failure::new("Other", "why"), &ctx());
        assert_eq!(
            step.action,
            Action::Transition {
                output: json!({"Error": "Other", "Cause": "why"}),
                next: Next::State("Fallback".into())
            }
        );
    }

    #[test]
    fn uncaught_task_error_fails_the_execution_with_that_error() {
        let m = single(json!({"Type": "Task", "Resource": "r"}));
        let step = m.task_failed("S", &json!({}), Failure::new("Boom", "it broke"), &ctx());
        assert_eq!(step.action, Action::Fail(Failure::new("Boom", "it broke")));
        assert_eq!(kinds(&step), [EventType::TaskFailed]);
    }

    #[test]
    fn states_all_does_not_catch_states_runtime() {
        let m = catching_machine();
        let step = m.task_failed(
            "S",
            &json!({}),
            Failure::new("States.Runtime", "bad"),
            &ctx(),
        );
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
    }

    #[test]
    fn result_path_failure_after_task_success_is_caught_by_states_all() {
        let m = machine(json!({"StartAt": "S", "States": {
            "S": {"Type": "Task", "Resource": "r", "ResultPath": "$.a.b", "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "F"}]},
            "F": {"Type": "Pass", "End": true}
        }}));
        let step = m.task_succeeded("S", &json!({"a": 5}), json!(1), &ctx());
        assert_eq!(
            step.action,
            Action::Transition {
                output: json!({"a": 5}),
                next: Next::State("F".into())
            }
        );
        assert_eq!(
            kinds(&step),
            [EventType::TaskSucceeded, EventType::TaskStateExited]
        );
    }

    #[test]
    fn choice_picks_first_matching_rule_then_default_then_no_choice_matched() {
        // The AWS Choice example, trimmed: type Private, value ranges.
        let m = machine(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
                {"And": [
                    {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                    {"Variable": "$.value", "NumericLessThan": 30}
                ], "Next": "ValueInTwenties"}
            ], "Default": "DefaultState"},
            "Public": {"Type": "Succeed"}, "ValueIsZero": {"Type": "Succeed"},
            "ValueInTwenties": {"Type": "Succeed"}, "DefaultState": {"Type": "Fail", "Error": "Unmatched"}
        }}));
        let next_for = |input: Value| match m.enter("C", &input, &ctx()).action {
            Action::Transition {
                next: Next::State(s),
                ..
            } => s,
            other => format!("{other:?}"),
        };
        assert_eq!(next_for(json!({"type": "Public", "value": 5})), "Public");
        assert_eq!(
            next_for(json!({"type": "Private", "value": 0})),
            "ValueIsZero"
        );
        assert_eq!(
            next_for(json!({"type": "Private", "value": 25})),
            "ValueInTwenties"
        );
        assert_eq!(
            next_for(json!({"type": "Private", "value": 50})),
            "DefaultState"
        );

        let m = machine(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "IsPresent": true, "Next": "E"}]},
            "E": {"Type": "Succeed"}}}));
        let step = m.enter("C", &json!({}), &ctx());
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.NoChoiceMatched")
        );
        assert_eq!(kinds(&step), [EventType::ChoiceStateEntered]);
    }

    #[test]
    fn choice_output_is_its_effective_input_and_events_bracket_it() {
        let m = machine(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.keep",
                  "Choices": [{"Variable": "$.go", "BooleanEquals": true, "Next": "E"}]},
            "E": {"Type": "Succeed"}}}));
        let step = m.enter("C", &json!({"in": {"go": true, "keep": {"k": 1}}}), &ctx());
        assert_eq!(output(&step), Some(&json!({"k": 1})));
        assert_eq!(
            kinds(&step),
            [EventType::ChoiceStateEntered, EventType::ChoiceStateExited]
        );
    }

    #[test]
    fn choice_on_a_missing_variable_fails_with_states_runtime() {
        let m = machine(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "E"}], "Default": "E"},
            "E": {"Type": "Succeed"}}}));
        let step = m.enter("C", &json!({}), &ctx());
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
    }

    #[test]
    fn wait_state_returns_the_timer_for_each_form() {
        let cases = [
            (
                json!({"Type": "Wait", "Seconds": 10}),
                WaitUntil::Seconds(10),
            ),
            (
                json!({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z"}),
                WaitUntil::Timestamp("2016-03-14T01:59:00Z".into()),
            ),
            (
                json!({"Type": "Wait", "SecondsPath": "$.delay"}),
                WaitUntil::Seconds(30),
            ),
            (
                json!({"Type": "Wait", "TimestampPath": "$.at"}),
                WaitUntil::Timestamp("2030-01-01T00:00:00Z".into()),
            ),
        ];
        let input = json!({"delay": 30, "at": "2030-01-01T00:00:00Z"});
        for (state, until) in cases {
            let step = single(state).enter("S", &input, &ctx());
            assert_eq!(
                step.action,
                Action::Wait {
                    until,
                    output: input.clone(),
                    next: Next::End
                }
            );
            assert_eq!(kinds(&step), [EventType::WaitStateEntered]);
        }
    }

    #[test]
    fn wait_seconds_path_to_a_non_number_fails_with_states_runtime() {
        let step = single(json!({"Type": "Wait", "SecondsPath": "$.delay"})).enter(
            "S",
            &json!({"delay": "soon"}),
            &ctx(),
        );
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
    }

    #[test]
    fn succeed_state_applies_paths_and_ends_the_execution() {
        let step = single(json!({"Type": "Succeed", "OutputPath": "$.a"})).enter(
            "S",
            &json!({"a": [1]}),
            &ctx(),
        );
        assert_eq!(
            step.action,
            Action::Transition {
                output: json!([1]),
                next: Next::End
            }
        );
        assert_eq!(
            kinds(&step),
            [
                EventType::SucceedStateEntered,
                EventType::SucceedStateExited
            ]
        );
    }

    #[test]
    fn fail_state_fails_with_its_error_and_cause_or_their_paths() {
        let step = single(json!({"Type": "Fail", "Error": "ErrorA", "Cause": "Invalid order."}))
            .enter("S", &json!({}), &ctx());
        assert_eq!(
            step.action,
            Action::Fail(Failure::new("ErrorA", "Invalid order."))
        );
        assert_eq!(kinds(&step), [EventType::FailStateEntered]);

        let m = single(json!({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}));
        let step = m.enter("S", &json!({"e": "E1", "c": "because"}), &ctx());
        assert_eq!(step.action, Action::Fail(Failure::new("E1", "because")));
        let step = m.enter("S", &json!({"e": 1, "c": "because"}), &ctx());
        assert_eq!(
            failure(&step).map(|f| f.error.as_str()),
            Some("States.Runtime")
        );
    }

    #[test]
    fn context_object_carries_retry_count_and_role() {
        let m = single(json!({"Type": "Pass", "Parameters": {
            "retries.$": "$$.State.RetryCount",
            "role.$": "$$.Execution.RoleArn",
            "redrives.$": "$$.Execution.RedriveCount"
        }}));
        let mut context = ctx();
        context.retry_count = 2;
        let step = m.enter("S", &json!({}), &context);
        assert_eq!(
            output(&step),
            Some(&json!({"retries": 2, "role": "arn:aws:iam::123456789012:role/r", "redrives": 0}))
        );
    }

    #[test]
    fn tolerance_counts_and_percentages() {
        let none = Tolerance::default();
        assert!(!none.exceeded(0, 10));
        assert!(none.exceeded(1, 10));
        let two = Tolerance {
            count: Some(2),
            percentage: None,
        };
        assert!(!two.exceeded(2, 10) && two.exceeded(3, 10));
        let tenth = Tolerance {
            count: None,
            percentage: Some(10.0),
        };
        assert!(!tenth.exceeded(1, 10) && tenth.exceeded(2, 10));
    }

    #[test]
    fn map_enter_lists_its_iterations_and_fork_results_flow_through_result_path() {
        let m = single(
            json!({"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 3,
            "ItemSelector": {"x.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "ResultPath": "$.out"}),
        );
        let step = m.enter("S", &json!({"xs": [10, 20]}), &ctx());
        let Action::Fork {
            branches,
            max_concurrency,
            map,
            ..
        } = &step.action
        else {
            panic!("expected a fork, got {:?}", step.action);
        };
        assert_eq!((*max_concurrency, *map), (3, true));
        let inputs: Vec<&Value> = branches.iter().map(|b| &b.input).collect();
        assert_eq!(
            inputs,
            [&json!({"x": 10, "i": 0}), &json!({"x": 20, "i": 1})]
        );
        assert_eq!(
            kinds(&step),
            [EventType::MapStateEntered, EventType::MapStateStarted]
        );
        let done = m.fork_succeeded(
            "S",
            &json!({"xs": [10, 20]}),
            vec![json!(1), json!(2)],
            &ctx(),
        );
        assert_eq!(output(&done), Some(&json!({"xs": [10, 20], "out": [1, 2]})));
        assert_eq!(
            kinds(&done),
            [EventType::MapStateSucceeded, EventType::MapStateExited]
        );
    }

    #[test]
    fn unknown_state_and_completing_a_non_task_fail_with_states_runtime() {
        let m = single(json!({"Type": "Succeed"}));
        for step in [
            m.enter("Nope", &json!({}), &ctx()),
            m.task_succeeded("S", &json!({}), json!(1), &ctx()),
            m.task_failed("S", &json!({}), Failure::new("E", "c"), &ctx()),
        ] {
            assert_eq!(
                failure(&step).map(|f| f.error.as_str()),
                Some("States.Runtime")
            );
            assert!(step.events.is_empty());
        }
    }

    #[test]
    fn seed_order_workflow_runs_from_validation_to_waiting_for_approval() {
        let m = match parse(ORDER_APPROVAL) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        let input = json!({"OrderID": "o-1", "Cost": 5000});
        let step = m.task_succeeded("Validate Order", &input, json!({"isValid": true}), &ctx());
        let after_validation = output(&step).cloned().unwrap_or_default();
        assert_eq!(after_validation["validation"], json!({"isValid": true}));
        let step = m.enter("Is the order valid?", &after_validation, &ctx());
        assert!(
            matches!(&step.action, Action::Transition { next: Next::State(s), .. } if s == "Validate Cost")
        );
        let step = m.task_succeeded(
            "Validate Cost",
            &after_validation,
            json!({"requiresApproval": true, "requiresSecondApproval": true, "approvalTimeoutSeconds": 600}),
            &ctx(),
        );
        let after_cost = output(&step).cloned().unwrap_or_default();
        let step = m.enter("Is the order auto-approved?", &after_cost, &ctx());
        assert!(
            matches!(&step.action, Action::Transition { next: Next::State(s), .. } if s == "WaitForApproval")
        );
        let mut context = ctx();
        context.task_token = Some("tok".into());
        let step = m.enter("WaitForApproval", &after_cost, &context);
        assert_eq!(
            step.action,
            Action::Invoke {
                resource: "orderflow:request-approval.waitForTaskToken".into(),
                parameters: json!({"OrderID": "o-1", "Cost": 5000, "Stage": "first",
                    "DeadlineSeconds": 600, "TaskToken": "tok"}),
                wait_for_token: true,
                timeout_seconds: Some(600),
                heartbeat_seconds: None,
            }
        );
        // An approval goes on to the second one; a rejection fails the order.
        let approved = m.task_succeeded(
            "WaitForApproval",
            &after_cost,
            json!({"approved": true, "decidedBy": "ana"}),
            &ctx(),
        );
        let after_first = output(&approved).cloned().unwrap_or_default();
        let step = m.enter("Is the order approved?", &after_first, &ctx());
        assert!(
            matches!(&step.action, Action::Transition { next: Next::State(s), .. } if s == "WaitForSecondApproval")
        );
        let step = m.enter("WaitForSecondApproval", &after_first, &context);
        let Action::Invoke { parameters, .. } = &step.action else {
            panic!("{:?}", step.action)
        };
        assert_eq!(parameters["FirstApprover"], json!("ana"));
        assert_eq!(parameters["Stage"], json!("second"));
        let timed_out = m.task_failed(
            "WaitForSecondApproval",
            &after_first,
            Failure::new("States.Timeout", "too slow"),
            &ctx(),
        );
        assert!(
            matches!(&timed_out.action, Action::Transition { next: Next::State(s), .. } if s == "EscalateToAdmins")
        );
        let step = m.enter("FailState", &after_cost, &ctx());
        assert_eq!(
            step.action,
            Action::Fail(Failure::new("ErrorA", "Invalid order."))
        );
    }

    /// The order workflow as shipped.
    const ORDER_APPROVAL: &str = include_str!("../../workflows/order-approval.asl.json");
}
