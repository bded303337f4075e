//! The users, API token and access key tables.

use super::password::{self, PasswordHashString};
use super::AuthError;
use crate::db::{self, Db};
use crate::model::{AccessKey, Cents, CurrentUser, Role, UserRow};
use sha2::{Digest, Sha256};
use sqlx::Row;

fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// An update of the user named `username` that found no such user is `NoSuchUser`.
fn one_user(done: sqlx::sqlite::SqliteQueryResult, username: &str) -> Result<(), AuthError> {
    match done.rows_affected() {
        0 => Err(AuthError::NoSuchUser(username.to_string())),
        _ => Ok(()),
    }
}

/// The columns `user_from_row` reads.
const USER_COLUMNS: &str = "id, username, role, email, approval_limit_cents";

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<CurrentUser, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(CurrentUser {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))?,
        email: row.try_get("email")?,
        approval_limit: row
            .try_get::<Option<i64>, _>("approval_limit_cents")?
            .map(Cents),
    })
}

async fn hash_checked(password: &str) -> Result<PasswordHashString, AuthError> {
    if password.chars().count() < password::MIN_PASSWORD_LEN {
        return Err(AuthError::WeakPassword);
    }
    password::hash(password.to_string())
        .await
        .map_err(|_| AuthError::Hashing)
}

/// Adds a user. Refuses a bad name, a short password or an existing name.
pub async fn create_user(
    db: &Db,
    username: &str,
    role: Role,
    password: &str,
) -> Result<CurrentUser, AuthError> {
    if !valid_username(username) {
        return Err(AuthError::InvalidUsername(username.to_string()));
    }
    let hash = hash_checked(password).await?;
    let inserted = sqlx::query(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(hash.as_str())
    .bind(role.as_str())
    .bind(db::now())
    .fetch_optional(&db.writer)
    .await?;
    let row = inserted.ok_or_else(|| AuthError::UserExists(username.to_string()))?;
    Ok(CurrentUser {
        id: row.try_get("id")?,
        username: username.to_string(),
        role,
        email: None,
        approval_limit: None,
    })
}

/// An e-mail address as stored (trimmed, lower case; `None` if blank), or why it is refused.
pub fn checked_email(email: Option<&str>) -> Result<Option<String>, AuthError> {
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    match email {
        Some(e) if e.len() > 254 || !e.contains('@') || e.chars().any(char::is_whitespace) => {
            Err(AuthError::InvalidEmail(e.to_string()))
        }
        e => Ok(e.map(str::to_lowercase)),
    }
}

/// Sets a user's e-mail (never theirs to decide: orders placed with it) and approval limit
/// (`None`: no limit).
pub async fn set_profile(
    db: &Db,
    username: &str,
    email: Option<&str>,
    approval_limit: Option<Cents>,
) -> Result<(), AuthError> {
    let email = checked_email(email)?;
    if approval_limit.is_some_and(|l| l.0 < 0) {
        return Err(AuthError::InvalidLimit);
    }
    let done =
        sqlx::query("UPDATE users SET email = ?, approval_limit_cents = ? WHERE username = ?")
            .bind(email)
            .bind(approval_limit.map(|l| l.0))
            .bind(username)
            .execute(&db.writer)
            .await?;
    one_user(done, username)
}

/// Replaces a user's password.
pub async fn set_password(db: &Db, username: &str, password: &str) -> Result<(), AuthError> {
    let hash = hash_checked(password).await?;
    let done = sqlx::query("UPDATE users SET password_hash = ? WHERE username = ?")
        .bind(hash.as_str())
        .bind(username)
        .execute(&db.writer)
        .await?;
    one_user(done, username)
}

/// The user named `username` if they exist and are not disabled.
pub async fn active_user(db: &Db, username: &str) -> Result<Option<CurrentUser>, AuthError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ? AND disabled_at IS NULL"
    ))
    .bind(username)
    .fetch_optional(&db.reader)
    .await?;
    row.as_ref()
        .map(user_from_row)
        .transpose()
        .map_err(Into::into)
}

/// The user if the password matches; None otherwise (same timing either way).
pub(super) async fn verify_password(
    db: &Db,
    username: &str,
    password: &str,
) -> Result<Option<CurrentUser>, AuthError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users
         WHERE username = ? AND disabled_at IS NULL"
    ))
    .bind(username)
    .fetch_optional(&db.reader)
    .await?;
    let stored = match &row {
        Some(r) => Some(PasswordHashString::from_stored(r.try_get("password_hash")?)),
        None => None,
    };
    if !password::verify(password.to_string(), stored).await {
        return Ok(None);
    }
    row.as_ref()
        .map(user_from_row)
        .transpose()
        .map_err(Into::into)
}

pub(super) async fn by_id(db: &Db, id: i64) -> Result<Option<CurrentUser>, AuthError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = ? AND disabled_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&db.reader)
    .await?;
    row.as_ref()
        .map(user_from_row)
        .transpose()
        .map_err(Into::into)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates an API token for `username` and returns it; only its hash is stored.
pub async fn create_api_token(db: &Db, username: &str) -> Result<String, AuthError> {
    use rand::RngCore;
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(&db.reader)
        .await?
        .ok_or_else(|| AuthError::NoSuchUser(username.to_string()))?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("of_{}", hex::encode(bytes));
    sqlx::query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)")
        .bind(user_id)
        .bind(token_hash(&token))
        .bind(db::now())
        .execute(&db.writer)
        .await?;
    Ok(token)
}

/// A new access key for the AWS-compatible API: `(access key id, secret access key)`.
pub async fn create_access_key(db: &Db, username: &str) -> Result<(String, String), AuthError> {
    use rand::Rng;
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(&db.reader)
        .await?
        .ok_or_else(|| AuthError::NoSuchUser(username.to_string()))?;
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rngs::OsRng;
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
            .collect()
    };
    let id = format!("AKOF{}", pick(UPPER, 16));
    let secret = pick(SECRET, 40);
    sqlx::query("INSERT INTO access_keys (id, secret, user_id, created_at) VALUES (?, ?, ?, ?)")
        .bind(&id)
        .bind(&secret)
        .bind(user_id)
        .bind(db::now())
        .execute(&db.writer)
        .await?;
    Ok((id, secret))
}

/// The secret of access key `id`, if it exists.
pub async fn access_key_secret(db: &Db, id: &str) -> Result<Option<String>, AuthError> {
    Ok(sqlx::query_scalar(
        "SELECT k.secret FROM access_keys k JOIN users u ON u.id = k.user_id
             WHERE k.id = ? AND u.disabled_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&db.reader)
    .await?)
}

/// The active user who owns access key `id`: what that key may do is what their role allows.
pub async fn access_key_owner(db: &Db, id: &str) -> Result<Option<CurrentUser>, AuthError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role, u.email, u.approval_limit_cents
         FROM access_keys k JOIN users u ON u.id = k.user_id
         WHERE k.id = ? AND u.disabled_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&db.reader)
    .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

/// Every access key with its owner, newest first (secrets left out).
pub async fn access_keys(db: &Db) -> Result<Vec<AccessKey>, AuthError> {
    let rows = sqlx::query(
        "SELECT k.id, u.username, k.created_at, k.last_used_at
         FROM access_keys k JOIN users u ON u.id = k.user_id
         ORDER BY k.created_at DESC, k.id",
    )
    .fetch_all(&db.reader)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccessKey {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Revokes access key `id` at once: requests signed with it are refused from now on. False if
/// there was no such key.
pub async fn delete_access_key(db: &Db, id: &str) -> Result<bool, AuthError> {
    let done = sqlx::query("DELETE FROM access_keys WHERE id = ?")
        .bind(id)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that access key `id` signed a request, at most once a minute per key (a write per
/// request would contend with the workflows for SQLite's one writer).
pub async fn access_key_used(db: &Db, id: &str) -> Result<(), AuthError> {
    let now = time::OffsetDateTime::now_utc();
    let stale = db::format_time(now - time::Duration::minutes(1));
    sqlx::query(
        "UPDATE access_keys SET last_used_at = ?
         WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )
    .bind(db::format_time(now))
    .bind(id)
    .bind(stale)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// Every account, alphabetically, disabled ones included.
pub async fn all_users(db: &Db) -> Result<Vec<UserRow>, AuthError> {
    let rows = sqlx::query(
        "SELECT username, role, email, approval_limit_cents, disabled_at, created_at
         FROM users ORDER BY username",
    )
    .fetch_all(&db.reader)
    .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            Ok(UserRow {
                username: r.try_get("username")?,
                role: Role::parse(&role)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))?,
                email: r.try_get("email")?,
                approval_limit: r
                    .try_get::<Option<i64>, _>("approval_limit_cents")?
                    .map(Cents),
                disabled: r.try_get::<Option<String>, _>("disabled_at")?.is_some(),
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Changes a user's role.
pub async fn set_role(db: &Db, username: &str, role: Role) -> Result<(), AuthError> {
    let done = sqlx::query("UPDATE users SET role = ? WHERE username = ?")
        .bind(role.as_str())
        .bind(username)
        .execute(&db.writer)
        .await?;
    one_user(done, username)
}

/// Disables a user (they are signed out, their tokens and keys stop working) or enables
/// them again.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<(), AuthError> {
    let done = sqlx::query(
        "UPDATE users SET disabled_at = CASE WHEN ? THEN COALESCE(disabled_at, ?) END
         WHERE username = ?",
    )
    .bind(disabled)
    .bind(db::now())
    .bind(username)
    .execute(&db.writer)
    .await?;
    one_user(done, username)
}

/// Every user's name, alphabetically.
pub async fn usernames(db: &Db) -> Result<Vec<String>, AuthError> {
    Ok(
        sqlx::query_scalar("SELECT username FROM users ORDER BY username")
            .fetch_all(&db.reader)
            .await?,
    )
}

/// The user an API token belongs to.
pub async fn user_for_token(db: &Db, token: &str) -> Result<Option<CurrentUser>, AuthError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role, u.email, u.approval_limit_cents
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ? AND u.disabled_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.reader)
    .await?;
    row.as_ref()
        .map(user_from_row)
        .transpose()
        .map_err(Into::into)
}
