//! Parsing an ASL definition into typed states, reporting every problem at once with AWS's
//! diagnostic codes (`SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`, …).
//!
//! `Retry` is parsed, checked and stored ([`State::retry`]) but never acted on here: deciding
//! whether and when to retry a failed task is the runtime's job.

use super::choice::ChoiceRule;
use super::jsonata::Ata;
use super::paths::{Path, Template};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// A definition that cannot run, with every problem found in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct DefinitionError {
    /// The problems, in definition order.
    pub problems: Vec<Problem>,
}

/// One validation problem, e.g. code `MISSING_TRANSITION_TARGET`, location
/// `/States/Validate Order/Next`, message `State "Validate Order" has Next "Nope", which is not a
/// state`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// AWS's diagnostic code.
    pub code: String,
    /// What is wrong, naming the state and field.
    pub message: String,
    /// Where in the definition, e.g. `/States/Foo/Next`.
    pub location: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl Problem {
    pub fn new(code: &str, location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            code: code.to_string(),
            message: message.into(),
            location: location.into(),
        }
    }

    /// A `SCHEMA_VALIDATION_FAILED` problem.
    pub(crate) fn schema(location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new("SCHEMA_VALIDATION_FAILED", location, message)
    }
}

/// A parsed, valid state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    start_at: String,
    comment: Option<String>,
    timeout_seconds: Option<u64>,
    states: Vec<State>,
    by_name: HashMap<String, usize>,
}

impl StateMachine {
    /// The name of the first state.
    pub fn start_at(&self) -> &str {
        &self.start_at
    }

    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.by_name.get(name).and_then(|i| self.states.get(*i))
    }

    /// Every state name, in definition order.
    pub fn state_names(&self) -> impl Iterator<Item = &str> {
        self.states.iter().map(|s| s.name.as_str())
    }

    /// The definition's `Comment`.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The definition's top-level `TimeoutSeconds` (the runtime enforces it).
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }

    /// The sub-machine a branch runs: `scope` lists, from this machine down, each Parallel or
    /// Map state and which of its machines (a Parallel's branch index, 0 for a Map).
    pub fn sub(&self, scope: &[(String, usize)]) -> Option<&StateMachine> {
        let Some(((state, index), rest)) = scope.split_first() else {
            return Some(self);
        };
        match &self.state(state)?.body {
            Body::Parallel(f) | Body::Map(f) => f.branches.get(*index)?.sub(rest),
            _ => None,
        }
    }

    /// Every Task state's `Resource` (as written) with where it is written, e.g.
    /// `/States/Fan out/Branches[0]/States/A/Resource`, this machine's and its branches'.
    pub fn task_resources(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        let mut machines = vec![(String::new(), self)];
        while let Some((prefix, machine)) = machines.pop() {
            for state in &machine.states {
                let at = format!("{prefix}/States/{}", state.name);
                match &state.body {
                    Body::Task(task) => {
                        out.push((format!("{at}/Resource"), task.resource.as_str()))
                    }
                    Body::Parallel(fork) => machines.extend(
                        fork.branches
                            .iter()
                            .enumerate()
                            .map(|(i, b)| (format!("{at}/Branches[{i}]"), b)),
                    ),
                    Body::Map(fork) => machines.extend(
                        fork.branches
                            .iter()
                            .map(|b| (format!("{at}/ItemProcessor"), b)),
                    ),
                    _ => {}
                }
            }
        }
        out
    }
}

/// The type of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// `Pass`.
    Pass,
    /// `Task`.
    Task,
    /// `Choice`.
    Choice,
    /// `Wait`.
    Wait,
    /// `Succeed`.
    Succeed,
    /// `Fail`.
    Fail,
    /// `Parallel`.
    Parallel,
    /// `Map`.
    Map,
}

/// One state of a machine.
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) name: String,
    pub(crate) comment: Option<String>,
    pub(crate) body: Body,
    /// `Assign`: workflow variables set when the state completes.
    pub(crate) assign: Option<Payload>,
    /// True when the state's `QueryLanguage` (its own or the machine's) is JSONata.
    pub(crate) jsonata: bool,
    /// JSONata's `Output` (absent: the state's result, or its input when it has none).
    pub(crate) output: Option<Ata>,
}

/// A field whose strings may compute values: `.$` keys in a JSONPath state, `{% %}` strings
/// in a JSONata one.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Path(Template),
    Ata(Ata),
}

impl State {
    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state's `Comment`.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The state's type.
    pub fn kind(&self) -> StateKind {
        match &self.body {
            Body::Pass(_) => StateKind::Pass,
            Body::Task(_) => StateKind::Task,
            Body::Choice(_) => StateKind::Choice,
            Body::Wait(_) => StateKind::Wait,
            Body::Succeed(_) => StateKind::Succeed,
            Body::Fail(_) => StateKind::Fail,
            Body::Parallel(_) => StateKind::Parallel,
            Body::Map(_) => StateKind::Map,
        }
    }

    /// True for a Task whose Resource ends in `.waitForTaskToken`: the runtime must put a fresh
    /// token in `Context::task_token` before calling `enter`.
    pub fn needs_task_token(&self) -> bool {
        matches!(&self.body, Body::Task(t) if t.wait_for_token)
    }

    /// A Task's `TimeoutSeconds` (`None` if absent or not a Task).
    pub fn timeout_seconds(&self) -> Option<u64> {
        match &self.body {
            Body::Task(t) => t.timeout_seconds,
            _ => None,
        }
    }

    /// A Task's `HeartbeatSeconds` (`None` if absent or not a Task).
    pub fn heartbeat_seconds(&self) -> Option<u64> {
        match &self.body {
            Body::Task(t) => t.heartbeat_seconds,
            _ => None,
        }
    }

    /// A Task's `Retry` rules, in order (empty for other states). The engine never retries;
    /// the runtime decides with these.
    pub fn retry(&self) -> &[Retrier] {
        match &self.body {
            Body::Task(t) => &t.retry,
            Body::Parallel(f) | Body::Map(f) => &f.retry,
            _ => &[],
        }
    }
}

/// One `Retry` rule of a Task.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// Error names this rule applies to (may include `States.ALL`, `States.TaskFailed`).
    pub error_equals: Vec<String>,
    /// Seconds before the first retry (default 1).
    pub interval_seconds: u64,
    /// Retries at most (default 3; 0 means never).
    pub max_attempts: u64,
    /// Multiplier of the interval per attempt (default 2.0).
    pub backoff_rate: f64,
    /// Upper bound of an interval, if any.
    pub max_delay_seconds: Option<u64>,
    /// `true` for `"JitterStrategy": "FULL"`.
    pub full_jitter: bool,
}

impl Retrier {
    /// True when this rule covers `error` (AWS: `States.ALL` and `States.TaskFailed` never
    /// cover `States.Runtime`; `States.TaskFailed` does not cover `States.Timeout`).
    pub fn matches(&self, error: &str) -> bool {
        error_matches(&self.error_equals, error)
    }
}

/// Whether an `ErrorEquals` list covers `error`, following AWS's wildcard rules.
pub(crate) fn error_matches(error_equals: &[String], error: &str) -> bool {
    if error == "States.Runtime" {
        return false;
    }
    error_equals.iter().any(|e| {
        e == error
            || (e == "States.ALL" && error != "States.DataLimitExceeded")
            || (e == "States.TaskFailed"
                && !matches!(error, "States.Timeout" | "States.DataLimitExceeded"))
    })
}

/// The type-specific part of a state.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Pass(PassState),
    Task(TaskState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(InputOutput),
    Fail(FailState),
    Parallel(ForkState),
    Map(ForkState),
}

/// `InputPath` and `OutputPath`; `None` stands for JSON `null` (meaning `{}`).
#[derive(Debug, Clone)]
pub(crate) struct InputOutput {
    pub(crate) input_path: Option<Path>,
    pub(crate) output_path: Option<Path>,
}

/// Where a state goes when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct PassState {
    pub(crate) io: InputOutput,
    pub(crate) parameters: Option<Payload>,
    pub(crate) result: Option<Value>,
    /// `None` stands for `"ResultPath": null` (discard the result).
    pub(crate) result_path: Option<Path>,
    pub(crate) transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub(crate) io: InputOutput,
    /// The resource as written, with its `.waitForTaskToken` suffix if any (the history shows
    /// it so, as AWS's does).
    pub(crate) resource: String,
    pub(crate) wait_for_token: bool,
    pub(crate) parameters: Option<Payload>,
    pub(crate) result_selector: Option<Payload>,
    pub(crate) result_path: Option<Path>,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) heartbeat_seconds: Option<u64>,
    /// `TimeoutSecondsPath` / `HeartbeatSecondsPath`: read from the effective input.
    pub(crate) timeout_seconds_path: Option<Path>,
    pub(crate) heartbeat_seconds_path: Option<Path>,
    /// JSONata's `TimeoutSeconds` / `HeartbeatSeconds` written as expressions.
    pub(crate) timeout_expr: Option<Ata>,
    pub(crate) heartbeat_expr: Option<Ata>,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
    pub(crate) transition: Transition,
}

/// One `Catch` rule of a Task.
#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) result_path: Option<Path>,
    pub(crate) next: String,
    /// `Assign`, evaluated against `{"Error", "Cause"}`.
    pub(crate) assign: Option<Payload>,
    /// JSONata's `Output` (absent: the error output).
    pub(crate) output: Option<Ata>,
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceState {
    pub(crate) io: InputOutput,
    pub(crate) choices: Vec<ChoiceRule>,
    pub(crate) default: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    Timestamp(String),
    SecondsPath(Path),
    TimestampPath(Path),
    /// JSONata's `Seconds` (`seconds` true) or `Timestamp` written as an expression.
    Expr {
        seconds: bool,
        value: Ata,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct WaitState {
    pub(crate) io: InputOutput,
    pub(crate) wait: WaitFor,
    pub(crate) transition: Transition,
}

/// Parallel and Map: run sub-machines and gather their outputs into an array.
#[derive(Debug, Clone)]
pub(crate) struct ForkState {
    pub(crate) io: InputOutput,
    /// Parallel's `Parameters`; Map's `ItemSelector` (or its older name, `Parameters`).
    pub(crate) parameters: Option<Payload>,
    pub(crate) result_selector: Option<Payload>,
    pub(crate) result_path: Option<Path>,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
    pub(crate) transition: Transition,
    /// Parallel's `Branches`; for Map, one: its `ItemProcessor` (or `Iterator`).
    pub(crate) branches: Vec<StateMachine>,
    pub(crate) map: Option<MapOptions>,
}

/// A number written in the state, or read from its input by a `…Path` field.
#[derive(Debug, Clone)]
pub(crate) enum Quantity {
    Fixed(f64),
    Path(Path),
    /// A JSONata expression.
    Expr(Ata),
}

#[derive(Debug, Clone)]
pub(crate) struct MapOptions {
    /// `None`: the effective input itself must be the array.
    pub(crate) items_path: Option<Path>,
    /// JSONata's `Items` (absent: the state's input).
    pub(crate) items: Option<Ata>,
    /// 0 means no limit.
    pub(crate) max_concurrency: Option<Quantity>,
    pub(crate) tolerated_count: Option<Quantity>,
    pub(crate) tolerated_percentage: Option<Quantity>,
    pub(crate) batch: Option<Batcher>,
    /// For `ProcessorConfig.Mode: DISTRIBUTED`: the Map Run's name (`Label`, else the
    /// state's name). Its iterations run as executions of their own.
    pub(crate) map_run: Option<String>,
}

/// `ItemBatcher`: iterations get `{"Items": [...]}` (plus `BatchInput`) instead of one item.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    pub(crate) max_items: Option<Quantity>,
    pub(crate) batch_input: Option<Payload>,
}

/// A Fail state's `Error` or `Cause`: a fixed string or a path into the input.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Fixed(String),
    Path(Path),
    /// `ErrorPath`/`CausePath` written as an intrinsic function call.
    Call(Template),
    Expr(Ata),
}

#[derive(Debug, Clone)]
pub(crate) struct FailState {
    pub(crate) error: Option<Text>,
    pub(crate) cause: Option<Text>,
}

const TOP_FIELDS: &[&str] = &[
    "StartAt",
    "States",
    "Comment",
    "TimeoutSeconds",
    "Version",
    "QueryLanguage",
];
/// Allowed in every object the definition checks field by field.
const COMMON: &[&str] = &["Comment"];
const PASS_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Output",
    "Assign",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "Result",
];
const TASK_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Arguments",
    "Output",
    "Assign",
    "Next",
    "End",
    "Resource",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "Retry",
    "Catch",
];
const CHOICE_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Output",
    "Choices",
    "Default",
    "InputPath",
    "OutputPath",
    "Assign",
];
const WAIT_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Output",
    "Assign",
    "Next",
    "End",
    "Seconds",
    "Timestamp",
    "SecondsPath",
    "TimestampPath",
    "InputPath",
    "OutputPath",
];
const SUCCEED_FIELDS: &[&str] = &["Type", "QueryLanguage", "Output", "InputPath", "OutputPath"];
const PARALLEL_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Arguments",
    "Output",
    "Assign",
    "Next",
    "End",
    "Branches",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
];
const MAP_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Items",
    "Output",
    "Assign",
    "Next",
    "End",
    "ItemProcessor",
    "Iterator",
    "ItemsPath",
    "ItemSelector",
    "Parameters",
    "ItemBatcher",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "Label",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ResultSelector",
    "Retry",
    "Catch",
];
/// A Parallel branch, a Map's ItemProcessor (ProcessorConfig) and its older Iterator.
const BRANCH_FIELDS: &[&str] = &["StartAt", "States", "ProcessorConfig"];
const FAIL_FIELDS: &[&str] = &[
    "Type",
    "QueryLanguage",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
];
/// Fields only JSONPath states have.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "ItemsPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "MaxItemsPerBatchPath",
    "Variable",
    "Result",
];
/// Fields only JSONata states have.
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items", "Condition"];
/// Fields AWS knows that orderflow does not implement yet; they get a clearer message.
const NOT_YET: &[&str] = &[
    "Credentials",
    "ItemReader",
    "ResultWriter",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
];
/// AWS limits a state name to 80 characters.
const MAX_STATE_NAME: usize = 80;

/// Parses and validates an ASL JSON definition, reporting all problems at once.
pub fn parse(definition: &str) -> Result<StateMachine, DefinitionError> {
    let doc: Value = serde_json::from_str(definition).map_err(|e| DefinitionError {
        problems: vec![Problem::new(
            "INVALID_JSON_DESCRIPTION",
            "/",
            format!("The definition is not valid JSON: {e}"),
        )],
    })?;
    let Value::Object(top) = &doc else {
        return Err(DefinitionError {
            problems: vec![Problem::new(
                "INVALID_JSON_DESCRIPTION",
                "/",
                "The definition must be a JSON object",
            )],
        });
    };
    let mut problems = Vec::new();
    let mut r = Reader::new("The state machine", top, String::new(), &mut problems);
    r.unknown_fields(TOP_FIELDS, "a state machine");
    let jsonata = r.query_language(false);
    let timeout_seconds = r.count("TimeoutSeconds", 0);
    r.string("Version");
    let machine = parse_machine(
        top,
        "",
        "The state machine",
        Some(definition),
        jsonata,
        &mut problems,
    );
    match machine {
        Some(mut machine) if problems.is_empty() => {
            machine.timeout_seconds = timeout_seconds;
            Ok(machine)
        }
        _ => Err(DefinitionError { problems }),
    }
}

/// Parses a machine's `StartAt`, `States` and `Comment` at `prefix` (empty for the top level,
/// e.g. `/States/Fan out/Branches[0]` for a branch). `text` is the definition's source, used
/// to keep the written order of the top-level states.
fn parse_machine(
    top: &Map<String, Value>,
    prefix: &str,
    label: &str,
    text: Option<&str>,
    jsonata: bool,
    problems: &mut Vec<Problem>,
) -> Option<StateMachine> {
    let mut r = Reader::new(label, top, prefix.to_string(), problems);
    let comment = r.string("Comment");
    let start_at = r.required_string("StartAt");
    let here = if prefix.is_empty() { "/" } else { prefix };
    let raw_states = match top.get("States") {
        Some(Value::Object(states)) if !states.is_empty() => Some(states),
        Some(Value::Object(_)) => {
            problems.push(Problem::schema(
                format!("{prefix}/States"),
                format!("{label}: States must hold at least one state"),
            ));
            None
        }
        Some(_) => {
            problems.push(Problem::schema(
                format!("{prefix}/States"),
                format!("{label}: States must be an object of named states"),
            ));
            None
        }
        None => {
            problems.push(Problem::schema(
                here,
                format!("{label} has no States field"),
            ));
            None
        }
    };
    let raw_states = raw_states?;
    let names = match text {
        Some(text) => state_order(text, raw_states, problems),
        None => raw_states.keys().cloned().collect(),
    };
    let states: Vec<State> = names
        .iter()
        .filter_map(|name| raw_states.get(name).map(|v| (name, v)))
        .filter_map(|(name, v)| parse_state(name, v, prefix, jsonata, problems))
        .collect();
    check_graph(start_at.as_deref(), &names, raw_states, prefix, problems);
    let by_name = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    Some(StateMachine {
        start_at: start_at?,
        comment,
        timeout_seconds: None,
        states,
        by_name,
    })
}

/// State names in the order the definition lists them (serde_json's map may sort keys), and a
/// `DUPLICATE_STATE_NAME` problem for any name given twice.
fn state_order(
    definition: &str,
    states: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    #[derive(Deserialize)]
    struct Top {
        #[serde(rename = "States")]
        states: KeysInOrder,
    }
    let listed = serde_json::from_str::<Top>(definition)
        .map(|t| t.states.0)
        .unwrap_or_else(|_| states.keys().cloned().collect());
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for name in listed {
        if seen.insert(name.clone()) {
            names.push(name);
        } else {
            problems.push(Problem::new(
                "DUPLICATE_STATE_NAME",
                format!("/States/{name}"),
                format!("State \"{name}\" is defined more than once"),
            ));
        }
    }
    names
}

/// The keys of a JSON object, in the order written.
struct KeysInOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeysInOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of states")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeysInOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeysInOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// Transition targets of a raw state, with the location of each (AWS spells them
/// `/States/C/Choices[0]/Next`).
fn targets(prefix: &str, name: &str, state: &Value) -> Vec<(String, String)> {
    let loc = format!("{prefix}/States/{name}");
    let mut out = Vec::new();
    let mut push = |location: String, v: Option<&Value>| {
        if let Some(Value::String(target)) = v {
            out.push((location, target.clone()));
        }
    };
    push(format!("{loc}/Next"), state.get("Next"));
    push(format!("{loc}/Default"), state.get("Default"));
    for list in ["Choices", "Catch"] {
        if let Some(Value::Array(items)) = state.get(list) {
            for (i, item) in items.iter().enumerate() {
                push(format!("{loc}/{list}[{i}]/Next"), item.get("Next"));
            }
        }
    }
    out
}

/// Checks StartAt and every transition target, that some state ends the execution, and that
/// every state can be reached from StartAt.
fn check_graph(
    start_at: Option<&str>,
    names: &[String],
    raw: &Map<String, Value>,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    for name in names {
        for (location, target) in raw
            .get(name)
            .map(|s| targets(prefix, name, s))
            .unwrap_or_default()
        {
            if !raw.contains_key(&target) {
                problems.push(Problem::new(
                    "MISSING_TRANSITION_TARGET",
                    location,
                    format!("State \"{name}\" names \"{target}\" as its next state, which is not a state"),
                ));
            }
        }
    }
    let Some(start_at) = start_at else { return };
    if !raw.contains_key(start_at) {
        problems.push(Problem::new(
            "MISSING_TRANSITION_TARGET",
            format!("{prefix}/StartAt"),
            format!("StartAt names \"{start_at}\", which is not a state"),
        ));
        return;
    }
    let terminal = |s: &Value| {
        matches!(
            s.get("Type").and_then(Value::as_str),
            Some("Succeed" | "Fail")
        ) || s.get("End") == Some(&Value::Bool(true))
    };
    if !raw.values().any(terminal) {
        // AWS reports only this, and skips the reachability walk, when nothing can end.
        problems.push(Problem::new(
            "MISSING_END_STATE",
            format!("{prefix}/States"),
            "No state ends the execution: add \"End\": true, a Succeed or a Fail state",
        ));
        return;
    }
    let mut reached = HashSet::from([start_at.to_string()]);
    let mut queue = VecDeque::from([start_at.to_string()]);
    while let Some(name) = queue.pop_front() {
        for (_, target) in raw
            .get(&name)
            .map(|s| targets(prefix, &name, s))
            .unwrap_or_default()
        {
            if raw.contains_key(&target) && reached.insert(target.clone()) {
                queue.push_back(target);
            }
        }
    }
    for name in names.iter().filter(|n| !reached.contains(*n)) {
        problems.push(Problem::new(
            "MISSING_TRANSITION_TARGET",
            format!("{prefix}/States/{name}"),
            format!("State \"{name}\" is not reachable from StartAt"),
        ));
    }
}

/// Parses one state; `default_jsonata` is the machine's `QueryLanguage`.
fn parse_state(
    name: &str,
    value: &Value,
    prefix: &str,
    default_jsonata: bool,
    problems: &mut Vec<Problem>,
) -> Option<State> {
    let loc = format!("{prefix}/States/{name}");
    if name.is_empty() || name.chars().count() > MAX_STATE_NAME {
        problems.push(Problem::new(
            "INVALID_STATE_NAME",
            &loc,
            format!("State name \"{name}\" must be 1 to {MAX_STATE_NAME} characters long"),
        ));
    }
    let Value::Object(obj) = value else {
        problems.push(Problem::schema(
            loc,
            format!("State \"{name}\" must be a JSON object"),
        ));
        return None;
    };
    let label = format!("State \"{name}\"");
    let mut r = Reader::new(&label, obj, loc.clone(), problems);
    r.default_jsonata = default_jsonata;
    r.jsonata = r.query_language(default_jsonata);
    let comment = r.string("Comment");
    let assign = r.assign();
    let output = r.ata("Output");
    let kind = r.required_string("Type")?;
    let body = match kind.as_str() {
        "Pass" => {
            r.unknown_fields(PASS_FIELDS, "a Pass state");
            Body::Pass(PassState {
                io: r.input_output(),
                parameters: r.template("Parameters"),
                result: obj.get("Result").cloned(),
                result_path: r.result_path("ResultPath"),
                transition: r.transition()?,
            })
        }
        "Task" => Body::Task(r.task()?),
        "Choice" => {
            r.unknown_fields(CHOICE_FIELDS, "a Choice state");
            Body::Choice(ChoiceState {
                io: r.input_output(),
                choices: r.choices()?,
                default: r.string("Default"),
            })
        }
        "Wait" => {
            r.unknown_fields(WAIT_FIELDS, "a Wait state");
            Body::Wait(WaitState {
                io: r.input_output(),
                wait: r.wait_for()?,
                transition: r.transition()?,
            })
        }
        "Succeed" => {
            r.unknown_fields(SUCCEED_FIELDS, "a Succeed state");
            Body::Succeed(r.input_output())
        }
        "Fail" => {
            r.unknown_fields(FAIL_FIELDS, "a Fail state");
            Body::Fail(FailState {
                error: r.text("Error", "ErrorPath"),
                cause: r.text("Cause", "CausePath"),
            })
        }
        "Parallel" => Body::Parallel(r.parallel()?),
        "Map" => Body::Map(r.map(name)?),
        other => {
            let message = format!(
                "{label} has unknown Type \"{other}\"; expected Pass, Task, Choice, Wait, Succeed, Fail, Parallel or Map"
            );
            r.problem("Type", message);
            return None;
        }
    };
    Some(State {
        name: name.to_string(),
        comment,
        body,
        assign,
        jsonata: r.jsonata,
        output,
    })
}

/// Reads the fields of one JSON object, recording a problem for each bad one.
pub(crate) struct Reader<'a> {
    /// How messages name the object, e.g. `State "Foo"`.
    pub(crate) label: &'a str,
    pub(crate) obj: &'a Map<String, Value>,
    pub(crate) location: String,
    pub(crate) problems: &'a mut Vec<Problem>,
    /// True when reading a JSONata state.
    pub(crate) jsonata: bool,
    /// The machine's `QueryLanguage`, which the states of branches inherit.
    default_jsonata: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        label: &'a str,
        obj: &'a Map<String, Value>,
        location: String,
        problems: &'a mut Vec<Problem>,
    ) -> Reader<'a> {
        Reader {
            label,
            obj,
            location,
            problems,
            jsonata: false,
            default_jsonata: false,
        }
    }

    /// The object's own location (`/` for the top level).
    fn here(&self) -> String {
        if self.location.is_empty() {
            "/".to_string()
        } else {
            self.location.clone()
        }
    }

    pub(crate) fn at(&self, field: &str) -> String {
        format!("{}/{field}", self.location)
    }

    pub(crate) fn problem(&mut self, field: &str, message: String) {
        let location = self.at(field);
        self.problems.push(Problem::schema(location, message));
    }

    /// One problem per field not in `COMMON` or `allowed`.
    pub(crate) fn unknown_fields(&mut self, allowed: &[&str], what: &str) {
        let other_language = if self.jsonata {
            JSONPATH_ONLY
        } else {
            JSONATA_ONLY
        };
        let unknown: Vec<String> = self
            .obj
            .keys()
            .filter(|k| {
                let k = k.as_str();
                !COMMON.contains(&k) && (!allowed.contains(&k) || other_language.contains(&k))
            })
            .cloned()
            .collect();
        for field in unknown {
            let message = if allowed.contains(&field.as_str()) && self.jsonata {
                format!(
                    "{} has field \"{field}\", which JSONata states do not have (they use Arguments, Output and {{% %}} expressions)",
                    self.label
                )
            } else if allowed.contains(&field.as_str()) {
                format!(
                    "{} has field \"{field}\", which only JSONata states have (set \"QueryLanguage\": \"JSONata\")",
                    self.label
                )
            } else if NOT_YET.contains(&field.as_str()) {
                format!(
                    "{} has field \"{field}\", which orderflow does not support yet",
                    self.label
                )
            } else {
                format!(
                    "{} has field \"{field}\", which {what} does not allow",
                    self.label
                )
            };
            self.problem(&field, message);
        }
    }

    /// An optional string field.
    pub(crate) fn string(&mut self, field: &str) -> Option<String> {
        match self.obj.get(field)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                let message = format!("{}: {field} must be a string", self.label);
                self.problem(field, message);
                None
            }
        }
    }

    pub(crate) fn required_string(&mut self, field: &str) -> Option<String> {
        if !self.obj.contains_key(field) {
            let message = format!("{} has no {field} field", self.label);
            self.problems.push(Problem::schema(self.here(), message));
            return None;
        }
        self.string(field)
    }

    /// An optional whole number of at least `min`.
    pub(crate) fn count(&mut self, field: &str, min: u64) -> Option<u64> {
        let v = self.obj.get(field)?;
        match v.as_u64().filter(|n| *n >= min) {
            Some(n) => Some(n),
            None => {
                let message = format!(
                    "{}: {field} must be a whole number of at least {min}, not {v}",
                    self.label
                );
                self.problem(field, message);
                None
            }
        }
    }

    /// A path field; `reference` requires a reference path and refuses `$$`.
    pub(crate) fn path_value(
        &mut self,
        field: &str,
        text: &str,
        reference: bool,
        context: bool,
    ) -> Option<Path> {
        match Path::parse(text) {
            Ok(p) if reference && !p.is_reference() => {
                let message = format!(
                    "{}: {field} must be a reference path (no '*' or '..'), not '{text}'",
                    self.label
                );
                self.problem(field, message);
                None
            }
            Ok(p) if field == "ResultPath" && p.is_variable() => {
                let message = format!(
                    "{}: ResultPath must be a path into the state's data, not a variable ('{text}'); use Assign",
                    self.label
                );
                self.problem(field, message);
                None
            }
            Ok(p) if !context && p.is_context() => {
                let message = format!(
                    "{}: {field} cannot refer to the context object ('$$')",
                    self.label
                );
                self.problem(field, message);
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                let message = format!("{}: {field}: {e}", self.label);
                self.problem(field, message);
                None
            }
        }
    }

    /// A required reference path (Choice `Variable`, `SecondsPath`, …); `$$` allowed.
    pub(crate) fn reference_path(&mut self, field: &str) -> Option<Path> {
        let text = self.string(field)?;
        self.path_value(field, &text, true, true)
    }

    /// InputPath/OutputPath-style field: absent means `$`, `null` means `None`.
    fn nullable_path(&mut self, field: &str, reference: bool) -> Option<Path> {
        match self.obj.get(field) {
            None => Some(Path::whole_input()),
            Some(Value::Null) => None,
            Some(Value::String(text)) => {
                let text = text.clone();
                Some(
                    self.path_value(field, &text, reference, false)
                        .unwrap_or_else(Path::whole_input),
                )
            }
            Some(_) => {
                let message = format!("{}: {field} must be a path string or null", self.label);
                self.problem(field, message);
                Some(Path::whole_input())
            }
        }
    }

    fn input_output(&mut self) -> InputOutput {
        InputOutput {
            input_path: self.nullable_path("InputPath", false),
            output_path: self.nullable_path("OutputPath", false),
        }
    }

    fn result_path(&mut self, field: &str) -> Option<Path> {
        self.nullable_path(field, true)
    }

    /// `Assign`: an object of variable names (with `.$` for paths and intrinsics).
    pub(crate) fn assign(&mut self) -> Option<Payload> {
        let value = self.obj.get("Assign")?;
        let Value::Object(fields) = value else {
            let message = format!("{}: Assign must be an object of variables", self.label);
            self.problem("Assign", message);
            return None;
        };
        for key in fields.keys() {
            let name = match self.jsonata {
                true => key.as_str(),
                false => key.strip_suffix(".$").unwrap_or(key),
            };
            let valid = !name.is_empty()
                && name.len() <= 80
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name != "states";
            if !valid {
                let message = format!(
                    "{}: '{name}' is not a valid variable name (a letter or '_', then letters, digits or '_'; at most 80; not 'states')",
                    self.label
                );
                let location = format!("{}/{key}", self.at("Assign"));
                self.problems.push(Problem::schema(location, message));
            }
        }
        self.template("Assign")
    }

    /// A payload field: a JSONPath template, or JSONata values in a JSONata state.
    fn template(&mut self, field: &str) -> Option<Payload> {
        if self.jsonata {
            return self.ata(field).map(Payload::Ata);
        }
        let value = self.obj.get(field)?;
        let location = self.at(field);
        Some(Payload::Path(Template::parse(
            value,
            self.label,
            &location,
            self.problems,
        )))
    }

    /// A JSONata field value (`{% %}` strings evaluated).
    pub(crate) fn ata(&mut self, field: &str) -> Option<Ata> {
        let value = self.obj.get(field)?;
        let location = self.at(field);
        Some(Ata::parse(value, self.label, &location, self.problems))
    }

    /// A field that JSONata lets be an expression: `Some` when it is one.
    fn expression(&mut self, field: &str) -> Option<Ata> {
        match self.obj.get(field) {
            Some(Value::String(s)) if self.jsonata && s.starts_with("{%") => self.ata(field),
            _ => None,
        }
    }

    /// `QueryLanguage`: true for JSONata, `default` when absent. A state cannot go back to
    /// JSONPath in a JSONata machine.
    pub(crate) fn query_language(&mut self, default: bool) -> bool {
        match self.string("QueryLanguage").as_deref() {
            None => default,
            Some("JSONata") => true,
            Some("JSONPath") if default => {
                let message = format!(
                    "{}: QueryLanguage cannot be JSONPath when the state machine's is JSONata",
                    self.label
                );
                self.problem("QueryLanguage", message);
                true
            }
            Some("JSONPath") => false,
            Some(other) => {
                let message = format!(
                    "{}: QueryLanguage must be JSONPath or JSONata, not \"{other}\"",
                    self.label
                );
                self.problem("QueryLanguage", message);
                default
            }
        }
    }

    /// `Next` xor `"End": true`.
    fn transition(&mut self) -> Option<Transition> {
        let next = self.string("Next");
        let end = match self.obj.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                let message = format!("{}: End must be true or false", self.label);
                self.problem("End", message);
                return None;
            }
        };
        match (next, end) {
            (Some(next), false) => Some(Transition::Next(next)),
            (None, true) => Some(Transition::End),
            (Some(_), true) => {
                let message = format!(
                    "{} has both Next and \"End\": true; it must have exactly one",
                    self.label
                );
                self.problems
                    .push(Problem::schema(self.location.clone(), message));
                None
            }
            (None, false) => {
                if !self.obj.contains_key("Next") {
                    let message = format!(
                        "{} has neither Next nor \"End\": true; it must have one",
                        self.label
                    );
                    self.problems
                        .push(Problem::schema(self.location.clone(), message));
                }
                None
            }
        }
    }

    fn task(&mut self) -> Option<TaskState> {
        self.unknown_fields(TASK_FIELDS, "a Task state");
        let io = self.input_output();
        let parameters = self.template(if self.jsonata {
            "Arguments"
        } else {
            "Parameters"
        });
        let result_selector = self.template("ResultSelector");
        let result_path = self.result_path("ResultPath");
        let timeout_expr = self.expression("TimeoutSeconds");
        let heartbeat_expr = self.expression("HeartbeatSeconds");
        let timeout_seconds = timeout_expr
            .is_none()
            .then(|| self.count("TimeoutSeconds", 1))
            .flatten();
        let heartbeat_seconds = heartbeat_expr
            .is_none()
            .then(|| self.count("HeartbeatSeconds", 1))
            .flatten();
        if let (Some(t), Some(h)) = (timeout_seconds, heartbeat_seconds) {
            if h >= t {
                let message = format!(
                    "{}: HeartbeatSeconds ({h}) must be smaller than TimeoutSeconds ({t})",
                    self.label
                );
                self.problem("HeartbeatSeconds", message);
            }
        }
        let seconds_path = |r: &mut Self, field: &str, fixed: &str| {
            if !r.obj.contains_key(field) {
                return None;
            }
            if r.obj.contains_key(fixed) {
                let message = format!("{}: give {fixed} or {field}, not both", r.label);
                r.problem(field, message);
                return None;
            }
            let text = r.string(field)?;
            r.path_value(field, &text, true, true)
        };
        let timeout_seconds_path = seconds_path(self, "TimeoutSecondsPath", "TimeoutSeconds");
        let heartbeat_seconds_path = seconds_path(self, "HeartbeatSecondsPath", "HeartbeatSeconds");
        let retry = self.retriers();
        let catch = self.catchers();
        let transition = self.transition();
        let resource = match self.obj.get("Resource") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                let message = format!("{}: Resource must be a non-empty string", self.label);
                let location = self.at("Resource");
                self.problems
                    .push(Problem::new("INVALID_RESOURCE", location, message));
                None
            }
            None => {
                let message = format!("{} has no Resource field", self.label);
                self.problems.push(Problem::schema(self.here(), message));
                None
            }
        }?;
        if resource.ends_with(".sync") || resource.contains(".sync:") {
            let message = format!(
                "{}: the .sync integration pattern of Resource \"{resource}\" is not supported yet",
                self.label
            );
            let location = self.at("Resource");
            self.problems
                .push(Problem::new("INVALID_RESOURCE", location, message));
        }
        let base = resource.strip_suffix(".waitForTaskToken");
        let wait_for_token = base.is_some();
        if base.is_some_and(super::events::is_activity) {
            let message = format!(
                "{}: an activity Resource cannot take .waitForTaskToken; its worker already answers with the task token",
                self.label
            );
            let location = self.at("Resource");
            self.problems
                .push(Problem::new("INVALID_RESOURCE", location, message));
        }
        Some(TaskState {
            io,
            resource,
            wait_for_token,
            parameters,
            result_selector,
            result_path,
            timeout_seconds,
            heartbeat_seconds,
            timeout_seconds_path,
            heartbeat_seconds_path,
            timeout_expr,
            heartbeat_expr,
            retry,
            catch,
            transition: transition?,
        })
    }

    fn parallel(&mut self) -> Option<ForkState> {
        self.unknown_fields(PARALLEL_FIELDS, "a Parallel state");
        let branches = match self.obj.get("Branches") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .enumerate()
                .filter_map(|(i, branch)| self.sub_machine(&format!("Branches[{i}]"), branch))
                .collect::<Vec<_>>(),
            _ => {
                let message = format!(
                    "{}: Branches must be a non-empty array of state machines",
                    self.label
                );
                self.problem("Branches", message);
                return None;
            }
        };
        let arguments = if self.jsonata {
            "Arguments"
        } else {
            "Parameters"
        };
        self.fork(branches, arguments, None)
    }

    fn map(&mut self, name: &str) -> Option<ForkState> {
        self.unknown_fields(MAP_FIELDS, "a Map state");
        let distributed = ["ItemProcessor", "Iterator"]
            .iter()
            .filter_map(|field| self.obj.get(*field))
            .any(|p| {
                p.pointer("/ProcessorConfig/Mode").and_then(Value::as_str) == Some("DISTRIBUTED")
            });
        let processor = match (self.obj.get("ItemProcessor"), self.obj.get("Iterator")) {
            (Some(p), None) => self.sub_machine("ItemProcessor", p),
            (None, Some(p)) => self.sub_machine("Iterator", p),
            (Some(_), Some(_)) => {
                let message = format!("{}: give ItemProcessor or Iterator, not both", self.label);
                self.problem("Iterator", message);
                None
            }
            (None, None) => {
                let message = format!("{} has no ItemProcessor", self.label);
                let here = self.here();
                self.problems.push(Problem::schema(here, message));
                None
            }
        };
        let selector = match (
            self.obj.contains_key("ItemSelector"),
            self.obj.contains_key("Parameters"),
        ) {
            (true, true) => {
                let message = format!("{}: give ItemSelector or Parameters, not both", self.label);
                self.problem("Parameters", message);
                "ItemSelector"
            }
            (false, true) => "Parameters",
            _ => "ItemSelector",
        };
        let items_path = match self.obj.get("ItemsPath") {
            None => None,
            Some(_) => Some(self.reference_path("ItemsPath")?),
        };
        let options = MapOptions {
            items_path,
            items: self.ata("Items"),
            max_concurrency: self.quantity("MaxConcurrency", true, None),
            tolerated_count: self.quantity("ToleratedFailureCount", true, None),
            tolerated_percentage: self.quantity("ToleratedFailurePercentage", false, Some(100.0)),
            batch: self.batcher(),
            map_run: distributed.then(|| self.string("Label").unwrap_or_else(|| name.to_string())),
        };
        self.fork(vec![processor?], selector, Some(options))
    }

    /// The parts Parallel and Map share.
    fn fork(
        &mut self,
        branches: Vec<StateMachine>,
        parameters: &str,
        map: Option<MapOptions>,
    ) -> Option<ForkState> {
        Some(ForkState {
            io: self.input_output(),
            parameters: self.template(parameters),
            result_selector: self.template("ResultSelector"),
            result_path: self.result_path("ResultPath"),
            retry: self.retriers(),
            catch: self.catchers(),
            transition: self.transition()?,
            branches,
            map,
        })
    }

    /// A Parallel branch or a Map's processor: a state machine of its own.
    fn sub_machine(&mut self, field: &str, value: &'a Value) -> Option<StateMachine> {
        let location = self.at(field);
        let Value::Object(obj) = value else {
            let message = format!("{}: {field} must be a state machine object", self.label);
            self.problem(field, message);
            return None;
        };
        let label = format!("{} ({field})", self.label);
        let mut r = Reader::new(&label, obj, location.clone(), self.problems);
        r.unknown_fields(BRANCH_FIELDS, "a branch");
        if let Some(Value::Object(config)) = obj.get("ProcessorConfig") {
            let mut c = Reader::new(
                &label,
                config,
                format!("{location}/ProcessorConfig"),
                r.problems,
            );
            c.unknown_fields(&["Mode", "ExecutionType"], "a ProcessorConfig");
            let mode = c.string("Mode");
            let execution_type = c.string("ExecutionType");
            match (mode.as_deref(), execution_type.as_deref()) {
                (None | Some("INLINE"), None) => {}
                (Some("DISTRIBUTED"), Some("STANDARD" | "EXPRESS")) => {}
                (Some("DISTRIBUTED"), other) => {
                    let message = format!(
                        "{label}: a DISTRIBUTED ProcessorConfig needs ExecutionType STANDARD or EXPRESS, not {}",
                        other.map_or("none".to_string(), |t| format!("\"{t}\""))
                    );
                    c.problem("ExecutionType", message);
                }
                (None | Some("INLINE"), Some(_)) => {
                    let message =
                        format!("{label}: ExecutionType applies only to DISTRIBUTED processing");
                    c.problem("ExecutionType", message);
                }
                (Some(mode), _) => {
                    let message = format!(
                        "{label}: ProcessorConfig Mode must be INLINE or DISTRIBUTED, not \"{mode}\""
                    );
                    c.problem("Mode", message);
                }
            }
        }
        parse_machine(
            obj,
            &location,
            &label,
            None,
            self.default_jsonata,
            self.problems,
        )
    }

    /// `Field` or `FieldPath` (not both): a number of at least 0 (a whole one when `whole`),
    /// at most `max`.
    fn quantity(&mut self, field: &str, whole: bool, max: Option<f64>) -> Option<Quantity> {
        if let Some(e) = self.expression(field) {
            return Some(Quantity::Expr(e));
        }
        let path_field = format!("{field}Path");
        match (self.obj.get(field), self.obj.contains_key(&path_field)) {
            (Some(_), true) => {
                let message = format!("{}: give {field} or {path_field}, not both", self.label);
                self.problem(&path_field, message);
                None
            }
            (None, true) => {
                let text = self.string(&path_field)?;
                self.path_value(&path_field, &text, true, true)
                    .map(Quantity::Path)
            }
            (Some(v), false) => {
                let n = v.as_f64().filter(|n| {
                    *n >= 0.0 && (!whole || n.fract() == 0.0) && max.is_none_or(|m| *n <= m)
                });
                if n.is_none() {
                    let kind = if whole { "a whole number" } else { "a number" };
                    let bound = max.map(|m| format!(" and at most {m}")).unwrap_or_default();
                    let message = format!(
                        "{}: {field} must be {kind} of at least 0{bound}, not {v}",
                        self.label
                    );
                    self.problem(field, message);
                }
                n.map(Quantity::Fixed)
            }
            (None, false) => None,
        }
    }

    fn batcher(&mut self) -> Option<Batcher> {
        let Value::Object(obj) = self.obj.get("ItemBatcher")? else {
            let message = format!("{}: ItemBatcher must be an object", self.label);
            self.problem("ItemBatcher", message);
            return None;
        };
        let label = format!("{} (ItemBatcher)", self.label);
        let mut r = Reader::new(&label, obj, self.at("ItemBatcher"), self.problems);
        r.jsonata = self.jsonata;
        r.unknown_fields(
            &["MaxItemsPerBatch", "MaxItemsPerBatchPath", "BatchInput"],
            "an ItemBatcher",
        );
        Some(Batcher {
            max_items: r.quantity("MaxItemsPerBatch", true, None),
            batch_input: r.template("BatchInput"),
        })
    }

    /// The objects of an optional array field, each with its location.
    fn objects(&mut self, field: &str) -> Vec<(String, &'a Map<String, Value>)> {
        let obj = self.obj;
        match obj.get(field) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let location = format!("{}/{field}[{i}]", self.location);
                    match item {
                        Value::Object(o) => out.push((location, o)),
                        _ => {
                            let message =
                                format!("{}: each {field} entry must be an object", self.label);
                            self.problems.push(Problem::schema(location, message));
                        }
                    }
                }
                out
            }
            Some(_) => {
                let message = format!("{}: {field} must be an array", self.label);
                self.problem(field, message);
                Vec::new()
            }
        }
    }

    /// `ErrorEquals`: a non-empty list of names, with `States.ALL` alone.
    fn error_equals(&mut self) -> Vec<String> {
        let names: Vec<String> = match self.obj.get("ErrorEquals") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => {
                let message = format!(
                    "{}: ErrorEquals must be a non-empty array of error names",
                    self.label
                );
                self.problem("ErrorEquals", message);
                return Vec::new();
            }
        };
        if names.len()
            != self
                .obj
                .get("ErrorEquals")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        {
            let message = format!("{}: every ErrorEquals entry must be a string", self.label);
            self.problem("ErrorEquals", message);
        }
        if names.len() > 1 && names.iter().any(|n| n == "States.ALL") {
            let message = format!(
                "{}: States.ALL must appear alone in ErrorEquals",
                self.label
            );
            self.problem("ErrorEquals", message);
        }
        names
    }

    fn retriers(&mut self) -> Vec<Retrier> {
        let entries = self.objects("Retry");
        let count = entries.len();
        let mut out = Vec::new();
        for (i, (location, obj)) in entries.into_iter().enumerate() {
            let label = format!("{} Retry[{i}]", self.label);
            let mut r = Reader::new(&label, obj, location, self.problems);
            r.jsonata = self.jsonata;
            r.unknown_fields(
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                ],
                "a Retry rule",
            );
            let error_equals = r.error_equals();
            r.all_last(&error_equals, i, count);
            let backoff_rate = match obj.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64().filter(|b| *b >= 1.0) {
                    Some(b) => b,
                    None => {
                        let message =
                            format!("{label}: BackoffRate must be a number of at least 1.0");
                        r.problem("BackoffRate", message);
                        2.0
                    }
                },
            };
            let full_jitter = match r.string("JitterStrategy").as_deref() {
                None | Some("NONE") => false,
                Some("FULL") => true,
                Some(other) => {
                    let message =
                        format!("{label}: JitterStrategy must be FULL or NONE, not \"{other}\"");
                    r.problem("JitterStrategy", message);
                    false
                }
            };
            out.push(Retrier {
                error_equals,
                interval_seconds: r.count("IntervalSeconds", 1).unwrap_or(1),
                max_attempts: r.count("MaxAttempts", 0).unwrap_or(3),
                backoff_rate,
                max_delay_seconds: r.count("MaxDelaySeconds", 1),
                full_jitter,
            });
        }
        out
    }

    fn catchers(&mut self) -> Vec<Catcher> {
        let entries = self.objects("Catch");
        let count = entries.len();
        let mut out = Vec::new();
        for (i, (location, obj)) in entries.into_iter().enumerate() {
            let label = format!("{} Catch[{i}]", self.label);
            let mut r = Reader::new(&label, obj, location, self.problems);
            r.jsonata = self.jsonata;
            r.unknown_fields(
                &["ErrorEquals", "Next", "ResultPath", "Assign", "Output"],
                "a Catch rule",
            );
            let error_equals = r.error_equals();
            r.all_last(&error_equals, i, count);
            let result_path = r.result_path("ResultPath");
            let assign = r.assign();
            let output = r.ata("Output");
            if let Some(next) = r.required_string("Next") {
                out.push(Catcher {
                    error_equals,
                    result_path,
                    next,
                    assign,
                    output,
                });
            }
        }
        out
    }

    /// `States.ALL` may only appear in the last rule.
    fn all_last(&mut self, error_equals: &[String], index: usize, count: usize) {
        if index + 1 < count && error_equals.iter().any(|e| e == "States.ALL") {
            let message = format!(
                "{}: a rule with States.ALL must be the last one",
                self.label
            );
            self.problem("ErrorEquals", message);
        }
    }

    fn choices(&mut self) -> Option<Vec<ChoiceRule>> {
        let Some(Value::Array(items)) = self.obj.get("Choices") else {
            let message = format!(
                "{} must have Choices: a non-empty array of rules",
                self.label
            );
            self.problem("Choices", message);
            return None;
        };
        if items.is_empty() {
            let message = format!("{}: Choices must hold at least one rule", self.label);
            self.problem("Choices", message);
            return None;
        }
        let rules: Vec<Option<ChoiceRule>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let location = format!("{}/Choices[{i}]", self.location);
                ChoiceRule::parse(self.label, item, location, self.jsonata, self.problems)
            })
            .collect();
        rules.into_iter().collect()
    }

    fn wait_for(&mut self) -> Option<WaitFor> {
        let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
            .into_iter()
            .filter(|f| self.obj.contains_key(*f))
            .collect();
        if given.len() != 1 {
            let message = format!(
                "{} must have exactly one of Seconds, Timestamp, SecondsPath or TimestampPath (has {})",
                self.label,
                if given.is_empty() { "none".to_string() } else { given.join(", ") }
            );
            self.problems
                .push(Problem::schema(self.location.clone(), message));
            return None;
        }
        let field = given.first().copied().unwrap_or_default();
        if let Some(value) = self.expression(field) {
            let seconds = field == "Seconds";
            return Some(WaitFor::Expr { seconds, value });
        }
        match given.first().copied() {
            Some("Seconds") => self.count("Seconds", 0).map(WaitFor::Seconds),
            Some("Timestamp") => {
                let ts = self.string("Timestamp")?;
                if super::choice::parse_timestamp(&ts).is_none() {
                    let message = format!(
                        "{}: Timestamp \"{ts}\" is not an RFC 3339 timestamp",
                        self.label
                    );
                    self.problem("Timestamp", message);
                    return None;
                }
                Some(WaitFor::Timestamp(ts))
            }
            Some("SecondsPath") => self.reference_path("SecondsPath").map(WaitFor::SecondsPath),
            _ => self
                .reference_path("TimestampPath")
                .map(WaitFor::TimestampPath),
        }
    }

    /// A Fail state's `Error`/`Cause` (`fixed`) or `ErrorPath`/`CausePath` (`path`).
    fn text(&mut self, fixed: &str, path: &str) -> Option<Text> {
        if self.obj.contains_key(fixed) && self.obj.contains_key(path) {
            let message = format!(
                "{} has both {fixed} and {path}; it may have only one",
                self.label
            );
            self.problem(path, message);
            return None;
        }
        if let Some(text) = self.obj.get(path).and_then(Value::as_str) {
            if text.starts_with("States.") {
                return match super::intrinsics::parse(text) {
                    Ok(call) => Some(Text::Call(Template::Intrinsic {
                        field: path.to_string(),
                        call,
                    })),
                    Err(e) => {
                        let message = format!("{}: {path}: {e}", self.label);
                        self.problem(path, message);
                        None
                    }
                };
            }
        }
        if let Some(e) = self.expression(fixed) {
            return Some(Text::Expr(e));
        }
        match self.string(fixed) {
            Some(s) => Some(Text::Fixed(s)),
            None => self
                .obj
                .contains_key(path)
                .then(|| self.reference_path(path))
                .flatten()
                .map(Text::Path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(definition: &Value) -> Vec<Problem> {
        match parse(&definition.to_string()) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    fn has(problems: &[Problem], code: &str, location: &str) -> bool {
        problems
            .iter()
            .any(|p| p.code == code && p.location == location)
    }

    /// The order workflow as shipped.
    pub(crate) const ORDER_APPROVAL: &str = include_str!("../../workflows/order-approval.asl.json");

    #[test]
    fn seed_order_workflow_parses_with_states_in_definition_order() {
        let machine = parse(ORDER_APPROVAL).map_err(|e| e.to_string());
        let machine = machine.as_ref().map_err(String::as_str);
        assert!(machine.is_ok(), "{machine:?}");
        let Ok(machine) = machine else { return };
        assert_eq!(machine.start_at(), "Validate Order");
        let names: Vec<_> = machine.state_names().collect();
        assert_eq!(names.first(), Some(&"Validate Order"));
        assert_eq!(names.last(), Some(&"FailState"));
        assert_eq!(names.len(), 13);
        let wait = machine.state("WaitForApproval");
        assert_eq!(wait.map(State::needs_task_token), Some(true));
        assert_eq!(wait.map(State::kind), Some(StateKind::Task));
        assert_eq!(
            machine.state("Validate Order").map(State::needs_task_token),
            Some(false)
        );
    }

    #[test]
    fn workflow_file_in_the_repository_parses_when_present() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/workflows/order-approval.asl.json"
        );
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        assert!(parse(&text).is_ok(), "{:?}", parse(&text).err());
    }

    #[test]
    fn several_problems_are_reported_at_once_each_located() {
        let found = problems(&json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "Nope"},
                "B": {"Type": "Pass", "Next": "C", "End": true},
                "C": {"Type": "Bogus"},
                "D": {"Type": "Task", "Resource": "x", "End": true, "Colour": "red"},
                "E": {"Type": "Wait", "Seconds": 1, "Timestamp": "2024-01-01T00:00:00Z", "End": true},
                "F": {"Type": "Pass", "InputPath": "a.b", "End": true},
                "G": {"Type": "Choice", "Default": "A"},
                "H": {"Type": "Parallel", "Branches": [], "End": true}
            }
        }));
        for (code, location) in [
            ("MISSING_TRANSITION_TARGET", "/States/A/Next"),
            ("SCHEMA_VALIDATION_FAILED", "/States/B"),
            ("SCHEMA_VALIDATION_FAILED", "/States/C/Type"),
            ("SCHEMA_VALIDATION_FAILED", "/States/D/Colour"),
            ("SCHEMA_VALIDATION_FAILED", "/States/E"),
            ("SCHEMA_VALIDATION_FAILED", "/States/F/InputPath"),
            ("SCHEMA_VALIDATION_FAILED", "/States/G/Choices"),
            ("SCHEMA_VALIDATION_FAILED", "/States/H/Branches"),
            ("MISSING_TRANSITION_TARGET", "/States/D"),
        ] {
            assert!(
                has(&found, code, location),
                "no {code} at {location} in {found:#?}"
            );
        }
        let parallel = found.iter().find(|p| p.location == "/States/H/Branches");
        assert!(parallel.is_some_and(|p| p.message.contains("\"H\"")));
    }

    #[test]
    fn parallel_and_map_machines_are_parsed_and_checked_in_place() {
        let machine = parse(
            &json!({
                "StartAt": "Fan out",
                "States": {
                    "Fan out": {"Type": "Parallel", "Next": "Each", "Branches": [
                        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                        {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}
                    ]},
                    "Each": {"Type": "Map", "End": true, "ItemsPath": "$.items",
                        "MaxConcurrency": 2,
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"},
                            "StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}}
                }
            })
            .to_string(),
        )
        .expect("valid");
        assert_eq!(
            machine.state("Fan out").map(State::kind),
            Some(StateKind::Parallel)
        );
        assert_eq!(machine.state("Each").map(State::kind), Some(StateKind::Map));
        let branch = machine.sub(&[("Fan out".into(), 1)]).expect("branch 1");
        assert_eq!(branch.start_at(), "B");
        assert!(machine.sub(&[("Each".into(), 0)]).is_some());
        assert!(machine.sub(&[("Each".into(), 1)]).is_none());

        let found = problems(&json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "X", "States": {"A": {"Type": "Pass", "Next": "Outside"}}}
                ]},
                "M": {"Type": "Map", "End": true, "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "SYNC"},
                    "StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
                    "MaxConcurrency": -1, "ItemReader": {}}
            }
        }));
        for (code, location) in [
            ("MISSING_TRANSITION_TARGET", "/States/P/Branches[0]/StartAt"),
            (
                "MISSING_TRANSITION_TARGET",
                "/States/P/Branches[0]/States/A/Next",
            ),
            (
                "SCHEMA_VALIDATION_FAILED",
                "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
            ),
            ("SCHEMA_VALIDATION_FAILED", "/States/M/MaxConcurrency"),
            ("SCHEMA_VALIDATION_FAILED", "/States/M/ItemReader"),
        ] {
            assert!(
                has(&found, code, location),
                "no {code} at {location} in {found:#?}"
            );
        }
    }

    #[test]
    fn missing_start_at_and_empty_states_are_reported_together() {
        let found = problems(&json!({"States": {}}));
        assert!(has(&found, "SCHEMA_VALIDATION_FAILED", "/States"));
        assert!(found.iter().any(|p| p.message.contains("StartAt")));
    }

    #[test]
    fn start_at_naming_no_state_is_a_missing_transition_target() {
        let found = problems(&json!({"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}));
        assert!(
            has(&found, "MISSING_TRANSITION_TARGET", "/StartAt"),
            "{found:?}"
        );
    }

    #[test]
    fn unreachable_state_is_reported_like_aws() {
        let found = problems(&json!({"StartAt": "A", "States": {
            "A": {"Type": "Succeed"}, "Orphan": {"Type": "Pass", "End": true}}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(has(&found, "MISSING_TRANSITION_TARGET", "/States/Orphan"));
        assert!(found[0].message.contains("\"Orphan\" is not reachable"));
    }

    #[test]
    fn machine_without_terminal_state_reports_missing_end_state() {
        let found = problems(&json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, "MISSING_END_STATE");
    }

    #[test]
    fn choice_targets_default_and_catch_targets_are_checked() {
        let found = problems(&json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.x", "IsPresent": true, "Next": "Gone"},
                {"Variable": "$.x", "IsNull": true}
            ], "Default": "Missing"},
            "T": {"Type": "Task", "Resource": "r", "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Away"}]}
        }}));
        for (code, location) in [
            ("MISSING_TRANSITION_TARGET", "/States/C/Choices[0]/Next"),
            ("MISSING_TRANSITION_TARGET", "/States/C/Default"),
            ("MISSING_TRANSITION_TARGET", "/States/T/Catch[0]/Next"),
            ("SCHEMA_VALIDATION_FAILED", "/States/C/Choices[1]/Next"),
        ] {
            assert!(
                has(&found, code, location),
                "no {code} at {location} in {found:#?}"
            );
        }
    }

    #[test]
    fn wait_without_any_duration_and_fail_with_both_error_forms_are_refused() {
        let found = problems(&json!({"StartAt": "W", "States": {
            "W": {"Type": "Wait", "Next": "F"},
            "F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}
        }}));
        assert!(
            has(&found, "SCHEMA_VALIDATION_FAILED", "/States/W"),
            "{found:?}"
        );
        assert!(
            has(&found, "SCHEMA_VALIDATION_FAILED", "/States/F/ErrorPath"),
            "{found:?}"
        );
    }

    #[test]
    fn result_path_must_be_a_reference_path_without_context() {
        let found = problems(&json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "ResultPath": "$.a[*]", "Next": "B"},
            "B": {"Type": "Pass", "ResultPath": "$$.Execution", "End": true}
        }}));
        assert!(has(
            &found,
            "SCHEMA_VALIDATION_FAILED",
            "/States/A/ResultPath"
        ));
        assert!(has(
            &found,
            "SCHEMA_VALIDATION_FAILED",
            "/States/B/ResultPath"
        ));
    }

    #[test]
    fn states_all_must_be_alone_and_last_in_catch() {
        let found = problems(&json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "End": true, "Catch": [
                {"ErrorEquals": ["States.ALL", "X"], "Next": "T"},
                {"ErrorEquals": ["Y"], "Next": "T"}
            ]}
        }}));
        let at = "/States/T/Catch[0]/ErrorEquals";
        assert_eq!(
            found.iter().filter(|p| p.location == at).count(),
            2,
            "{found:?}"
        );
    }

    #[test]
    fn task_timeouts_retry_and_token_resource_are_stored() {
        let machine = parse(
            &json!({"StartAt": "T", "States": {"T": {
                "Type": "Task", "Resource": "svc:act.waitForTaskToken", "End": true,
                "TimeoutSeconds": 60, "HeartbeatSeconds": 10,
                "Retry": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2, "JitterStrategy": "FULL"}]
            }}})
            .to_string(),
        );
        let state = machine.as_ref().ok().and_then(|m| m.state("T"));
        assert_eq!(state.map(State::timeout_seconds), Some(Some(60)));
        assert_eq!(state.map(State::heartbeat_seconds), Some(Some(10)));
        assert_eq!(state.map(State::needs_task_token), Some(true));
        let retry = state.map(|s| s.retry().to_vec()).unwrap_or_default();
        assert_eq!(retry.len(), 1);
        assert_eq!(
            (
                retry[0].max_attempts,
                retry[0].interval_seconds,
                retry[0].full_jitter
            ),
            (2, 1, true)
        );
        assert!(retry[0].matches("States.Timeout"));
    }

    #[test]
    fn heartbeat_not_below_timeout_is_refused() {
        let found = problems(&json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "r", "End": true, "TimeoutSeconds": 5, "HeartbeatSeconds": 5}}}));
        assert!(has(
            &found,
            "SCHEMA_VALIDATION_FAILED",
            "/States/T/HeartbeatSeconds"
        ));
    }

    #[test]
    fn invalid_json_is_one_invalid_json_description_problem() {
        let err = parse("{not json")
            .err()
            .map(|e| e.problems)
            .unwrap_or_default();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code, "INVALID_JSON_DESCRIPTION");
    }

    #[test]
    fn duplicate_state_names_are_reported() {
        let text =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "A": {"Type": "Succeed"}}}"#;
        let found = parse(text).err().map(|e| e.problems).unwrap_or_default();
        assert!(
            has(&found, "DUPLICATE_STATE_NAME", "/States/A"),
            "{found:?}"
        );
    }

    #[test]
    fn error_matching_follows_aws_wildcards() {
        let all = vec!["States.ALL".to_string()];
        let task_failed = vec!["States.TaskFailed".to_string()];
        assert!(error_matches(&all, "Custom"));
        assert!(!error_matches(&all, "States.Runtime"));
        assert!(!error_matches(
            &["States.Runtime".to_string()],
            "States.Runtime"
        ));
        assert!(error_matches(&task_failed, "States.Permissions"));
        assert!(!error_matches(&task_failed, "States.Timeout"));
    }

    #[test]
    fn problem_displays_location_then_message() {
        let p = Problem::schema("/States/A", "bad");
        assert_eq!(p.to_string(), "/States/A: bad");
    }
}
