//! May this alert page now? (issue 35)
//!
//! One decision, [`decide`], read from the store (silences, maintenance
//! windows set from Slack) and the config (`[[maintenance]]`,
//! `[escalation.hours.<tier>]`): [`Decision::Page`], or
//! [`Decision::Hold`] until when and why. The escalation asks it when paging
//! would start and before each step ([`gate`]); a held alert's escalation
//! stops (its thread says so) and a timer at `until` ([`RESUME_TIMER`])
//! starts it again from the first tier if the job is still at risk. Every
//! change is one store transaction with its notes, timers and audit entry,
//! and every note and timer has a dedup key, so each replica that decides
//! the same thing writes it once.
//!
//! Silences are made and ended here too ([`silence`], [`end_silence`]):
//! `/backfill silence`, `/backfill unsilence` and the silence's expiry.

use crate::context::AppState;
use crate::domain::risk::RiskBand;
use crate::domain::risk::SlaTier;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::store::{Alert, Silence, StoredWindow};
use chrono::{DateTime, Utc};

/// What is asked about: one job's alert, its band and SLA tier.
#[derive(Clone, Debug)]
pub struct Subject {
    pub tenant: String,
    pub job_id: String,
    pub asset: String,
    pub band: RiskBand,
    pub tier: SlaTier,
}

impl Subject {
    /// The alert as it shows: its asset and priority from its view.
    pub fn of(alert: &Alert) -> Subject {
        let priority = alert
            .shown
            .as_ref()
            .and_then(|v| v.get("priority"))
            .and_then(|p| p.as_i64())
            .unwrap_or(5) as i32;
        Subject {
            tenant: alert.tenant_id.clone(),
            job_id: alert.job_id.clone(),
            asset: alert.asset_name(),
            band: alert.band,
            tier: SlaTier::from_priority(priority),
        }
    }
}

/// Why an alert may not page now.
#[derive(Clone, Debug, PartialEq)]
pub enum Hold {
    Silenced(Silence),
    Maintenance { reason: Option<String> },
    Settling,
    Hours { tz: chrono_tz::Tz, tier: SlaTier },
}

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Page,
    Hold { until: DateTime<Utc>, why: Hold },
}

impl Decision {
    /// The thread's and the alert's words for a hold.
    pub fn words(&self) -> Option<String> {
        let Decision::Hold { until, why } = self else {
            return None;
        };
        Some(match why {
            Hold::Silenced(s) => format!(
                "Silenced by <@{}> until {}: {}",
                s.created_by,
                date_token(*until),
                escape_slack(s.reason.as_deref().unwrap_or("no reason given"))
            ),
            Hold::Maintenance { reason } => format!(
                "In maintenance until {}{}",
                date_token(*until),
                reason
                    .as_deref()
                    .map(|r| format!(": {}", escape_slack(r)))
                    .unwrap_or_default()
            ),
            Hold::Settling => format!(
                "Settling after maintenance until {}: nothing pages until then, so ETAs can recover",
                date_token(*until)
            ),
            Hold::Hours { tz, tier } => format!(
                "Paging held until {} ({} tier pages in working hours)",
                until.with_timezone(tz).format("%a %H:%M %Z"),
                tier.label()
            ),
        })
    }

    /// A stable name for the hold (dedup keys of its notes).
    pub(crate) fn key(&self) -> String {
        match self {
            Decision::Page => "page".into(),
            Decision::Hold { until, why } => {
                let kind = match why {
                    Hold::Silenced(s) => format!("silence:{}", s.id),
                    Hold::Maintenance { .. } => "maintenance".into(),
                    Hold::Settling => "settle".into(),
                    Hold::Hours { .. } => "hours".into(),
                };
                format!("{kind}:{}", until.timestamp_millis())
            }
        }
    }
}

fn tier_index(t: SlaTier) -> usize {
    match t {
        SlaTier::Critical => 0,
        SlaTier::Standard => 1,
        SlaTier::BestEffort => 2,
        SlaTier::BelowBestEffort => 3,
    }
}

pub(crate) fn window_covers(w: &StoredWindow, s: &Subject) -> bool {
    w.tenant_id == s.tenant && w.scope.covers(&w.target, &s.tenant, &s.job_id, &s.asset)
}

/// May this alert page now? Silences first (the latest-ending one that
/// covers it; a breach breaks through unless it was set
/// `--through-breach`), then maintenance windows and their settling time,
/// then the tier's paging hours (a breach pages at once unless
/// `hold_breaches`).
pub async fn decide(state: &AppState, s: &Subject, now: DateTime<Utc>) -> anyhow::Result<Decision> {
    let held = Holds::read(state, &s.tenant, now).await?;
    Ok(decide_among(state, s, now, &held))
}

/// A tenant's active silences and its stored maintenance windows that end
/// after the settling time: what [`decide`] reads, read once for a poll's
/// alerts ([`crate::flows::poll_reads`]).
#[derive(Clone, Debug, Default)]
pub struct Holds {
    pub silences: Vec<crate::store::Silence>,
    pub windows: Vec<StoredWindow>,
}

impl Holds {
    pub async fn read(
        state: &AppState,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<Holds, crate::store::StoreError> {
        let settle =
            chrono::Duration::from_std(crate::config::quiet::DEFAULT_SETTLE).unwrap_or_default();
        Ok(Holds {
            silences: state.store.active_silences(Some(tenant), now).await?,
            windows: state
                .store
                .windows_ending_after(Some(tenant), now - settle)
                .await?,
        })
    }
}

/// [`decide`] on holds already read.
pub fn decide_among(state: &AppState, s: &Subject, now: DateTime<Utc>, held: &Holds) -> Decision {
    let breach = s.band == RiskBand::Breached;
    let silence = held
        .silences
        .iter()
        .filter(|x| x.is_active(now))
        .filter(|x| x.covers(&s.tenant, &s.job_id, &s.asset))
        .filter(|x| !breach || x.through_breach)
        .max_by_key(|x| x.ends_at);
    if let Some(x) = silence {
        return Decision::Hold {
            until: x.ends_at,
            why: Hold::Silenced(x.clone()),
        };
    }
    // Maintenance: the config's windows, and those set from Slack.
    let settle =
        chrono::Duration::from_std(crate::config::quiet::DEFAULT_SETTLE).unwrap_or_default();
    let mut inside: Option<(DateTime<Utc>, Option<String>)> = None;
    let mut settling: Option<DateTime<Utc>> = None;
    for w in state
        .config
        .quiet
        .maintenance
        .iter()
        .filter(|w| w.covers(&s.tenant, &s.asset))
    {
        if let Some((_, end)) = w.active_at(now) {
            if inside.as_ref().is_none_or(|(e, _)| end > *e) {
                inside = Some((end, w.reason.clone()));
            }
        } else if let Some(end) = w.last_end(now) {
            let until = end + chrono::Duration::from_std(w.settle).unwrap_or_default();
            if until > now && settling.is_none_or(|u| until > u) {
                settling = Some(until);
            }
        }
    }
    for w in held
        .windows
        .iter()
        .filter(|w| w.ends_at > now - settle)
        .filter(|w| window_covers(w, s))
    {
        if w.starts_at <= now && now < w.ends_at {
            if inside.as_ref().is_none_or(|(e, _)| w.ends_at > *e) {
                inside = Some((w.ends_at, w.reason.clone()));
            }
        } else if w.ends_at <= now && settling.is_none_or(|u| w.ends_at + settle > u) {
            settling = Some(w.ends_at + settle);
        }
    }
    if let Some((until, reason)) = inside {
        return Decision::Hold {
            until,
            why: Hold::Maintenance { reason },
        };
    }
    if let Some(until) = settling {
        return Decision::Hold {
            until,
            why: Hold::Settling,
        };
    }
    if let Some(hours) = &state.config.quiet.hours[tier_index(s.tier)] {
        if !breach || hours.hold_breaches {
            if let Some(until) = hours.held_until(now) {
                return Decision::Hold {
                    until,
                    why: Hold::Hours {
                        tz: hours.tz,
                        tier: s.tier,
                    },
                };
            }
        }
    }
    Decision::Page
}

/// What the alert's own message says about a hold (silences and
/// maintenance; paging hours show in its thread only), and the id of the
/// silence that holds it (nothing about it is broadcast then).
pub async fn alert_note(state: &AppState, alert: &Alert) -> (Option<String>, Option<String>) {
    let now = state.clock.now();
    match Holds::read(state, &alert.tenant_id, now).await {
        Ok(held) => alert_note_among(state, alert, now, &held),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the alert's silences and windows");
            (None, None)
        }
    }
}

/// [`alert_note`] on holds already read.
pub fn alert_note_among(
    state: &AppState,
    alert: &Alert,
    now: DateTime<Utc>,
    held: &Holds,
) -> (Option<String>, Option<String>) {
    match decide_among(state, &Subject::of(alert), now, held) {
        Decision::Hold {
            why: Hold::Hours { .. },
            ..
        } => (None, None),
        d @ Decision::Hold { .. } => {
            let silence = match &d {
                Decision::Hold {
                    why: Hold::Silenced(s),
                    ..
                } => Some(s.id.clone()),
                _ => None,
            };
            (d.words().map(|w| format!(":mute: {w}")), silence)
        }
        Decision::Page => (None, None),
    }
}

/// `servo_sla_bot_silences_active`, by tenant.
pub async fn export_gauge(state: &AppState) {
    match state.store.active_silences(None, state.clock.now()).await {
        Ok(all) => {
            let mut by: std::collections::BTreeMap<String, usize> = Default::default();
            for s in all {
                *by.entry(s.tenant_id).or_default() += 1;
            }
            state.metrics.set_gauge_family(
                "servo_sla_bot_silences_active",
                by.into_iter()
                    .map(|(t, n)| (vec![("tenant", t)], n as f64))
                    .collect(),
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not count the active silences"),
    }
}

/// One line per active silence of a tenant, for `/backfill silences` and
/// the App Home.
pub fn silence_line(s: &Silence) -> String {
    format!(
        "• `{}` {} *{}* until {} by <@{}>{}{}",
        s.id,
        s.scope.as_str(),
        escape_slack(&s.target),
        date_token(s.ends_at),
        s.created_by,
        s.reason
            .as_deref()
            .map(|r| format!(": {}", escape_slack(r)))
            .unwrap_or_default(),
        if s.through_breach {
            " (holds through a breach)"
        } else {
            ""
        }
    )
}
