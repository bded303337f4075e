//! The inbox and the console's order list at a million orders: seeds a SQLite file with
//! 1,000,000 orders (5% awaiting approval, the rest decided over 60 days) and prints the
//! latency of the queries the pages run — median and 90th percentile of repeated runs.
//!
//! `cargo bench --features ssr --bench console` (set `ORDERS` for another size).

use orderflow::config::Config;
use orderflow::model::{Cents, CurrentUser, InboxSort, InboxView, Role};
use orderflow::orders::{self, InboxRequest, OrderFilter};
use orderflow::state::AppState;
use sqlx::{ConnectOptions, Connection};
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

/// Runs `f` `runs` times; prints the median and 90th percentile.
async fn time<F, Fut, T>(label: &str, runs: usize, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut took: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f().await);
        took.push(start.elapsed());
    }
    took.sort();
    let at = |p: usize| took[((took.len() - 1) * p).div_ceil(100)];
    println!(
        "{label:<58} median {:>8.2} ms   p90 {:>8.2} ms",
        at(50).as_secs_f64() * 1000.0,
        at(90).as_secs_f64() * 1000.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: i64 = std::env::var("ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
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
    let approver = CurrentUser {
        id: 1,
        username: "bench-approver".into(),
        role: Role::Approver,
        email: None,
        approval_limit: None,
    };
    let page = |req: InboxRequest<'static>| {
        let (state, approver) = (state.clone(), approver.clone());
        async move { orders::inbox(&state, &approver, &req).await.unwrap() }
    };
    let runs = 30;
    let first = page(InboxRequest {
        limit: 50,
        ..Default::default()
    })
    .await;
    let cursor: &'static str = Box::leak(first.next.clone().unwrap().into_boxed_str());
    println!(
        "inbox: {} waiting, counts {:?}",
        first.counts.all, first.counts
    );
    time(
        "inbox, oldest first, first page (with counts)",
        runs,
        || {
            page(InboxRequest {
                limit: 50,
                ..Default::default()
            })
        },
    )
    .await;
    time("inbox, oldest first, next page (keyset)", runs, || {
        page(InboxRequest {
            limit: 50,
            cursor: Some(cursor),
            ..Default::default()
        })
    })
    .await;
    time("inbox, largest first", runs, || {
        page(InboxRequest {
            sort: InboxSort::Largest,
            limit: 50,
            ..Default::default()
        })
    })
    .await;
    time("inbox, claimed by me", runs, || {
        page(InboxRequest {
            view: InboxView::Mine,
            limit: 50,
            ..Default::default()
        })
    })
    .await;
    time("inbox, total between 1,000 and 2,000", runs, || {
        page(InboxRequest {
            min: Some(Cents(100_000)),
            max: Some(Cents(200_000)),
            limit: 50,
            ..Default::default()
        })
    })
    .await;
    for (label, text) in [
        ("inbox, search a customer (none waiting)", "Customer 4242"),
        ("inbox, search a customer (200 waiting)", "Customer 4240"),
        ("inbox, search every customer (example.com)", "example.com"),
    ] {
        time(label, runs, || {
            page(InboxRequest {
                search: Some(text),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
    }

    let list = |filter: OrderFilter, cursor: Option<&'static str>| {
        let state = state.clone();
        async move { orders::list(&state, &filter, cursor, 25).await.unwrap() }
    };
    let newest = list(OrderFilter::default(), None).await;
    let deep: &'static str = Box::leak(newest.next.clone().unwrap().into_boxed_str());
    time("order list, newest first, first page", runs, || {
        list(OrderFilter::default(), None)
    })
    .await;
    time("order list, next page (keyset)", runs, || {
        list(OrderFilter::default(), Some(deep))
    })
    .await;
    time("order list, status rejected", runs, || {
        list(
            OrderFilter {
                status: orderflow::model::OrderStatus::parse("rejected"),
                ..Default::default()
            },
            None,
        )
    })
    .await;
    time("order list, decided by one approver", runs, || {
        list(
            OrderFilter {
                approver: Some("approver-3".into()),
                ..Default::default()
            },
            None,
        )
    })
    .await;
    time("order list, total above 8,999.00 (rare)", runs, || {
        list(
            OrderFilter {
                min_cents: Some(899_900),
                ..Default::default()
            },
            None,
        )
    })
    .await;
    time("order list, search by order id", runs, || {
        list(
            OrderFilter {
                search: Some("ORD-0000424242".into()),
                ..Default::default()
            },
            None,
        )
    })
    .await;
    for (label, text) in [
        (
            "order list, search a customer (200 orders)",
            "Customer 4242",
        ),
        ("order list, search an e-mail (200 orders)", "c4242@"),
        (
            "order list, search every customer (example.com)",
            "example.com",
        ),
        ("order list, search 'Customer 1' (1 in 5)", "Customer 1"),
    ] {
        time(label, runs, || {
            list(
                OrderFilter {
                    search: Some(text.into()),
                    ..Default::default()
                },
                None,
            )
        })
        .await;
    }
    time("dashboard (14 days of decisions)", 5, || {
        let state = state.clone();
        async move { orders::dashboard(&state, 14).await.unwrap() }
    })
    .await;
}
