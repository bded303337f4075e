//! The HTTP edge: what every connection and request passes before a handler sees it — the
//! accept loop with its connection cap and header timeout (`serve`), the request-body limits
//! (`body`) and the security headers with the page's Content-Security-Policy (`headers`).
//! Throttles that need to know who is asking live in `crate::throttle`, used by handlers.

mod body;
mod headers;
mod serve;

pub use body::{body_limit, limit_body};
pub use headers::{page_policy, security_headers, set_page_policy};
pub use serve::serve;

use std::time::Duration;

/// The largest request body anywhere but `/sfn`: forms, server functions, the REST API.
/// The largest form (a bulk approval of a full inbox page) is a few KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The largest `/sfn` request body. AWS allows definitions of 1 MiB and inputs of 256 KiB;
/// both arrive as JSON strings inside the request, escaped, so the request needs room above
/// them.
pub const SFN_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How long a client has to send a request's whole body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful shutdown waits for open connections (a `/live` stream never ends by
/// itself) before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
