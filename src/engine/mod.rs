//! The Amazon States Language interpreter: a pure function from (definition, state, input,
//! context) to what should happen next. No I/O, clock, database or async here — `runtime/`
//! performs what this returns.
//!
//! - `definition`: parse and validate a definition into typed states.
//! - `paths`: JSONPath, payload templates and `ResultPath`.
//! - `intrinsics`: `States.Format(…)` and the other intrinsic functions.
//! - `choice`: Choice rules.
//! - `step`: running a state (`enter`, `task_succeeded`, `task_failed`, `fork_succeeded`, …).
//! - `jsonata`: `{% %}` expressions of states whose `QueryLanguage` is JSONata.
//! - `events`: history event types and detail shapes.
//! - `execution`: the lifecycle of an execution (`apply`: inputs in, effects out).
//! - `timestamp`: the stored time format.
//! - `drive`: runs a machine to its end on the engine alone (property tests, fuzzing).
//!
//! Every state type, JSONPath and JSONata, variables, Parallel and Map are supported; see the
//! README's "Supported ASL" table. `retry` decides whether a failed task is tried again and
//! after how long; the runtime does the waiting.

mod choice;
mod definition;
pub mod drive;
mod events;
pub mod execution;
mod filter;
mod intrinsics;
mod jsonata;
mod paths;
mod retry;
mod step;
mod timestamp;

pub use definition::{parse, DefinitionError, Problem, Retrier, State, StateKind, StateMachine};
pub use events::{activity_name, is_activity, json_len, json_text, EventType, HistoryEvent};
pub use retry::{decide_retry, RetryDecision};
pub use step::{
    Action, Branch, Context, Failure, Next, Step, Tolerance, WaitUntil, MAX_PAYLOAD_BYTES,
};
pub use timestamp::{format_time, parse_time};
