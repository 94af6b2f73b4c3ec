//! **Recreate with priority 10**: Servo cancels the job and starts its
//! uncompleted partitions again at priority 10; the alert follows the new job
//! ([`crate::flows::mitigations::recreate`]).

use super::*;

/// **Recreate with priority 10** (after Slack's confirm dialog).
pub async fn recreate(state: &AppState, click: &Click) {
    let Some((alert, tenant)) =
        authorise(state, &click.user, &click.value, "recreate", Some(click)).await
    else {
        return;
    };
    if !alert.is_open() {
        return tell(
            state,
            click,
            "This alert is resolved; there is nothing to recreate.",
        )
        .await;
    }
    if let Err(say) =
        crate::flows::mitigations::recreate(state, &alert, &tenant.id, &click.user).await
    {
        tell(state, click, &say).await;
    }
}
