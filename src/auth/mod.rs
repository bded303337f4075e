//! Accounts: approvers and admins with argon2 passwords, browser sessions (rotated at login),
//! API bearer tokens, and the CSRF guard for cookie-authenticated requests.

pub mod csrf;
pub mod password;
mod users;

pub use users::{
    access_key_owner, access_key_secret, access_key_used, access_keys, active_user, all_users,
    checked_email, create_access_key, create_api_token, create_user, delete_access_key,
    set_disabled, set_password, set_profile, set_role, user_for_token, usernames,
};

use crate::model::{CurrentUser, Role};
use crate::state::AppState;
use tower_sessions::Session;

const SESSION_USER: &str = "user_id";

/// What went wrong with an account operation; messages are fit to show.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Wrong username or password.")]
    WrongCredentials,
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
    #[error("The session store failed: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("Password hashing failed.")]
    Hashing,
    #[error("Database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Checks the password and signs the user in on this session, under a new session id.
pub async fn login(
    state: &AppState,
    session: &Session,
    username: &str,
    password: &str,
) -> Result<CurrentUser, AuthError> {
    let user = users::verify_password(state.db(), username, password)
        .await?
        .ok_or(AuthError::WrongCredentials)?;
    session.cycle_id().await?;
    session.insert(SESSION_USER, user.id).await?;
    tracing::info!(user = %user.username, "signed in");
    Ok(user)
}

/// Ends the session.
pub async fn logout(session: &Session) -> Result<(), AuthError> {
    session.flush().await?;
    Ok(())
}

/// The user signed in on this session, if any.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<CurrentUser>, AuthError> {
    let Some(id) = session.get::<i64>(SESSION_USER).await? else {
        return Ok(None);
    };
    users::by_id(state.db(), id).await
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
