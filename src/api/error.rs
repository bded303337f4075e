//! The REST API's error: a status and a JSON body `{"error", "message", "field"?}`.

use crate::auth::AuthError;
use crate::orders::OrderError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            field: None,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "Something went wrong on our side; nothing was changed.".into(),
            field: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            if let Ok(v) = "Bearer".parse() {
                res.headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        let (status, code) = match &e {
            OrderError::Invalid { field, reason } => {
                return ApiError::bad_request(field, reason.clone())
            }
            OrderError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            OrderError::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
            OrderError::AlreadyDecided { .. } | OrderError::Moved(_) => {
                (StatusCode::CONFLICT, "already_decided")
            }
            OrderError::Claimed(_) | OrderError::ClaimChanged => (StatusCode::CONFLICT, "claimed"),
            OrderError::NotAllowed(_) => (StatusCode::FORBIDDEN, "not_allowed"),
            OrderError::Callback(_) | OrderError::Runtime(_) | OrderError::Database(_) => {
                return ApiError::internal(e)
            }
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
            field: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Forbidden(_) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: e.to_string(),
                field: None,
            },
            AuthError::NotSignedIn | AuthError::WrongCredentials => {
                ApiError::unauthorized(e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}
