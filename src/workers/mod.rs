//! The workers: what runs on its own schedule beside the requests. The
//! [`poller`] runs [`crate::flows::poll`] for each tenant; the
//! [`timer_worker`] fires due timers (escalation steps, check-ins, expiries,
//! Home refreshes); the [`outbox_worker`] delivers the Slack calls that must
//! not be lost.

pub mod outbox_worker;
pub mod poller;
pub mod timer_worker;
