//! `/backfill status <id>` answers kept for a moment.
//!
//! In an incident several people ask for the same job's status within seconds,
//! and each answer costs a Servo transaction (the job and every partition, for
//! the forecast), two store reads and a render. The answer only changes when
//! Servo does, so for `commands.status_max_age` (2 s by default) the same card
//! is answered again from memory, as the bytes that were sent.
//!
//! A card is never answered again after a job change this process made through
//! Servo (pause, resume, a new deadline, cancel, recreate): each entry keeps the
//! count of such changes it was read at ([`crate::servo::writes`]), and a later
//! change makes it stale at once. A change made elsewhere (by Servo itself, or by
//! another replica) shows within `status_max_age`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// Past this many cards, expired ones are dropped; then, if needed, all.
const MAX_ENTRIES: usize = 4_096;

struct Entry {
    tenant: String,
    read_at: DateTime<Utc>,
    writes: u64,
    body: Bytes,
}

/// The cards, by job id (job ids are UUIDs, unique across tenants; the entry
/// also names its tenant, and only that tenant is answered from it).
#[derive(Default)]
pub struct StatusCache {
    entries: Mutex<HashMap<Uuid, Entry>>,
}

fn fresh(read_at: DateTime<Utc>, now: DateTime<Utc>, max_age: Duration) -> bool {
    let age = now - read_at;
    age >= chrono::Duration::zero() && age.to_std().is_ok_and(|a| a < max_age)
}

impl StatusCache {
    /// The card for `job` in `tenant`, if one was read less than `max_age`
    /// ago and no job change has been made since (`writes`).
    pub fn get(
        &self,
        tenant: &str,
        job: Uuid,
        now: DateTime<Utc>,
        max_age: Duration,
        writes: u64,
    ) -> Option<Bytes> {
        if max_age.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(&job)?;
        (e.tenant == tenant && e.writes == writes && fresh(e.read_at, now, max_age))
            .then(|| e.body.clone())
    }

    /// Keeps a card read at `read_at`, when the count of changes was `writes`.
    pub fn put(
        &self,
        tenant: &str,
        job: Uuid,
        read_at: DateTime<Utc>,
        writes: u64,
        max_age: Duration,
        body: Bytes,
    ) {
        if max_age.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&job) {
            entries.retain(|_, e| fresh(e.read_at, read_at, max_age));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            job,
            Entry {
                tenant: tenant.to_string(),
                read_at,
                writes,
                body,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    const AGE: Duration = Duration::from_secs(2);

    #[test]
    fn a_card_is_answered_again_only_while_fresh_unchanged_and_for_its_tenant() {
        let cache = StatusCache::default();
        let job = Uuid::new_v4();
        cache.put("acme", job, t(0), 7, AGE, Bytes::from_static(b"card"));
        assert_eq!(
            cache.get("acme", job, t(1), AGE, 7).as_deref(),
            Some(&b"card"[..])
        );
        // Too old, another tenant, a change made since, another job, the clock gone back.
        assert_eq!(cache.get("acme", job, t(2), AGE, 7), None);
        assert_eq!(cache.get("globex", job, t(1), AGE, 7), None);
        assert_eq!(cache.get("acme", job, t(1), AGE, 8), None);
        assert_eq!(cache.get("acme", Uuid::new_v4(), t(1), AGE, 7), None);
        assert_eq!(cache.get("acme", job, t(-1), AGE, 7), None);
    }

    #[test]
    fn a_zero_max_age_keeps_nothing() {
        let cache = StatusCache::default();
        let job = Uuid::new_v4();
        cache.put(
            "acme",
            job,
            t(0),
            0,
            Duration::ZERO,
            Bytes::from_static(b"card"),
        );
        assert!(cache.is_empty());
        assert_eq!(cache.get("acme", job, t(0), Duration::ZERO, 0), None);
    }

    #[test]
    fn it_stays_bounded() {
        let cache = StatusCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put("acme", Uuid::new_v4(), t(0), 0, AGE, Bytes::new());
            assert_eq!(cache.len(), i + 1);
        }
        // All still fresh at t(1): the map is emptied rather than grown.
        let last = Uuid::new_v4();
        cache.put("acme", last, t(1), 0, AGE, Bytes::from_static(b"x"));
        assert_eq!(cache.len(), 1);
        // Expired ones go first when there are some.
        for _ in 1..MAX_ENTRIES {
            cache.put("acme", Uuid::new_v4(), t(5), 0, AGE, Bytes::new());
        }
        cache.put("acme", Uuid::new_v4(), t(6), 0, AGE, Bytes::new());
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(cache.get("acme", last, t(6), AGE, 0), None);
    }
}
