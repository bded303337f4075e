//! The AWS Step Functions API at `/sfn`, in AWS's JSON 1.0 protocol (`POST` with
//! `X-Amz-Target: AWSStepFunctions.<Action>`), so the AWS SDKs and CLI drive orderflow as they
//! drive AWS. Requests are authenticated with SigV4 against access keys made by
//! `orderflow access-key create`; errors are `{"__type", "message"}` with AWS's names.

mod actions;
pub mod sigv4;
mod tags;
mod test_state;

use crate::model::CurrentUser;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The content type of the JSON 1.0 protocol.
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Routes `/sfn` and `/sfn/`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sfn", post(handle))
        .route("/sfn/", post(handle))
}

/// An error as AWS reports it: HTTP status, `__type` and message.
#[derive(Debug, Clone, PartialEq)]
pub struct SfnError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// The ARN AWS names in `resourceName` for `ResourceNotFound` and `TooManyTags`.
    pub resource_name: Option<String>,
}

impl SfnError {
    /// A 400 error of type `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> SfnError {
        SfnError {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
            resource_name: None,
        }
    }

    /// This error, naming resource `arn`.
    pub fn about(self, arn: &str) -> SfnError {
        SfnError {
            resource_name: Some(arn.to_string()),
            ..self
        }
    }

    fn internal(e: impl std::fmt::Display) -> SfnError {
        tracing::error!(error = %e, "AWS API request failed");
        SfnError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "InternalFailure",
            message: "The request processing has failed because of an unknown error.".into(),
            resource_name: None,
        }
    }
}

impl IntoResponse for SfnError {
    fn into_response(self) -> Response {
        let mut body = json!({ "__type": self.kind, "message": self.message });
        if let Some(arn) = self.resource_name {
            body["resourceName"] = json!(arn);
        }
        let mut res = (self.status, body.to_string()).into_response();
        let headers = res.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        res
    }
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&state, &method, &uri, &headers, &body).await {
        Ok(value) => {
            let mut res = (StatusCode::OK, value.to_string()).into_response();
            res.headers_mut()
                .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn serve(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, SfnError> {
    let caller = authenticate(state, method, uri, headers, body).await?;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(action) = target.strip_prefix("AWSStepFunctions.") else {
        return Err(SfnError::new(
            "UnknownOperationException",
            format!("Unknown operation '{target}'"),
        ));
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| {
            SfnError::new(
                "SerializationException",
                "The request body is not valid JSON",
            )
        })?
    };
    if !request.is_object() {
        return Err(SfnError::new(
            "SerializationException",
            "The request body must be a JSON object",
        ));
    }
    allowed(&caller, action)?;
    actions::dispatch(state, &caller, action, &request).await
}

/// The actions that only read. An approver's access key may call these and nothing else; an
/// admin's key may call every action.
const READ_ONLY_ACTIONS: [&str; 10] = [
    "DescribeStateMachine",
    "ListStateMachines",
    "ValidateStateMachineDefinition",
    "DescribeExecution",
    "ListExecutions",
    "GetExecutionHistory",
    "DescribeStateMachineForExecution",
    "DescribeActivity",
    "ListActivities",
    "ListTagsForResource",
];

/// Refuses, as AWS's IAM does, an action the caller's role does not allow.
fn allowed(caller: &CurrentUser, action: &str) -> Result<(), SfnError> {
    if caller.role.is_admin() || READ_ONLY_ACTIONS.contains(&action) {
        return Ok(());
    }
    Err(SfnError::new(
        "AccessDeniedException",
        format!(
            "User: arn:aws:iam::{}:user/{} is not authorized to perform: states:{action} \
             (an {} access key may only describe, list and read; admins' keys may do everything)",
            crate::runtime::ACCOUNT,
            caller.username,
            caller.role.as_str(),
        ),
    ))
}

/// Checks the request's SigV4 signature against the access key it names; returns the key's
/// owner.
async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CurrentUser, SfnError> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SfnError {
            status: StatusCode::FORBIDDEN,
            kind: "MissingAuthenticationTokenException",
            message: "Missing Authentication Token".into(),
            resource_name: None,
        })?;
    let auth = sigv4::Authorization::parse(header).ok_or_else(|| {
        SfnError::new(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters of an AWS4-HMAC-SHA256 signature.",
        )
    })?;
    if let Some(header) = auth.unsigned_required_header() {
        return Err(SfnError::new(
            "InvalidSignatureException",
            sigv4::unsigned_header_message(header),
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            SfnError::new(
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        })?;
    let secret = crate::auth::access_key_secret(state.db(), &auth.access_key_id)
        .await
        .map_err(SfnError::internal)?
        .ok_or_else(|| {
            SfnError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        })?;
    let request = sigv4::Signed {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body,
    };
    let expected = sigv4::signature(&request, &auth, amz_date, &secret);
    if !expected.is_some_and(|s| sigv4::same(&s, &auth.signature)) || auth.service != "states" {
        return Err(SfnError::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    let signed_at = time::PrimitiveDateTime::parse(
        amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map(|t| t.assume_utc())
    .map_err(|_| {
        SfnError::new(
            "IncompleteSignatureException",
            format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."),
        )
    })?;
    let now = time::OffsetDateTime::now_utc();
    let skew = (now - signed_at).whole_seconds();
    if skew.abs() > sigv4::MAX_SKEW_SECONDS {
        let basic = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let fmt = |t: time::OffsetDateTime| t.format(basic).unwrap_or_default();
        let message = if skew > 0 {
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                fmt(now - time::Duration::minutes(15)),
                fmt(now)
            )
        } else {
            format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                fmt(now + time::Duration::minutes(15)),
                fmt(now)
            )
        };
        return Err(SfnError::new("InvalidSignatureException", message));
    }
    let owner = crate::auth::access_key_owner(state.db(), &auth.access_key_id)
        .await
        .map_err(SfnError::internal)?
        .ok_or_else(|| {
            SfnError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        })?;
    crate::auth::access_key_used(state.db(), &auth.access_key_id)
        .await
        .map_err(SfnError::internal)?;
    Ok(owner)
}
