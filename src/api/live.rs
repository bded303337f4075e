//! `GET /live`: server-sent events telling signed-in staff that something changed (an order
//! arrived, was claimed or decided, an execution moved), so their pages refresh themselves.
//! A session may hold `live_streams_per_session` streams at once; each stream holds its slot
//! until it is dropped (the client went away, or the server stopped).

use crate::model::Role;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
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
    let Some(id) = session.id() else {
        return (StatusCode::UNAUTHORIZED, "Please sign in.").into_response();
    };
    let Some(slot) = state.throttles.live_streams.take(id.to_string()) else {
        let max = state.config.limits.live_streams_per_session;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30")],
            format!(
                "This session already has {max} live streams open (one per open page); close a page and reload."
            ),
        )
            .into_response();
    };
    let changes = state.runtime.subscribe();
    let events = stream::unfold((changes, slot), |(mut changes, slot)| async move {
        changes.changed().await.ok()?;
        tokio::time::sleep(SETTLE).await;
        let n = *changes.borrow_and_update();
        let event = Event::default().data(n.to_string());
        Some((Ok::<_, Infallible>(event), (changes, slot)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
