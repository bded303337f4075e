//! Shared test set-up: the real app on a loopback port over a temporary SQLite file.
#![allow(dead_code)]

pub mod binary;
pub mod flow;
pub mod sfn;

use orderflow::config::{ApprovalPolicy, Config, Limits};
use orderflow::model::Role;
use orderflow::runtime::{Clock, ManualClock, SystemClock};
use orderflow::server::Server;
use orderflow::state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    pub approver_token: String,
    pub admin_token: String,
    /// The token of "shop", the integrating system that places orders in tests (nobody may
    /// decide an order they placed, so it is neither the approver nor the admin).
    pub shop_token: String,
    _dir: tempfile::TempDir,
}

pub fn leptos_options() -> leptos::config::LeptosOptions {
    leptos::config::get_configuration(Some("Cargo.toml"))
        .expect("Cargo.toml has [package.metadata.leptos]")
        .leptos_options
}

/// Starts the app on port 0 with a fresh database, an approver and an admin with API tokens.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApprovalPolicy::default()).await
}

/// [`spawn_app`] with another approval policy.
pub async fn spawn_app_with(policy: ApprovalPolicy) -> TestApp {
    spawn_app_configured(|config| config.approval = policy).await
}

/// [`spawn_app`] with other limits (connections, timeouts, throttles).
pub async fn spawn_app_with_limits(limits: Limits) -> TestApp {
    spawn_app_configured(|config| config.limits = limits).await
}

/// [`spawn_app_with`] whose workflow runtime reads the time from `clock`: workflow timers fire
/// when the test moves it (and tells the worker, see [`TestApp::advance`]).
pub async fn spawn_app_on(policy: ApprovalPolicy, clock: &ManualClock) -> TestApp {
    let clock = Arc::new(clock.clone());
    spawn_app_on_clock(|config| config.approval = policy, clock).await
}

async fn spawn_app_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on_clock(configure, Arc::new(SystemClock)).await
}

async fn spawn_app_on_clock(configure: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
    let mut config = Config::for_database(url);
    configure(&mut config);
    let addr = "127.0.0.1:0".parse().unwrap();
    let server = Server::build_on(config, leptos_options(), addr, clock)
        .await
        .expect("app builds");
    let addr = server.local_addr().unwrap();
    let state = server.state.clone();
    tokio::spawn(server.run());
    let db = state.db();
    orderflow::auth::create_user(db, "approver", Role::Approver, "approver-password")
        .await
        .unwrap();
    orderflow::auth::create_user(db, "admin", Role::Admin, "admin-password-1")
        .await
        .unwrap();
    let approver_token = orderflow::auth::create_api_token(db, "approver")
        .await
        .unwrap();
    let admin_token = orderflow::auth::create_api_token(db, "admin")
        .await
        .unwrap();
    orderflow::auth::create_user(db, "shop", Role::Approver, "shop-password-1")
        .await
        .unwrap();
    let shop_token = orderflow::auth::create_api_token(db, "shop").await.unwrap();
    TestApp {
        addr,
        state,
        client: reqwest::Client::new(),
        approver_token,
        admin_token,
        shop_token,
        _dir: dir,
    }
}

impl TestApp {
    /// Moves `clock` (the one the app was spawned on) on by `by` and wakes the worker, so
    /// that what fell due runs.
    pub fn advance(&self, clock: &ManualClock, by: Duration) {
        clock.advance(by);
        self.state.runtime.wake();
    }

    /// Waits until `done` holds, looking again after each commit the runtime reports; fails
    /// after 10 s without one.
    pub async fn wait_until<F, Fut>(&self, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut changes = self.state.runtime.subscribe();
        while !done().await {
            let changed = tokio::time::timeout(Duration::from_secs(10), changes.changed()).await;
            assert!(changed.is_ok(), "nothing changed for 10 s");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Places an order through the REST API as "shop"; returns the order (201 asserted).
    pub async fn place_order(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, order) = self
            .post_json("/api/orders", Some(&self.shop_token), &body.to_string())
            .await;
        assert_eq!(status, 201, "{order}");
        order
    }

    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.state.db().reader)
            .await
            .unwrap()
    }
}
