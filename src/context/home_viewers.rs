//! Whose App Home shows a tenant, remembered for a few seconds.
//!
//! Every change in a tenant (an escalation step, an acknowledgement, a
//! decision) asks whose Home to refresh. A burst of a thousand steps asked
//! the store a thousand times for the same answer; the answer is now kept
//! for [`TTL`], the same window in which the refreshes it schedules are
//! debounced anyway. This process forgets it at once when someone opens or
//! is shown their Home here; a Home opened on another replica is seen within
//! [`TTL`].

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a tenant's viewers are kept.
pub const TTL: Duration = Duration::seconds(5);

/// A tenant's viewers and when they were read.
type Kept = (DateTime<Utc>, Vec<String>);

#[derive(Default)]
pub struct HomeViewers {
    by_tenant: Mutex<HashMap<String, Kept>>,
}

impl HomeViewers {
    /// The viewers of `tenant` read less than [`TTL`] before `now`, if kept.
    pub fn get(&self, tenant: &str, now: DateTime<Utc>) -> Option<Vec<String>> {
        let map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        map.get(tenant)
            .filter(|(at, _)| now >= *at && now - *at < TTL)
            .map(|(_, users)| users.clone())
    }

    pub fn put(&self, tenant: &str, now: DateTime<Utc>, users: Vec<String>) {
        let mut map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(tenant.to_string(), (now, users));
    }

    /// Forgets every tenant's viewers (someone's Home changed).
    pub fn forget(&self) {
        self.by_tenant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_kept_for_the_ttl_and_forgotten_on_demand() {
        let cache = HomeViewers::default();
        let t0 = Utc::now();
        assert_eq!(cache.get("acme", t0), None);
        cache.put("acme", t0, vec!["U1".into()]);
        assert_eq!(
            cache.get("acme", t0 + Duration::seconds(4)),
            Some(vec!["U1".into()])
        );
        assert_eq!(cache.get("acme", t0 + TTL), None, "stale after the TTL");
        assert_eq!(cache.get("globex", t0), None, "per tenant");
        cache.forget();
        assert_eq!(cache.get("acme", t0), None);
    }
}
