//! What goes into the lifecycle and what comes out: the [`Env`] a decision is made in, the
//! [`Input`]s that happen to an execution, the [`Effect`]s the runtime performs.

use super::{ExecutionRecord, PendingTask};
use crate::engine::{format_time, Failure, HistoryEvent};
use crate::model::ExecutionStatus;
use serde_json::Value;
use time::OffsetDateTime;

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
    pub(super) fn jitter(&self) -> f64 {
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
    /// A worker polling GetActivityTask took the pending activity task.
    ActivityTaken { worker: String },
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
