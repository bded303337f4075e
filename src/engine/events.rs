//! History events as AWS names and shapes them; the engine fills `details`, the runtime adds
//! ids and timestamps.

use serde_json::{json, Value};
use std::fmt;

/// Declares `EventType` with its AWS spellings in one place.
macro_rules! event_types {
    ($($name:ident),* $(,)?) => {
        /// An AWS history event type, spelled as AWS spells it (`Display`/`as_str` give that
        /// spelling).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];

            /// The AWS spelling, e.g. `"TaskStateEntered"`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(EventType::$name => stringify!($name),)*
                }
            }

            /// The event type spelled `s`, if any.
            pub fn parse(s: &str) -> Option<EventType> {
                match s {
                    $(stringify!($name) => Some(EventType::$name),)*
                    _ => None,
                }
            }
        }
    };
}

event_types!(
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionAborted,
    ExecutionTimedOut,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskScheduled,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    ParallelStateAborted,
    ParallelStateExited,
    MapStateEntered,
    MapStateStarted,
    MapStateSucceeded,
    MapStateFailed,
    MapStateAborted,
    MapStateExited,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    MapIterationAborted,
    EvaluationFailed,
    MapRunStarted,
    MapRunSucceeded,
    MapRunFailed,
    MapRunAborted,
    ActivityScheduled,
    ActivityStarted,
    ActivitySucceeded,
    ActivityFailed,
    ActivityTimedOut,
);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JSON text as AWS stores payloads in event details (compact), of a value or a map of
/// them. Written straight into a buffer: `Value`'s `Display` goes through the formatting
/// machinery for every piece.
pub fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The length in bytes of `value`'s compact JSON text, counted without building it.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` cannot fail, and `Count` never does.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// One history event as the engine produces it; the runtime adds id, previous id and
/// timestamp. `details` follows AWS's `*EventDetails` shapes, with input, output and
/// parameters as JSON *strings* as AWS stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// The event type.
    pub kind: EventType,
    /// The event's details object.
    pub details: Value,
}

impl HistoryEvent {
    /// An event with no details (e.g. `ParallelStateStarted`).
    pub(crate) fn bare(kind: EventType) -> HistoryEvent {
        HistoryEvent {
            kind,
            details: json!({}),
        }
    }

    /// `stateEnteredEventDetails`: `{name, input}`.
    pub(crate) fn entered(kind: EventType, name: &str, input: &Value) -> HistoryEvent {
        HistoryEvent {
            kind,
            details: json!({ "name": name, "input": json_text(input) }),
        }
    }

    /// `stateExitedEventDetails`: `{name, output}`.
    pub fn exited(kind: EventType, name: &str, output: &Value) -> HistoryEvent {
        HistoryEvent {
            kind,
            details: json!({ "name": name, "output": json_text(output) }),
        }
    }

    /// Adds `assignedVariables` (each value as JSON text) to an exited event, as AWS shows
    /// what the state's `Assign` set.
    pub fn show_assigned(&mut self, assigned: &serde_json::Map<String, Value>) {
        let texts: serde_json::Map<String, Value> = assigned
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(json_text(v))))
            .collect();
        self.details["assignedVariables"] = Value::Object(texts);
        self.details["assignedVariablesDetails"] = json!({ "truncated": false });
    }

    /// `taskScheduledEventDetails`: `{resource, resourceType, parameters, timeoutInSeconds?,
    /// heartbeatInSeconds?}`.
    pub(crate) fn task_scheduled(
        region: &str,
        resource: &str,
        parameters: &Value,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    ) -> HistoryEvent {
        let mut details = resource_details(resource);
        details["parameters"] = Value::String(json_text(parameters));
        details["region"] = json!(region);
        if let Some(t) = timeout {
            details["timeoutInSeconds"] = json!(t);
        }
        if let Some(h) = heartbeat {
            details["heartbeatInSeconds"] = json!(h);
        }
        HistoryEvent {
            kind: EventType::TaskScheduled,
            details,
        }
    }

    /// `taskSucceededEventDetails`: `{resource, resourceType, output}`.
    pub(crate) fn task_succeeded(resource: &str, output: &Value) -> HistoryEvent {
        if is_activity(resource) {
            return HistoryEvent {
                kind: EventType::ActivitySucceeded,
                details: json!({
                    "output": json_text(output),
                    "outputDetails": { "truncated": false },
                }),
            };
        }
        let mut details = resource_details(resource);
        details["output"] = Value::String(json_text(output));
        HistoryEvent {
            kind: EventType::TaskSucceeded,
            details,
        }
    }

    /// `activityScheduledEventDetails`: `{resource, input, timeoutInSeconds?,
    /// heartbeatInSeconds?}` for a Task whose Resource is an activity.
    pub(crate) fn activity_scheduled(
        resource: &str,
        input: &Value,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    ) -> HistoryEvent {
        let mut details = json!({
            "resource": resource,
            "input": json_text(input),
            "inputDetails": { "truncated": false },
        });
        if let Some(t) = timeout {
            details["timeoutInSeconds"] = json!(t);
        }
        if let Some(h) = heartbeat {
            details["heartbeatInSeconds"] = json!(h);
        }
        HistoryEvent {
            kind: EventType::ActivityScheduled,
            details,
        }
    }

    /// `activityStartedEventDetails`: `{workerName}` — a worker took the activity task.
    pub fn activity_started(worker_name: &str) -> HistoryEvent {
        HistoryEvent {
            kind: EventType::ActivityStarted,
            details: json!({ "workerName": worker_name }),
        }
    }

    /// `taskStartedEventDetails`: `{resource, resourceType}`.
    pub fn task_started(resource: &str) -> HistoryEvent {
        HistoryEvent {
            kind: EventType::TaskStarted,
            details: resource_details(resource),
        }
    }

    /// `taskSubmittedEventDetails`: `{resource, resourceType, output}` — what a
    /// `.waitForTaskToken` task returned when it was handed its token.
    pub fn task_submitted(resource: &str, output: &Value) -> HistoryEvent {
        let mut details = resource_details(resource);
        details["output"] = Value::String(json_text(output));
        HistoryEvent {
            kind: EventType::TaskSubmitted,
            details,
        }
    }

    /// `taskFailedEventDetails`: `{resource, resourceType, error, cause}`.
    /// A timeout (`States.Timeout`, `States.HeartbeatTimeout`) is `…TimedOut`, as on AWS;
    /// an activity's events are `Activity…`.
    pub(crate) fn task_failed(resource: &str, error: &str, cause: &str) -> HistoryEvent {
        let timed_out = matches!(error, "States.Timeout" | "States.HeartbeatTimeout");
        let activity = is_activity(resource);
        let mut details = if activity {
            json!({})
        } else {
            resource_details(resource)
        };
        details["error"] = json!(error);
        details["cause"] = json!(cause);
        let kind = match (activity, timed_out) {
            (true, true) => EventType::ActivityTimedOut,
            (true, false) => EventType::ActivityFailed,
            (false, true) => EventType::TaskTimedOut,
            (false, false) => EventType::TaskFailed,
        };
        HistoryEvent { kind, details }
    }
}

/// AWS's `resourceType` and `resource` of a Task's Resource: `lambda` and `invoke` for
/// `arn:aws:states:::lambda:invoke`, `aws-sdk:s3` and `getObject` for an SDK integration,
/// `orderflow` and `validate-order` for `orderflow:validate-order`.
fn resource_fields(resource: &str) -> (&str, &str) {
    if let Some(integration) = resource.strip_prefix("arn:aws:states:::") {
        return integration.rsplit_once(':').unwrap_or((integration, ""));
    }
    match resource.strip_prefix("arn:") {
        Some(arn) => (arn.split(':').nth(1).unwrap_or(""), resource),
        None => resource.split_once(':').unwrap_or((resource, resource)),
    }
}

/// The activity name of an activity ARN (`arn:aws:states:<region>:<account>:activity:<name>`).
pub fn activity_name(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("arn:aws:states:")?;
    let parts: Vec<&str> = rest.splitn(4, ':').collect();
    match parts.as_slice() {
        [region, account, "activity", name]
            if !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// True when a Task's Resource is an activity, whose work a worker takes with GetActivityTask.
pub fn is_activity(resource: &str) -> bool {
    activity_name(resource).is_some()
}

/// `resourceType` and `resource` of a task event's details.
fn resource_details(resource: &str) -> Value {
    let (kind, name) = resource_fields(resource);
    json!({ "resourceType": kind, "resource": name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_round_trips_through_its_aws_spelling() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(EventType::TaskStateEntered.as_str(), "TaskStateEntered");
        assert_eq!(EventType::parse("taskstateentered"), None);
    }

    #[test]
    fn resource_fields_split_like_aws() {
        let cases = [
            ("orderflow:validate-order", ("orderflow", "validate-order")),
            ("arn:aws:states:::lambda:invoke", ("lambda", "invoke")),
            (
                "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                ("sqs", "sendMessage.waitForTaskToken"),
            ),
            (
                "arn:aws:states:::aws-sdk:s3:getObject",
                ("aws-sdk:s3", "getObject"),
            ),
            ("echo", ("echo", "echo")),
        ];
        for (resource, expected) in cases {
            assert_eq!(resource_fields(resource), expected, "{resource}");
        }
    }

    #[test]
    fn details_hold_input_and_output_as_json_strings() {
        let e = HistoryEvent::entered(
            EventType::PassStateEntered,
            "P",
            &serde_json::json!({"a": 1}),
        );
        assert_eq!(
            e.details,
            serde_json::json!({"name": "P", "input": "{\"a\":1}"})
        );
    }
}
