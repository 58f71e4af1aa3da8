//! The one retry back-off every retry loop uses: delays doubling from a first one up to a cap, with or
//! without jitter (backon's exponential back-off), so a loop only says when to wait and when to start over.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays for one run of retries; [`Backoff::reset`] starts over after a success.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    max: Duration,
    delays: ExponentialBackoff,
}

impl Backoff {
    /// `first`, then twice as long each time, never above `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self::from_builder(
            ExponentialBuilder::new()
                .with_min_delay(first)
                .with_max_delay(max)
                .without_max_times(),
            max,
        )
    }

    /// As [`Backoff::new`], each delay lengthened by a random part of `first` so that many waiters
    /// (replicas, retried runs) do not come back at the same instant; still never above `max`.
    pub fn jittered(first: Duration, max: Duration) -> Self {
        Self::from_builder(
            ExponentialBuilder::new()
                .with_min_delay(first)
                .with_max_delay(max)
                .with_jitter()
                .without_max_times(),
            max,
        )
    }

    fn from_builder(builder: ExponentialBuilder, max: Duration) -> Self {
        Self {
            builder,
            max,
            delays: builder.build(),
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }

    /// The wait before retry `n` (1 for the first) of a fresh run of retries.
    pub fn delay_before_retry(&self, n: u32) -> Duration {
        let mut fresh = Self::from_builder(self.builder, self.max);
        (1..n.max(1)).for_each(|_| {
            fresh.next_delay();
        });
        fresh.next_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Milliseconds, rounded: backon doubles in `f32` seconds, so a delay may be off by a few nanoseconds.
    fn ms(delay: Duration) -> u64 {
        (delay.as_secs_f64() * 1000.0).round() as u64
    }

    #[test]
    fn delays_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut backoff = Backoff::new(200 * MS, 1000 * MS);
        let delays: Vec<u64> = (0..5).map(|_| ms(backoff.next_delay())).collect();
        assert_eq!(delays, [200, 400, 800, 1000, 1000]);
        backoff.reset();
        assert_eq!(ms(backoff.next_delay()), 200);
        assert_eq!(ms(backoff.delay_before_retry(3)), 800);
    }

    #[test]
    fn jittered_delays_stay_between_the_plain_delay_and_the_cap() {
        for _ in 0..200 {
            let mut backoff = Backoff::jittered(2000 * MS, 10_000 * MS);
            let first = backoff.next_delay();
            assert!(first >= 2000 * MS && first < 4000 * MS, "{first:?}");
            let second = backoff.next_delay();
            assert!(second >= 4000 * MS && second < 8000 * MS, "{second:?}");
            for _ in 0..10 {
                assert!(backoff.next_delay() <= 10_000 * MS);
            }
        }
    }
}
