//! CSRF guard: a state-changing request that a browser marks as coming from another site is
//! refused. Browsers send `Origin` (and `Sec-Fetch-Site`) on every POST; tools like curl send
//! neither and carry no ambient cookies, so they pass. Session cookies are also `SameSite=Lax`.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// True when the request may change state.
fn is_cross_site(req: &Request) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_none() || origin_host != host
}

/// Middleware refusing cross-site state-changing requests with 403.
pub async fn guard(req: Request, next: Next) -> Response {
    if is_cross_site(&req) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "forbidden",
                "message": "Cross-site request refused.",
            })),
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn same_origin_posts_pass_and_foreign_ones_do_not() {
        let host = ("host", "127.0.0.1:3000");
        assert!(!is_cross_site(&req(
            Method::POST,
            &[host, ("origin", "http://127.0.0.1:3000")]
        )));
        assert!(is_cross_site(&req(
            Method::POST,
            &[host, ("origin", "https://evil.example")]
        )));
        assert!(is_cross_site(&req(
            Method::POST,
            &[host, ("origin", "null")]
        )));
        assert!(is_cross_site(&req(
            Method::POST,
            &[host, ("sec-fetch-site", "cross-site")]
        )));
        assert!(!is_cross_site(&req(Method::POST, &[host])));
        assert!(!is_cross_site(&req(
            Method::GET,
            &[host, ("origin", "https://evil.example")]
        )));
    }
}
