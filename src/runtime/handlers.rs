//! Task handlers: the local code a Task state's `Resource` names, run inside the transition's
//! database transaction so that what a handler writes commits together with the step.

use crate::engine::Failure;
use serde_json::Value;
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler is called with.
#[derive(Debug, Clone)]
pub struct TaskCall {
    pub execution_id: String,
    pub state_name: String,
    pub resource: String,
    /// The state's effective input after InputPath and Parameters.
    pub parameters: Value,
    /// Set for `.waitForTaskToken` resources: the token that resumes the execution.
    pub task_token: Option<String>,
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
    fn call<'a>(&'a self, conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a>;
}

impl<F> TaskHandler for F
where
    F: for<'a> Fn(&'a mut SqliteConnection, TaskCall) -> HandlerFuture<'a> + Send + Sync + 'static,
{
    fn call<'a>(&'a self, conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
        self(conn, call)
    }
}

/// The built-in resource that only waits: `orderflow:callback.waitForTaskToken` pauses until
/// SendTaskSuccess or SendTaskFailure arrives with the token. The state's `Parameters` carry
/// the token (`"TaskToken.$": "$$.Task.Token"`) to whoever answers; the execution history
/// records them in `TaskScheduled`.
pub const CALLBACK: &str = "orderflow:callback";

fn callback<'a>(_: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
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

/// Resources by name (without the `.waitForTaskToken` suffix).
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
}

impl Registry {
    /// A registry with the built-in resources (`orderflow:callback`).
    pub fn new() -> Registry {
        let mut registry = Registry::default();
        registry.register(CALLBACK, callback);
        registry
    }

    /// Makes `resource` run `handler`, replacing any earlier one.
    pub fn register(&mut self, resource: impl Into<String>, handler: impl TaskHandler) {
        self.handlers.insert(resource.into(), Arc::new(handler));
    }

    pub fn get(&self, resource: &str) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(resource).cloned()
    }
}
