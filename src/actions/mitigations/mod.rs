//! The runbook's mitigations, one button each on the alert. Every one is for
//! the tenant's operators only, audited, and decided once however often it
//! is clicked (dedup keys in the outbox, conditional updates in the store,
//! Servo's own state checks). These files decode the click, check who
//! clicked and open the dialogs; what each decides, and commits, is in
//! [`crate::flows::mitigations`], [`crate::flows::monitor`] and
//! [`crate::flows::scaling`].

use super::{tell, Click};
use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::risk::JobState;
use crate::domain::risk::SlaTier;
use crate::servo::Job;
use crate::store::Alert;
use serde_json::{json, Value};

pub const PAUSE_VIEW: &str = "mitigate_pause";
pub const NOTIFY_VIEW: &str = "mitigate_notify";

use crate::flows::monitor::job_of;
use crate::flows::thread::audit;

/// The alert and its tenant, if the clicker is one of its operators; else
/// the clicker is told why not, and the refusal is audited.
pub(in crate::actions) async fn authorise<'a>(
    state: &'a AppState,
    user: &str,
    alert_id: &str,
    action: &str,
    click: Option<&Click>,
) -> Option<(Alert, &'a Tenant)> {
    let say = |text: String| async move {
        if let Some(c) = click {
            tell(state, c, &text).await;
        }
    };
    let alert = match state.store.get_alert(alert_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            say("This alert no longer exists.".into()).await;
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            say(":warning: Something went wrong on our side; nothing changed. Try again.".into())
                .await;
            return None;
        }
    };
    let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
        say("This alert's tenant is no longer configured.".into()).await;
        return None;
    };
    match state.directory.is_among(user, &tenant.operators).await {
        Ok(true) => Some((alert, tenant)),
        Ok(false) => {
            audit(
                state,
                &alert,
                user,
                action,
                "refused: not an operator",
                json!({ "alert_id": alert.id }),
            )
            .await;
            say(format!(
                ":no_entry: Only the operators of tenant `{}` can use this button ({}).",
                tenant.id,
                tenant.operator_mentions()
            ))
            .await;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            say("I could not check your membership with Slack just now; nothing changed. Try again in a moment.".into()).await;
            None
        }
    }
}

mod monitor;
mod notify;
mod pause;
mod recreate;
mod resume;
mod scaling;

pub use monitor::{monitor, stop_monitor};
pub use notify::{confirm_notify, offer_notify};
pub use pause::{confirm_pause, offer_pause};
pub use recreate::recreate;
pub use resume::resume_paused;
pub use scaling::{ack_scaling, request_scaling};
