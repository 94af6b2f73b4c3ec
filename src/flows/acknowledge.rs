//! **Acknowledge**: someone has the alert. The button is
//! [`crate::actions::acknowledge`] (from the alert, its thread, a page's DM
//! or the App Home); what it decides is here, committed in one transaction:
//! the alert acknowledged (the first click wins: a conditional update), what
//! it shows from then on, its escalation ended with its pending step
//! cancelled, PagerDuty's incident acknowledged, the alert's edit, the note
//! in its thread, the audit entry and the refresh of the tenant's Homes. A
//! stop before the commit leaves nothing (the person is told to try again);
//! after it, everything. A step that finds the alert acknowledged with its
//! path still running (an acknowledgement that came as the path started)
//! ends it the same way ([`crate::flows::escalation`]).

use crate::context::AppState;
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::flows::alert_view::AlertView;
use crate::flows::escalation;
use crate::flows::thread::audit_entry;
use crate::store::{AlertAck, Effects, NewOutboxMessage};
use chrono::{DateTime, Utc};
use serde_json::json;

/// How often an acknowledgement reads the alert again when something else
/// (a poll's edit) changed it between the read and the commit.
const ATTEMPTS: usize = 5;

/// What a click on Acknowledge came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acked {
    /// This click acknowledged it.
    Acknowledged,
    /// Someone else was first.
    Already { by: String, at: DateTime<Utc> },
    /// The alert is resolved.
    NotOpen,
    /// No such alert.
    Missing,
}

/// Acknowledges `alert_id` for `user` (an operator or someone on the path,
/// checked by the caller).
pub async fn acknowledge(state: &AppState, alert_id: &str, user: &str) -> anyhow::Result<Acked> {
    for _ in 0..ATTEMPTS {
        let now = state.clock.now();
        let Some(alert) = state.store.get_alert(alert_id).await? else {
            return Ok(Acked::Missing);
        };
        let detail = json!({ "alert_id": alert_id });
        if !alert.is_open() {
            crate::flows::thread::audit(
                state,
                &alert,
                user,
                "acknowledge",
                "refused: alert resolved",
                detail,
            )
            .await;
            return Ok(Acked::NotOpen);
        }
        if let (Some(by), Some(at)) = (&alert.acked_by, alert.acked_at) {
            crate::flows::thread::audit(
                state,
                &alert,
                user,
                "acknowledge",
                "already acknowledged",
                detail,
            )
            .await;
            return Ok(Acked::Already { by: by.clone(), at });
        }
        let line = format!(
            ":white_check_mark: Acknowledged by <@{user}> {}",
            date_token(now)
        );
        // What the alert shows from now on: who and when, no Acknowledge,
        // and Escalate now as it stands once the path has ended.
        let mut acked = alert.clone();
        acked.acked_by = Some(user.to_string());
        acked.acked_at = Some(now);
        let ended = state.store.get_escalation(alert_id).await?.map(|mut e| {
            if matches!(e.status.as_str(), "active" | "stopped") {
                e.status = "acknowledged".into();
            }
            e
        });
        let view = match AlertView::shown(&alert) {
            Some(mut v) => {
                let mut ex = crate::flows::alert_view::extras(state, alert_id).await?;
                let path =
                    crate::flows::oncall::path(state, &alert.tenant_id, state.clock.now()).await;
                ex.escalate_to = crate::flows::paging::escalate_now_pages(
                    &path,
                    &state.directory,
                    ended.as_ref(),
                )
                .await;
                ex.escalate_value = Some(crate::flows::paging::escalate_now_value(
                    state.config.escalation_for(&alert.tenant_id),
                    alert_id,
                    ended.as_ref(),
                ));
                ex.confirm_lines = v.bought.clone();
                v.buttons = crate::flows::alert_view::buttons(
                    &acked,
                    RiskBand::parse(&v.band),
                    v.offers_recreate(),
                    &ex,
                );
                v.outcome = Some(line.clone());
                Some(v)
            }
            None => None,
        };
        let version = alert.version + 1;
        let mut effects = crate::flows::paging::cancel_steps(alert_id);
        if let Some(v) = &view {
            effects.send(NewOutboxMessage {
                dedup_key: Some(format!("alert:{alert_id}:ack:{version}")),
                method: "chat.update".into(),
                payload: crate::flows::alert_view::render(state, v)?,
                ordering_key: Some(alert.id.clone()),
                thread_alert_id: Some(alert.id.clone()),
                thread_field: Some("ts".into()),
                link_kind: None,
                link_id: None,
                not_before: None,
            });
        }
        effects
            .send(crate::flows::thread::thread_message(
                state,
                &alert,
                format!("alert:{alert_id}:ack-note:{version}"),
                &line,
            )?)
            .record(audit_entry(
                state,
                &alert,
                user,
                "acknowledge",
                "ok",
                detail,
            ));
        for timer in crate::flows::home_refresh::touch_timers(state, &alert.tenant_id).await {
            effects.schedule(timer);
        }
        let shown = view.as_ref().map(serde_json::to_value).transpose()?;
        // A member of a storm's roll-up: its acknowledgement acknowledges
        // the roll-up's paging of all its jobs (issue 35).
        let rollup = crate::flows::group_paging::paging_rollup(state, &alert).await?;
        let ack = AlertAck {
            alert_id,
            user,
            version: alert.version,
            shown: shown.as_ref(),
        };
        let done = state
            .store
            .acknowledge_alert_with(&ack, &effects, now, |ended| {
                let mut more = Effects::new();
                if let Some(esc) = ended {
                    more.outbox = escalation::acknowledged_effects(state, &alert, esc);
                }
                more
            })
            .await?;
        if done {
            state.wake_outbox();
            if let Some(r) = rollup {
                crate::flows::group_paging::acknowledge(state, &r, user, Some(&alert)).await?;
            }
            return Ok(Acked::Acknowledged);
        }
        // Someone was first, it resolved, or a poll edited it meanwhile:
        // read it again.
    }
    anyhow::bail!("the alert kept changing while it was acknowledged")
}
