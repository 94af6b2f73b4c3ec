//! **Request scaling**: a page to the platform team with the runbook's
//! asks, and its Acknowledge.

use super::*;
/// The action id of the Acknowledge button on a scaling page; its value is
/// `<alert id>:<request number>`.
pub const SCALING_ACK_ACTION: &str = "scaling_ack";

/// The runbook's asks of the platform team when a job is at high risk.
const SCALING_ASKS: &str =
    "• Scale up the executors\n• Lower other workloads' resource limits\n• Enable burst capacity";

/// **Request scaling**: a real page to the platform tier (the runbook's
/// resource scaling decisions): a DM with Acknowledge to each of its people,
/// a PagerDuty trigger when the tier has a routing key, and a note in the
/// alert's thread that says who asked and mentions who was paged. It can be
/// asked again once `mitigations.scaling_cooldown` has passed.
pub async fn request_scaling(state: &AppState, click: &Click) {
    let Some((alert, tenant)) = authorise(
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
    let Some(tier) = crate::flows::escalation::scaling_tier(state) else {
        return tell(state, click, "No escalation tier is configured to page.").await;
    };
    if !alert.is_open() {
        return tell(
            state,
            click,
            "This alert is resolved; there is nothing to scale for.",
        )
        .await;
    }
    let targets = match state.directory.expand(&tier.notify).await {
        Ok(t) => t,
        Err(_) => {
            return tell(
                state,
                click,
                "I could not resolve the platform tier's people with Slack just now; nobody was paged. Try again in a moment.",
            )
            .await
        }
    };
    let now = state.clock.now();
    let cooldown = chrono::Duration::from_std(state.config.scaling_cooldown).unwrap_or_default();
    let count = match state
        .store
        .claim_scaling_request(&alert.id, &tenant.id, &click.user, now, cooldown)
        .await
    {
        Ok(Some(n)) => n,
        Ok(None) => {
            let last = state.store.scaling_request(&alert.id).await.ok().flatten();
            audit(
                state,
                &alert,
                &click.user,
                "request_scaling",
                "refused: cooling down",
                json!({}),
            )
            .await;
            let text = match last {
                Some(r) => {
                    let at =
                        chrono::DateTime::from_timestamp_millis(r.requested_at_ms).unwrap_or(now);
                    format!(
                        "Scaling was requested {} by {}{}. It can be requested again {}.",
                        date_token(at),
                        state.directory.user_name(&r.requested_by).await,
                        match &r.acked_by {
                            Some(by) => format!(
                                ", and {} acknowledged it",
                                state.directory.user_name(by).await
                            ),
                            None => ", not acknowledged yet".into(),
                        },
                        date_token(at + cooldown)
                    )
                }
                None => "Scaling was requested moments ago.".into(),
            };
            return tell(state, click, &text).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a scaling request failed");
            return tell(
                state,
                click,
                ":warning: The request could not be recorded; nobody was paged. Try again.",
            )
            .await;
        }
    };
    let asker = state.directory.user_name(&click.user).await;
    let facts = crate::flows::escalation::PageFacts::of(state, &alert);
    let dm = facts.message(
        state,
        &format!(":rocket: *Emergency scaling requested* by {asker}"),
        &[
            format!("*The runbook asks the platform team to*\n{SCALING_ASKS}"),
            format!(
                "*Your part* (as *{}*): {}.",
                crate::slack::render::escape_slack(&tier.name),
                crate::slack::render::escape_slack(&tier.purpose)
            ),
        ],
        SCALING_ACK_ACTION,
        &format!("{}:{count}", alert.id),
    );
    let key = format!("scaling:{}:{count}", alert.id);
    let mut messages: Vec<NewOutboxMessage> = targets
        .iter()
        .map(|user| {
            let mut payload = dm.clone();
            payload["channel"] = user.as_str().into();
            NewOutboxMessage::call("chat.postMessage", payload, format!("{key}:{user}"))
        })
        .collect();
    let who: Vec<String> = targets.iter().map(|u| format!("<@{u}>")).collect();
    match alerts::thread_message(
        state,
        &alert,
        format!("{key}:note"),
        &format!(
            ":rocket: {asker} requested emergency scaling: paging *{}* ({}) to scale executors, lower other workloads' limits or enable burst capacity.",
            crate::slack::render::escape_slack(&tier.name),
            if who.is_empty() { "nobody resolved".to_string() } else { who.join(" ") }
        ),
    ) {
        Ok(m) => messages.push(m),
        Err(e) => tracing::error!(error = %e, "the scaling note did not render"),
    }
    if let Some(env) = &tier.pagerduty_routing_key_env {
        let mut event = facts.pagerduty_trigger(
            state,
            env,
            &tier.name,
            &tier.purpose,
            &format!("emergency scaling requested by {asker}"),
        );
        event["dedup_key"] = scaling_dedup_key(&alert.id, count).into();
        let summary = format!(
            "Emergency scaling requested: {}",
            event["payload"]["summary"].as_str().unwrap_or_default()
        );
        event["payload"]["summary"] = summary.chars().take(1024).collect::<String>().into();
        messages.push(NewOutboxMessage::call(
            crate::pagerduty::OUTBOX_METHOD,
            event,
            format!("{key}:pd"),
        ));
    }
    if let Err(e) = state.enqueue_many(&messages).await {
        tracing::error!(error = %e, "the scaling page could not be queued");
        return tell(
            state,
            click,
            ":warning: The page could not be queued; try again.",
        )
        .await;
    }
    state
        .metrics
        .inc("servo_sla_bot_pages_total", &[("tier", &tier.name)]);
    audit(
        state,
        &alert,
        &click.user,
        "request_scaling",
        "ok",
        json!({ "tier": tier.name, "paged": targets, "request": count }),
    )
    .await;
    tell(
        state,
        click,
        &format!(
            ":rocket: Paged *{}* ({}) for emergency scaling{}. It can be requested again {}.",
            crate::slack::render::escape_slack(&tier.name),
            crate::flows::escalation::tier_names(state, tier).await,
            if tier.pagerduty_routing_key_env.is_some() {
                ", by DM and PagerDuty"
            } else {
                " by DM"
            },
            date_token(now + cooldown)
        ),
    )
    .await;
}

/// PagerDuty's incident for one scaling request: apart from the alert's own.
pub fn scaling_dedup_key(alert_id: &str, count: i64) -> String {
    format!("servo-sla-bot-{alert_id}-scaling-{count}")
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
    let now = state.clock.now();
    match state
        .store
        .ack_scaling_request(&alert_id, count, &click.user, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let by = match state.store.scaling_request(&alert_id).await.ok().flatten() {
                Some(r) if r.count == count => match r.acked_by {
                    Some(by) => format!(
                        "Already acknowledged by {}.",
                        state.directory.user_name(&by).await
                    ),
                    None => "Nothing changed.".into(),
                },
                _ => "A newer scaling request replaced this one; acknowledge that one.".into(),
            };
            return tell(state, click, &by).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "acknowledging a scaling request failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; nothing changed. Try again.",
            )
            .await;
        }
    }
    let name = state.directory.user_name(&click.user).await;
    let mut messages = Vec::new();
    if let Ok(m) = alerts::thread_message(
        state,
        &alert,
        format!("scaling:{alert_id}:{count}:ack"),
        &format!(
            ":white_check_mark: {name} acknowledged the scaling request {}.",
            date_token(now)
        ),
    ) {
        messages.push(m);
    }
    if let Some(env) = crate::flows::escalation::scaling_tier(state)
        .and_then(|t| t.pagerduty_routing_key_env.clone())
    {
        messages.push(NewOutboxMessage::call(
            crate::pagerduty::OUTBOX_METHOD,
            json!({ "routing_key_env": env, "event_action": "acknowledge", "dedup_key": scaling_dedup_key(&alert_id, count) }),
            format!("scaling:{alert_id}:{count}:pd-ack"),
        ));
    }
    if let Err(e) = state.enqueue_many(&messages).await {
        tracing::error!(error = %e, "the scaling acknowledgement could not be queued");
    }
    audit(
        state,
        &alert,
        &click.user,
        "ack_scaling",
        "ok",
        json!({ "request": count }),
    )
    .await;
    tell(
        state,
        click,
        ":white_check_mark: Acknowledged: the thread says you have the scaling request.",
    )
    .await;
}
