//! **Request scaling**: a page to the platform team with the runbook's
//! asks, and its Acknowledge (decided in [`crate::flows::scaling`]).

use super::*;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::scaling::{self, Requested, ScalingAcked};

/// **Request scaling**: a real page to the platform tier (the runbook's
/// resource scaling decisions): a DM with Acknowledge to each of its people,
/// a PagerDuty trigger when the tier has a routing key, and a note in the
/// alert's thread that says who asked and mentions who was paged. It can be
/// asked again once `mitigations.scaling_cooldown` has passed.
pub async fn request_scaling(state: &AppState, click: &Click) {
    let Some((alert, _)) = authorise(
        state,
        &click.user,
        &click.value,
        "request_scaling",
        Some(click),
    )
    .await
    else {
        return;
    };
    let text = match scaling::request(state, &alert, &click.user).await {
        Ok(Requested::Paged { tier, again, .. }) => format!(
            ":rocket: Paged *{}* ({}) for emergency scaling{}. It can be requested again {}.",
            escape_slack(&tier.name),
            crate::flows::paging::tier_names(&state.directory, &tier).await,
            if tier.pagerduty_routing_key_env.is_some() {
                ", by DM and PagerDuty"
            } else {
                " by DM"
            },
            date_token(again)
        ),
        Ok(Requested::CoolingDown(text)) => text,
        Ok(Requested::NotOpen) => "This alert is resolved; there is nothing to scale for.".into(),
        Ok(Requested::NoTier) => "No escalation tier is configured to page.".into(),
        Ok(Requested::NobodyResolved) => "I could not resolve the platform tier's people with Slack just now; nobody was paged. Try again in a moment.".into(),
        Err(e) => {
            tracing::error!(error = %e, "a scaling request failed");
            ":warning: The request could not be recorded; nobody was paged. Try again.".into()
        }
    };
    tell(state, click, &text).await;
}

/// **Acknowledge** on a scaling page: the platform tier has it. Decided once
/// however often it is clicked; mirrored to PagerDuty and said in the thread.
pub async fn ack_scaling(state: &AppState, click: &Click) {
    let Some((alert_id, count)) = click
        .value
        .rsplit_once(':')
        .and_then(|(a, n)| n.parse::<i64>().ok().map(|n| (a.to_string(), n)))
    else {
        return tell(
            state,
            click,
            "This button is not one I recognise; nothing changed.",
        )
        .await;
    };
    let Ok(Some(alert)) = state.store.get_alert(&alert_id).await else {
        return tell(state, click, "This alert no longer exists.").await;
    };
    if !crate::flows::escalation::may_respond(state, &alert, &click.user).await {
        audit(
            state,
            &alert,
            &click.user,
            "ack_scaling",
            "refused: not an operator",
            json!({}),
        )
        .await;
        return tell(state, click, ":no_entry: Only the tenant's operators and the people on the escalation path can acknowledge a scaling request.").await;
    }
    let text = match scaling::acknowledge(state, &alert, count, &click.user).await {
        Ok(ScalingAcked::Acknowledged) => {
            ":white_check_mark: Acknowledged: the thread says you have the scaling request.".into()
        }
        Ok(ScalingAcked::Not(why)) => why,
        Err(e) => {
            tracing::error!(error = %e, "acknowledging a scaling request failed");
            ":warning: Something went wrong on our side; nothing changed. Try again.".into()
        }
    };
    tell(state, click, &text).await;
}
