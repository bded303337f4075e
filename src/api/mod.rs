//! Machine-facing HTTP: the REST/JSON API for orders and approvals, `/healthz` and the
//! Prometheus `/metrics`.

mod csv;
mod error;
mod live;
mod rest;

pub use error::ApiError;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;

/// Routes under `/api` plus `/healthz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(rest::healthz))
        .route("/metrics", get(rest::metrics))
        .route("/api/orders", post(rest::create_order))
        .route("/api/orders/{id}", get(rest::get_order))
        .route("/api/orders/{id}/decision", post(rest::decide))
        .route("/live", get(live::live))
        .route("/admin/orders.csv", get(csv::orders_csv))
}
