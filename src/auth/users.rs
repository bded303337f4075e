//! The users and access key tables. Every change a person makes, at the console or the command
//! line, goes through a function here that takes the [`Actor`] and writes the audit row on the
//! change's own transaction; a change that fails leaves neither.

use super::password::{self, PasswordHashString};
use super::{audit, Actor, AuthError};
use crate::db::{self, Db};
use crate::model::{AccessKey, Cents, CurrentUser, Role, UserRow};
use sqlx::{Row, SqliteConnection};

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

pub(super) fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<CurrentUser, sqlx::Error> {
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

/// A user's e-mail (orders placed with it are never theirs to decide) and approval limit
/// (`None`: no limit), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    email: Option<String>,
    approval_limit: Option<Cents>,
}

impl Profile {
    /// Refuses a malformed e-mail or a negative limit.
    pub fn new(email: Option<&str>, approval_limit: Option<Cents>) -> Result<Profile, AuthError> {
        let email = checked_email(email)?;
        if approval_limit.is_some_and(|l| l.0 < 0) {
            return Err(AuthError::InvalidLimit);
        }
        Ok(Profile {
            email,
            approval_limit,
        })
    }

    /// As the audit log records it: `e-mail …, limit …`.
    fn describe(&self) -> String {
        format!(
            "e-mail {}, limit {}",
            self.email.as_deref().unwrap_or("none"),
            self.approval_limit
                .map_or_else(|| "none".to_string(), |l| l.to_string())
        )
    }
}

async fn insert_user(
    conn: &mut SqliteConnection,
    username: &str,
    role: Role,
    hash: &PasswordHashString,
    profile: &Profile,
) -> Result<CurrentUser, AuthError> {
    let inserted = sqlx::query(
        "INSERT INTO users (username, password_hash, role, email, approval_limit_cents, created_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(hash.as_str())
    .bind(role.as_str())
    .bind(&profile.email)
    .bind(profile.approval_limit.map(|l| l.0))
    .bind(db::now())
    .fetch_optional(conn)
    .await?;
    let row = inserted.ok_or_else(|| AuthError::UserExists(username.to_string()))?;
    Ok(CurrentUser {
        id: row.try_get("id")?,
        username: username.to_string(),
        role,
        email: profile.email.clone(),
        approval_limit: profile.approval_limit,
    })
}

async fn new_user_hash(username: &str, password: &str) -> Result<PasswordHashString, AuthError> {
    if !valid_username(username) {
        return Err(AuthError::InvalidUsername(username.to_string()));
    }
    hash_checked(password).await
}

/// Adds a user, audited as `add user`. Refuses a bad name, a short password or an existing
/// name.
pub async fn add_user(
    db: &Db,
    by: Actor<'_>,
    username: &str,
    role: Role,
    password: &str,
    profile: &Profile,
) -> Result<CurrentUser, AuthError> {
    // Hashing takes a while: done before the transaction holds the one writer.
    let hash = new_user_hash(username, password).await?;
    let mut tx = db.begin().await?;
    let user = insert_user(&mut tx, username, role, &hash, profile).await?;
    let detail = format!("role {}", role.as_str());
    audit(&mut tx, by, "add user", username, Some(&detail)).await?;
    tx.commit().await?;
    Ok(user)
}

/// Adds a user without an audit row: for set-up code and tests. Changes a person makes go
/// through [`add_user`].
pub async fn create_user(
    db: &Db,
    username: &str,
    role: Role,
    password: &str,
) -> Result<CurrentUser, AuthError> {
    let hash = new_user_hash(username, password).await?;
    let mut tx = db.begin().await?;
    let none = Profile::new(None, None)?;
    let user = insert_user(&mut tx, username, role, &hash, &none).await?;
    tx.commit().await?;
    Ok(user)
}

/// Sets a user's profile without an audit row: for set-up code and tests. Changes a person
/// makes go through [`update_user`].
pub async fn set_profile(
    db: &Db,
    username: &str,
    email: Option<&str>,
    approval_limit: Option<Cents>,
) -> Result<(), AuthError> {
    let profile = Profile::new(email, approval_limit)?;
    let mut tx = db.begin().await?;
    let done =
        sqlx::query("UPDATE users SET email = ?, approval_limit_cents = ? WHERE username = ?")
            .bind(&profile.email)
            .bind(profile.approval_limit.map(|l| l.0))
            .bind(username)
            .execute(&mut **tx)
            .await?;
    one_user(done, username)?;
    Ok(tx.commit().await?)
}

/// Sets a user's profile and, if given, their role; audited as `update user`. A new role ends
/// every session of theirs (what they may do changed); the profile applies at once.
pub async fn update_user(
    db: &Db,
    by: Actor<'_>,
    username: &str,
    role: Option<Role>,
    profile: &Profile,
) -> Result<(), AuthError> {
    let role = role.map(Role::as_str);
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET email = ?, approval_limit_cents = ?,
             session_epoch = session_epoch + (COALESCE(?, role) <> role),
             role = COALESCE(?, role)
         WHERE username = ?",
    )
    .bind(&profile.email)
    .bind(profile.approval_limit.map(|l| l.0))
    .bind(role)
    .bind(role)
    .bind(username)
    .execute(&mut **tx)
    .await?;
    one_user(done, username)?;
    let detail = match role {
        Some(role) => format!("role {role}, {}", profile.describe()),
        None => profile.describe(),
    };
    audit(&mut tx, by, "update user", username, Some(&detail)).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a user's role, audited as `update user`; a new role ends every session of theirs.
pub async fn set_role(db: &Db, by: Actor<'_>, username: &str, role: Role) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET session_epoch = session_epoch + (role <> ?), role = ?
         WHERE username = ?",
    )
    .bind(role.as_str())
    .bind(role.as_str())
    .bind(username)
    .execute(&mut **tx)
    .await?;
    one_user(done, username)?;
    let detail = format!("role {}", role.as_str());
    audit(&mut tx, by, "update user", username, Some(&detail)).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces a user's password, audited as `reset password`, and ends every session of theirs.
pub async fn reset_password(
    db: &Db,
    by: Actor<'_>,
    username: &str,
    password: &str,
) -> Result<(), AuthError> {
    let hash = hash_checked(password).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1
         WHERE username = ?",
    )
    .bind(hash.as_str())
    .bind(username)
    .execute(&mut **tx)
    .await?;
    one_user(done, username)?;
    audit(&mut tx, by, "reset password", username, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Disables a user (every session of theirs ends, their tokens and keys are refused) or
/// enables them again (their tokens and keys work again; their old sessions stay ended).
/// Audited as `disable user` or `enable user`.
pub async fn set_disabled(
    db: &Db,
    by: Actor<'_>,
    username: &str,
    disabled: bool,
) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET disabled_at = CASE WHEN ? THEN COALESCE(disabled_at, ?) END,
             session_epoch = session_epoch + ?
         WHERE username = ?",
    )
    .bind(disabled)
    .bind(db::now())
    .bind(i64::from(disabled))
    .bind(username)
    .execute(&mut **tx)
    .await?;
    one_user(done, username)?;
    let action = if disabled {
        "disable user"
    } else {
        "enable user"
    };
    audit(&mut tx, by, action, username, None).await?;
    tx.commit().await?;
    Ok(())
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

/// The user and their session epoch if the password matches; None otherwise (same timing
/// either way).
pub(super) async fn verify_password(
    db: &Db,
    username: &str,
    password: &str,
) -> Result<Option<(CurrentUser, i64)>, AuthError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash, session_epoch FROM users
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
    match row {
        Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("session_epoch")?))),
        None => Ok(None),
    }
}

/// The active user with id `id` and their session epoch.
pub(super) async fn by_id(db: &Db, id: i64) -> Result<Option<(CurrentUser, i64)>, AuthError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, session_epoch FROM users WHERE id = ? AND disabled_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&db.reader)
    .await?;
    match row {
        Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("session_epoch")?))),
        None => Ok(None),
    }
}

/// The id of the user named `username`.
pub(super) async fn user_id(conn: &mut SqliteConnection, username: &str) -> Result<i64, AuthError> {
    sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| AuthError::NoSuchUser(username.to_string()))
}

/// Makes a new access key for `username`: `(access key id, secret access key)`.
async fn insert_access_key(
    conn: &mut SqliteConnection,
    username: &str,
) -> Result<(String, String), AuthError> {
    use rand::Rng;
    let user_id = user_id(conn, username).await?;
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
        .execute(conn)
        .await?;
    Ok((id, secret))
}

/// A new access key for the AWS-compatible API, `(access key id, secret access key)`, audited
/// as `create access key`.
pub async fn issue_access_key(
    db: &Db,
    by: Actor<'_>,
    username: &str,
) -> Result<(String, String), AuthError> {
    let mut tx = db.begin().await?;
    let (id, secret) = insert_access_key(&mut tx, username).await?;
    audit(&mut tx, by, "create access key", &id, Some(username)).await?;
    tx.commit().await?;
    Ok((id, secret))
}

/// A new access key without an audit row: for set-up code and tests. Keys a person asks for
/// come from [`issue_access_key`].
pub async fn create_access_key(db: &Db, username: &str) -> Result<(String, String), AuthError> {
    let mut tx = db.begin().await?;
    let key = insert_access_key(&mut tx, username).await?;
    tx.commit().await?;
    Ok(key)
}

/// The secret of access key `id`, if it exists and its user is not disabled.
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

/// Revokes access key `id` at once (requests signed with it are refused from now on),
/// audited as `revoke access key` with its owner.
pub async fn revoke_access_key(db: &Db, by: Actor<'_>, id: &str) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    let owner: String = sqlx::query_scalar(
        "SELECT u.username FROM access_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| AuthError::NoSuchAccessKey(id.to_string()))?;
    sqlx::query("DELETE FROM access_keys WHERE id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    audit(&mut tx, by, "revoke access key", id, Some(&owner)).await?;
    tx.commit().await?;
    Ok(())
}

/// Notes that access key `id` signed a request, at most once a minute per key and in the
/// background: the request never waits for that write.
pub async fn access_key_used(db: &Db, id: &str) -> Result<(), AuthError> {
    let now = time::OffsetDateTime::now_utc();
    let stale = db::format_time(now - time::Duration::minutes(1));
    let last_used: Option<Option<String>> =
        sqlx::query_scalar("SELECT last_used_at FROM access_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&db.reader)
            .await?;
    if last_used.flatten().is_none_or(|at| at < stale) {
        let sql = "UPDATE access_keys SET last_used_at = ?
                   WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)";
        db::write_behind(db, sql, [db::format_time(now), id.to_string(), stale]);
    }
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

/// Every user's name, alphabetically.
pub async fn usernames(db: &Db) -> Result<Vec<String>, AuthError> {
    Ok(
        sqlx::query_scalar("SELECT username FROM users ORDER BY username")
            .fetch_all(&db.reader)
            .await?,
    )
}
