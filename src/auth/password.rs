//! Password hashing with argon2id: explicit parameters, run off the async threads, and a
//! dummy verification for unknown users so that timing does not reveal who exists.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// A PHC-format argon2id hash. It neither prints nor serialises.
pub struct PasswordHashString(String);

impl PasswordHashString {
    pub fn from_stored(s: String) -> PasswordHashString {
        PasswordHashString(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashString(…)")
    }
}

/// Minimum password length for new accounts.
pub const MIN_PASSWORD_LEN: usize = 12;

fn hasher() -> Argon2<'static> {
    // OWASP's recommended argon2id setting: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash that no password matches, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3iM2nyjJ6UQYkG9cPEZOanH3Xm8oJmJuWjbD54Bhtt0";

/// Hashes a password (CPU-heavy: runs on the blocking pool).
pub async fn hash(password: String) -> Result<PasswordHashString, argon2::password_hash::Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHashString(h.to_string()))
    })
    .await
    .unwrap_or(Err(argon2::password_hash::Error::Crypto))
}

/// Checks a password against a stored hash, or against a dummy hash when `stored` is `None`
/// (always false then, but it takes as long).
pub async fn verify(password: String, stored: Option<PasswordHashString>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let text = stored
            .map(|s| s.0)
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let Ok(parsed) = PasswordHash::new(&text) else {
            return false;
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.as_str().starts_with("$argon2id$"));
        let again = PasswordHashString::from_stored(h.as_str().to_string());
        assert!(verify("correct horse battery".into(), Some(h)).await);
        assert!(!verify("wrong horse battery".into(), Some(again)).await);
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify("anything at all".into(), None).await);
    }

    #[test]
    fn hashes_do_not_print() {
        let h = PasswordHashString::from_stored("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
