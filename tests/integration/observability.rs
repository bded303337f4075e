//! Seen from outside: the real binary's `/metrics` counts requests per route and status in
//! well-formed Prometheus text, and with `OTEL_EXPORTER_OTLP_ENDPOINT` set it sends its spans
//! to an OTLP/HTTP receiver. Each test runs its own process, so no other test's requests or
//! exporter are mixed in.

use crate::common::binary::{cli, free_port, start_with};
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Child;
use std::time::{Duration, Instant};

/// The server process, killed when the test ends (also when it fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Served {
    base: String,
    admin: String,
    shop: String,
    _server: Running,
    _dir: tempfile::TempDir,
}

/// A fresh database with an admin and a "shop" account (each with an API token), and the
/// binary serving it with `env`.
async fn serve(env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("seen.sqlite3").display());
    let mut tokens = Vec::new();
    for (name, role) in [("root", "admin"), ("shop", "approver")] {
        let add = ["user", "add", name, "--role", role, "--password-stdin"];
        cli(&db, &add, "a-long-password\n");
        tokens.push(cli(&db, &["token", "create", name], "").trim().to_string());
    }
    let port = free_port();
    let server = Running(start_with(&db, port, env).await);
    let shop = tokens.pop().unwrap();
    let admin = tokens.pop().unwrap();
    Served {
        base: format!("http://127.0.0.1:{port}"),
        admin,
        shop,
        _server: server,
        _dir: dir,
    }
}

impl Served {
    async fn request(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> u16 {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn scrape(&self) -> (String, String) {
        let res = reqwest::Client::new()
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let content_type = res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        (content_type, res.text().await.unwrap())
    }
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status_in_prometheus_text() {
    let app = serve(&[]).await;
    for _ in 0..3 {
        let status = app
            .request("GET", "/api/orders/NOPE-1", &app.shop, None)
            .await;
        assert_eq!(status, 404);
    }
    for id in ["SEEN-1", "SEEN-2"] {
        let body = format!(r#"{{"OrderID": "{id}", "OrderItems": ["a"], "Cost": 5}}"#);
        let status = app
            .request("POST", "/api/orders", &app.shop, Some(&body))
            .await;
        assert_eq!(status, 201);
    }
    let status = app
        .request("GET", "/api/orders/SEEN-1", &app.shop, None)
        .await;
    assert_eq!(status, 200);
    // Paths that match no route share one series, however many there are.
    for n in 0..4 {
        let path = format!("/no/such/page/{n}");
        assert_eq!(app.request("GET", &path, &app.shop, None).await, 404);
    }

    let (content_type, text) = app.scrape().await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let series = parse_exposition(&text);
    let count = |labels: &str| {
        let name = format!("orderflow_http_request_duration_seconds_count{{{labels}}}");
        series.get(&name).copied()
    };
    let get_order = r#"method="GET",route="/api/orders/{id}""#;
    assert_eq!(
        count(&format!(r#"{get_order},status="404""#)),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        count(&format!(r#"{get_order},status="200""#)),
        Some(1.0),
        "{text}"
    );
    let placed = r#"method="POST",route="/api/orders",status="201""#;
    assert_eq!(count(placed), Some(2.0), "{text}");
    let bucket = format!(r#"orderflow_http_request_duration_seconds_bucket{{{placed},le="+Inf"}}"#);
    assert_eq!(series.get(&bucket), Some(&2.0), "{text}");
    assert_eq!(
        count(r#"method="GET",route="other",status="404""#),
        Some(4.0),
        "{text}"
    );
    assert!(
        !text.contains("/no/such/page"),
        "a raw path became a label: {text}"
    );
    // The scrape is counted once it has been answered.
    assert_eq!(count(r#"method="GET",route="/metrics",status="200""#), None);
    assert_eq!(
        series.get(r#"orderflow_orders{status="processed"}"#),
        Some(&2.0)
    );
    assert!(series["orderflow_steps_total"] >= 2.0, "{text}");
    assert_eq!(series.get("orderflow_worker_restarts_total"), Some(&0.0));
    assert_eq!(series.get("orderflow_pending_task_tokens"), Some(&0.0));
    assert!(series.contains_key(r#"orderflow_executions{status="SUCCEEDED"}"#));
    for histogram in ["commit_batch_size", "commit_duration_seconds"] {
        assert!(
            text.contains(&format!("# TYPE orderflow_{histogram} histogram")),
            "{text}"
        );
    }
    // Every write went through the committer: at least the two orders, each acknowledged
    // by a commit.
    let commits = series["orderflow_commit_duration_seconds_count"];
    let committed = series["orderflow_commit_batch_size_sum"];
    assert!(commits >= 1.0 && committed >= 2.0, "{text}");

    let (_, text) = app.scrape().await;
    let series = parse_exposition(&text);
    let scraped = r#"orderflow_http_request_duration_seconds_count{method="GET",route="/metrics",status="200"}"#;
    assert_eq!(series.get(scraped), Some(&1.0), "{text}");
}

#[tokio::test]
async fn a_decision_is_timed_from_when_the_order_began_waiting() {
    let app = serve(&[]).await;
    let body = r#"{"OrderID": "WAIT-1", "OrderItems": ["a"], "Cost": 500}"#;
    assert_eq!(
        app.request("POST", "/api/orders", &app.shop, Some(body))
            .await,
        201
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let decision = r#"{"approved": true}"#;
    let status = app
        .request(
            "POST",
            "/api/orders/WAIT-1/decision",
            &app.admin,
            Some(decision),
        )
        .await;
    assert_eq!(status, 200);
    let (_, text) = app.scrape().await;
    let series = parse_exposition(&text);
    let wait = "orderflow_order_decision_wait_seconds";
    assert_eq!(
        series.get(&format!(r#"{wait}_count{{stage="first"}}"#)),
        Some(&1.0),
        "{text}"
    );
    let sum = series[&format!(r#"{wait}_sum{{stage="first"}}"#)];
    assert!((1.0..60.0).contains(&sum), "{text}");
    // It waited more than a second, so it is past the first bucket.
    let first = format!(r#"{wait}_bucket{{stage="first",le="1"}}"#);
    assert_eq!(series.get(&first), Some(&0.0), "{text}");
}

#[tokio::test]
async fn traces_go_to_the_otlp_http_endpoint_when_it_is_set() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, Bytes)>();
    let receiver = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let _ = tx.send((uri.path().to_string(), content_type, body));
            async {
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Bytes::new(),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let app = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "orderflow-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let body = r#"{"OrderID": "TRACE-1", "OrderItems": ["a"], "Cost": 5}"#;
    assert_eq!(
        app.request("POST", "/api/orders", &app.shop, Some(body))
            .await,
        201
    );

    let mut spans = BTreeSet::new();
    let mut services = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(spans.contains("request") && spans.contains("step_in")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((path, content_type, body))) = tokio::time::timeout(left, rx.recv()).await
        else {
            panic!("no request and step spans exported in 30 s; saw {spans:?}");
        };
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
        assert!(!body.is_empty());
        let export = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
        for resource in export.resource_spans {
            for attribute in resource.resource.iter().flat_map(|r| &r.attributes) {
                if attribute.key == "service.name" {
                    services.insert(format!("{:?}", attribute.value));
                }
            }
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| s.name));
            }
        }
    }
    assert!(
        services.iter().all(|s| s.contains("orderflow-under-test")) && !services.is_empty(),
        "{services:?}"
    );
}

/// Reads the Prometheus text format (0.0.4) strictly, as a scraper would refuse it: every
/// line is a `# HELP`, a `# TYPE` or a sample of the family its `# TYPE` announced just
/// before; names and labels are well formed and values are numbers; a histogram's buckets
/// are cumulative and end with `+Inf`, equal to its `_count`. Returns each series (name and
/// labels as written) with its value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut family: Option<(String, String)> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_name(name), "bad HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name), "bad TYPE: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad TYPE: {line}"
            );
            let previous = types.insert(name.to_string(), kind.to_string());
            assert!(previous.is_none(), "second TYPE for {name}");
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#') || line.starts_with("# "), "{line}");
        if line.starts_with('#') {
            continue;
        }
        let (key, name, labels, value) = parse_sample(line);
        let (family_name, kind) = family.as_ref().unwrap_or_else(|| panic!("no TYPE: {line}"));
        let suffix = name.strip_prefix(family_name.as_str());
        let fits = match kind.as_str() {
            "histogram" => matches!(suffix, Some("_bucket" | "_sum" | "_count")),
            "summary" => matches!(suffix, Some("" | "_sum" | "_count")),
            _ => suffix == Some(""),
        };
        assert!(fits, "{line} is not of family {family_name} ({kind})");
        if suffix == Some("_bucket") {
            assert!(
                labels.iter().any(|(k, _)| k == "le"),
                "bucket without le: {line}"
            );
        }
        assert!(
            series.insert(key, value).is_none(),
            "repeated series: {line}"
        );
    }
    check_histograms(&series, &types);
    series
}

/// `(series, name, labels, value)` of one sample line.
fn parse_sample(line: &str) -> (String, String, Vec<(String, String)>, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(is_name(name), "bad metric name: {line}");
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
            assert!(is_name(key) && !key.contains(':'), "bad label name: {line}");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => panic!("bad escape: {line}"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, '\n')) | None => panic!("unterminated label value: {line}"),
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((key.to_string(), value));
            inner = &after[end + 1..];
            inner = inner.strip_prefix(',').unwrap_or(inner);
        }
    }
    let key = line[..line.len() - rest.len()].to_string();
    let mut fields = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("{line}"))
        .split(' ');
    let value = parse_value(fields.next().unwrap_or_default())
        .unwrap_or_else(|| panic!("bad value: {line}"));
    if let Some(timestamp) = fields.next() {
        assert!(timestamp.parse::<i64>().is_ok(), "bad timestamp: {line}");
    }
    assert!(fields.next().is_none(), "trailing fields: {line}");
    (key, name.to_string(), labels, value)
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Each histogram series: buckets rising with `le`, the last `+Inf` and equal to `_count`.
fn check_histograms(series: &BTreeMap<String, f64>, types: &HashMap<String, String>) {
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (key, value) in series {
        let name = key.split('{').next().unwrap_or_default();
        let Some(family) = name.strip_suffix("_bucket") else {
            continue;
        };
        if types.get(family).map(String::as_str) != Some("histogram") {
            continue;
        }
        let (_, _, labels, _) = parse_sample(&format!("{key} {value}"));
        let le = labels.iter().find(|(k, _)| k == "le").unwrap();
        let others: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k != "le")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let count = if others.is_empty() {
            format!("{family}_count")
        } else {
            format!("{family}_count{{{}}}", others.join(","))
        };
        let bound = parse_value(&le.1).unwrap_or_else(|| panic!("bad le in {key}"));
        buckets.entry(count).or_default().push((bound, *value));
    }
    assert!(!buckets.is_empty(), "no histogram at all");
    for (count, mut bounds) in buckets {
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            bounds.windows(2).all(|w| w[0].1 <= w[1].1),
            "{count}: buckets not cumulative: {bounds:?}"
        );
        let (last_bound, last) = *bounds.last().unwrap();
        assert_eq!(last_bound, f64::INFINITY, "{count}: no +Inf bucket");
        assert_eq!(
            series.get(&count),
            Some(&last),
            "{count} differs from its +Inf bucket"
        );
    }
}
