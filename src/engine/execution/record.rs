//! The lifecycle's record of one execution or branch run, and its parts: phase, timer, the
//! progress of a fork, a pending callback.

use crate::engine::{Context, Failure, Tolerance};
use crate::model::ExecutionStatus;
use serde_json::{Map, Value};

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
    pub const ALL: [Phase; 4] = [Phase::Ready, Phase::Waiting, Phase::Queued, Phase::Done];

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
    pub const ALL: [TimerKind; 3] = [TimerKind::Wait, TimerKind::Retry, TimerKind::TaskTimeout];

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
    pub(super) ctx: Context,
    pub(super) state_input: Value,
    pub(super) resource: String,
    pub(super) wait_for_token: bool,
    pub(super) timeout_seconds: Option<u64>,
    pub(super) heartbeat_seconds: Option<u64>,
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
