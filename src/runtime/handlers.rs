//! Task handlers: the local code a Task state's `Resource` names, run inside the transition's
//! database transaction so that what a handler writes commits together with the step.

use super::ExecutionStatus;
use crate::db::WriteConn;
use crate::engine::Failure;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler is called with.
#[derive(Debug, Clone)]
pub struct TaskCall {
    pub execution_id: String,
    /// The state machine the execution runs (its top-level machine's name).
    pub state_machine: String,
    pub state_name: String,
    pub resource: String,
    /// The state's effective input after InputPath and Parameters.
    pub parameters: Value,
    /// Set for `.waitForTaskToken` resources: the token that resumes the execution.
    pub task_token: Option<String>,
    /// The time of the step, by the runtime's clock: what a handler records as "now".
    pub now: time::OffsetDateTime,
}

/// Why a handler did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The task failed in the ASL sense: `Catch` may handle it, otherwise the execution fails.
    #[error("{}: {}", .0.error, .0.cause)]
    Task(Failure),
    /// The database failed: the whole step is rolled back and tried again later.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl HandlerError {
    /// A task failure with an AWS-style error name and a cause.
    pub fn task(error: impl Into<String>, cause: impl Into<String>) -> HandlerError {
        HandlerError::Task(Failure {
            error: error.into(),
            cause: cause.into(),
        })
    }
}

/// The future a handler returns; it may use the connection it was given.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, HandlerError>> + Send + 'a>>;

/// Local code behind a `Resource`.
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs the task on the step's connection (inside its transaction).
    fn call<'a>(&'a self, conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a>;
}

impl<F> TaskHandler for F
where
    F: for<'a> Fn(&'a mut WriteConn, TaskCall) -> HandlerFuture<'a> + Send + Sync + 'static,
{
    fn call<'a>(&'a self, conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
        self(conn, call)
    }
}

/// The built-in resource that only waits: `orderflow:callback.waitForTaskToken` pauses until
/// SendTaskSuccess or SendTaskFailure arrives with the token. The state's `Parameters` carry
/// the token (`"TaskToken.$": "$$.Task.Token"`) to whoever answers; the execution history
/// records them in `TaskScheduled`.
pub const CALLBACK: &str = "orderflow:callback";

fn callback<'a>(_: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        match call.task_token {
            Some(_) => Ok(Value::Object(Default::default())),
            None => Err(HandlerError::task(
                "States.Runtime",
                format!("{CALLBACK} only waits for a callback: use {CALLBACK}.waitForTaskToken"),
            )),
        }
    })
}

/// How an execution ended, as its owner's [`EndHook`] is told.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub execution_id: &'a str,
    pub status: ExecutionStatus,
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
    /// Who ended it, for a StopExecution.
    pub by: Option<&'a str>,
    /// When, by the runtime's clock.
    pub now: time::OffsetDateTime,
}

/// The future an end hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>>;

/// Code that runs, in the same transaction, whenever a top-level execution of the state
/// machine it is registered for ends — succeeded, failed, timed out or stopped — so that what
/// the execution was doing (an order) never outlives it.
pub trait EndHook: Send + Sync + 'static {
    fn ended<'a>(&'a self, conn: &'a mut WriteConn, ended: Ended<'a>) -> HookFuture<'a>;
}

impl<F> EndHook for F
where
    F: for<'a> Fn(&'a mut WriteConn, Ended<'a>) -> HookFuture<'a> + Send + Sync + 'static,
{
    fn ended<'a>(&'a self, conn: &'a mut WriteConn, ended: Ended<'a>) -> HookFuture<'a> {
        self(conn, ended)
    }
}

/// A handler and, for a domain's own resources, the one state machine allowed to call it.
#[derive(Clone)]
struct Entry {
    handler: Arc<dyn TaskHandler>,
    owner: Option<String>,
}

/// Resources by name (without the `.waitForTaskToken` suffix), and end hooks by state machine.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Entry>,
    end_hooks: HashMap<String, Arc<dyn EndHook>>,
}

impl Registry {
    /// A registry with the built-in resources (`orderflow:callback`).
    pub fn new() -> Registry {
        let mut registry = Registry::default();
        registry.register(CALLBACK, callback);
        registry
    }

    /// Makes `resource` run `handler` for any state machine, replacing any earlier one.
    pub fn register(&mut self, resource: impl Into<String>, handler: impl TaskHandler) {
        let handler = Arc::new(handler);
        self.handlers.insert(
            resource.into(),
            Entry {
                handler,
                owner: None,
            },
        );
    }

    /// Makes `resource` run `handler` for executions of state machine `owner` only: other
    /// machines naming it are refused when they are stored, and fail if they call it.
    pub fn register_owned(
        &mut self,
        resource: impl Into<String>,
        owner: &str,
        handler: impl TaskHandler,
    ) {
        let entry = Entry {
            handler: Arc::new(handler),
            owner: Some(owner.to_string()),
        };
        self.handlers.insert(resource.into(), entry);
    }

    /// Runs `hook` in the transaction that ends any top-level execution of `machine`.
    pub fn on_end(&mut self, machine: &str, hook: impl EndHook) {
        self.end_hooks.insert(machine.to_string(), Arc::new(hook));
    }

    pub fn get(&self, resource: &str) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(resource).map(|e| e.handler.clone())
    }

    /// The state machine that alone may call `resource`, if it is one domain's own.
    pub fn owner(&self, resource: &str) -> Option<&str> {
        self.handlers.get(resource)?.owner.as_deref()
    }

    pub(super) fn end_hook(&self, machine: &str) -> Option<Arc<dyn EndHook>> {
        self.end_hooks.get(machine).cloned()
    }
}
