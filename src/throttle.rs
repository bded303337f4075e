//! Per-client limits kept in memory: how often a key may do something in a sliding window
//! ([`Throttle`]: failed sign-ins, storefront orders) and how many of something it may hold at
//! once ([`Slots`]: `/live` streams). Time is passed in, so tests control it. Nothing here
//! survives a restart, and nothing here knows HTTP.

use crate::config::Limits;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// At most `max` hits in any `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub max: u32,
    pub per: Duration,
}

/// Keys a throttle tracks at most. Each key needs a recent hit, so filling this takes a flood;
/// while it is full, new keys are refused rather than old ones forgotten (which would let a
/// flood wipe an attacker's own record).
const MAX_KEYS: usize = 100_000;

/// Counts hits per key over a sliding window.
pub struct Throttle<K> {
    rate: Rate,
    hits: Mutex<Hits<K>>,
}

struct Hits<K> {
    by_key: HashMap<K, VecDeque<Instant>>,
    pruned_at: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(rate: Rate) -> Throttle<K> {
        Throttle {
            rate,
            hits: Mutex::new(Hits {
                by_key: HashMap::new(),
                pruned_at: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hits<K>> {
        // A panic while holding the lock leaves whole data behind: every change is one push
        // or pop.
        self.hits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a hit for `key` at `now`, or refuses it (counting nothing) with how long until
    /// `key` may try again.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let per = self.rate.per;
        let mut hits = self.lock();
        if hits
            .pruned_at
            .is_none_or(|at| now.duration_since(at) >= per)
        {
            hits.by_key
                .retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < per));
            hits.pruned_at = Some(now);
        }
        if !hits.by_key.contains_key(key) && hits.by_key.len() >= MAX_KEYS {
            return Err(per);
        }
        let times = hits.by_key.entry(key.clone()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= per) {
            times.pop_front();
        }
        if times.len() >= self.rate.max as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(per.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }

    /// Takes back the latest hit of `key` (the attempt turned out not to count).
    pub fn refund(&self, key: &K) {
        let mut hits = self.lock();
        if let Some(times) = hits.by_key.get_mut(key) {
            times.pop_back();
        }
    }

    /// Forgets every hit of `key`.
    pub fn forget(&self, key: &K) {
        self.lock().by_key.remove(key);
    }
}

/// At most `max` slots held at once per key; a [`Slot`] gives its place back when dropped.
pub struct Slots<K: Hash + Eq> {
    max: usize,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

/// One held place of a [`Slots`].
pub struct Slot<K: Hash + Eq> {
    key: Option<K>,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

fn lock_held<K>(held: &Mutex<HashMap<K, usize>>) -> MutexGuard<'_, HashMap<K, usize>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K: Hash + Eq + Clone> Slots<K> {
    pub fn new(max: usize) -> Slots<K> {
        Slots {
            max,
            held: Arc::default(),
        }
    }

    /// A slot for `key`, or `None` if it already holds `max`.
    pub fn take(&self, key: K) -> Option<Slot<K>> {
        let mut held = lock_held(&self.held);
        let n = held.get(&key).copied().unwrap_or(0);
        if n >= self.max {
            return None;
        }
        held.insert(key.clone(), n + 1);
        Some(Slot {
            key: Some(key),
            held: self.held.clone(),
        })
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut held = lock_held(&self.held);
        if let Some(n) = held.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&key);
            }
        }
    }
}

/// The key a client is throttled under: its address, with an IPv6 address cut to its /64
/// (one subscriber usually holds a whole /64) and an IPv4-mapped one read as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The throttles and caps the app keeps, built from [`Limits`].
pub struct Throttles {
    /// Failed sign-ins per username typed.
    pub sign_in_by_account: Throttle<String>,
    /// Failed sign-ins per client.
    pub sign_in_by_client: Throttle<IpAddr>,
    /// Storefront order attempts per client.
    pub storefront_by_client: Throttle<IpAddr>,
    /// Open `/live` streams per session id.
    pub live_streams: Slots<String>,
}

impl Throttles {
    pub fn new(limits: &Limits) -> Throttles {
        Throttles {
            sign_in_by_account: Throttle::new(limits.sign_in_failures_per_account),
            sign_in_by_client: Throttle::new(limits.sign_in_failures_per_client),
            storefront_by_client: Throttle::new(limits.storefront_orders_per_client),
            live_streams: Slots::new(limits.live_streams_per_session),
        }
    }
}

/// Whole seconds to wait, rounded up, at least 1: what `Retry-After` says.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn three_per_minute() -> Throttle<&'static str> {
        Throttle::new(Rate {
            max: 3,
            per: MINUTE,
        })
    }

    #[test]
    fn the_hit_over_the_rate_is_refused_until_the_oldest_leaves_the_window() {
        let t = three_per_minute();
        let start = Instant::now();
        for s in 0..3 {
            assert_eq!(t.take(&"a", start + Duration::from_secs(s)), Ok(()));
        }
        assert_eq!(
            t.take(&"a", start + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert_eq!(t.take(&"b", start + Duration::from_secs(10)), Ok(()));
        assert_eq!(t.take(&"a", start + MINUTE), Ok(()));
        assert!(t.take(&"a", start + MINUTE).is_err());
    }

    #[test]
    fn a_refused_hit_is_not_counted_and_a_refunded_one_frees_its_place() {
        let t = three_per_minute();
        let now = Instant::now();
        for _ in 0..3 {
            t.take(&"a", now).unwrap();
        }
        for _ in 0..5 {
            assert!(t.take(&"a", now).is_err());
        }
        t.refund(&"a");
        assert_eq!(t.take(&"a", now), Ok(()));
        t.forget(&"a");
        for _ in 0..3 {
            assert_eq!(t.take(&"a", now), Ok(()));
        }
    }

    #[test]
    fn idle_keys_are_pruned() {
        let t = three_per_minute();
        let now = Instant::now();
        t.take(&"a", now).unwrap();
        t.take(&"b", now + 2 * MINUTE).unwrap();
        assert_eq!(t.lock().by_key.len(), 1);
    }

    #[test]
    fn slots_are_given_back_when_dropped() {
        let slots = Slots::new(2);
        let a = slots.take("s").expect("first");
        let _b = slots.take("s").expect("second");
        assert!(slots.take("s").is_none());
        assert!(slots.take("other").is_some());
        drop(a);
        assert!(slots.take("s").is_some());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(60)), 60);
    }
}
