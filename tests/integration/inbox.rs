//! The approver's inbox over a real server and SQLite file: who may decide what (four eyes,
//! limits, two approvers, claims, escalation), the queue's filters and pages, bulk approval
//! and the live change feed.

use crate::common::{spawn_app, spawn_app_on, TestApp};
use orderflow::config::ApprovalPolicy;
use orderflow::model::{Cents, CurrentUser, InboxSort, InboxView, Role, Stage};
use orderflow::orders::{self, ClaimChange, InboxRequest, OrderError, Verdict};
use orderflow::runtime::ManualClock;
use serde_json::{json, Value};

/// Places an order through the REST API; returns its id.
async fn place(app: &TestApp, id: &str, cost: &str, email: &str) -> String {
    let order = app
        .place_order(json!({"OrderID": id, "OrderItems": ["thing"],
            "Cost": cost.parse::<f64>().unwrap(), "CustomerName": "Cy Customer",
            "CustomerEmail": email}))
        .await;
    order["order_id"].as_str().unwrap().to_string()
}

async fn user(app: &TestApp, name: &str) -> CurrentUser {
    orderflow::auth::active_user(app.state.db(), name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
}

async fn approver(app: &TestApp, name: &str) -> CurrentUser {
    orderflow::auth::create_user(app.state.db(), name, Role::Approver, "a-long-password")
        .await
        .unwrap();
    user(app, name).await
}

fn approve() -> Verdict<'static> {
    Verdict {
        approved: true,
        ..Verdict::default()
    }
}

async fn order(app: &TestApp, id: &str) -> orderflow::model::OrderSummary {
    orders::get(&app.state, id).await.unwrap().unwrap()
}

async fn trail_actions(app: &TestApp, id: &str) -> Vec<String> {
    orders::trail(&app.state, id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            format!(
                "{} {}",
                t.actor.unwrap_or_else(|| "workflow".into()),
                t.action
            )
        })
        .collect()
}

#[tokio::test]
async fn nobody_decides_an_order_placed_with_their_own_email() {
    let app = spawn_app().await;
    orderflow::auth::set_profile(app.state.db(), "approver", Some("Me@Example.com"), None)
        .await
        .unwrap();
    let id = place(&app, "own-1", "500", "me@example.com").await;
    let me = user(&app, "approver").await;
    let err = orders::decide(&app.state, &id, &approve(), &me)
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::NotAllowed(_)), "{err}");
    assert!(err.to_string().contains("your e-mail"), "{err}");
    assert_eq!(order(&app, &id).await.status.as_str(), "awaiting_approval");

    let other = approver(&app, "colleague").await;
    orders::decide(&app.state, &id, &approve(), &other)
        .await
        .unwrap();
    assert_eq!(order(&app, &id).await.status.as_str(), "processed");
}

#[tokio::test]
async fn approval_limits_stop_approvals_above_them_but_not_rejections() {
    let app = spawn_app().await;
    orderflow::auth::set_profile(app.state.db(), "approver", None, Some(Cents(20_000)))
        .await
        .unwrap();
    let me = user(&app, "approver").await;
    let big = place(&app, "lim-1", "500", "c@example.com").await;
    let err = orders::decide(&app.state, &big, &approve(), &me)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("above your approval limit of $200.00"),
        "{err}"
    );
    let reject = Verdict {
        approved: false,
        reason: Some("Too much"),
        ..Verdict::default()
    };
    orders::decide(&app.state, &big, &reject, &me)
        .await
        .unwrap();
    assert_eq!(order(&app, &big).await.status.as_str(), "rejected");

    let small = place(&app, "lim-2", "150", "c@example.com").await;
    orders::decide(&app.state, &small, &approve(), &me)
        .await
        .unwrap();
    assert_eq!(order(&app, &small).await.status.as_str(), "processed");
}

#[tokio::test]
async fn the_largest_orders_need_two_different_approvers() {
    let app = spawn_app().await;
    let first = user(&app, "approver").await;
    let id = place(&app, "two-1", "6000", "c@example.com").await;
    assert_eq!(order(&app, &id).await.stage, Stage::First);
    orders::decide(&app.state, &id, &approve(), &first)
        .await
        .unwrap();

    let after_first = order(&app, &id).await;
    assert_eq!(after_first.status.as_str(), "awaiting_approval");
    assert_eq!(after_first.stage, Stage::Second);
    assert_eq!(after_first.first_approver.as_deref(), Some("approver"));
    let err = orders::decide(&app.state, &id, &approve(), &first)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a different approver"), "{err}");

    // A decision made on the first approval's page does not count for the second.
    let second = approver(&app, "second").await;
    let stale = Verdict {
        stage: Some(Stage::First),
        ..approve()
    };
    let err = orders::decide(&app.state, &id, &stale, &second)
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::Moved(Stage::Second)), "{err}");

    orders::decide(&app.state, &id, &approve(), &second)
        .await
        .unwrap();
    assert_eq!(order(&app, &id).await.status.as_str(), "processed");
    assert_eq!(
        trail_actions(&app, &id).await,
        [
            "workflow waiting",
            "approver approved",
            "workflow waiting",
            "second approved"
        ]
    );
}

#[tokio::test]
async fn a_claimed_order_is_decided_by_its_holder_or_after_a_take_over() {
    let app = spawn_app().await;
    let ana = user(&app, "approver").await;
    let bo = approver(&app, "bo").await;
    let id = place(&app, "claim-1", "500", "c@example.com").await;

    orders::change_claim(&app.state, &id, ClaimChange::Claim, &ana)
        .await
        .unwrap();
    assert_eq!(
        order(&app, &id).await.claimed_by.as_deref(),
        Some("approver")
    );
    let err = orders::change_claim(&app.state, &id, ClaimChange::Claim, &bo)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OrderError::Claimed(ref by) if by == "approver"),
        "{err}"
    );
    let err = orders::change_claim(&app.state, &id, ClaimChange::Unclaim, &bo)
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::Claimed(_)), "{err}");
    let err = orders::decide(&app.state, &id, &approve(), &bo)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("take it over"), "{err}");
    let err = orders::change_claim(&app.state, &id, ClaimChange::Reassign("bo"), &bo)
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::NotAllowed(_)), "{err}");

    orders::change_claim(&app.state, &id, ClaimChange::TakeOver, &bo)
        .await
        .unwrap();
    // Taking over one's own claim changes nothing (and adds nothing to the trail).
    orders::change_claim(&app.state, &id, ClaimChange::TakeOver, &bo)
        .await
        .unwrap();
    let err = orders::decide(&app.state, &id, &approve(), &ana)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OrderError::Claimed(ref by) if by == "bo"),
        "{err}"
    );
    let admin = user(&app, "admin").await;
    orders::change_claim(&app.state, &id, ClaimChange::Reassign("approver"), &admin)
        .await
        .unwrap();
    let err = orders::change_claim(&app.state, &id, ClaimChange::Reassign("nobody"), &admin)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("No active user named 'nobody'"),
        "{err}"
    );
    orders::change_claim(&app.state, &id, ClaimChange::Unclaim, &ana)
        .await
        .unwrap();
    orders::change_claim(&app.state, &id, ClaimChange::Claim, &ana)
        .await
        .unwrap();
    orders::decide(&app.state, &id, &approve(), &ana)
        .await
        .unwrap();
    assert_eq!(
        trail_actions(&app, &id).await,
        [
            "workflow waiting",
            "approver claimed",
            "bo took_over",
            "admin reassigned",
            "approver unclaimed",
            "approver claimed",
            "approver approved"
        ]
    );
    let err = orders::change_claim(&app.state, &id, ClaimChange::Claim, &ana)
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::AlreadyDecided { .. }), "{err}");
}

#[tokio::test]
async fn an_approval_past_its_deadline_is_escalated_to_the_admins() {
    let policy = ApprovalPolicy {
        timeout_seconds: 1,
        ..ApprovalPolicy::default()
    };
    let clock = ManualClock::starting_now();
    let app = spawn_app_on(policy, &clock).await;
    let id = place(&app, "late-1", "500", "c@example.com").await;
    assert!(order(&app, &id).await.due_at.is_some());
    app.advance(&clock, std::time::Duration::from_millis(999));
    app.state.runtime.run_until_idle().await.unwrap();
    assert_ne!(
        order(&app, &id).await.stage,
        Stage::Escalated,
        "not yet due"
    );
    app.advance(&clock, std::time::Duration::from_millis(1));
    app.wait_until(|| async { order(&app, &id).await.stage == Stage::Escalated })
        .await;
    let escalated = order(&app, &id).await;
    assert_eq!(escalated.status.as_str(), "awaiting_approval");
    assert_eq!(escalated.due_at, None);

    let ana = user(&app, "approver").await;
    let err = orders::decide(&app.state, &id, &approve(), &ana)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("an admin decides it"), "{err}");
    let listed = |who: CurrentUser| {
        let app = &app;
        async move {
            let req = InboxRequest {
                limit: 50,
                ..InboxRequest::default()
            };
            let page = orders::inbox(&app.state, &who, &req).await.unwrap();
            page.orders.into_iter().map(|o| o.id).collect::<Vec<_>>()
        }
    };
    assert!(listed(ana).await.is_empty(), "approvers no longer see it");
    let admin = user(&app, "admin").await;
    assert_eq!(listed(admin.clone()).await, std::slice::from_ref(&id));
    orders::decide(&app.state, &id, &approve(), &admin)
        .await
        .unwrap();
    assert_eq!(order(&app, &id).await.status.as_str(), "processed");
    let actions = trail_actions(&app, &id).await;
    assert_eq!(
        actions,
        ["workflow waiting", "workflow escalated", "admin approved"]
    );
}

#[tokio::test]
async fn the_queue_sorts_filters_searches_counts_and_pages() {
    let app = spawn_app().await;
    let me = user(&app, "approver").await;
    for (id, cost, email) in [
        ("q-1", "300", "ann@example.com"),
        ("q-2", "900", "bob@example.com"),
        ("q-3", "150", "cat@example.com"),
        ("q-4", "700", "ann@example.com"),
        ("q-5", "2000", "dan@example.com"),
    ] {
        place(&app, id, cost, email).await;
    }
    orders::change_claim(&app.state, "q-4", ClaimChange::Claim, &me)
        .await
        .unwrap();
    let ids =
        |page: &orders::InboxResult| page.orders.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    let get = |req: InboxRequest<'static>| {
        let (app, me) = (&app, me.clone());
        async move { orders::inbox(&app.state, &me, &req).await.unwrap() }
    };
    let all = get(InboxRequest {
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&all), ["q-1", "q-2", "q-3", "q-4", "q-5"]);
    assert_eq!(
        (all.counts.all, all.counts.mine, all.counts.unclaimed),
        (5, 1, 4)
    );

    let largest = get(InboxRequest {
        sort: InboxSort::Largest,
        limit: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&largest), ["q-5", "q-2"]);
    let cursor: &'static str = Box::leak(largest.next.clone().unwrap().into_boxed_str());
    let rest = get(InboxRequest {
        sort: InboxSort::Largest,
        limit: 2,
        cursor: Some(cursor),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&rest), ["q-4", "q-1"]);
    let cursor: &'static str = Box::leak(rest.next.clone().unwrap().into_boxed_str());
    let last = get(InboxRequest {
        sort: InboxSort::Largest,
        limit: 2,
        cursor: Some(cursor),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&last), ["q-3"]);
    assert_eq!(last.next, None);

    let range = get(InboxRequest {
        min: Some(Cents(20_000)),
        max: Some(Cents(90_000)),
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&range), ["q-1", "q-2", "q-4"]);
    assert_eq!(range.counts.all, 3);
    let ann = get(InboxRequest {
        search: Some("ANN@"),
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&ann), ["q-1", "q-4"]);
    let by_id = get(InboxRequest {
        search: Some("q-3"),
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&by_id), ["q-3"]);
    let wildcard = get(InboxRequest {
        search: Some("%"),
        limit: 50,
        ..Default::default()
    })
    .await;
    assert!(
        ids(&wildcard).is_empty(),
        "LIKE wildcards are taken literally"
    );
    let mine = get(InboxRequest {
        view: InboxView::Mine,
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&mine), ["q-4"]);
    let unclaimed = get(InboxRequest {
        view: InboxView::Unclaimed,
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&unclaimed).len(), 4);
    let old = get(InboxRequest {
        waited_minutes: Some(60),
        limit: 50,
        ..Default::default()
    })
    .await;
    assert!(ids(&old).is_empty(), "nothing has waited an hour");
    let bad = orders::inbox(
        &app.state,
        &me,
        &InboxRequest {
            cursor: Some("nonsense"),
            limit: 5,
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(
        bad,
        Err(OrderError::Invalid {
            field: "cursor",
            ..
        })
    ));
}

#[tokio::test]
async fn bulk_approval_decides_each_order_once_and_reports_each() {
    let app = spawn_app().await;
    orderflow::auth::set_profile(app.state.db(), "approver", Some("ann@example.com"), None)
        .await
        .unwrap();
    place(&app, "b-1", "300", "x@example.com").await;
    place(&app, "b-2", "300", "ann@example.com").await;
    place(&app, "b-3", "300", "y@example.com").await;

    // Over HTTP, as the inbox page calls it, signed in as the approver.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = format!("http://{}", app.addr);
    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login = action(&html, "login");
    let res = client
        .post(app.url(&login))
        .header("origin", &origin)
        .header("accept", "text/html")
        .form(&[("username", "approver"), ("password", "approver-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302);
    let html = client
        .get(app.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("b-1") && html.contains("b-3"), "{html}");
    let bulk = <orderflow::app::calls::BulkApprove as leptos::server_fn::ServerFn>::PATH;
    let post = |ids: &'static str| {
        let (client, origin) = (client.clone(), origin.clone());
        let url = app.url(bulk);
        async move {
            let res = client
                .post(url)
                .header("origin", origin)
                .header("accept", "application/json")
                .form(&[("order_ids", ids), ("comment", "")])
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, outcomes) = post("b-1,b-2,b-3,b-1,nope").await;
    assert_eq!(status, 200, "{outcomes}");
    let summary: Vec<(String, bool)> = outcomes
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_id"].as_str().unwrap().to_string(),
                o["approved"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("b-1".to_string(), true),
            ("b-2".to_string(), false),
            ("b-3".to_string(), true),
            ("b-1".to_string(), false),
            ("nope".to_string(), false)
        ]
    );
    assert!(outcomes[1]["message"]
        .as_str()
        .unwrap()
        .contains("your e-mail"));
    assert!(outcomes[3]["message"]
        .as_str()
        .unwrap()
        .contains("already decided"));
    assert_eq!(order(&app, "b-1").await.status.as_str(), "processed");
    assert_eq!(
        order(&app, "b-2").await.status.as_str(),
        "awaiting_approval"
    );
    assert_eq!(
        trail_actions(&app, "b-1").await,
        ["workflow waiting", "approver approved"]
    );

    let stranger = reqwest::Client::new();
    let res = stranger
        .post(app.url(bulk))
        .header("accept", "application/json")
        .form(&[("order_ids", "b-2")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        order(&app, "b-2").await.status.as_str(),
        "awaiting_approval"
    );
}

/// The `action` of the form posting to the server function `name`.
fn action(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("action=\"/api/{name}"))
        .unwrap_or_else(|| panic!("no form for {name}"))
        + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

#[tokio::test]
async fn the_live_feed_needs_a_session_and_reports_changes() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/live")).await.unwrap();
    assert_eq!(res.status().as_u16(), 401);

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(app.url(&action(&html, "login")))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "text/html")
        .form(&[("username", "approver"), ("password", "approver-password")])
        .send()
        .await
        .unwrap();
    let mut feed = client.get(app.url("/live")).send().await.unwrap();
    assert_eq!(feed.status().as_u16(), 200);
    assert!(feed.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    place(&app, "live-1", "500", "c@example.com").await;
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), feed.chunk())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("data: "), "{text}");
}

/// A decision runs the workflow's next steps without a savepoint of their own; when one of
/// their tasks fails, the whole decision is undone and made again with one, so the task's
/// failure is recorded as AWS records it and the decision is recorded once.
#[tokio::test]
async fn a_decision_whose_next_task_fails_is_made_again_and_recorded_once() {
    let app = spawn_app().await;
    let id = place(&app, "broken-1", "500", "cy@example.com").await;
    // Nothing may mark an order processed: the workflow's "Process the Order" task fails.
    let mut tx = app.state.db().begin().await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_processing BEFORE UPDATE OF status ON orders
         WHEN new.status = 'processed' BEGIN SELECT RAISE(IGNORE); END",
    )
    .execute(&mut **tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let reruns = || {
        app.state
            .runtime
            .metrics()
            .reruns
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = reruns();
    let colleague = approver(&app, "colleague").await;
    let decided = orders::decide(&app.state, &id, &approve(), &colleague)
        .await
        .unwrap();
    // Undone twice: the decision without a savepoint, then its guarded run's steps before
    // they ran one by one.
    assert_eq!(reruns(), before + 2);
    // The failed task failed the execution, and the order with it.
    assert_eq!(decided.status.as_str(), "rejected");
    let execution = app
        .state
        .runtime
        .describe_execution(&decided.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(execution.status, "FAILED");
    assert_eq!(execution.error.as_deref(), Some("OrderStateMismatch"));
    let approvals = trail_actions(&app, &id)
        .await
        .into_iter()
        .filter(|a| a == "colleague approved")
        .count();
    assert_eq!(approvals, 1, "{:?}", trail_actions(&app, &id).await);
}

/// The order domain keeps time by the runtime's clock, as the workflow does: an order placed,
/// awaited, claimed, decided and processed at a time the clock was set to records that time
/// everywhere, and what is due is judged by it.
#[tokio::test]
async fn orders_keep_time_by_the_runtime_clock() {
    let policy = ApprovalPolicy {
        timeout_seconds: 3600,
        ..ApprovalPolicy::default()
    };
    // Years away from the machine's time, so that no system-clock reading can pass for it.
    let start = time::macros::datetime!(2031-03-04 05:06:07.089 UTC);
    let clock = ManualClock::at(start);
    let app = spawn_app_on(policy, &clock).await;
    let id = place(&app, "clocked-1", "500", "c@example.com").await;
    let placed = order(&app, &id).await;
    assert_eq!(placed.created_at, "2031-03-04T05:06:07.089Z");
    assert_eq!(
        placed.awaiting_since.as_deref(),
        Some("2031-03-04T05:06:07.089Z")
    );
    assert_eq!(placed.due_at.as_deref(), Some("2031-03-04T06:06:07.089Z"));
    let due = orders::dashboard(&app.state, 7).await.unwrap().due_soon;
    assert_eq!(
        due.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()],
        "due within four hours of the clock's time"
    );

    clock.advance(std::time::Duration::from_secs(60));
    let ana = user(&app, "approver").await;
    let claimed = orders::change_claim(&app.state, &id, ClaimChange::Claim, &ana)
        .await
        .unwrap();
    assert_eq!(
        claimed.claimed_at.as_deref(),
        Some("2031-03-04T05:07:07.089Z")
    );
    clock.advance(std::time::Duration::from_secs(60));
    let decided = orders::decide(&app.state, &id, &approve(), &ana)
        .await
        .unwrap();
    let decision = decided.decision.expect("decided");
    assert_eq!(decision.at, "2031-03-04T05:08:07.089Z");
    let trail: Vec<String> = orders::trail(&app.state, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.at)
        .collect();
    assert_eq!(
        trail,
        [
            "2031-03-04T05:06:07.089Z",
            "2031-03-04T05:07:07.089Z",
            "2031-03-04T05:08:07.089Z"
        ]
    );
    let execution = app
        .state
        .runtime
        .describe_execution(&placed.execution_id)
        .await
        .unwrap()
        .unwrap();
    let output = execution.output.expect("the workflow ended");
    assert_eq!(
        output["processing"]["processedAt"],
        "2031-03-04T05:08:07.089Z"
    );
}
