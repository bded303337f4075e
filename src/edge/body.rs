//! Request bodies: each route's limit, and a middleware that reads the body up to it (within
//! [`BODY_READ_TIMEOUT`]) before any handler runs, so an over-limit request is a 413 that
//! changed nothing — whether it declared its length or streamed chunks.

use super::{BODY_LIMIT, BODY_READ_TIMEOUT, SFN_BODY_LIMIT};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// The body limit of the route at `path`.
pub fn body_limit(path: &str) -> usize {
    if path == "/sfn" || path == "/sfn/" {
        SFN_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

fn refused(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    let mut res = (status, axum::Json(body)).into_response();
    // The client may still be sending; it should not send the next request on this connection.
    res.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    res
}

fn too_large(limit: usize) -> Response {
    refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("The request body is over the limit of {limit} bytes; nothing was changed."),
    )
}

/// Why a body could not be read whole.
enum Unread {
    TooLarge,
    Broken,
}

async fn read(body: Body, limit: usize) -> Result<Vec<u8>, Unread> {
    let mut data = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|_| Unread::Broken)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Unread::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Middleware: refuses a body over its route's limit with 413, one not sent within
/// [`BODY_READ_TIMEOUT`] with 408; passes the rest on, read.
pub async fn limit_body(req: Request, next: Next) -> Response {
    let limit = body_limit(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, read(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(Unread::TooLarge)) => return too_large(limit),
        Ok(Err(Unread::Broken)) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body could not be read; nothing was changed.".into(),
            )
        }
        Err(_) => {
            return refused(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "The request body did not arrive within {} seconds; nothing was changed.",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
