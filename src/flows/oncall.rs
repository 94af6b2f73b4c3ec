//! Who is on call (issue 36): the people a tier pages at an instant, its
//! named users and groups plus the member on shift of each rotation it names
//! (overrides winning) and the people a PagerDuty schedule says are on call.

use crate::config::{Escalation, EscalationTier};
use crate::context::AppState;
use crate::domain::ids::Principal;
use crate::domain::rotation::{OnCall, Override, Rotation};
use chrono::{DateTime, Utc};

/// The overrides of a rotation that have not ended by `at`, oldest first;
/// read once for a poll's many questions ([`crate::context::override_cache`]).
pub async fn overrides(state: &AppState, rotation: &str, at: DateTime<Utc>) -> Vec<Override> {
    if let Some(kept) = state.overrides.get(rotation, at) {
        return kept;
    }
    match state.store.overrides_ending_after(Some(rotation), at).await {
        Ok(list) => {
            let list: Vec<Override> = list
                .into_iter()
                .map(|o| Override {
                    user: o.user_id,
                    from: o.starts_at,
                    until: o.ends_at,
                })
                .collect();
            state.overrides.put(rotation, at, list.clone());
            list
        }
        Err(e) => {
            // The shift still answers: better the scheduled person than nobody.
            tracing::warn!(rotation, error = %e, "cannot read on-call overrides; following the shifts");
            Vec::new()
        }
    }
}

/// Who is on call for `rotation` at `at`, and who comes next.
pub async fn on_call(
    state: &AppState,
    rotation: &Rotation,
    at: DateTime<Utc>,
) -> (Option<OnCall>, Option<OnCall>) {
    let o = overrides(state, &rotation.id, at).await;
    (rotation.on_call(&o, at), rotation.next_on_call(&o, at))
}

/// `tier` as it pages at `at`: its `notify` holds everyone to page then.
pub async fn resolve_tier(
    state: &AppState,
    tier: &EscalationTier,
    at: DateTime<Utc>,
) -> EscalationTier {
    let mut t = tier.clone();
    for id in &tier.rotations {
        let Some(rotation) = state.config.rotation(id) else {
            continue;
        };
        if let (Some(now), _) = on_call(state, rotation, at).await {
            let p = Principal::User(now.user);
            if !t.notify.contains(&p) {
                t.notify.push(p);
            }
        }
    }
    for id in &tier.pagerduty_schedules {
        for p in crate::flows::pd_schedules::people(state, id, at)
            .await
            .people
        {
            if !t.notify.contains(&p) {
                t.notify.push(p);
            }
        }
    }
    t
}

/// The people `tier` pages at `at`, each once: [`resolve_tier`]'s users,
/// groups expanded. A page goes to them; an episode's incident channel
/// invites them and they may say how it ended
/// ([`crate::flows::incident_channels::paged_people`]).
pub async fn paged(
    state: &AppState,
    tier: &EscalationTier,
    at: DateTime<Utc>,
) -> Result<(EscalationTier, Vec<String>), crate::slack::api::SlackCallError> {
    let tier = resolve_tier(state, tier, at).await;
    let people = state.directory.expand(&tier.notify).await?;
    Ok((tier, people))
}

/// A tenant's path ([`crate::config::FileConfig::escalation_for`]) with each
/// tier's people as they are on call at `at`.
pub async fn path(state: &AppState, tenant: &str, at: DateTime<Utc>) -> Escalation {
    let mut path = state.config.escalation_for(tenant).clone();
    for t in path.tiers.iter_mut() {
        *t = resolve_tier(state, t, at).await;
    }
    path
}

/// Everyone who is or may be on call for a tier: its users and groups,
/// every member of its rotations, and whoever an override put there.
pub async fn anyone_on(state: &AppState, tier: &EscalationTier) -> Vec<Principal> {
    let mut all = tier.notify.clone();
    let now = state.clock.now() - chrono::Duration::days(1);
    for id in &tier.rotations {
        if let Some(r) = state.config.rotation(id) {
            all.extend(r.members.iter().cloned().map(Principal::User));
        }
        all.extend(
            overrides(state, id, now)
                .await
                .into_iter()
                .map(|o| Principal::User(o.user)),
        );
    }
    for id in &tier.pagerduty_schedules {
        all.extend(crate::flows::pd_schedules::known_people(state, id));
    }
    all
}

/// The rotations a tenant's path names, in the order of its tiers.
pub fn rotations_of<'a>(state: &'a AppState, tenant: &str) -> Vec<&'a Rotation> {
    let mut out: Vec<&Rotation> = Vec::new();
    for t in &state.config.escalation_for(tenant).tiers {
        for id in &t.rotations {
            if let Some(r) = state.config.rotation(id) {
                if !out.iter().any(|o| o.id == r.id) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// An override asked for with `/backfill oncall override`.
#[derive(Clone, Debug)]
pub struct OverrideRequest {
    pub tenant: String,
    pub rotation: String,
    pub user: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub by: String,
    /// Names the request, so a retried one makes one override.
    pub dedup_key: String,
}

fn override_audit(
    tenant: &str,
    o: &crate::store::StoredOverride,
    actor: &str,
    action: &str,
    at: DateTime<Utc>,
) -> crate::store::AuditEntry {
    let detail = serde_json::json!({
        "override": o.id, "rotation": o.rotation_id, "user": o.user_id,
        "from": o.starts_at.to_rfc3339(), "until": o.ends_at.to_rfc3339(),
    });
    crate::store::AuditEntry::ok(at, tenant, actor, action, &o.rotation_id, detail)
}

/// Makes an override, with its audit entry, in one commit. `Err`: why not,
/// for the person who asked. Returns the override and whether this request
/// made it.
pub async fn create_override(
    state: &AppState,
    req: OverrideRequest,
) -> anyhow::Result<Result<(crate::store::StoredOverride, bool), String>> {
    let now = state.clock.now();
    if req.until <= req.from {
        return Ok(Err("its end is not after its start".into()));
    }
    if req.until <= now {
        return Ok(Err("its end is not in the future".into()));
    }
    if req.until - req.from > chrono::Duration::days(31) {
        return Ok(Err(
            "an override lasts at most 31 days; change the rotation's members for longer".into(),
        ));
    }
    let o = crate::store::StoredOverride {
        id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        rotation_id: req.rotation.clone(),
        user_id: req.user.clone(),
        reason: None,
        created_by: req.by.clone(),
        created_at: now,
        starts_at: req.from.max(now - chrono::Duration::minutes(1)),
        ends_at: req.until,
        cancelled_at: None,
        cancelled_by: None,
    };
    let tenant = req.tenant.clone();
    let made = state
        .store
        .create_override_with(&o, &req.dedup_key, now, |made| {
            let mut effects = crate::store::Effects::new();
            effects.record(override_audit(
                &tenant,
                made,
                &req.by,
                "oncall_override",
                now,
            ));
            effects
        })
        .await?;
    state.overrides.forget();
    crate::flows::home_refresh::touch(state, &req.tenant).await;
    Ok(Ok(made))
}

/// Cancels an override once, audited; `None` when it was cancelled already.
pub async fn cancel_override(
    state: &AppState,
    tenant: &str,
    id: &str,
    by: &str,
) -> anyhow::Result<Option<crate::store::StoredOverride>> {
    let now = state.clock.now();
    let done = state
        .store
        .cancel_override_with(id, by, now, |o| {
            let mut effects = crate::store::Effects::new();
            effects.record(override_audit(tenant, o, by, "oncall_override_cancel", now));
            effects
        })
        .await?;
    state.overrides.forget();
    crate::flows::home_refresh::touch(state, tenant).await;
    Ok(done)
}

/// `/backfill oncall`: each tier of the tenant's path, its people now
/// (display names, no mentions), until when, and who comes next.
pub async fn who_is_on_call(state: &AppState, tenant: &str) -> String {
    use crate::domain::text::{date_token, escape_slack};
    let now = state.clock.now();
    let path = state.config.escalation_for(tenant);
    let mut lines = vec![format!(
        "*On call for `{}` now* ({} path)",
        escape_slack(tenant),
        if state
            .config
            .tenant(tenant)
            .is_some_and(|t| t.escalation.is_some())
        {
            "its own"
        } else {
            "the global"
        }
    )];
    for (i, tier) in path.tiers.iter().enumerate() {
        let mut parts = Vec::new();
        if !tier.notify.is_empty() {
            parts.push(state.directory.names(&tier.notify).await);
        }
        for id in &tier.rotations {
            let Some(r) = state.config.rotation(id) else {
                continue;
            };
            let (current, next) = on_call(state, r, now).await;
            let Some(c) = current else { continue };
            let mut s = format!(
                "{} (`{}`{}) until {}",
                escape_slack(&state.directory.user_name(&c.user).await),
                escape_slack(id),
                if c.by_override { ", override" } else { "" },
                date_token(c.until)
            );
            if let Some(n) = next {
                s.push_str(&format!(
                    ", then {}",
                    escape_slack(&state.directory.user_name(&n.user).await)
                ));
            }
            parts.push(s);
        }
        for id in &tier.pagerduty_schedules {
            let answer = crate::flows::pd_schedules::people(state, id, now).await;
            let names = if answer.people.is_empty() {
                "nobody known".to_string()
            } else {
                state.directory.names(&answer.people).await
            };
            parts.push(format!(
                "{names} (PagerDuty schedule `{}`{})",
                escape_slack(id),
                if answer.stale {
                    ", last known: PagerDuty does not answer"
                } else {
                    ""
                }
            ));
        }
        lines.push(format!(
            "{}. *{}*: {}",
            i + 1,
            escape_slack(&tier.name),
            if parts.is_empty() {
                "nobody".to_string()
            } else {
                parts.join("; ")
            }
        ));
    }
    lines.join("\n")
}

/// With `announce = true` on a rotation, each tenant whose path names it is
/// told at each handoff, in its channel: one line, naming without
/// mentioning. Called after every poll; the outbox's dedup key (per
/// rotation, shift and tenant) makes it once across replicas and polls. A
/// handoff more than an hour old is not announced late.
pub async fn announce_handoffs(state: &AppState) -> anyhow::Result<()> {
    use crate::domain::text::{date_token, escape_slack};
    let now = state.clock.now();
    let mut effects = crate::store::Effects::new();
    for r in state.config.rotations.iter().filter(|r| r.announce) {
        let Some(shift) = r.shift_at(now) else {
            continue;
        };
        if now - shift.from > chrono::Duration::hours(1) {
            continue;
        }
        let (current, _) = on_call(state, r, now).await;
        let Some(current) = current else { continue };
        let name = state.directory.user_name(&current.user).await;
        for t in &state.config.tenants {
            let path = state.config.escalation_for(&t.id);
            let Some(tier) = path.tiers.iter().find(|x| x.rotations.contains(&r.id)) else {
                continue;
            };
            let text = format!(
                ":pager: Handoff on `{}`: {} is now on call for {} as {} until {}.",
                escape_slack(&r.id),
                escape_slack(&name),
                escape_slack(&t.id),
                escape_slack(&tier.name),
                date_token(current.until)
            );
            effects.send(crate::store::NewOutboxMessage::call(
                "chat.postMessage",
                serde_json::json!({ "channel": t.channel.as_str(), "text": text }),
                format!("oncall:handoff:{}:{}:{}", r.id, shift.index, t.id),
            ));
        }
    }
    if !effects.is_empty() {
        state.store.commit(&effects, now).await?;
        state.wake_outbox();
    }
    Ok(())
}
