//! `GET /admin/orders.csv`: the console's filtered order list as CSV, for admins, streamed a
//! page at a time so a large export never sits in memory.

use crate::model::{OrderQuery, Role};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tower_sessions::Session;

/// Orders per page of the export.
const PAGE: u32 = 1000;

pub async fn orders_csv(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<OrderQuery>,
) -> Response {
    if let Err(e) = crate::auth::require(&state, &session, Role::Admin).await {
        let status = match e {
            crate::auth::AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return (status, e.to_string()).into_response();
    }
    let filter = match crate::console::order_filter(&query) {
        Ok(filter) => filter,
        Err((field, message)) => {
            return (StatusCode::BAD_REQUEST, format!("{field}: {message}")).into_response()
        }
    };
    // Each step yields the next page's lines; `None` as the cursor means the end.
    let pages = stream::unfold(Some(String::new()), move |cursor| {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            let at = Some(cursor.as_str()).filter(|c| !c.is_empty());
            match crate::orders::list(&state, &filter, at, PAGE).await {
                Ok(page) => {
                    let mut chunk = if at.is_none() {
                        crate::console::CSV_HEADER.to_string()
                    } else {
                        String::new()
                    };
                    for order in &page.orders {
                        chunk.push_str(&crate::console::csv_line(order));
                    }
                    Some((Ok::<_, std::io::Error>(chunk), page.next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed");
                    Some((Err(std::io::Error::other("the export failed")), None))
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"orders.csv\"",
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response()
}
