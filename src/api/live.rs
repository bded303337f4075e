//! `GET /live`: server-sent events telling signed-in staff that something changed (an order
//! arrived, was claimed or decided, an execution moved), so their pages refresh themselves.

use crate::model::Role;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use std::convert::Infallible;
use std::time::Duration;
use tower_sessions::Session;

/// Changes closer together than this are sent as one event.
const SETTLE: Duration = Duration::from_millis(250);

pub async fn live(State(state): State<AppState>, session: Session) -> Response {
    if crate::auth::require(&state, &session, Role::Approver)
        .await
        .is_err()
    {
        return (StatusCode::UNAUTHORIZED, "Please sign in.").into_response();
    }
    let changes = state.runtime.subscribe();
    let events = stream::unfold(changes, |mut changes| async move {
        changes.changed().await.ok()?;
        tokio::time::sleep(SETTLE).await;
        let n = *changes.borrow_and_update();
        let event = Event::default().data(n.to_string());
        Some((Ok::<_, Infallible>(event), changes))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
