//! The ids Slack and the timer worker route by, in one place: the action
//! id of every button and menu the flows put in messages and Homes, and
//! the kind of every timer they schedule. The actions and the timer worker
//! dispatch on these; a flow names them when it builds a message or a timer.

/// The action id of the Acknowledge button.
pub const ACK_ACTION: &str = "alert_ack";

pub const MONITOR_ACTION: &str = "mitigate_monitor";

pub const STOP_MONITOR_ACTION: &str = "mitigate_stop_monitor";

pub const DEFER_ACTION: &str = "mitigate_defer";

pub const PAUSE_LOWER_ACTION: &str = "mitigate_pause_lower";

pub const RECREATE_ACTION: &str = "mitigate_recreate";

pub const SCALING_ACTION: &str = "mitigate_scaling";

pub const NOTIFY_ACTION: &str = "mitigate_notify";

pub const RESUME_PAUSED_ACTION: &str = "mitigate_resume_paused";

pub const REQUEST_EXTENSION_ACTION: &str = "extension_request";

/// The timer kind of **Monitor closely** check-ins.
pub const MONITOR_TIMER: &str = "monitor_checkin";

/// The timer kind that re-renders an alert's buttons ([`refresh`]) after an
/// escalation step moved the path on. A step schedules it, due at once, in
/// the step's own transaction: the page is the urgent part, and the timer
/// worker fires timers in due order, so a burst of steps pages everyone
/// first and the buttons' labels follow a moment later.
pub const BUTTONS_TIMER: &str = "alert_buttons";

/// The action id of the alert's overflow menu; each option's value is
/// `<action_id>|<value>` of the button it stands for.
pub const OVERFLOW_ACTION: &str = "alert_more";

pub const APPROVE_ACTION: &str = "extension_approve";

pub const REJECT_ACTION: &str = "extension_reject";

/// The timer that expires a pending request.
pub const EXPIRY_TIMER: &str = "approval_expiry";

pub const STEP_TIMER: &str = "escalation_step";

pub const ESCALATE_ACTION: &str = "alert_escalate";

/// The timer kind that publishes a person's Home.
pub const REFRESH_TIMER: &str = "home_refresh";

/// The action id of the Acknowledge button on a scaling page; its value is
/// `<alert id>:<request number>`.
pub const SCALING_ACK_ACTION: &str = "scaling_ack";

/// The button that acknowledges a roll-up's paging (value: the roll-up id).
pub const ROLLUP_ACK_ACTION: &str = "rollup_ack";

/// A held alert's resumption: paging may start again (subject: the alert).
pub const RESUME_TIMER: &str = "quiet_resume";

/// A silence's end (subject: the silence's id).
pub const SILENCE_END_TIMER: &str = "silence_end";

/// The alert menu's silences (issue 35): value `<alert id>:<choice>`, the
/// choice one of `1h`, `4h`, `morning` (09:00 tomorrow in the clicker's
/// zone) or `ask` (the *Silence…* dialog).
pub const SILENCE_ACTION: &str = "alert_silence";

/// The alert menu's *Lift silence* (value: the silence's id).
pub const LIFT_SILENCE_ACTION: &str = "alert_unsilence";

/// The alert menu's *Open incident channel* (issue 38; value: the alert id).
pub const INCIDENT_CHANNEL_ACTION: &str = "incident_channel_open";

/// *Archive channel* under an incident channel's timeline (value: the alert id).
pub const ARCHIVE_CHANNEL_ACTION: &str = "incident_channel_archive";

/// How an episode ended, asked once in the thread after it resolved: the
/// buttons' action ids are this and `:<choice>` (unique in their block),
/// their value `<alert id>:<mitigated|expected|false_alarm|missed>`; each
/// opens the dialog with its optional note.
pub const DISPOSITION_ACTION: &str = "alert_disposition";

/// The claimed step that creates an alert's incident channel in Slack
/// (subject: the alert).
pub const INCIDENT_CHANNEL_TIMER: &str = "incident_channel_open";

/// The claimed step that reads what Slack made of archiving an alert's
/// incident channel (subject: the alert; payload: the archive call's outbox
/// key and the archive's time).
pub const ARCHIVE_CHECK_TIMER: &str = "incident_channel_archive_check";
