//! API bearer tokens: random, shown once, stored only as their SHA-256; optionally expiring,
//! refused once their user is disabled, listed with when they were last used, and revocable.

use super::users::{user_from_row, user_id};
use super::{audit, Actor, AuthError};
use crate::db::{self, Db};
use crate::model::{ApiToken, CurrentUser, NewApiToken, MAX_TOKEN_DAYS};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

/// Why a bearer token is refused; each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("The API token is not valid: it was never issued or has been revoked.")]
    Unknown,
    #[error("The API token expired at {0}; ask an admin for a new one.")]
    Expired(String),
    #[error("The API token belongs to a disabled user.")]
    OwnerDisabled,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a token that expires at `expires_at`, of a user disabled or not, is refused at
/// `now` (all times as stored).
fn refusal(expires_at: Option<&str>, owner_disabled: bool, now: &str) -> Option<TokenRefused> {
    if owner_disabled {
        return Some(TokenRefused::OwnerDisabled);
    }
    match expires_at {
        Some(at) if at <= now => Some(TokenRefused::Expired(at.to_string())),
        _ => None,
    }
}

/// When a token made now for `days` days expires, as stored.
fn expiry(days: Option<u32>) -> Result<Option<String>, AuthError> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => Ok(Some(db::format_time(
            time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)),
        ))),
        Some(_) => Err(AuthError::InvalidExpiry),
    }
}

async fn insert_token(
    conn: &mut SqliteConnection,
    username: &str,
    expires_at: Option<&str>,
) -> Result<(i64, String), AuthError> {
    use rand::RngCore;
    let user_id = user_id(conn, username).await?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("of_{}", hex::encode(bytes));
    let id = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)
         RETURNING id",
    )
    .bind(user_id)
    .bind(token_hash(&token))
    .bind(db::now())
    .bind(expires_at)
    .fetch_one(conn)
    .await?;
    Ok((id, token))
}

/// A new API token for `username`, expiring after `expires_in_days` (`None`: never), audited
/// as `create API token`. The token is in the answer and nowhere else.
pub async fn issue_api_token(
    db: &Db,
    by: Actor<'_>,
    username: &str,
    expires_in_days: Option<u32>,
) -> Result<NewApiToken, AuthError> {
    let expires_at = expiry(expires_in_days)?;
    let mut tx = db.begin().await?;
    let (id, token) = insert_token(&mut tx, username, expires_at.as_deref()).await?;
    let detail = expires_at.as_ref().map(|at| format!("expires {at}"));
    audit(&mut tx, by, "create API token", username, detail.as_deref()).await?;
    tx.commit().await?;
    Ok(NewApiToken {
        id,
        token,
        username: username.to_string(),
        expires_at,
    })
}

/// A new API token that never expires, without an audit row: for set-up code and tests.
/// Tokens a person asks for come from [`issue_api_token`].
pub async fn create_api_token(db: &Db, username: &str) -> Result<String, AuthError> {
    let mut tx = db.begin().await?;
    let token = insert_token(&mut tx, username, None).await?.1;
    tx.commit().await?;
    Ok(token)
}

/// Revokes token `id` at once, audited as `revoke API token` (target its user).
pub async fn revoke_api_token(db: &Db, by: Actor<'_>, id: i64) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    let owner: String = sqlx::query_scalar(
        "SELECT u.username FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AuthError::NoSuchToken(id))?;
    sqlx::query("DELETE FROM api_tokens WHERE id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let detail = format!("token {id}");
    audit(&mut tx, by, "revoke API token", &owner, Some(&detail)).await?;
    tx.commit().await?;
    Ok(())
}

/// Every API token with its user, newest first (the tokens themselves are not stored).
pub async fn api_tokens(db: &Db) -> Result<Vec<ApiToken>, AuthError> {
    let now = db::now();
    let rows = sqlx::query(
        "SELECT t.id, u.username, t.created_at, t.last_used_at, t.expires_at,
                u.disabled_at IS NOT NULL AS owner_disabled
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         ORDER BY t.created_at DESC, t.id DESC",
    )
    .fetch_all(&db.reader)
    .await?;
    rows.iter()
        .map(|row| {
            let expires_at: Option<String> = row.try_get("expires_at")?;
            Ok(ApiToken {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                expired: expires_at.as_deref().is_some_and(|at| at <= now.as_str()),
                expires_at,
                owner_disabled: row.try_get("owner_disabled")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The user an API token acts for, or why it is refused. Notes the use, at most once a minute
/// per token and in the background: the request never waits for that write.
pub async fn check_api_token(
    db: &Db,
    token: &str,
) -> Result<Result<CurrentUser, TokenRefused>, AuthError> {
    let row = sqlx::query(
        "SELECT t.id AS token_id, t.expires_at, t.last_used_at,
                u.disabled_at IS NOT NULL AS owner_disabled,
                u.id, u.username, u.role, u.email, u.approval_limit_cents
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ?",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.reader)
    .await?;
    let Some(row) = row else {
        return Ok(Err(TokenRefused::Unknown));
    };
    let now = time::OffsetDateTime::now_utc();
    let expires_at: Option<String> = row.try_get("expires_at")?;
    let owner_disabled: bool = row.try_get("owner_disabled")?;
    if let Some(refused) = refusal(expires_at.as_deref(), owner_disabled, &db::format_time(now)) {
        return Ok(Err(refused));
    }
    let token_id: i64 = row.try_get("token_id")?;
    let last_used: Option<String> = row.try_get("last_used_at")?;
    let stale = db::format_time(now - time::Duration::minutes(1));
    if last_used.is_none_or(|at| at < stale) {
        let sql = "UPDATE api_tokens SET last_used_at = ?
                   WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)";
        db::write_behind(db, sql, [db::format_time(now), token_id.to_string(), stale]);
    }
    Ok(Ok(user_from_row(&row)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_tokens_and_disabled_owners_are_refused() {
        let now = "2026-12-02T10:00:00.000Z";
        assert_eq!(refusal(None, false, now), None);
        assert_eq!(refusal(Some("2026-12-02T10:00:00.001Z"), false, now), None);
        assert_eq!(
            refusal(Some(now), false, now),
            Some(TokenRefused::Expired(now.to_string()))
        );
        assert_eq!(
            refusal(Some("2027-01-01T00:00:00.000Z"), true, now),
            Some(TokenRefused::OwnerDisabled)
        );
    }

    #[test]
    fn expiry_is_between_one_day_and_ten_years() {
        assert!(matches!(expiry(None), Ok(None)));
        assert!(matches!(expiry(Some(1)), Ok(Some(_))));
        assert!(matches!(expiry(Some(MAX_TOKEN_DAYS)), Ok(Some(_))));
        assert!(matches!(expiry(Some(0)), Err(AuthError::InvalidExpiry)));
        assert!(matches!(
            expiry(Some(MAX_TOKEN_DAYS + 1)),
            Err(AuthError::InvalidExpiry)
        ));
    }
}
