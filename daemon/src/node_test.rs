//! Unit tests for `node.rs`: the retry and renewal timing.
use std::time::Duration;

use super::{renew_after, Backoff};

#[test]
fn backoff_doubles_up_to_the_cap_and_jitters_within_half_to_full() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };
    for (attempt, full) in [
        (0, 100),
        (1, 200),
        (2, 400),
        (6, 6_400),
        (7, 10_000),
        (40, 10_000),
    ] {
        let lowest = backoff.delay(attempt, 0);
        let highest = backoff.delay(attempt, 999);
        assert_eq!(lowest, Duration::from_millis(full / 2), "attempt {attempt}");
        assert!(
            highest < Duration::from_millis(full),
            "attempt {attempt}: {highest:?}"
        );
        assert!(
            highest > Duration::from_millis(full * 99 / 100),
            "attempt {attempt}: {highest:?}"
        );
    }
}

#[test]
fn renewal_is_due_half_way_through_the_lifetime() {
    assert_eq!(renew_after(1_000, 1_600, 1_000), Duration::from_secs(300));
    assert_eq!(renew_after(1_000, 1_600, 1_250), Duration::from_secs(50));
    // Already past half-way (a slow start, a suspended host): renew at once.
    assert_eq!(renew_after(1_000, 1_600, 1_400), Duration::ZERO);
}
