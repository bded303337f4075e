//! The one application state handed to axum handlers and Leptos server functions.

use crate::config::Config;
use crate::db::Db;
use crate::runtime::Runtime;
use crate::throttle::Throttles;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub runtime: Runtime,
    pub config: Arc<Config>,
    /// Sign-in and storefront throttles, `/live` stream slots.
    pub throttles: Arc<Throttles>,
}

impl AppState {
    pub fn db(&self) -> &Db {
        self.runtime.db()
    }
}

/// For server functions: the state provided through Leptos' context.
pub fn app_state() -> Result<AppState, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| leptos::prelude::ServerFnError::new("application state is missing"))
}
