//! Start-up in one place: from a `Config` to a listening app — database, workflow runtime and
//! its worker, throttles, sessions, routes and the HTTP edge around them. The binary and the
//! tests both build the app here.

use crate::app::{shell, App as UiApp};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::{Clock, Registry, Runtime, SystemClock};
use crate::state::AppState;
use crate::throttle::Throttles;
use crate::{api, auth, edge, orders};
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

/// The application, bound to its address and ready to serve.
pub struct Server {
    pub state: AppState,
    listener: TcpListener,
    router: Router,
}

/// Opens the database, applies migrations, loads the order workflow and starts the runtime's
/// worker (which resumes whatever was running before).
pub async fn state(config: Config, leptos_options: LeptosOptions) -> anyhow::Result<AppState> {
    state_on(config, leptos_options, Arc::new(SystemClock)).await
}

/// [`state`] with the runtime reading the time from `clock`.
pub async fn state_on(
    config: Config,
    leptos_options: LeptosOptions,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let db = Db::open(&config.database_url).await?;
    let mut registry = Registry::new();
    orders::handlers::register(&mut registry, config.approval);
    let runtime = Runtime::with_clock(db, registry, clock);
    runtime
        .put_state_machine(orders::WORKFLOW, orders::WORKFLOW_DEFINITION)
        .await?;
    runtime.spawn_worker();
    orders::search::spawn_indexer(runtime.db().clone());
    Ok(AppState {
        leptos_options,
        runtime,
        throttles: Arc::new(Throttles::new(&config.limits)),
        config: Arc::new(config),
    })
}

impl Server {
    /// Builds everything and binds `addr` (port 0 picks a free port).
    pub async fn build(
        config: Config,
        leptos_options: LeptosOptions,
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        Server::build_on(config, leptos_options, addr, Arc::new(SystemClock)).await
    }

    /// [`Server::build`] with the workflow runtime on `clock` (tests move a manual one).
    pub async fn build_on(
        config: Config,
        leptos_options: LeptosOptions,
        addr: SocketAddr,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Server> {
        let secure = config.secure_cookies;
        let state = state_on(config, leptos_options, clock).await?;
        let store = SqliteStore::new(state.db().sessions.clone());
        store.migrate().await?;
        tokio::spawn({
            let store = store.clone();
            async move {
                use tower_sessions::session_store::ExpiredDeletion;
                if let Err(e) = store
                    .continuously_delete_expired(std::time::Duration::from_secs(300))
                    .await
                {
                    tracing::error!(error = %e, "expired-session cleanup stopped");
                }
            }
        });
        let sessions = SessionManagerLayer::new(store)
            .with_secure(secure)
            .with_same_site(tower_sessions::cookie::SameSite::Lax)
            .with_http_only(true)
            .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));

        let routes = generate_route_list(UiApp);
        let context = {
            let state = state.clone();
            move || {
                provide_context(state.clone());
                edge::set_page_policy();
            }
        };
        // Outermost last: every response gets the security headers, and a body is read and
        // bounded before sessions, the CSRF guard or a handler see the request.
        let router = Router::new()
            .merge(api::router())
            .merge(crate::sfn::router())
            .leptos_routes_with_context(&state, routes, context.clone(), {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler_with_context::<
                AppState,
                _,
            >(context, shell))
            .layer(from_fn(auth::csrf::guard))
            .layer(sessions)
            .layer(from_fn(edge::limit_body))
            .layer(DefaultBodyLimit::max(edge::SFN_BODY_LIMIT))
            .layer(from_fn(edge::security_headers))
            .layer(from_fn(crate::metrics::track_http))
            .layer(TraceLayer::new_for_http())
            .with_state(state.clone());
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            state,
            listener,
            router,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until Ctrl-C / SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        let limits = self.state.config.limits.clone();
        edge::serve(self.listener, self.router, &limits, shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
