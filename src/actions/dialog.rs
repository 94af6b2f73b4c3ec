//! Opening a dialog from a click: `views.open` with the click's trigger,
//! and, when Slack sent no trigger or the dialog could not open (the trigger
//! expired: Slack allows 3 seconds after a click), an ephemeral word to the
//! clicker instead of silence.

use super::{tell, Click};
use crate::context::AppState;
use serde_json::{json, Value};

/// Opens `view` as a modal for the person who clicked; tells them when it
/// cannot.
pub async fn open_dialog(state: &AppState, click: &Click, view: Value) {
    let Some(trigger) = &click.trigger_id else {
        tell(
            state,
            click,
            "Slack sent no trigger for a dialog; try the button again.",
        )
        .await;
        return;
    };
    if let Err(e) = state
        .slack
        .call(
            "views.open",
            &json!({ "trigger_id": trigger, "view": view }),
        )
        .await
    {
        tracing::warn!(error = %e, "views.open failed");
        tell(
            state,
            click,
            "The dialog could not open (Slack allows 3 seconds after a click); try the button again.",
        )
        .await;
    }
}
