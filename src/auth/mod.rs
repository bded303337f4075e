//! Accounts: approvers and admins with argon2 passwords, browser sessions (rotated at login,
//! ended when the user's credentials or role change; failed sign-ins throttled per account and
//! per client), API bearer tokens, and the CSRF guard for cookie-authenticated requests.
//! Every change a person makes is audited on its own transaction.

pub mod csrf;
pub mod password;
mod tokens;
mod users;

pub use tokens::{
    api_tokens, check_api_token, create_api_token, issue_api_token, revoke_api_token, TokenRefused,
};
pub use users::{
    access_key_owner, access_key_secret, access_key_used, access_keys, active_user, add_user,
    all_users, checked_email, create_access_key, create_user, issue_access_key, reset_password,
    revoke_access_key, set_disabled, set_profile, set_role, update_user, usernames, Profile,
};

use crate::model::{CurrentUser, Role};
use crate::state::AppState;
use crate::throttle::retry_after_seconds;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tower_sessions::Session;

/// Where a session keeps who signed in on it.
const SESSION_USER: &str = "signed_in";

/// Who signed in on a session, and under which of their session epochs: a password reset,
/// a disable or a role change moves the user to a new epoch, which ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SignedIn {
    user_id: i64,
    epoch: i64,
}

/// Who makes an audited change: the audit log names them.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in user, at the console.
    User(&'a CurrentUser),
    /// Someone on the host, with the `orderflow` command.
    CommandLine,
}

impl Actor<'_> {
    /// The name the audit log records. Usernames cannot hold spaces or parentheses, so the
    /// command line's is never mistaken for an account.
    pub fn name(&self) -> &str {
        match self {
            Actor::User(user) => &user.username,
            Actor::CommandLine => "(command line)",
        }
    }
}

/// Writes the audit row of a change on the change's transaction.
async fn audit(
    tx: &mut sqlx::SqliteConnection,
    by: Actor<'_>,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<(), AuthError> {
    crate::console::audit_in(tx, by.name(), action, target, detail).await?;
    Ok(())
}

/// What went wrong with an account operation; messages are fit to show.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Wrong username or password.")]
    WrongCredentials,
    #[error(
        "Too many failed sign-ins. Please wait {} seconds and try again.",
        retry_after_seconds(*.0)
    )]
    Throttled(Duration),
    #[error("Please sign in.")]
    NotSignedIn,
    #[error("You need the {0} role to do this.")]
    Forbidden(&'static str),
    #[error("Invalid username '{0}': use 1 to 64 lower-case letters, digits, '.', '_' or '-'.")]
    InvalidUsername(String),
    #[error(
        "The password must be at least {} characters long.",
        password::MIN_PASSWORD_LEN
    )]
    WeakPassword,
    #[error("A user named '{0}' already exists.")]
    UserExists(String),
    #[error("No user named '{0}'.")]
    NoSuchUser(String),
    #[error("'{0}' is not an e-mail address.")]
    InvalidEmail(String),
    #[error("An approval limit cannot be negative.")]
    InvalidLimit,
    #[error("A token expires after 1 to {} days.", crate::model::MAX_TOKEN_DAYS)]
    InvalidExpiry,
    #[error("No API token {0}.")]
    NoSuchToken(i64),
    #[error("No access key {0}.")]
    NoSuchAccessKey(String),
    #[error("The session store failed: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("Password hashing failed.")]
    Hashing,
    #[error("Database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Checks the password and signs the user in on this session, under a new session id.
/// Failed attempts count against the username and the client (`crate::throttle`); over
/// either limit the attempt is refused before the password is checked, right or not.
pub async fn login(
    state: &AppState,
    session: &Session,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<CurrentUser, AuthError> {
    let (by_account, by_client) = (
        &state.throttles.sign_in_by_account,
        &state.throttles.sign_in_by_client,
    );
    let account = username.to_string();
    let client = crate::throttle::client_key(client);
    // Counted before checking, so parallel guesses cannot all slip under the limit; a
    // success takes its count back.
    let now = Instant::now();
    by_client.take(&client, now).map_err(AuthError::Throttled)?;
    if let Err(wait) = by_account.take(&account, now) {
        by_client.refund(&client);
        return Err(AuthError::Throttled(wait));
    }
    let verified = match users::verify_password(state.db(), username, password).await {
        Ok(verified) => verified,
        Err(e) => {
            by_client.refund(&client);
            by_account.refund(&account);
            return Err(e);
        }
    };
    let Some((user, epoch)) = verified else {
        tracing::info!(username, %client, "sign-in failed");
        return Err(AuthError::WrongCredentials);
    };
    by_client.refund(&client);
    by_account.forget(&account);
    session.cycle_id().await?;
    let signed_in = SignedIn {
        user_id: user.id,
        epoch,
    };
    session.insert(SESSION_USER, signed_in).await?;
    tracing::info!(user = %user.username, "signed in");
    Ok(user)
}

/// Ends the session.
pub async fn logout(session: &Session) -> Result<(), AuthError> {
    session.flush().await?;
    Ok(())
}

/// The user signed in on this session, if any. A session whose user has been disabled, or
/// whose password or role changed since it signed in, is ended here.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<CurrentUser>, AuthError> {
    let Some(signed_in) = session.get::<SignedIn>(SESSION_USER).await? else {
        return Ok(None);
    };
    match users::by_id(state.db(), signed_in.user_id).await? {
        Some((user, epoch)) if epoch == signed_in.epoch => Ok(Some(user)),
        _ => {
            tracing::info!(
                user_id = signed_in.user_id,
                "session ended: credentials changed"
            );
            session.flush().await?;
            Ok(None)
        }
    }
}

/// The signed-in user, who must hold `role` (admins hold every role).
pub async fn require(
    state: &AppState,
    session: &Session,
    role: Role,
) -> Result<CurrentUser, AuthError> {
    let user = current_user(state, session)
        .await?
        .ok_or(AuthError::NotSignedIn)?;
    if role == Role::Admin && !user.role.is_admin() {
        return Err(AuthError::Forbidden("admin"));
    }
    Ok(user)
}
