//! The Step Functions actions: request fields in, AWS's response shapes and errors out.

use super::SfnError;
use crate::model::CurrentUser;
use crate::runtime::{
    activity_arn, execution_arn, state_machine_arn, ActivityInfo, CallbackError, ExecutionInfo,
    MachineInfo, RuntimeError, ACCOUNT, REGION,
};
use crate::state::AppState;
use serde_json::{json, Map, Value};

/// Runs `action` with the request's fields.
pub(super) async fn dispatch(
    state: &AppState,
    caller: &CurrentUser,
    action: &str,
    request: &Value,
) -> Result<Value, SfnError> {
    let r = Request(request);
    match action {
        "CreateStateMachine" => create_state_machine(state, r).await,
        "DescribeStateMachine" => describe_state_machine(state, r).await,
        "ListStateMachines" => list_state_machines(state, r).await,
        "ValidateStateMachineDefinition" => validate_definition(state, r),
        "StartExecution" => start_execution(state, r).await,
        "DescribeExecution" => describe_execution(state, r).await,
        "ListExecutions" => list_executions(state, r).await,
        "GetExecutionHistory" => execution_history(state, r).await,
        "SendTaskSuccess" => send_task_success(state, r).await,
        "SendTaskFailure" => send_task_failure(state, r).await,
        "UpdateStateMachine" => update_state_machine(state, r).await,
        "DeleteStateMachine" => {
            // Deleting one that does not exist succeeds, as on AWS.
            let name = machine_name(r.string("stateMachineArn")?)?;
            not_the_order_workflow(name, "deleted")?;
            state
                .runtime
                .delete_state_machine(name)
                .await
                .map_err(internal)?;
            Ok(json!({}))
        }
        "TestState" => {
            let definition = r.string("definition")?;
            let text = r.optional_string("input")?.unwrap_or("{}");
            let input = json_field(text, "InvalidExecutionInput", "Invalid Input")?;
            let variables = match r.optional_string("variables")? {
                None => Map::new(),
                Some(text) => match json_field(text, "ValidationException", "Invalid Variables")? {
                    Value::Object(map) => map,
                    _ => {
                        return Err(SfnError::new(
                            "ValidationException",
                            "Invalid Variables: variables must be a JSON object",
                        ))
                    }
                },
            };
            let level = r.optional_string("inspectionLevel")?.unwrap_or("INFO");
            if !["INFO", "DEBUG", "TRACE"].contains(&level) {
                return Err(SfnError::new(
                    "ValidationException",
                    format!("1 validation error detected: Value '{level}' at 'inspectionLevel' failed to satisfy constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"),
                ));
            }
            super::test_state::test_state(state, definition, input, variables, level != "INFO")
                .await
        }
        "StopExecution" => stop_execution(state, r, caller).await,
        "DescribeStateMachineForExecution" => machine_for_execution(state, r).await,
        "CreateActivity" => create_activity(state, r).await,
        "DescribeActivity" => describe_activity(state, r).await,
        "ListActivities" => list_activities(state, r).await,
        "DeleteActivity" => {
            let arn = r.string("activityArn")?;
            let name = activity_name(arn)?;
            state
                .runtime
                .delete_activity(name)
                .await
                .map_err(internal)?;
            Ok(json!({}))
        }
        "GetActivityTask" => get_activity_task(state, r).await,
        "TagResource" => super::tags::tag_resource(state, r).await,
        "UntagResource" => super::tags::untag_resource(state, r).await,
        "ListTagsForResource" => super::tags::list_tags(state, r).await,
        "SendTaskHeartbeat" => {
            let token = r.string("taskToken")?;
            state
                .runtime
                .send_task_heartbeat(token)
                .await
                .map_err(callback_error)?;
            Ok(json!({}))
        }
        other => Err(SfnError::new(
            "UnknownOperationException",
            format!("Unknown operation '{other}'"),
        )),
    }
}

/// A request's fields, read with AWS's validation errors.
#[derive(Clone, Copy)]
pub(super) struct Request<'a>(pub(super) &'a Value);

impl<'a> Request<'a> {
    /// Fails like AWS when `field` is absent or null.
    pub(super) fn required(&self, field: &str) -> Result<(), SfnError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(SfnError::new(
                "ValidationException",
                format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The list `field`; absent or null is empty.
    pub(super) fn list(&self, field: &str) -> Result<&'a [Value], SfnError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(SfnError::new(
                "SerializationException",
                format!("'{field}' must be a list"),
            )),
        }
    }

    fn optional_string(&self, field: &str) -> Result<Option<&'a str>, SfnError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(SfnError::new(
                "SerializationException",
                format!("'{field}' must be a string"),
            )),
        }
    }

    pub(super) fn string(&self, field: &str) -> Result<&'a str, SfnError> {
        let value = self.optional_string(field)?;
        self.required(field)?;
        Ok(value.unwrap_or_default())
    }

    fn boolean(&self, field: &str) -> Result<bool, SfnError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(SfnError::new(
                "SerializationException",
                format!("'{field}' must be a boolean"),
            )),
        }
    }

    /// `maxResults`: 1 to 1000; 0 or absent means AWS's default of 100.
    fn max_results(&self) -> Result<i64, SfnError> {
        match self.0.get("maxResults") {
            None | Some(Value::Null) => Ok(100),
            Some(v) => match v.as_i64() {
                Some(0) => Ok(100),
                Some(n @ 1..=1000) => Ok(n),
                _ => Err(SfnError::new(
                    "ValidationException",
                    format!("1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"),
                )),
            },
        }
    }
}

/// A list response: `field` holds the first `limit` of `items` (fetched one past the page),
/// with a `nextToken` from the last one shown when more remain.
fn page<T>(
    field: &str,
    items: &[T],
    limit: i64,
    show: impl Fn(&T) -> Value,
    token: impl Fn(&T) -> String,
) -> Value {
    let shown = &items[..items.len().min(limit as usize)];
    let mut out = Map::new();
    out.insert(field.into(), shown.iter().map(show).collect());
    if items.len() > shown.len() {
        if let Some(last) = shown.last() {
            out.insert("nextToken".into(), Value::String(token(last)));
        }
    }
    Value::Object(out)
}

/// The name in a state machine ARN of this account and region.
pub(super) fn machine_name(arn: &str) -> Result<&str, SfnError> {
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:");
    arn.strip_prefix(&prefix)
        .filter(|name| !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'")))
}

/// Checks that `arn` is an execution ARN of this account and region.
fn check_execution_arn(arn: &str) -> Result<(), SfnError> {
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:");
    match arn
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once(':'))
    {
        Some((machine, name)) if !machine.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(())
        }
        _ => Err(SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'"))),
    }
}

/// A stored timestamp as the JSON protocol sends dates: seconds since the epoch.
fn epoch(text: &str) -> Value {
    crate::db::parse_time(text)
        .map(|t| json!(t.unix_timestamp_nanos() as f64 / 1e9))
        .unwrap_or(Value::Null)
}

pub(super) fn internal(e: RuntimeError) -> SfnError {
    SfnError::internal(e)
}

fn does_not_exist(arn: &str) -> SfnError {
    SfnError::new(
        "StateMachineDoesNotExist",
        format!("State Machine Does Not Exist: '{arn}'"),
    )
}

fn definition_problems(e: &crate::engine::DefinitionError) -> String {
    e.problems
        .iter()
        .map(|p| format!("{} at {}: {}", p.code, p.location, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn create_state_machine(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let name = r.string("name")?;
    let definition = r.string("definition")?;
    let role_arn = r.string("roleArn")?;
    match r.optional_string("type")? {
        None | Some("STANDARD") => {}
        Some("EXPRESS") => {
            return Err(SfnError::new(
                "StateMachineTypeNotSupported",
                "orderflow runs STANDARD state machines only",
            ))
        }
        Some(other) => {
            return Err(SfnError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"),
            ))
        }
    }
    let tags = super::tags::tags(r, "tags")?;
    let arn = state_machine_arn(name);
    if let Some(existing) = state.runtime.state_machine(name).await.map_err(internal)? {
        // As on AWS, a repeat with the same definition is the same request: a different role
        // or different tags are ignored, not applied.
        if existing.definition == definition {
            return Ok(
                json!({ "stateMachineArn": arn, "creationDate": epoch(&existing.created_at) }),
            );
        }
        return Err(SfnError::new(
            "StateMachineAlreadyExists",
            format!("State Machine Already Exists: '{arn}'"),
        ));
    }
    let machine = state
        .runtime
        .create_state_machine(name, definition, Some(role_arn))
        .await
        .map_err(|e| match e {
            RuntimeError::InvalidName(n) => {
                SfnError::new("InvalidName", format!("Invalid Name: '{n}'"))
            }
            RuntimeError::InvalidDefinition(d) => SfnError::new(
                "InvalidDefinition",
                format!(
                    "Invalid State Machine Definition: '{}'",
                    definition_problems(&d)
                ),
            ),
            other => internal(other),
        })?;
    super::tags::tag_new(state, &arn, &tags).await?;
    Ok(json!({ "stateMachineArn": arn, "creationDate": epoch(&machine.created_at) }))
}

async fn update_state_machine(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("stateMachineArn")?;
    let name = machine_name(arn)?;
    not_the_order_workflow(
        name,
        "changed here (edit workflows/order-approval.asl.json)",
    )?;
    let definition = r.optional_string("definition")?;
    let role_arn = r.optional_string("roleArn")?;
    if definition.is_none() && role_arn.is_none() {
        return Err(SfnError::new(
            "MissingRequiredParameter",
            "Either the definition or the roleArn must be specified",
        ));
    }
    let existing = state
        .runtime
        .state_machine(name)
        .await
        .map_err(internal)?
        .ok_or_else(|| does_not_exist(arn))?;
    let definition = definition.unwrap_or(&existing.definition);
    let role_arn = role_arn.or(existing.role_arn.as_deref());
    // Executions already running keep the definition they started with.
    state
        .runtime
        .create_state_machine(name, definition, role_arn)
        .await
        .map_err(|e| match e {
            RuntimeError::InvalidDefinition(d) => SfnError::new(
                "InvalidDefinition",
                format!(
                    "Invalid State Machine Definition: '{}'",
                    definition_problems(&d)
                ),
            ),
            other => internal(other),
        })?;
    Ok(json!({ "updateDate": epoch(&crate::db::now()) }))
}

fn describe_machine(machine: &MachineInfo) -> Value {
    json!({
        "stateMachineArn": state_machine_arn(&machine.name),
        "name": machine.name,
        "status": "ACTIVE",
        "definition": machine.definition,
        "roleArn": machine.role_arn.clone().unwrap_or_else(crate::runtime::role_arn),
        "type": "STANDARD",
        "creationDate": epoch(&machine.created_at),
        "loggingConfiguration": { "level": "OFF", "includeExecutionData": false },
        "tracingConfiguration": { "enabled": false },
    })
}

async fn describe_state_machine(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("stateMachineArn")?;
    let name = machine_name(arn)?;
    let machine = state
        .runtime
        .state_machine(name)
        .await
        .map_err(internal)?
        .ok_or_else(|| does_not_exist(arn))?;
    Ok(describe_machine(&machine))
}

async fn list_state_machines(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let limit = r.max_results()?;
    let after = r.optional_string("nextToken")?;
    let machines = state
        .runtime
        .state_machines(after, limit + 1)
        .await
        .map_err(internal)?;
    let show = |m: &MachineInfo| {
        json!({
            "stateMachineArn": state_machine_arn(&m.name),
            "name": m.name,
            "type": "STANDARD",
            "creationDate": epoch(&m.created_at),
        })
    };
    Ok(page("stateMachines", &machines, limit, show, |m| {
        m.name.clone()
    }))
}

fn validate_definition(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let definition = r.string("definition")?;
    Ok(match state.runtime.parse_definition(None, definition) {
        Ok(_) => json!({ "result": "OK", "diagnostics": [], "truncated": false }),
        Err(e) => json!({
            "result": "FAIL",
            "diagnostics": e.problems.iter().map(|p| json!({
                "severity": "ERROR",
                "code": p.code,
                "message": p.message,
                "location": p.location,
            })).collect::<Vec<_>>(),
            "truncated": false,
        }),
    })
}

/// Parses JSON text given in a request field (`input`, `output`).
fn json_field(text: &str, error: &'static str, label: &str) -> Result<Value, SfnError> {
    serde_json::from_str(text).map_err(|e| SfnError::new(error, format!("{label}: '{text}': {e}")))
}

async fn start_execution(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("stateMachineArn")?;
    let machine = machine_name(arn)?;
    if machine == crate::orders::WORKFLOW {
        // An order-approval execution without its order would be a workflow deciding
        // nothing, or one reaching for an order someone else placed.
        return Err(SfnError::new(
            "AccessDeniedException",
            "Executions of 'order-approval' start when an order is placed: use the storefront or POST /api/orders, which create the order and its workflow together",
        ));
    }
    let text = r.optional_string("input")?.unwrap_or("{}");
    let input = json_field(
        text,
        "InvalidExecutionInput",
        "Invalid State Machine Execution Input",
    )?;
    let name = r.optional_string("name")?;
    if let Some(name) = name {
        let existing = state
            .runtime
            .describe_execution(&execution_arn(machine, name))
            .await
            .map_err(internal)?;
        if let Some(ex) = existing {
            // Idempotent for a running execution started with the same input, as on AWS.
            if ex.status == "RUNNING" && ex.input == input {
                return Ok(json!({ "executionArn": ex.id, "startDate": epoch(&ex.started_at) }));
            }
            return Err(SfnError::new(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{}'", ex.id),
            ));
        }
    }
    let id = state
        .runtime
        .start_execution(machine, name, input)
        .await
        .map_err(|e| match e {
            RuntimeError::StateMachineDoesNotExist(_) => does_not_exist(arn),
            RuntimeError::InvalidName(n) => {
                SfnError::new("InvalidName", format!("Invalid Name: '{n}'"))
            }
            RuntimeError::InputTooLarge(size) => SfnError::new(
                "InvalidExecutionInput",
                format!("The input is {size} bytes, over the limit of 262144"),
            ),
            RuntimeError::ExecutionAlreadyExists(n) => SfnError::new(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{}'", execution_arn(machine, &n)),
            ),
            other => internal(other),
        })?;
    let started = state
        .runtime
        .describe_execution(&id)
        .await
        .map_err(internal)?
        .map(|ex| epoch(&ex.started_at))
        .unwrap_or(Value::Null);
    Ok(json!({ "executionArn": id, "startDate": started }))
}

/// The fields ListExecutions and DescribeExecution share.
fn execution_summary(ex: &ExecutionInfo) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("executionArn".into(), json!(ex.id));
    out.insert(
        "stateMachineArn".into(),
        json!(state_machine_arn(&ex.state_machine)),
    );
    out.insert("name".into(), json!(ex.name));
    out.insert("status".into(), json!(ex.status));
    out.insert("startDate".into(), epoch(&ex.started_at));
    if let Some(stopped) = &ex.stopped_at {
        out.insert("stopDate".into(), epoch(stopped));
    }
    out
}

async fn describe_execution(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("executionArn")?;
    check_execution_arn(arn)?;
    let ex = state
        .runtime
        .describe_execution(arn)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            SfnError::new(
                "ExecutionDoesNotExist",
                format!("Execution Does Not Exist: '{arn}'"),
            )
        })?;
    let mut out = execution_summary(&ex);
    out.insert("input".into(), json!(ex.input.to_string()));
    out.insert("inputDetails".into(), json!({ "included": true }));
    if let Some(output) = &ex.output {
        out.insert("output".into(), json!(output.to_string()));
        out.insert("outputDetails".into(), json!({ "included": true }));
    }
    if let Some(error) = &ex.error {
        out.insert("error".into(), json!(error));
    }
    if let Some(cause) = &ex.cause {
        out.insert("cause".into(), json!(cause));
    }
    out.insert("redriveCount".into(), json!(0));
    out.insert("redriveStatus".into(), json!("NOT_REDRIVABLE"));
    Ok(Value::Object(out))
}

async fn list_executions(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("stateMachineArn")?;
    let machine = machine_name(arn)?;
    if state
        .runtime
        .state_machine(machine)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(does_not_exist(arn));
    }
    let status = r.optional_string("statusFilter")?;
    if let Some(s) = status {
        if ![
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "TIMED_OUT",
            "ABORTED",
            "PENDING_REDRIVE",
        ]
        .contains(&s)
        {
            return Err(SfnError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{s}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, TIMED_OUT, PENDING_REDRIVE, ABORTED, FAILED, RUNNING]"),
            ));
        }
    }
    let limit = r.max_results()?;
    let token = r.optional_string("nextToken")?;
    let after = match token {
        None => None,
        Some(t) => Some(
            t.split_once('|')
                .ok_or_else(|| SfnError::new("InvalidToken", format!("Invalid Token: '{t}'")))?,
        ),
    };
    let executions = state
        .runtime
        .executions(machine, status, after, limit + 1)
        .await
        .map_err(internal)?;
    let show = |ex: &ExecutionInfo| Value::Object(execution_summary(ex));
    Ok(page("executions", &executions, limit, show, |ex| {
        format!("{}|{}", ex.started_at, ex.id)
    }))
}

/// The key AWS gives an event type's details: `stateEnteredEventDetails` for every
/// `…StateEntered`, `taskScheduledEventDetails` for `TaskScheduled`, and so on.
fn details_key(kind: &str) -> String {
    if kind.ends_with("StateEntered") {
        return "stateEnteredEventDetails".into();
    }
    if kind.ends_with("StateExited") {
        return "stateExitedEventDetails".into();
    }
    let mut chars = kind.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{}EventDetails",
        first.unwrap_or_default(),
        chars.as_str()
    )
}

async fn execution_history(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("executionArn")?;
    check_execution_arn(arn)?;
    if state
        .runtime
        .describe_execution(arn)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(SfnError::new(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        ));
    }
    let limit = r.max_results()? as usize;
    let reverse = r.boolean("reverseOrder")?;
    let include_data = match r.0.get("includeExecutionData") {
        None | Some(Value::Null) => true,
        _ => r.boolean("includeExecutionData")?,
    };
    let start = match r.optional_string("nextToken")? {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| SfnError::new("InvalidToken", format!("Invalid Token: '{t}'")))?,
    };
    let mut events = state.runtime.history(arn).await.map_err(internal)?;
    if reverse {
        events.reverse();
    }
    let page: Vec<Value> = events
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| {
            let mut event = json!({
                "timestamp": epoch(&e.timestamp),
                "type": e.kind,
                "id": e.id,
                "previousEventId": e.previous_event_id,
            });
            let mut details: Map<String, Value> =
                serde_json::from_str(&e.details).unwrap_or_default();
            for (field, info) in [("input", "inputDetails"), ("output", "outputDetails")] {
                if details.contains_key(field) {
                    if include_data {
                        details.insert(info.into(), json!({ "truncated": false }));
                    } else {
                        details.remove(field);
                    }
                }
            }
            if !include_data {
                details.remove("parameters");
            }
            if !details.is_empty() {
                event[details_key(&e.kind)] = Value::Object(details);
            }
            event
        })
        .collect();
    let mut out = json!({ "events": page });
    if start + limit < events.len() {
        out["nextToken"] = json!((start + limit).to_string());
    }
    Ok(out)
}

fn execution_does_not_exist(arn: &str) -> SfnError {
    SfnError::new(
        "ExecutionDoesNotExist",
        format!("Execution Does Not Exist: '{arn}'"),
    )
}

async fn stop_execution(
    state: &AppState,
    r: Request<'_>,
    caller: &CurrentUser,
) -> Result<Value, SfnError> {
    let arn = r.string("executionArn")?;
    check_execution_arn(arn)?;
    let error = r.optional_string("error")?.unwrap_or_default();
    let cause = r.optional_string("cause")?.unwrap_or_default();
    let stopped = state
        .runtime
        .stop_execution(arn, error, cause, &caller.username)
        .await
        .map_err(|e| match e {
            RuntimeError::ExecutionDoesNotExist(_) => execution_does_not_exist(arn),
            other => internal(other),
        })?;
    Ok(json!({ "stopDate": epoch(&stopped) }))
}

async fn machine_for_execution(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("executionArn")?;
    check_execution_arn(arn)?;
    let ex = state
        .runtime
        .describe_execution(arn)
        .await
        .map_err(internal)?
        .ok_or_else(|| execution_does_not_exist(arn))?;
    let machine = state
        .runtime
        .state_machine(&ex.state_machine)
        .await
        .map_err(internal)?
        .ok_or_else(|| does_not_exist(&state_machine_arn(&ex.state_machine)))?;
    let definition = state
        .runtime
        .execution_definition(arn)
        .await
        .map_err(internal)?
        .unwrap_or_else(|| machine.definition.clone());
    let mut out = describe_machine(&machine);
    if let Value::Object(fields) = &mut out {
        fields.remove("status");
        fields.remove("type");
        fields.remove("creationDate");
        fields.insert("definition".into(), json!(definition));
        fields.insert("updateDate".into(), epoch(&machine.created_at));
    }
    Ok(out)
}

/// The name in an activity ARN of this account and region.
pub(super) fn activity_name(arn: &str) -> Result<&str, SfnError> {
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:activity:");
    arn.strip_prefix(&prefix)
        .filter(|name| !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'")))
}

fn describe_activity_info(activity: &ActivityInfo) -> Value {
    json!({
        "activityArn": activity_arn(&activity.name),
        "name": activity.name,
        "creationDate": epoch(&activity.created_at),
    })
}

async fn create_activity(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let name = r.string("name")?;
    let tags = super::tags::tags(r, "tags")?;
    // As on AWS, creating one that exists returns it; the tags given are not applied to it.
    let exists = state.runtime.activity(name).await.map_err(internal)?;
    let activity = state
        .runtime
        .create_activity(name)
        .await
        .map_err(|e| match e {
            RuntimeError::InvalidName(n) => {
                SfnError::new("InvalidName", format!("Invalid Name: '{n}'"))
            }
            other => internal(other),
        })?;
    if exists.is_none() {
        super::tags::tag_new(state, &activity_arn(name), &tags).await?;
    }
    Ok(json!({
        "activityArn": activity_arn(&activity.name),
        "creationDate": epoch(&activity.created_at),
    }))
}

async fn describe_activity(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("activityArn")?;
    let name = activity_name(arn)?;
    let activity = state
        .runtime
        .activity(name)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            SfnError::new(
                "ActivityDoesNotExist",
                format!("Activity Does Not Exist: '{arn}'"),
            )
        })?;
    Ok(describe_activity_info(&activity))
}

async fn list_activities(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let limit = r.max_results()?;
    let after = r.optional_string("nextToken")?;
    let activities = state
        .runtime
        .activities(after, limit + 1)
        .await
        .map_err(internal)?;
    Ok(page(
        "activities",
        &activities,
        limit,
        describe_activity_info,
        |a| a.name.clone(),
    ))
}

/// How long GetActivityTask waits for a task, as on AWS.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(60);

async fn get_activity_task(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("activityArn")?;
    let name = activity_name(arn)?;
    let worker = r.optional_string("workerName")?.unwrap_or_default();
    if state
        .runtime
        .activity(name)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(SfnError::new(
            "ActivityDoesNotExist",
            format!("Activity Does Not Exist: '{arn}'"),
        ));
    }
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let task = state
            .runtime
            .take_activity_task(arn, worker)
            .await
            .map_err(internal)?;
        if let Some((token, input)) = task {
            return Ok(json!({ "taskToken": token, "input": input }));
        }
        if tokio::time::Instant::now() >= deadline {
            // No task came: AWS answers with no token.
            return Ok(json!({}));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn callback_error(e: CallbackError) -> SfnError {
    match e {
        CallbackError::InvalidToken => SfnError::new("InvalidToken", "Invalid Token"),
        CallbackError::TaskDoesNotExist => {
            SfnError::new("TaskDoesNotExist", "Task Token does not exist")
        }
        CallbackError::TaskTimedOut => SfnError::new("TaskTimedOut", "Task Timed Out"),
        CallbackError::InvalidOutput(size) => SfnError::new(
            "InvalidOutput",
            format!("The output is {size} bytes, over the limit of 262144"),
        ),
        other => SfnError::internal(other),
    }
}

/// The order workflow runs the storefront: it is defined by its file and cannot be `what`.
fn not_the_order_workflow(name: &str, what: &str) -> Result<(), SfnError> {
    if name == crate::orders::WORKFLOW {
        return Err(SfnError::new(
            "ValidationException",
            format!("'{name}' runs the storefront's orders and cannot be {what}"),
        ));
    }
    Ok(())
}

/// Order approvals are decided in the inbox or through `POST /api/orders/{id}/decision`, which
/// record who decided and why and apply the approval rules; the AWS API does not go around them.
async fn not_an_order_approval(state: &AppState, token: &str) -> Result<(), SfnError> {
    let resource = state
        .runtime
        .token_resource(token)
        .await
        .map_err(internal)?;
    let approval = crate::orders::handlers::REQUEST_APPROVAL;
    if resource.is_some_and(|r| r.strip_suffix(".waitForTaskToken").unwrap_or(&r) == approval) {
        return Err(SfnError::new(
            "AccessDeniedException",
            "This task token waits for an order approval: decide it in the approval inbox or with POST /api/orders/{id}/decision, which record who decided and why",
        ));
    }
    Ok(())
}

async fn send_task_success(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let token = r.string("taskToken")?;
    let text = r.string("output")?;
    let output = json_field(text, "InvalidOutput", "Invalid Output")?;
    not_an_order_approval(state, token).await?;
    state
        .runtime
        .send_task_success(token, output)
        .await
        .map_err(callback_error)?;
    Ok(json!({}))
}

async fn send_task_failure(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let token = r.string("taskToken")?;
    let error = r.optional_string("error")?.unwrap_or_default();
    let cause = r.optional_string("cause")?.unwrap_or_default();
    not_an_order_approval(state, token).await?;
    state
        .runtime
        .send_task_failure(token, error, cause)
        .await
        .map_err(callback_error)?;
    Ok(json!({}))
}
