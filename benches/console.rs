//! The inbox, the console's order list and the dashboard at a million orders: seeds a SQLite
//! file with 1,000,000 orders (5% awaiting approval, the rest decided over 60 days) and prints
//! the latency of every query those pages run — median, 90th and 99th percentile of repeated
//! runs — first on a quiet database, then while 16 concurrent clients place (and decide)
//! orders as fast as the real code path goes.
//!
//! `cargo bench --features ssr --bench console` (set `ORDERS` for another size, `RUNS` for
//! the runs per query, `CLIENTS` for the placing clients).

use orderflow::config::Config;
use orderflow::model::{Cents, CurrentUser, InboxSort, InboxView, OrderStatus, Role};
use orderflow::orders::{self, ApiOrder, InboxRequest, OrderFilter, Verdict};
use orderflow::state::AppState;
use sqlx::{ConnectOptions, Connection};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fills `orders` with `n` rows in one statement; foreign keys are off on this connection
/// only (the orders point at executions the benchmark does not create).
async fn seed(url: &str, n: i64) {
    let mut conn = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    let sql = "
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
        INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
            currency, status, execution_id, task_token, awaiting_since, decided_by, decided_at,
            decision_reason, created_at, updated_at, stage, due_at, claimed_by)
        SELECT printf('ORD-%010d', i), printf('%032x', i), printf('Customer %d', i % 5000),
            printf('c%d@example.com', i % 5000), '[{\"name\":\"Widget\",\"quantity\":1}]',
            1000 + (i * 7919) % 900000, 'USD',
            CASE WHEN i % 20 = 0 THEN 'awaiting_approval'
                 WHEN i % 20 = 1 THEN 'rejected' ELSE 'processed' END,
            printf('exec-%d', i),
            CASE WHEN i % 20 = 0 THEN printf('tok-%d', i) END,
            CASE WHEN i % 20 = 0 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (? - i) * 5)) END,
            CASE WHEN i % 20 <> 0 THEN printf('approver-%d', i % 7) END,
            CASE WHEN i % 20 <> 0 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (? - i) * 5 - 600)) END,
            NULL,
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (? - i) * 5)),
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            'first',
            CASE WHEN i % 20 = 0 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('+%d seconds', i % 200000)) END,
            CASE WHEN i % 60 = 0 THEN 'bench-approver' END
        FROM seq";
    sqlx::query(sql)
        .bind(n)
        .bind(n)
        .bind(n)
        .bind(n)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// A query's latency over repeated runs.
#[derive(Clone, Copy)]
struct Figures {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

/// Runs `f` `runs` times (after one unmeasured run) and returns its percentiles.
async fn percentiles<F, Fut, T>(runs: usize, mut f: F) -> Figures
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    std::hint::black_box(f().await);
    let mut took: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f().await);
        took.push(start.elapsed());
    }
    took.sort();
    let at = |p: usize| took[((took.len() - 1) * p).div_ceil(100)];
    Figures {
        p50: at(50),
        p90: at(90),
        p99: at(99),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn user(name: &str, role: Role) -> CurrentUser {
    CurrentUser {
        id: 1,
        username: name.into(),
        role,
        email: None,
        approval_limit: None,
    }
}

/// The pages' queries against one database, with the cursors of their second pages.
struct Console {
    state: AppState,
    approver: CurrentUser,
    admin: CurrentUser,
    oldest_next: String,
    largest_next: String,
    list_next: String,
}

impl Console {
    async fn inbox(&self, admin: bool, req: InboxRequest<'_>) -> orders::InboxResult {
        let who = if admin { &self.admin } else { &self.approver };
        let req = InboxRequest { limit: 50, ..req };
        orders::inbox(&self.state, who, &req).await.unwrap()
    }

    async fn list(&self, filter: OrderFilter, cursor: Option<&str>) -> orderflow::model::OrderPage {
        orders::list(&self.state, &filter, cursor, 25)
            .await
            .unwrap()
    }

    /// Times every query, `runs` times each, in the order they are printed.
    async fn measure(&self, runs: usize) -> Vec<(&'static str, Figures)> {
        let c = self;
        let mut out = Vec::new();
        let req = InboxRequest::default;
        let inbox: Vec<(&'static str, bool, InboxRequest<'_>)> = vec![
            (
                "inbox, oldest first, first page (with counts)",
                false,
                req(),
            ),
            (
                "inbox, oldest first, next page (keyset)",
                false,
                InboxRequest {
                    cursor: Some(&c.oldest_next),
                    ..req()
                },
            ),
            (
                "inbox, largest first, first page",
                false,
                InboxRequest {
                    sort: InboxSort::Largest,
                    ..req()
                },
            ),
            (
                "inbox, largest first, next page (keyset)",
                false,
                InboxRequest {
                    sort: InboxSort::Largest,
                    cursor: Some(&c.largest_next),
                    ..req()
                },
            ),
            (
                "inbox, claimed by me",
                false,
                InboxRequest {
                    view: InboxView::Mine,
                    ..req()
                },
            ),
            (
                "inbox, unclaimed",
                false,
                InboxRequest {
                    view: InboxView::Unclaimed,
                    ..req()
                },
            ),
            ("inbox (admin), everything", true, req()),
            (
                "inbox (admin), escalated",
                true,
                InboxRequest {
                    view: InboxView::Escalated,
                    ..req()
                },
            ),
            (
                "inbox, total 1,000-2,000, oldest first",
                false,
                InboxRequest {
                    min: Some(Cents(100_000)),
                    max: Some(Cents(200_000)),
                    ..req()
                },
            ),
            (
                "inbox, total 1,000-2,000, largest first",
                false,
                InboxRequest {
                    sort: InboxSort::Largest,
                    min: Some(Cents(100_000)),
                    max: Some(Cents(200_000)),
                    ..req()
                },
            ),
            (
                "inbox, total 1,000.00-1,005.00 (rare), oldest",
                false,
                InboxRequest {
                    min: Some(Cents(100_000)),
                    max: Some(Cents(100_500)),
                    ..req()
                },
            ),
            (
                "inbox, total above 100.00 (nearly all), oldest",
                false,
                InboxRequest {
                    min: Some(Cents(10_000)),
                    ..req()
                },
            ),
            (
                "inbox, total 1,000-2,000, claimed by me",
                false,
                InboxRequest {
                    view: InboxView::Mine,
                    min: Some(Cents(100_000)),
                    max: Some(Cents(200_000)),
                    ..req()
                },
            ),
            (
                "inbox, waited over a day, oldest first",
                false,
                InboxRequest {
                    waited_minutes: Some(1440),
                    ..req()
                },
            ),
            (
                "inbox, waited over a day, largest first",
                false,
                InboxRequest {
                    sort: InboxSort::Largest,
                    waited_minutes: Some(1440),
                    ..req()
                },
            ),
            (
                "inbox, search an order id",
                false,
                InboxRequest {
                    search: Some("ORD-0000424240"),
                    ..req()
                },
            ),
            (
                "inbox, search a customer (none waiting)",
                false,
                InboxRequest {
                    search: Some("Customer 4242"),
                    ..req()
                },
            ),
            (
                "inbox, search a customer (200 waiting)",
                false,
                InboxRequest {
                    search: Some("Customer 4240"),
                    ..req()
                },
            ),
            (
                "inbox, search a customer, largest first",
                false,
                InboxRequest {
                    sort: InboxSort::Largest,
                    search: Some("Customer 4240"),
                    ..req()
                },
            ),
            (
                "inbox, search every customer (example.com)",
                false,
                InboxRequest {
                    search: Some("example.com"),
                    ..req()
                },
            ),
        ];
        for (label, admin, req) in inbox {
            let figures = percentiles(runs, || c.inbox(admin, req.clone())).await;
            out.push((label, figures));
        }

        // A day with orders, as the console's date filter asks for it (before the next day).
        let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(20);
        let (day, next_day) = (day.to_string(), (day + time::Duration::days(1)).to_string());
        let filter = OrderFilter::default;
        let search = |text: &str| OrderFilter {
            search: Some(text.into()),
            ..filter()
        };
        let lists: Vec<(&'static str, OrderFilter, Option<&str>)> = vec![
            ("order list, newest first, first page", filter(), None),
            (
                "order list, next page (keyset)",
                filter(),
                Some(&c.list_next),
            ),
            (
                "order list, status rejected",
                OrderFilter {
                    status: Some(OrderStatus::Rejected),
                    ..filter()
                },
                None,
            ),
            (
                "order list, status awaiting approval",
                OrderFilter {
                    status: Some(OrderStatus::AwaitingApproval),
                    ..filter()
                },
                None,
            ),
            (
                "order list, status invalid (none)",
                OrderFilter {
                    status: Some(OrderStatus::Invalid),
                    ..filter()
                },
                None,
            ),
            (
                "order list, one day",
                OrderFilter {
                    from: Some(day.clone()),
                    to: Some(next_day.clone()),
                    ..filter()
                },
                None,
            ),
            (
                "order list, one day, status rejected",
                OrderFilter {
                    status: Some(OrderStatus::Rejected),
                    from: Some(day.clone()),
                    to: Some(next_day.clone()),
                    ..filter()
                },
                None,
            ),
            (
                "order list, decided by one approver",
                OrderFilter {
                    approver: Some("approver-3".into()),
                    ..filter()
                },
                None,
            ),
            (
                "order list, total above 8,999.00 (rare)",
                OrderFilter {
                    min_cents: Some(899_900),
                    ..filter()
                },
                None,
            ),
            (
                "order list, total 100.00-5,000.00 (most)",
                OrderFilter {
                    min_cents: Some(10_000),
                    max_cents: Some(500_000),
                    ..filter()
                },
                None,
            ),
            (
                "order list, one approver, total above 8,999.00",
                OrderFilter {
                    approver: Some("approver-3".into()),
                    min_cents: Some(899_900),
                    ..filter()
                },
                None,
            ),
            (
                "order list, search by order id",
                search("ORD-0000424242"),
                None,
            ),
            (
                "order list, search a customer (200 orders)",
                search("Customer 4242"),
                None,
            ),
            (
                "order list, search an e-mail (200 orders)",
                search("c4242@"),
                None,
            ),
            (
                "order list, search every customer (example.com)",
                search("example.com"),
                None,
            ),
            (
                "order list, search 'Customer 1' (1 in 5)",
                search("Customer 1"),
                None,
            ),
        ];
        for (label, filter, cursor) in lists {
            let figures = percentiles(runs, || c.list(filter.clone(), cursor)).await;
            out.push((label, figures));
        }

        let figures = percentiles(runs, || async {
            orders::count_by_status(&c.state).await.unwrap()
        })
        .await;
        out.push(("orders by status (API metrics)", figures));
        let figures = percentiles(runs, || async {
            orders::dashboard(&c.state, 14).await.unwrap()
        })
        .await;
        out.push(("dashboard (14 days of decisions)", figures));
        out
    }
}

/// Places orders through the API's code path until `stop`, one after another as fast as they
/// go (one of the concurrent clients `client`): every other one needs approval, and of those
/// half are decided (approved or rejected) at once, so the roll-ups and indexes change as they
/// would in a busy shop.
async fn place_orders(
    state: AppState,
    client: usize,
    stop: Arc<AtomicBool>,
    placed: Arc<AtomicU64>,
) {
    let shop = user("bench-shop", Role::Approver);
    let decider = user("bench-decider", Role::Approver);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let order = ApiOrder {
            order_id: Some(format!("LOAD-{client}-{i}")),
            items: vec!["Widget".into()],
            cost: Cents(if i.is_multiple_of(2) { 5_000 } else { 50_000 }),
            customer_name: format!("Load customer {}", i % 100),
            customer_email: format!("load{}@example.com", i % 100),
        };
        let order = orders::place_from_api(&state, order, &shop).await.unwrap();
        placed.fetch_add(1, Ordering::Relaxed);
        if order.status == OrderStatus::AwaitingApproval && i % 4 != 3 {
            let verdict = Verdict {
                approved: i % 4 == 1,
                reason: Some("bench"),
                ..Default::default()
            };
            orders::decide(&state, &order.id, &verdict, &decider)
                .await
                .unwrap();
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |name: &str, default: i64| -> i64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = env("ORDERS", 1_000_000);
    let runs = env("RUNS", 100) as usize;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let options = leptos::config::get_configuration(Some("Cargo.toml"))
        .unwrap()
        .leptos_options;
    // Opening the app once creates the schema; the seed goes in underneath it.
    let state: AppState = orderflow::server::state(Config::for_database(url.clone()), options)
        .await
        .unwrap();
    let start = Instant::now();
    seed(&url, n).await;
    println!(
        "seeded {n} orders ({} awaiting approval) in {:.1} s",
        n / 20,
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    orders::search::index_all(state.db()).await.unwrap();
    println!(
        "indexed their customers for search in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let approver = user("bench-approver", Role::Approver);
    let admin = user("bench-admin", Role::Admin);
    let first = orders::inbox(
        &state,
        &approver,
        &InboxRequest {
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    println!("inbox: counts {:?}", first.counts);
    let largest = orders::inbox(
        &state,
        &approver,
        &InboxRequest {
            sort: InboxSort::Largest,
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let newest = orders::list(&state, &OrderFilter::default(), None, 25)
        .await
        .unwrap();
    let console = Console {
        state: state.clone(),
        approver,
        admin,
        oldest_next: first.next.unwrap(),
        largest_next: largest.next.unwrap(),
        list_next: newest.next.unwrap(),
    };

    println!("timing {runs} runs of each query on a quiet database…");
    let quiet = console.measure(runs).await;

    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicU64::new(0));
    // As many clients as `scripts/bench` places with: one client alone waits for each commit
    // and placed ~20 orders/s, which is no load.
    let clients = env("CLIENTS", 16) as usize;
    let loaders: Vec<_> = (0..clients)
        .map(|client| {
            let (state, stop, placed) = (state.clone(), stop.clone(), placed.clone());
            tokio::spawn(place_orders(state, client, stop, placed))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("timing {runs} runs of each query while orders are placed…");
    let (start, before) = (Instant::now(), placed.load(Ordering::Relaxed));
    let busy = console.measure(runs).await;
    let rate = (placed.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        loader.await.unwrap();
    }

    println!();
    println!(
        "{:<50} {:>26}   {:>26}",
        "", "quiet: p50 / p90 / p99 ms", "placing orders: p50 / p90 / p99 ms"
    );
    for ((label, q), (_, b)) in quiet.iter().zip(&busy) {
        println!(
            "{label:<50} {:>8.2} {:>8.2} {:>8.2}   {:>8.2} {:>8.2} {:>8.2}",
            ms(q.p50),
            ms(q.p90),
            ms(q.p99),
            ms(b.p50),
            ms(b.p90),
            ms(b.p99)
        );
    }
    println!("orders placed meanwhile: {rate:.0} per second");
}
