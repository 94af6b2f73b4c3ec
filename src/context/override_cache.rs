//! The on-call overrides of each rotation, remembered for a few seconds.
//!
//! Every alert a poll renders, every page and every escalation step asks who
//! is on call, and each question read the rotation's overrides from the store:
//! a 500-job storm on a rotation path read them 500 times in one poll for the
//! same answer (issue 40). The answer is now kept for [`TTL`] of real time.
//! This process forgets it at once when an override is made or cancelled
//! here; one made on another replica is seen within [`TTL`].

use crate::domain::rotation::Override;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a rotation's overrides are kept.
pub const TTL: Duration = Duration::from_secs(5);

/// What was read: when (real time, and the bot's clock) and the overrides
/// that had not ended by then.
struct Kept {
    read: Instant,
    at: DateTime<Utc>,
    overrides: Vec<Override>,
}

#[derive(Default)]
pub struct OverrideCache {
    by_rotation: Mutex<HashMap<String, Kept>>,
}

impl OverrideCache {
    /// The overrides of `rotation` that have not ended by `at`, when a read
    /// for an instant no later than `at` is less than [`TTL`] old.
    pub fn get(&self, rotation: &str, at: DateTime<Utc>) -> Option<Vec<Override>> {
        let map = self.by_rotation.lock().unwrap_or_else(|e| e.into_inner());
        let kept = map.get(rotation)?;
        if kept.read.elapsed() >= TTL || at < kept.at {
            return None;
        }
        Some(
            kept.overrides
                .iter()
                .filter(|o| o.until > at)
                .cloned()
                .collect(),
        )
    }

    /// Keeps `overrides`: those of `rotation` not ended by `at`.
    pub fn put(&self, rotation: &str, at: DateTime<Utc>, overrides: Vec<Override>) {
        let mut map = self.by_rotation.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            rotation.to_string(),
            Kept {
                read: Instant::now(),
                at,
                overrides,
            },
        );
    }

    /// Forgets every rotation's overrides (one was made or cancelled).
    pub fn forget(&self) {
        self.by_rotation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as ChronoDuration;

    fn o(user: &str, from: DateTime<Utc>, hours: i64) -> Override {
        Override {
            user: user.into(),
            from,
            until: from + ChronoDuration::hours(hours),
        }
    }

    #[test]
    fn overrides_are_kept_for_later_instants_and_forgotten_on_demand() {
        let cache = OverrideCache::default();
        let t0 = Utc::now();
        assert!(cache.get("primary", t0).is_none());
        cache.put("primary", t0, vec![o("U1", t0, 1), o("U2", t0, 3)]);
        assert_eq!(cache.get("primary", t0).unwrap().len(), 2);
        // Later in the poll: the one that ended is left out.
        let later = cache.get("primary", t0 + ChronoDuration::hours(2)).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].user, "U2");
        // An earlier instant was not read: the store answers.
        assert!(cache
            .get("primary", t0 - ChronoDuration::hours(1))
            .is_none());
        assert!(cache.get("secondary", t0).is_none());
        cache.forget();
        assert!(cache.get("primary", t0).is_none());
    }
}
