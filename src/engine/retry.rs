//! The Retry decision: given a failed task's error, its `Retry` rules and how often each rule
//! has fired in this state, say whether to try again and after how long. Pure — the caller
//! supplies the randomness for `JitterStrategy: FULL` and performs the wait.

use super::definition::{Retrier, State};

/// What to do with a task failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryDecision {
    /// Run the task again after `delay_ms`; `retrier` is the index of the rule that fired.
    Retry { retrier: usize, delay_ms: u64 },
    /// No rule applies, or the matching rule is exhausted: go to Catch, or fail.
    GiveUp,
}

impl Retrier {
    /// The wait before retry number `attempt + 1` (0-based `attempt`): `IntervalSeconds ×
    /// BackoffRate^attempt`, capped by `MaxDelaySeconds`, scaled by `jitter` in [0, 1) when
    /// the strategy is FULL.
    pub fn delay_ms(&self, attempt: u64, jitter: f64) -> u64 {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let mut seconds = self.interval_seconds as f64 * self.backoff_rate.powi(exponent);
        if let Some(max) = self.max_delay_seconds {
            seconds = seconds.min(max as f64);
        }
        // AWS caps any single retry interval at one year.
        seconds = seconds.min(31_536_000.0);
        if self.full_jitter {
            seconds *= jitter.clamp(0.0, 1.0);
        }
        (seconds * 1000.0).round() as u64
    }
}

/// Decides a retry for `error` in `state`. `attempts[i]` counts the retries rule `i` has
/// already made since the state was entered. As on AWS, the first rule whose `ErrorEquals`
/// covers the error is the one used; once it is exhausted the error goes on to Catch.
pub fn decide_retry(state: &State, error: &str, attempts: &[u64], jitter: f64) -> RetryDecision {
    let Some((index, rule)) = state
        .retry()
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(error))
    else {
        return RetryDecision::GiveUp;
    };
    let done = attempts.get(index).copied().unwrap_or(0);
    if done >= rule.max_attempts {
        return RetryDecision::GiveUp;
    }
    RetryDecision::Retry {
        retrier: index,
        delay_ms: rule.delay_ms(done, jitter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::parse;

    fn task_with_retry(retry: &str) -> crate::engine::StateMachine {
        let def = format!(
            r#"{{"StartAt": "T", "States": {{"T": {{"Type": "Task", "Resource": "x:y", "Retry": {retry}, "End": true}}}}}}"#
        );
        match parse(&def) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_retry_three_times_doubling_from_one_second() {
        let m = task_with_retry(r#"[{"ErrorEquals": ["States.ALL"]}]"#);
        let t = m.state("T").unwrap();
        let delays: Vec<_> = (0..4).map(|n| decide_retry(t, "Boom", &[n], 0.0)).collect();
        assert_eq!(
            delays,
            vec![
                RetryDecision::Retry {
                    retrier: 0,
                    delay_ms: 1000
                },
                RetryDecision::Retry {
                    retrier: 0,
                    delay_ms: 2000
                },
                RetryDecision::Retry {
                    retrier: 0,
                    delay_ms: 4000
                },
                RetryDecision::GiveUp,
            ]
        );
    }

    #[test]
    fn the_first_matching_rule_decides_even_when_exhausted() {
        let m = task_with_retry(
            r#"[{"ErrorEquals": ["Busy"], "MaxAttempts": 1, "IntervalSeconds": 5},
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 9}]"#,
        );
        let t = m.state("T").unwrap();
        assert_eq!(
            decide_retry(t, "Busy", &[0, 0], 0.0),
            RetryDecision::Retry {
                retrier: 0,
                delay_ms: 5000
            }
        );
        assert_eq!(decide_retry(t, "Busy", &[1, 0], 0.0), RetryDecision::GiveUp);
        assert_eq!(
            decide_retry(t, "Other", &[1, 0], 0.0),
            RetryDecision::Retry {
                retrier: 1,
                delay_ms: 1000
            }
        );
    }

    #[test]
    fn runtime_errors_are_never_retried_and_max_attempts_zero_never_retries() {
        let m = task_with_retry(r#"[{"ErrorEquals": ["States.ALL"]}]"#);
        assert_eq!(
            decide_retry(m.state("T").unwrap(), "States.Runtime", &[], 0.0),
            RetryDecision::GiveUp
        );
        let m = task_with_retry(r#"[{"ErrorEquals": ["Boom"], "MaxAttempts": 0}]"#);
        assert_eq!(
            decide_retry(m.state("T").unwrap(), "Boom", &[], 0.0),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn max_delay_caps_the_backoff_and_full_jitter_scales_it() {
        let m = task_with_retry(
            r#"[{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 10, "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}]"#,
        );
        let rule = &m.state("T").unwrap().retry()[0];
        assert_eq!(rule.delay_ms(0, 1.0), 2000);
        assert_eq!(rule.delay_ms(1, 1.0), 6000);
        assert_eq!(rule.delay_ms(2, 1.0), 10000);
        assert_eq!(rule.delay_ms(2, 0.5), 5000);
        assert_eq!(rule.delay_ms(60, 0.0), 0);
    }
}
