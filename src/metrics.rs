//! What an operator sees from outside: the process's histograms (HTTP requests, commits, how
//! long orders wait for a decision) and, at each scrape of `/metrics`, the runtime's counters
//! and the stored gauges, rendered in the Prometheus text format (0.0.4) with
//! `prometheus-client`. Callers record through the free functions here; nothing else holds a
//! registry.

use crate::model::{OrderStatus, Stage};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Request durations, from a millisecond to ten seconds.
const HTTP_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Waits for a decision, from a second (automated callers) to a week.
const DECISION_WAIT_SECONDS: [f64; 12] = [
    1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14_400.0, 28_800.0, 86_400.0, 172_800.0,
    604_800.0,
];

/// The labels of one HTTP series: all three come from closed sets, never the raw path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route's pattern (`/api/orders/{id}`), or `other` when no route matched.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The histograms of one process. Clones share their values.
#[derive(Clone)]
pub struct Instruments {
    http: HistogramFamily<HttpLabels>,
    commit_batch: Histogram,
    commit_seconds: Histogram,
    decision_wait: HistogramFamily<StageLabel>,
}

impl Default for Instruments {
    fn default() -> Self {
        Instruments {
            http: Family::new_with_constructor(|| Histogram::new(HTTP_SECONDS)),
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            decision_wait: Family::new_with_constructor(|| Histogram::new(DECISION_WAIT_SECONDS)),
        }
    }
}

static PROCESS: LazyLock<Instruments> = LazyLock::new(Instruments::default);

/// Values read at scrape time: the runtime's counters and what the database holds now.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub steps: u64,
    pub worker_errors: u64,
    pub step_panics: u64,
    pub worker_restarts: u64,
    pub reruns: u64,
    /// Top-level executions by status (`RUNNING`, `SUCCEEDED`, …).
    pub executions: Vec<(String, i64)>,
    pub pending_task_tokens: i64,
    pub orders: Vec<(OrderStatus, i64)>,
}

impl Instruments {
    fn http_request(
        &self,
        method: &http::Method,
        route: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let labels = HttpLabels {
            method: method_label(method),
            route: route.unwrap_or("other").to_owned(),
            status,
        };
        self.http.get_or_create(&labels).observe(took.as_secs_f64());
    }

    fn commit(&self, batch_size: usize, elapsed: Duration) {
        self.commit_batch.observe(batch_size as f64);
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    fn decision(&self, stage: Stage, waited: Duration) {
        let labels = StageLabel {
            stage: stage.as_str(),
        };
        self.decision_wait
            .get_or_create(&labels)
            .observe(waited.as_secs_f64());
    }

    /// These histograms and `snapshot` in the Prometheus text format. (The encoder ends each
    /// help text with a full stop.)
    fn render(&self, snapshot: &Snapshot) -> String {
        let mut registry = Registry::with_prefix("orderflow");
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to the response's head), by method, route and status",
            Unit::Seconds,
            self.http.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Steps or requests committed together in one transaction",
            self.commit_batch.clone(),
        );
        registry.register_with_unit(
            "commit_duration",
            "Time to commit one batch",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        registry.register_with_unit(
            "order_decision_wait",
            "Time an order waited for a decision, from when it began awaiting approval to when \
             it was approved or rejected, by approval stage",
            Unit::Seconds,
            self.decision_wait.clone(),
        );
        let counters = [
            ("steps", "Execution steps run", snapshot.steps),
            (
                "worker_errors",
                "Worker steps that failed and were retried",
                snapshot.worker_errors,
            ),
            (
                "step_panics",
                "Steps that panicked; each failed its execution with States.Runtime",
                snapshot.step_panics,
            ),
            (
                "worker_restarts",
                "Times the background worker died and was started again",
                snapshot.worker_restarts,
            ),
            (
                "reruns",
                "Inline runs undone and run again step by step because a task failed or a step panicked",
                snapshot.reruns,
            ),
        ];
        for (name, help, value) in counters {
            registry.register(name, help, ConstCounter::new(value));
        }
        let executions = Family::<StatusLabel, Gauge>::default();
        for (status, n) in &snapshot.executions {
            let labels = StatusLabel {
                status: status.clone(),
            };
            executions.get_or_create(&labels).set(*n);
        }
        registry.register("executions", "Executions by status", executions);
        let pending = Gauge::<i64>::default();
        pending.set(snapshot.pending_task_tokens);
        registry.register(
            "pending_task_tokens",
            "Callbacks waiting for their token",
            pending,
        );
        let orders = Family::<StatusLabel, Gauge>::default();
        for (status, n) in &snapshot.orders {
            let labels = StatusLabel {
                status: status.as_str().to_owned(),
            };
            orders.get_or_create(&labels).set(*n);
        }
        registry.register("orders", "Orders by status", orders);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// Records one commit of `batch_size` items that took `elapsed` (for the group committer).
pub fn record_commit(batch_size: usize, elapsed: Duration) {
    PROCESS.commit(batch_size, elapsed);
}

/// Records a decision on an order at `stage` that began awaiting it at `awaiting_since`; both
/// times as the database stores them. An order without a (readable) start is not recorded.
pub fn record_decision(stage: Stage, awaiting_since: Option<&str>, decided_at: &str) {
    if let Some(waited) = awaiting_since.and_then(|since| between(since, decided_at)) {
        PROCESS.decision(stage, waited);
    }
}

/// The process's histograms and `snapshot`, as `/metrics` serves them.
pub fn render(snapshot: &Snapshot) -> String {
    PROCESS.render(snapshot)
}

/// Middleware: times each request and counts it under its route's pattern (axum's
/// [`MatchedPath`]) and status. Unmatched paths share the route `other`, so a scan of random
/// URLs cannot grow the series without bound.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    PROCESS.http_request(
        &method,
        route.as_deref(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `to - from` for two RFC 3339 times; zero if `to` is earlier (clocks step back).
fn between(from: &str, to: &str) -> Option<Duration> {
    use time::format_description::well_known::Rfc3339;
    let from = time::OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let to = time::OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((to - from).try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

    #[test]
    fn commits_fill_the_batch_size_and_duration_histograms() {
        let instruments = Instruments::default();
        instruments.commit(3, Duration::from_millis(2));
        instruments.commit(100, Duration::from_millis(40));
        let text = instruments.render(&Snapshot::default());
        assert_eq!(
            sample(&text, "orderflow_commit_batch_size_count"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "orderflow_commit_batch_size_sum"),
            Some(103.0)
        );
        assert_eq!(
            sample(&text, "orderflow_commit_batch_size_bucket{le=\"4\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "orderflow_commit_duration_seconds_bucket{le=\"0.0032\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "orderflow_commit_duration_seconds_count"),
            Some(2.0)
        );
    }

    #[test]
    fn the_free_function_records_into_the_process_histograms() {
        let count = || {
            let text = render(&Snapshot::default());
            sample(&text, "orderflow_commit_batch_size_count").unwrap()
        };
        let before = count();
        record_commit(7, Duration::from_millis(1));
        assert!(count() > before);
    }

    #[test]
    fn a_decision_wait_is_measured_from_awaiting_since_by_stage() {
        let waited = between("2024-01-01T10:00:00.000Z", "2024-01-01T11:30:00.500Z");
        assert_eq!(waited, Some(Duration::from_millis(5_400_500)));
        assert_eq!(
            between("2024-01-01T10:00:00.000Z", "2024-01-01T09:00:00.000Z"),
            Some(Duration::ZERO)
        );
        assert_eq!(between("yesterday", "2024-01-01T09:00:00.000Z"), None);
        let instruments = Instruments::default();
        instruments.decision(Stage::Second, Duration::from_secs(120));
        let text = instruments.render(&Snapshot::default());
        let series = "orderflow_order_decision_wait_seconds_bucket{stage=\"second\",le=\"300\"}";
        assert_eq!(sample(&text, series), Some(1.0), "{text}");
        let series = "orderflow_order_decision_wait_seconds_bucket{stage=\"second\",le=\"60\"}";
        assert_eq!(sample(&text, series), Some(0.0), "{text}");
    }

    #[test]
    fn requests_are_labelled_by_route_pattern_or_other() {
        let instruments = Instruments::default();
        let ms = Duration::from_millis(3);
        instruments.http_request(&http::Method::GET, Some("/api/orders/{id}"), 200, ms);
        instruments.http_request(&http::Method::GET, Some("/api/orders/{id}"), 200, ms);
        instruments.http_request(&http::Method::from_bytes(b"BREW").unwrap(), None, 404, ms);
        let text = instruments.render(&Snapshot::default());
        let series = "orderflow_http_request_duration_seconds_count{method=\"GET\",route=\"/api/orders/{id}\",status=\"200\"}";
        assert_eq!(sample(&text, series), Some(2.0), "{text}");
        let series = "orderflow_http_request_duration_seconds_count{method=\"other\",route=\"other\",status=\"404\"}";
        assert_eq!(sample(&text, series), Some(1.0), "{text}");
    }

    #[test]
    fn the_snapshot_is_rendered_as_counters_and_gauges() {
        let snapshot = Snapshot {
            steps: 12,
            worker_restarts: 1,
            executions: vec![("RUNNING".into(), 2)],
            pending_task_tokens: 2,
            orders: vec![(OrderStatus::AwaitingApproval, 2)],
            ..Snapshot::default()
        };
        let text = Instruments::default().render(&snapshot);
        assert!(
            text.contains("# TYPE orderflow_steps_total counter\n"),
            "{text}"
        );
        assert_eq!(sample(&text, "orderflow_steps_total"), Some(12.0));
        assert_eq!(sample(&text, "orderflow_worker_restarts_total"), Some(1.0));
        assert_eq!(sample(&text, "orderflow_step_panics_total"), Some(0.0));
        assert_eq!(
            sample(&text, "orderflow_executions{status=\"RUNNING\"}"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "orderflow_pending_task_tokens"), Some(2.0));
        assert_eq!(
            sample(&text, "orderflow_orders{status=\"awaiting_approval\"}"),
            Some(2.0)
        );
    }
}
