//! The HTTP edge over real sockets: body limits on every route, the header-read timeout, the
//! connection cap, the cap on `/live` streams per session, the sign-in and storefront
//! throttles, and the security headers with the page's CSP nonce.

use crate::common::{spawn_app, spawn_app_with_limits, TestApp};
use leptos::server_fn::ServerFn;
use orderflow::app::calls::{Login, PlaceOrder, SignedInUser};
use orderflow::config::{per_window, Limits, THROTTLE_WINDOW};
use orderflow::edge::{BODY_LIMIT, SFN_BODY_LIMIT};
use reqwest::header::{HeaderMap, ACCEPT, ORIGIN, RETRY_AFTER};
use reqwest::{Client, Response};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts `form` to the server function at `path` as a script would (JSON accepted).
async fn call(app: &TestApp, client: &Client, path: &str, form: &[(&str, &str)]) -> Response {
    client
        .post(app.url(path))
        .header(ORIGIN, format!("http://{}", app.addr))
        .header(ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp, client: &Client, username: &str, password: &str) -> Response {
    let form = [("username", username), ("password", password)];
    call(app, client, <Login as ServerFn>::PATH, &form).await
}

/// A storefront order form for one notebook, padded with an ignored field to `size` bytes.
fn order_form(size: usize) -> String {
    let form = "customer_name=Ann+Example&customer_email=ann%40example.com&quantities%5Bnotebook%5D=1&pad=";
    assert!(size >= form.len());
    format!("{form}{}", "x".repeat(size - form.len()))
}

async fn post_order_form(app: &TestApp, body: reqwest::Body) -> Response {
    app.client
        .post(app.url(<PlaceOrder as ServerFn>::PATH))
        .header(ORIGIN, format!("http://{}", app.addr))
        .header(ACCEPT, "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_server_function_body_over_the_limit_is_413_and_places_nothing() {
    let app = spawn_app().await;
    let res = post_order_form(&app, order_form(BODY_LIMIT + 1).into()).await;
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.unwrap().contains("over the limit"));
    // Streamed in chunks, with no Content-Length to refuse it by.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nOrigin: http://{}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        <PlaceOrder as ServerFn>::PATH,
        app.addr,
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in order_form(BODY_LIMIT + 1).as_bytes().chunks(4096) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break; // refused mid-way: the server stopped reading
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let response = read_head(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(app.order_count().await, 0);

    let res = post_order_form(&app, order_form(BODY_LIMIT).into()).await;
    let status = res.status().as_u16();
    assert!(status < 400, "{status}: {}", res.text().await.unwrap());
    assert_eq!(
        app.order_count().await,
        1,
        "the order at the limit is placed"
    );
}

#[tokio::test]
async fn rest_and_sfn_bodies_have_their_own_limits() {
    let app = spawn_app().await;
    let over = |n: usize| format!("{{\"pad\": \"{}\"}}", "x".repeat(n - 11));
    let (status, body) = app
        .post_json("/api/orders", Some(&app.shop_token), &over(BODY_LIMIT + 1))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "too_large");
    let (status, _) = app
        .post_json("/api/orders", Some(&app.shop_token), &over(BODY_LIMIT))
        .await;
    assert_eq!(
        status, 400,
        "at the limit the body is read and refused for what it says"
    );
    assert_eq!(app.order_count().await, 0);

    let sfn = |n: usize| {
        app.client
            .post(app.url("/sfn"))
            .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
            .body(over(n))
            .send()
    };
    assert_eq!(
        sfn(SFN_BODY_LIMIT + 1).await.unwrap().status().as_u16(),
        413
    );
    // At the limit it reaches the API, which wants a signature.
    assert_eq!(sfn(SFN_BODY_LIMIT).await.unwrap().status().as_u16(), 403);
    // Bodies the rest of the app would refuse are fine on /sfn.
    assert_eq!(sfn(BODY_LIMIT * 4).await.unwrap().status().as_u16(), 403);
}

/// Reads from `stream` until the end of a response head; what was read.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits until the server closes `stream`; whatever it sent before.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    bytes
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_app_with_limits(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let started = Instant::now();
    let sent = tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut slow))
        .await
        .expect("the server hangs up on a client that never finishes its headers");
    let waited = started.elapsed();
    assert!(!String::from_utf8_lossy(&sent).contains("200 OK"));
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );

    // A keep-alive connection left idle is closed the same way, after its response.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    assert!(read_head(&mut idle).await.starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut idle))
        .await
        .expect("an idle keep-alive connection is closed");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_app_with_limits(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(HEALTHZ).await.unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    extra.write_all(HEALTHZ).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_secs(1), read_head(&mut extra)).await;
    assert!(
        waiting.is_err(),
        "the third connection is not served while two are open"
    );

    drop(open.remove(0));
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut extra))
        .await
        .expect("served once a connection closed");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// Opens `/live` as `client`; the response, its body still streaming.
async fn live(app: &TestApp, client: &Client) -> Response {
    client.get(app.url("/live")).send().await.unwrap()
}

#[tokio::test]
async fn the_fifth_live_stream_of_a_session_is_429_until_one_closes() {
    let app = spawn_app().await;
    let client = browser();
    assert!(sign_in(&app, &client, "approver", "approver-password")
        .await
        .status()
        .is_success());
    let mut streams = Vec::new();
    for _ in 0..4 {
        let res = live(&app, &client).await;
        assert_eq!(res.status().as_u16(), 200);
        streams.push(res);
    }
    let fifth = live(&app, &client).await;
    assert_eq!(fifth.status().as_u16(), 429);
    assert!(fifth.headers().contains_key(RETRY_AFTER));
    assert!(fifth.text().await.unwrap().contains("4 live streams open"));

    // Another session has its own slots.
    let other = browser();
    sign_in(&app, &other, "admin", "admin-password-1").await;
    assert_eq!(live(&app, &other).await.status().as_u16(), 200);

    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = live(&app, &client).await;
        if res.status().as_u16() == 200 {
            break;
        }
        assert_eq!(res.status().as_u16(), 429);
        assert!(
            Instant::now() < deadline,
            "the dropped stream's slot came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn retry_after(headers: &HeaderMap) -> u64 {
    headers
        .get(RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_sign_ins_over_the_account_limit_are_429_even_with_the_right_password() {
    let app = spawn_app_with_limits(Limits {
        sign_in_failures_per_account: per_window(3),
        ..Limits::default()
    })
    .await;
    let client = browser();
    // Sign-ins that work do not count.
    for _ in 0..5 {
        let res = sign_in(&app, &client, "approver", "approver-password").await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    for _ in 0..3 {
        let res = sign_in(&app, &client, "approver", "wrong-password").await;
        assert_eq!(res.status().as_u16(), 400);
    }
    let res = sign_in(&app, &client, "approver", "wrong-password").await;
    assert_eq!(res.status().as_u16(), 429);
    let wait = retry_after(res.headers());
    assert!((1..=THROTTLE_WINDOW.as_secs()).contains(&wait), "{wait}");
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));

    let res = sign_in(&app, &browser(), "approver", "approver-password").await;
    assert_eq!(
        res.status().as_u16(),
        429,
        "the right password is refused too"
    );
    assert!(retry_after(res.headers()) >= 1);
    // Other accounts from the same client are not held up.
    let res = sign_in(&app, &browser(), "admin", "admin-password-1").await;
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test]
async fn failed_sign_ins_over_the_client_limit_are_429_for_every_account() {
    let app = spawn_app_with_limits(Limits {
        sign_in_failures_per_client: per_window(3),
        ..Limits::default()
    })
    .await;
    for name in ["nobody-1", "nobody-2", "approver"] {
        let res = sign_in(&app, &browser(), name, "wrong-password").await;
        assert_eq!(res.status().as_u16(), 400);
    }
    let res = sign_in(&app, &browser(), "admin", "admin-password-1").await;
    assert_eq!(res.status().as_u16(), 429);
    assert!(retry_after(res.headers()) >= 1);
}

#[tokio::test]
async fn storefront_orders_over_the_client_limit_are_429_and_place_nothing() {
    let app = spawn_app_with_limits(Limits {
        storefront_orders_per_client: per_window(2),
        ..Limits::default()
    })
    .await;
    for _ in 0..2 {
        let res = post_order_form(&app, order_form(200).into()).await;
        assert!(res.status().as_u16() < 400, "{}", res.status());
    }
    assert_eq!(app.order_count().await, 2);
    let res = post_order_form(&app, order_form(200).into()).await;
    assert_eq!(res.status().as_u16(), 429);
    assert!(retry_after(res.headers()) >= 1);
    assert!(res.text().await.unwrap().contains("Too many orders"));
    assert_eq!(app.order_count().await, 2);
    // The REST API is for integrations with their own tokens, not throttled per client.
    app.place_order(serde_json::json!({"OrderItems": ["desk"], "Cost": 10}))
        .await;
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name}", res.url()))
        .to_str()
        .unwrap()
}

fn assert_security_headers(res: &Response) {
    assert_eq!(header(res, "x-content-type-options"), "nosniff");
    assert_eq!(header(res, "x-frame-options"), "DENY");
    assert_eq!(header(res, "referrer-policy"), "same-origin");
    assert!(header(res, "content-security-policy").contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_security_headers(&page);
    let missing = app
        .client
        .get(app.url("/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_security_headers(&missing);
    assert!(header(&missing, "content-security-policy").contains("'nonce-"));

    let nothing = "default-src 'none'";
    let api = app.client.get(app.url("/healthz")).send().await.unwrap();
    let orders = app
        .client
        .post(app.url("/api/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status().as_u16(), 401);
    let sfn = app.client.post(app.url("/sfn")).send().await.unwrap();
    assert_eq!(sfn.status().as_u16(), 403);
    let server_fn = call(&app, &app.client, <SignedInUser as ServerFn>::PATH, &[]).await;
    let too_large = post_order_form(&app, order_form(BODY_LIMIT + 1).into()).await;
    assert_eq!(too_large.status().as_u16(), 413);
    for res in [&api, &orders, &sfn, &server_fn, &too_large] {
        assert_security_headers(res);
        assert!(header(res, "content-security-policy").starts_with(nothing));
    }
}

/// The nonce a page's policy allows scripts by.
fn policy_nonce(res: &Response) -> String {
    let policy = header(res, "content-security-policy");
    let start = policy.find("'nonce-").expect("a nonce in the policy") + "'nonce-".len();
    let end = start + policy[start..].find('\'').unwrap();
    policy[start..end].to_string()
}

#[tokio::test]
async fn a_pages_inline_scripts_carry_the_nonce_its_policy_names() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    let nonce = policy_nonce(&res);
    let policy = header(&res, "content-security-policy").to_string();
    assert!(policy.contains("'wasm-unsafe-eval'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = res.text().await.unwrap();
    let scripts: Vec<&str> = html
        .match_indices("<script")
        .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()])
        .collect();
    assert!(!scripts.is_empty(), "the page hydrates with inline scripts");
    for script in scripts {
        assert!(
            script.contains(&format!("nonce=\"{nonce}\"")),
            "{script} lacks nonce {nonce}"
        );
    }
    let again = app.client.get(app.url("/")).send().await.unwrap();
    assert_ne!(policy_nonce(&again), nonce, "each page gets its own nonce");
}
