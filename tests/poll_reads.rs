//! A poll reads what its alerts need once for the tenant, not once per
//! alert (issue 40, `flows::poll_reads`): a steady poll's store statements
//! do not grow with its open alerts, in a storm or not, and what the poll
//! shows on each alert is what a fresh read of that alert shows.

mod common;

use chrono::Duration;
use common::bot::{Backend, World};
use common::servo_fixture::JobSpec;
use common::slack_ui::t0;
use servo_sla_bot::actions::Click;
use servo_sla_bot::flows::alert_view::{extras, extras_read};
use servo_sla_bot::flows::poll_reads::PollReads;
use servo_sla_bot::store::fault::counting;
use servo_sla_bot::workers::poller::Poller;

const CHANNEL: &str = "C0ACMEALERT";

async fn world(backend: Backend) -> World {
    common::bot::on_servo(backend, &["U0ONCALL1", "U0ONCALL2"]).await
}

/// A job of its own asset at Low (its ETA 10 min past the deadline two
/// hours away); critical (priority 9) every other one, so that some alerts
/// page on their own and some do not.
fn at_risk(n: usize) -> JobSpec {
    JobSpec {
        asset: format!("asset_{n:02}"),
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: if n.is_multiple_of(2) { 9 } else { 5 },
        ..JobSpec::default()
    }
}

/// Adds at-risk jobs up to `n`, polls until the alerts are open and
/// delivered and a poll changes nothing, then counts the store statements
/// of one more (steady) poll.
async fn steady_statements(w: &World, from: usize, n: usize) -> u32 {
    for i in from..n {
        w.fx.job(at_risk(i)).await;
    }
    w.app.poll().await;
    w.app.poll().await;
    let open = w
        .app
        .state
        .store
        .list_open_alerts(Some("acme"))
        .await
        .unwrap();
    let poller = Poller {
        state: w.app.state.clone(),
    };
    let (outcome, statements) = counting(poller.tick()).await;
    let acme = outcome.tenants["acme"].as_ref().expect("acme's poll");
    assert_eq!(
        (acme.posted, acme.edited, acme.resolved),
        (0, 0, 0),
        "a steady poll changes nothing"
    );
    let alerts = open.len();
    let at_risk: usize = acme.at_risk.values().sum();
    assert_eq!(at_risk, n, "every job is at risk");
    assert!(alerts > 0, "the alerts are open");
    statements
}

async fn statements_do_not_grow(backend: Backend, small: usize, large: usize) {
    let w = world(backend).await;
    let few = steady_statements(&w, 0, small).await;
    let many = steady_statements(&w, small, large).await;
    assert_eq!(
        few, many,
        "a steady poll's store statements with {small} alerts ({few}) and with {large} ({many}) \
         are the same: nothing is read once per alert"
    );
}

#[tokio::test]
async fn a_steady_polls_store_statements_do_not_grow_with_its_alerts_on_sqlite() {
    statements_do_not_grow(Backend::Sqlite, 2, 4).await;
}

#[tokio::test]
async fn a_steady_polls_store_statements_do_not_grow_with_its_alerts_on_postgres() {
    statements_do_not_grow(Backend::Postgres, 2, 4).await;
}

#[tokio::test]
async fn a_storms_steady_poll_reads_the_same_for_8_alerts_as_for_12_on_sqlite() {
    statements_do_not_grow(Backend::Sqlite, 8, 12).await;
}

#[tokio::test]
async fn a_storms_steady_poll_reads_the_same_for_8_alerts_as_for_12_on_postgres() {
    statements_do_not_grow(Backend::Postgres, 8, 12).await;
}

fn click(user: &str, action_id: &str, value: &str) -> Click {
    common::slack_ui::decoded_click(user, action_id, value)
}

/// What the poll's reads give each open alert (its buttons, its notes) is
/// what reading that alert alone gives, with Monitor closely on one, an
/// acknowledgement on another, a silence on a third, an escalation under
/// way on the critical ones.
async fn reads_match_a_fresh_read(backend: Backend) {
    let w = world(backend).await;
    for i in 0..4 {
        w.fx.job(at_risk(i)).await;
    }
    w.app.poll().await;
    let state = &w.app.state;
    let open = state.store.list_open_alerts(Some("acme")).await.unwrap();
    assert_eq!(open.len(), 4);
    let by_asset = |asset: &str| {
        open.iter()
            .find(|a| a.asset_name() == asset)
            .unwrap_or_else(|| panic!("an alert for {asset}"))
            .clone()
    };
    servo_sla_bot::flows::monitor::start(state, &by_asset("asset_01"), "U0ONCALL1")
        .await
        .expect("monitoring starts");
    servo_sla_bot::actions::acknowledge::run(
        state,
        &click("U0ONCALL1", "alert_ack", &by_asset("asset_02").id),
    )
    .await;
    let silenced = w
        .app
        .slash("silence asset_03 1h vendor outage", "U0PLATLEAD", CHANNEL)
        .await;
    assert_eq!(silenced.status, 200, "{}", silenced.body);
    w.app.drain_outbox().await;

    let tenant = state.config.tenant("acme").unwrap().clone();
    let reads = PollReads::read(state, &tenant, state.clock.now())
        .await
        .unwrap();
    let open = state.store.list_open_alerts(Some("acme")).await.unwrap();
    let mut seen = Vec::new();
    for alert in &open {
        let fresh = extras(state, &alert.id).await.unwrap();
        let read = extras_read(state, alert, &reads).await.unwrap();
        assert_eq!(
            read,
            fresh,
            "{}: the poll's reads show what a fresh read shows",
            alert.asset_name()
        );
        seen.push((alert.asset_name(), fresh));
    }
    let of = |asset: &str| &seen.iter().find(|(a, _)| a == asset).unwrap().1;
    assert!(of("asset_01").monitoring, "Monitor closely is on");
    assert!(of("asset_03").silenced, "the silence holds asset_03");
    assert!(of("asset_03").quiet.is_some());
    assert!(!of("asset_00").monitoring && !of("asset_00").silenced);
    let esc = |asset: &str| {
        let id = &open.iter().find(|a| a.asset_name() == asset).unwrap().id;
        reads.escalations.get(id).map(|e| e.status.clone())
    };
    assert_eq!(
        esc("asset_00").as_deref(),
        Some("active"),
        "the critical job pages"
    );
    assert_eq!(esc("asset_02").as_deref(), Some("acknowledged"));
}

#[tokio::test]
async fn the_polls_reads_show_each_alert_as_a_fresh_read_does_on_sqlite() {
    reads_match_a_fresh_read(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_polls_reads_show_each_alert_as_a_fresh_read_does_on_postgres() {
    reads_match_a_fresh_read(Backend::Postgres).await;
}
