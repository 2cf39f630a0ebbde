//! The rotation schedule of the JWT-SVID signing keys, as pure functions of
//! the keys' activation times and a clock: which key signs, which are
//! published, when the next one is due, how long clients may cache the set.
//! Replicas holding the same files compute the same answers without talking
//! to each other. The arithmetic is explained in docs/oidc.md.

use std::time::Duration;

use crate::config::JwtConfig;

/// The longest a relying party is told to cache the JWK Set.
pub const MAX_CACHE_SECS: u64 = 3600;
/// The longest between two looks at the key files.
pub const MAX_POLL_SECS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// No JWT-SVID lives longer.
    pub max_ttl_secs: u64,
    /// A key is published this long before it signs.
    pub prepublish_secs: u64,
    /// Allowance for relying parties' clocks and leeway.
    pub clock_skew_secs: u64,
    /// Automatic rotation: how long each key signs.
    pub rotate_after_secs: Option<u64>,
}

/// Where a key stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Activates later than one pre-publication window from now: not
    /// published yet.
    Pending,
    /// Activates within the pre-publication window: published, not signing.
    Upcoming,
    /// The newest key whose activation has passed: it signs.
    Signing,
    /// A newer key signs; published until `until` (Unix seconds), when every
    /// token this key signed has expired.
    Retired { until: i64 },
    /// Retired and past its retention: no longer published.
    Expired,
}

impl KeyState {
    /// Whether the key is in the JWK Set.
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Upcoming | KeyState::Signing | KeyState::Retired { .. }
        )
    }
}

impl Schedule {
    pub fn from_config(config: &JwtConfig) -> Schedule {
        Schedule {
            max_ttl_secs: config.max_ttl_secs,
            prepublish_secs: config.prepublish_secs,
            clock_skew_secs: config.clock_skew_secs,
            rotate_after_secs: config.rotate_after_secs,
        }
    }

    /// The state of each key; `activations` ascend, without repeats.
    pub fn states(&self, activations: &[i64], now: i64) -> Vec<KeyState> {
        let signer = signer(activations, now);
        let horizon = now.saturating_add(secs(self.prepublish_secs));
        activations
            .iter()
            .enumerate()
            .map(|(index, &activation)| match signer {
                Some(signing) if index == signing => KeyState::Signing,
                Some(signing) if index < signing => {
                    // The next key activated (it is at most the signer), so
                    // this one signed nothing after that.
                    let until = self.retention_end(activations[index + 1]);
                    if now < until {
                        KeyState::Retired { until }
                    } else {
                        KeyState::Expired
                    }
                }
                _ if activation <= horizon => KeyState::Upcoming,
                _ => KeyState::Pending,
            })
            .collect()
    }

    /// When a key whose successor activates at `successor_activation` leaves
    /// the JWK Set: its last token was signed just before then, and lives at
    /// most `max_ttl_secs`, which relying parties may stretch by their skew.
    pub fn retention_end(&self, successor_activation: i64) -> i64 {
        successor_activation
            .saturating_add(secs(self.max_ttl_secs))
            .saturating_add(secs(self.clock_skew_secs))
    }

    /// The activation time a manually rotated key gets: one pre-publication
    /// window from now.
    pub fn manual_activation(&self, now: i64) -> i64 {
        now.saturating_add(secs(self.prepublish_secs))
    }

    /// With automatic rotation, the activation time of the key to make now,
    /// if one is due: as soon as the newest key signs, its successor is made
    /// for `newest + rotate_after_secs`. If that is nearer than one
    /// pre-publication window (the issuer was down), the successor activates
    /// one window from now, rounded up to the poll interval so that replicas
    /// looking at about the same time pick the same second.
    pub fn due_rotation(&self, activations: &[i64], now: i64) -> Option<i64> {
        let rotate_after = self.rotate_after_secs?;
        let newest = *activations.last()?;
        if newest > now {
            return None;
        }
        let planned = newest.saturating_add(secs(rotate_after));
        let earliest = self.manual_activation(now);
        if planned >= earliest {
            return Some(planned);
        }
        let step = secs(self.poll_interval().as_secs()).max(1);
        Some(earliest.saturating_add(step - 1) / step * step)
    }

    /// `Cache-Control: max-age` of the JWK Set and the discovery document:
    /// a quarter of the pre-publication window, at most an hour. A client
    /// and one shared cache in front of it together hold a stale set for at
    /// most half the window, so a new key is seen before it signs.
    pub fn cache_max_age_secs(&self) -> u64 {
        (self.prepublish_secs / 4).min(MAX_CACHE_SECS)
    }

    /// How often the issuer re-reads the key files and re-computes the set:
    /// a quarter of the pre-publication window, between 1 s and 60 s.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs((self.prepublish_secs / 4).clamp(1, MAX_POLL_SECS))
    }
}

/// The index of the key that signs at `now`: the newest whose activation
/// has passed.
pub fn signer(activations: &[i64], now: i64) -> Option<usize> {
    activations
        .iter()
        .rposition(|&activation| activation <= now)
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState::*;

    /// A day's tokens, a day's pre-publication, five minutes of skew.
    const DAY: i64 = 86_400;
    const SKEW: i64 = 300;

    fn schedule(rotate_after_secs: Option<u64>) -> Schedule {
        Schedule {
            max_ttl_secs: DAY as u64,
            prepublish_secs: DAY as u64,
            clock_skew_secs: SKEW as u64,
            rotate_after_secs,
        }
    }

    #[test]
    fn the_newest_key_whose_activation_has_passed_signs() {
        let keys = [0, 1_000, 2_000];
        assert_eq!(signer(&keys, -1), None);
        assert_eq!(signer(&keys, 0), Some(0));
        assert_eq!(signer(&keys, 999), Some(0));
        assert_eq!(signer(&keys, 1_000), Some(1));
        assert_eq!(signer(&keys, 5_000), Some(2));
        assert_eq!(signer(&[], 5_000), None);
    }

    #[test]
    fn a_rotated_key_is_published_a_window_before_it_signs_and_the_old_one_kept_until_its_tokens_expired(
    ) {
        let schedule = schedule(None);
        let rotated_at = 10 * DAY;
        let next = schedule.manual_activation(rotated_at);
        assert_eq!(next, rotated_at + DAY);
        let keys = [0, next];

        // At rotation: the old key signs, the new one is published.
        assert_eq!(schedule.states(&keys, rotated_at), [Signing, Upcoming]);
        // Until the last second before activation, the old key signs.
        assert_eq!(schedule.states(&keys, next - 1), [Signing, Upcoming]);
        // From activation, the new key signs; the old is kept for a day's
        // tokens and the skew.
        let until = next + DAY + SKEW;
        assert_eq!(schedule.states(&keys, next), [Retired { until }, Signing]);
        assert_eq!(
            schedule.states(&keys, until - 1),
            [Retired { until }, Signing]
        );
        assert_eq!(schedule.states(&keys, until), [Expired, Signing]);
    }

    #[test]
    fn a_key_beyond_the_window_is_not_published_until_the_window_reaches_it() {
        let schedule = schedule(None);
        let keys = [0, 100 * DAY];
        assert_eq!(schedule.states(&keys, 98 * DAY), [Signing, Pending]);
        assert_eq!(schedule.states(&keys, 99 * DAY - 1), [Signing, Pending]);
        assert_eq!(schedule.states(&keys, 99 * DAY), [Signing, Upcoming]);
    }

    #[test]
    fn a_key_that_never_signed_is_retired_by_the_next_activation_like_any_other() {
        // Two keys activated between two looks: the first is still kept.
        let schedule = schedule(None);
        let keys = [0, 1_000, 1_010];
        let states = schedule.states(&keys, 1_020);
        assert_eq!(
            states,
            [
                Retired {
                    until: 1_000 + DAY + SKEW
                },
                Retired {
                    until: 1_010 + DAY + SKEW
                },
                Signing
            ]
        );
        assert!(states.iter().all(|state| state.is_published()));
        assert!(!Pending.is_published() && !Expired.is_published());
    }

    #[test]
    fn automatic_rotation_makes_the_successor_as_soon_as_the_newest_key_signs() {
        let schedule = schedule(Some(7 * DAY as u64));
        let start = 1_000 * DAY;
        // The newest key is still upcoming: nothing to do.
        assert_eq!(schedule.due_rotation(&[0, start], start - 1), None);
        // It signs: its successor is planned a rotation period later.
        assert_eq!(
            schedule.due_rotation(&[0, start], start),
            Some(start + 7 * DAY)
        );
        assert_eq!(
            schedule.due_rotation(&[0, start], start + 6 * DAY),
            Some(start + 7 * DAY)
        );
        // Overdue (the issuer was down): one window from now, on the poll grid.
        let late = start + 6 * DAY + 1;
        let due = schedule.due_rotation(&[0, start], late).unwrap();
        assert!(due >= late + DAY && due < late + DAY + 60, "{due}");
        assert_eq!(due % 60, 0);
        // The legacy key (activation 0) is overdue at once.
        assert!(schedule.due_rotation(&[0], start).unwrap() >= start + DAY);
        // Without automatic rotation, never.
        assert_eq!(self::schedule(None).due_rotation(&[0], start), None);
    }

    #[test]
    fn clients_cache_for_a_quarter_of_the_window_at_most_an_hour() {
        assert_eq!(schedule(None).cache_max_age_secs(), 3600);
        let short = Schedule {
            prepublish_secs: 600,
            ..schedule(None)
        };
        assert_eq!(short.cache_max_age_secs(), 150);
        assert_eq!(short.poll_interval(), Duration::from_secs(60));
        let tiny = Schedule {
            prepublish_secs: 2,
            ..schedule(None)
        };
        assert_eq!(tiny.cache_max_age_secs(), 0);
        assert_eq!(tiny.poll_interval(), Duration::from_secs(1));
        // A client that fetched just before publication sees the key by
        // publication + 2 × max-age + one poll, before it signs.
        for prepublish in [2, 4, 60, 600, 3_600, 86_400, 30 * 86_400] {
            let schedule = Schedule {
                prepublish_secs: prepublish,
                ..schedule(None)
            };
            let seen_by = 2 * schedule.cache_max_age_secs() + schedule.poll_interval().as_secs();
            assert!(seen_by < prepublish, "prepublish {prepublish}: {seen_by}");
        }
    }
}
