//! Configuration: command-line flags with environment fallbacks, built once at start-up.

use crate::model::Cents;
use crate::throttle::Rate;
use std::time::Duration;

/// Settings the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// `sqlite://…` URL of the database file.
    pub database_url: String,
    /// Which orders need people, how many, and how soon.
    pub approval: ApprovalPolicy,
    /// Send the session cookie only over HTTPS.
    pub secure_cookies: bool,
    /// How much of the server one client may hold.
    pub limits: Limits,
}

/// What one client may hold of the server: connections, time, streams and attempts. Body
/// sizes are fixed (`edge::BODY_LIMIT`, `edge::SFN_BODY_LIMIT`). README, "Security model",
/// says why each default is what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the listen queue until one closes.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, counted from connecting or from
    /// the previous response; so also how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// `/live` streams one session may have open at once.
    pub live_streams_per_session: usize,
    /// Failed sign-ins per username before it is refused for a while (right password or not).
    pub sign_in_failures_per_account: Rate,
    /// Failed sign-ins per client address.
    pub sign_in_failures_per_client: Rate,
    /// Storefront orders (attempts, placed or refused) per client address.
    pub storefront_orders_per_client: Rate,
}

/// The window the sign-in and storefront throttles count over.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// At most `max` in [`THROTTLE_WINDOW`].
pub const fn per_window(max: u32) -> Rate {
    Rate {
        max,
        per: THROTTLE_WINDOW,
    }
}

impl Limits {
    /// 1024 connections, 20 s for headers, 4 streams a session; per 15 minutes 10 failed
    /// sign-ins per account, 30 per client, 30 storefront orders per client.
    pub const DEFAULT: Limits = Limits {
        max_connections: 1024,
        header_read_timeout: Duration::from_secs(20),
        live_streams_per_session: 4,
        sign_in_failures_per_account: per_window(10),
        sign_in_failures_per_client: per_window(30),
        storefront_orders_per_client: per_window(30),
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// The rules the order workflow reads (through its Validate Cost step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Orders whose total is above this need a person's approval.
    pub threshold: Cents,
    /// Orders above this need a second approval, by someone else.
    pub second_threshold: Cents,
    /// How long each approval may wait before it goes to the admins.
    pub timeout_seconds: u64,
}

impl Default for ApprovalPolicy {
    /// Approval above 100.00, a second one above 5,000.00, 48 hours each.
    fn default() -> ApprovalPolicy {
        ApprovalPolicy {
            threshold: Cents(10_000),
            second_threshold: Cents(500_000),
            timeout_seconds: 48 * 3600,
        }
    }
}

impl Config {
    /// Settings for tests: the given database, the default approval policy and limits.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            approval: ApprovalPolicy::default(),
            secure_cookies: false,
            limits: Limits::default(),
        }
    }
}

/// Parses an amount in whole currency units with at most two decimals ("100", "99.5",
/// "100.00") into cents.
pub fn parse_amount(s: &str) -> Result<Cents, String> {
    let s = s.trim();
    let (whole, frac) = match s.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f) || f.len() > 2) {
        return Err(format!(
            "'{s}' is not an amount: use digits with at most two decimals, like 100 or 99.50"
        ));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("'{s}' is too large an amount"))?;
    let frac: i64 = format!("{:0<2}", frac.unwrap_or("")).parse().unwrap_or(0);
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .map(Cents)
        .ok_or_else(|| format!("'{s}' is too large an amount"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_exact_cents() {
        assert_eq!(parse_amount("100"), Ok(Cents(10_000)));
        assert_eq!(parse_amount("99.5"), Ok(Cents(9_950)));
        assert_eq!(parse_amount(" 0.07 "), Ok(Cents(7)));
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in [
            "",
            "-1",
            "1.234",
            "abc",
            "1.",
            ".5",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad} should be refused");
        }
    }
}
