//! How many messages each sender sent in the last hour, for the mail rules'
//! `max_per_hour` (junk and mass mail, 000 §3.2.7–3.2.8). Pure: time is a parameter.
//! Every attempt counts, refused ones too, so a burst stays limited while it goes on;
//! an attempt the relay could not finish (next hop down: the MTA retries) is taken back.

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

const WINDOW: SignedDuration = SignedDuration::from_secs(3600);
/// Times kept per sender: beyond this the count saturates (no rule needs more).
const MAX_KEPT: usize = 10_000;
/// Idle senders are forgotten every this many attempts.
const SWEEP_EVERY: u64 = 1024;

/// Per-sender attempt times within the last hour.
#[derive(Debug, Default)]
pub struct SendRate {
    senders: HashMap<String, VecDeque<Timestamp>>,
    attempts: u64,
}

impl SendRate {
    pub fn new() -> SendRate {
        SendRate::default()
    }

    /// Records an attempt by `sender` at `now`; how many attempts it made in the hour
    /// before this one.
    pub fn attempt(&mut self, sender: &str, now: Timestamp) -> usize {
        self.attempts += 1;
        if self.attempts.is_multiple_of(SWEEP_EVERY) {
            self.senders.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let times = self.senders.entry(sender.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        let before = times.len();
        if before >= MAX_KEPT {
            times.pop_front();
        }
        times.push_back(now);
        before
    }

    /// Takes back the attempt `sender` made at `at` (the message was deferred).
    pub fn take_back(&mut self, sender: &str, at: Timestamp) {
        if let Some(times) = self.senders.get_mut(sender)
            && let Some(i) = times.iter().rposition(|t| *t == at)
        {
            times.remove(i);
        }
    }

    /// Senders tracked (for tests and the sweep's bound).
    pub fn senders(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn counts_the_last_hour_per_sender() {
        let mut r = SendRate::new();
        for i in 0..5 {
            assert_eq!(r.attempt("sam", at(i)), i as usize);
        }
        assert_eq!(r.attempt("tess", at(5)), 0, "senders are counted apart");
        // 3599 s after the first, all five are still within the hour.
        assert_eq!(r.attempt("sam", at(3599)), 5);
        // An hour after the first two, they have left the window.
        assert_eq!(r.attempt("sam", at(3601)), 4);
    }

    #[test]
    fn a_deferred_attempt_is_taken_back() {
        let mut r = SendRate::new();
        r.attempt("sam", at(0));
        r.attempt("sam", at(1));
        r.take_back("sam", at(1));
        assert_eq!(r.attempt("sam", at(2)), 1);
        r.take_back("nobody", at(2));
    }

    #[test]
    fn idle_senders_are_forgotten() {
        let mut r = SendRate::new();
        for i in 0..SWEEP_EVERY - 1 {
            r.attempt(&format!("s{i}"), at(0));
        }
        assert_eq!(r.senders() as u64, SWEEP_EVERY - 1);
        r.attempt("late", at(7200));
        assert_eq!(r.senders(), 1);
    }
}
