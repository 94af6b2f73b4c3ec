//! The store's contract, run identically on SQLite and PostgreSQL.
//!
//! Each case is written once as `async fn case(store: &Store)`;
//! `contract_case!(case)` runs it on a fresh SQLite file (`case::sqlite`) and a
//! fresh PostgreSQL database (`case::postgres`). PostgreSQL must be reachable
//! (see `common::db`): its absence fails the run, it is never skipped.
//!
//! Races are real: tasks on a multi-threaded runtime, released together by a
//! barrier, each with its own pooled connection.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::db::TestDb;
use serde_json::json;
use servo_sla_bot::domain::risk::RiskBand;
use servo_sla_bot::store::{
    truncate_to_ms, AckOutcome, AuditEntry, Backend, Effects, EnvelopeClaim, NewAlert, NewApproval,
    NewOutboxMessage, NewTimer, Store, StoreError,
};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

macro_rules! contract_case {
    ($name:ident) => {
        mod $name {
            use super::common::db::TestDb;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = TestDb::sqlite().await;
                let store = db.store().await;
                super::$name(&store).await;
                store.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = TestDb::postgres().await;
                let store = db.store().await;
                super::$name(&store).await;
                store.close().await;
            }
        }
    };
}

// ---------------------------------------------------------------- helpers

/// A fixed, millisecond-exact "now" so times compare exactly.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

/// Moves every claim and lease `by` into the past, as if that much time had
/// passed on the database's clock, which claims and leases run on (the
/// callers' clocks only say what is due).
async fn time_passes_on_the_database(store: &Store, by: Duration) {
    const SQL: [&str; 4] = [
        "UPDATE outbox SET claim_until_ms = claim_until_ms - $1 WHERE claim_until_ms IS NOT NULL",
        "UPDATE timers SET claim_until_ms = claim_until_ms - $1 WHERE claim_until_ms IS NOT NULL",
        "UPDATE leases SET until_ms = until_ms - $1",
        "UPDATE socket_envelopes SET claimed_at_ms = claimed_at_ms - $1",
    ];
    for sql in SQL {
        match store {
            Store::Sqlite(p) => sqlx::query(sql)
                .bind(by.num_milliseconds())
                .execute(p)
                .await
                .map(|_| ()),
            Store::Postgres(p) => sqlx::query(sql)
                .bind(by.num_milliseconds())
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
    }
}

/// Whether `t` is `lease` from now on the database's clock, which is this
/// host's (the test databases run here): between `before + lease` and
/// `Utc::now() + lease`.
fn a_lease_from(before: DateTime<Utc>, t: Option<DateTime<Utc>>, lease: Duration) -> bool {
    let t = t.expect("claimed until a time");
    truncate_to_ms(before) + lease <= t && t <= Utc::now() + lease
}

fn new_alert(tenant: &str, job: &str) -> NewAlert {
    NewAlert {
        tenant_id: tenant.into(),
        job_id: job.into(),
        band: RiskBand::High,
        severity: Some(0.75),
        eta: Some(t0() + secs(7200)),
        deadline: Some(t0() + secs(3600)),
        shown: Some(json!({"band": "at_risk", "eta": "05:04"})),
    }
}

fn post(dedup: Option<&str>) -> NewOutboxMessage {
    NewOutboxMessage {
        dedup_key: dedup.map(str::to_string),
        method: "chat.postMessage".into(),
        payload: json!({"channel": "C0ALERTS", "text": "hello"}),
        ordering_key: None,
        thread_alert_id: None,
        thread_field: None,
        link_kind: None,
        link_id: None,
        not_before: None,
    }
}

fn ordered(key: &str, text: &str) -> NewOutboxMessage {
    let mut m = post(Some(&format!("{key}:{text}")));
    m.ordering_key = Some(key.into());
    m.payload = json!({"channel": "C0ALERTS", "text": text});
    m
}

fn timer(kind: &str, subject: &str, due: DateTime<Utc>, dedup: Option<&str>) -> NewTimer {
    NewTimer {
        kind: kind.into(),
        subject_id: subject.into(),
        payload: json!({"step": 1}),
        due_at: due,
        dedup_key: dedup.map(str::to_string),
    }
}

fn approval(tenant: &str, job: &str, by: &str) -> NewApproval {
    NewApproval {
        tenant_id: tenant.into(),
        job_id: job.into(),
        alert_id: None,
        requested_by: by.into(),
        reason: Some("upstream outage".into()),
        current_deadline: t0() + secs(3600),
        proposed_deadline: t0() + secs(7200),
        expires_at: t0() + secs(1800),
    }
}

/// Runs `n` copies of a task at once (released together) and collects results.
async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let task = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                task.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("a racing task panicked"));
    }
    out
}

/// Raw SQL on either engine, for tests that tamper with rows.
async fn raw(store: &Store, sql: &'static str) {
    match store {
        Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .expect("raw SQL");
}

// ------------------------------------------------------------- migrations

contract_case!(migrate_twice_is_a_noop);
async fn migrate_twice_is_a_noop(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.unwrap();
    assert_eq!(store.get_alert(&a.id).await.unwrap(), Some(a));
}

// ----------------------------------------------------------------- alerts

contract_case!(open_alert_is_idempotent_and_a_relapse_opens_episode_2);
async fn open_alert_is_idempotent_and_a_relapse_opens_episode_2(store: &Store) {
    let (a, created) = store
        .open_alert(new_alert("acme", "42"), t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(a.episode, 1);
    assert!(a.is_open());
    assert_eq!(a.status, "open");
    assert_eq!(a.band, RiskBand::High);
    assert_eq!(a.severity, Some(0.75));
    assert_eq!(a.eta, Some(t0() + secs(7200)));
    assert_eq!(a.deadline, Some(t0() + secs(3600)));
    assert_eq!(a.shown, Some(json!({"band": "at_risk", "eta": "05:04"})));
    assert_eq!((a.opened_at, a.updated_at), (t0(), t0()));
    assert_eq!((a.channel.as_deref(), a.ts.as_deref()), (None, None));
    assert_eq!(a.version, 1);

    // Asking again returns the open alert unchanged.
    let mut again = new_alert("acme", "42");
    again.band = RiskBand::Breached;
    let (b, created) = store.open_alert(again, t0() + secs(60)).await.unwrap();
    assert!(!created);
    assert_eq!(b, a);

    // Other jobs and other tenants have their own episodes.
    let (other_job, _) = store
        .open_alert(new_alert("acme", "43"), t0())
        .await
        .unwrap();
    let (other_tenant, _) = store
        .open_alert(new_alert("globex", "42"), t0())
        .await
        .unwrap();
    assert_eq!((other_job.episode, other_tenant.episode), (1, 1));
    assert_eq!(store.list_open_alerts(None).await.unwrap().len(), 3);
    assert_eq!(store.list_open_alerts(Some("acme")).await.unwrap().len(), 2);

    // A recovery ends the episode; a relapse opens episode 2.
    assert!(store
        .resolve_alert(&a.id, "recovered", t0() + secs(600))
        .await
        .unwrap());
    assert_eq!(store.open_alert_for_job("acme", "42").await.unwrap(), None);
    let latest = store
        .latest_alert_for_job("acme", "42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.id.as_str(), latest.status.as_str()),
        (a.id.as_str(), "resolved")
    );
    let (relapse, created) = store
        .open_alert(new_alert("acme", "42"), t0() + secs(900))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(relapse.episode, 2);
    assert_ne!(relapse.id, a.id);
    assert_eq!(
        store
            .latest_alert_for_job("acme", "42")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(relapse.id.clone())
    );
    assert_eq!(
        store
            .open_alert_for_job("acme", "42")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(relapse.id)
    );
    assert_eq!(
        store.latest_alert_for_job("acme", "nope").await.unwrap(),
        None
    );
}

contract_case!(concurrent_open_alert_creates_exactly_one);
async fn concurrent_open_alert_creates_exactly_one(store: &Store) {
    for episode in 1..=2 {
        let results = race(20, |_| {
            let s = store.clone();
            async move { s.open_alert(new_alert("acme", "7"), t0()).await.unwrap() }
        })
        .await;
        let created = results.iter().filter(|(_, created)| *created).count();
        assert_eq!(created, 1, "episode {episode}: exactly one call creates");
        let ids: HashSet<_> = results.iter().map(|(a, _)| a.id.clone()).collect();
        assert_eq!(ids.len(), 1, "every caller gets the same alert");
        assert!(results.iter().all(|(a, _)| a.episode == episode));
        assert_eq!(store.list_open_alerts(None).await.unwrap().len(), 1);
        let id = ids.into_iter().next().unwrap();
        assert!(store.resolve_alert(&id, "recovered", t0()).await.unwrap());
    }
}

contract_case!(acknowledge_first_wins_under_concurrency);
async fn acknowledge_first_wins_under_concurrency(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    let outcomes = race(20, |i| {
        let (s, id) = (store.clone(), a.id.clone());
        async move {
            let user = format!("U{i:02}");
            let outcome = s
                .acknowledge_alert(&id, &user, t0() + secs(5))
                .await
                .unwrap();
            (user, outcome)
        }
    })
    .await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| *o == AckOutcome::Acknowledged)
        .map(|(u, _)| u.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = &winners[0];
    for (user, outcome) in &outcomes {
        if user != winner {
            assert_eq!(
                outcome,
                &AckOutcome::AlreadyAcknowledged {
                    by: winner.clone(),
                    at: t0() + secs(5)
                }
            );
        }
    }
    let stored = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.acked_by.as_ref(), Some(winner));
    assert_eq!(stored.acked_at, Some(t0() + secs(5)));
    assert!(stored.version > a.version);

    // Re-arm: cleared once, then a new acknowledgement wins again.
    assert!(store.clear_acknowledgement(&a.id).await.unwrap());
    assert!(!store.clear_acknowledgement(&a.id).await.unwrap());
    let cleared = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!((cleared.acked_by, cleared.acked_at), (None, None));
    assert_eq!(
        store
            .acknowledge_alert(&a.id, "U99", t0() + secs(9))
            .await
            .unwrap(),
        AckOutcome::Acknowledged
    );

    // Not open: resolved, or unknown.
    assert!(store
        .resolve_alert(&a.id, "done", t0() + secs(10))
        .await
        .unwrap());
    assert_eq!(
        store.acknowledge_alert(&a.id, "U98", t0()).await.unwrap(),
        AckOutcome::NotOpen
    );
    assert!(!store.clear_acknowledgement(&a.id).await.unwrap());
    assert_eq!(
        store
            .acknowledge_alert("no-such-alert", "U98", t0())
            .await
            .unwrap(),
        AckOutcome::NotOpen
    );
}

contract_case!(updates_and_resolve_are_conditional_on_open);
async fn updates_and_resolve_are_conditional_on_open(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    let shown = json!({"band": "breach"});
    assert!(store
        .update_alert(
            &a.id,
            RiskBand::Breached,
            Some(0.9),
            None,
            Some(t0()),
            Some(&shown),
            t0() + secs(30)
        )
        .await
        .unwrap());
    let u = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (u.band.as_str(), u.severity, u.eta),
        ("breached", Some(0.9), None)
    );
    assert_eq!(u.deadline, Some(t0()));
    assert_eq!(u.shown, Some(shown.clone()));
    assert_eq!((u.updated_at, u.version), (t0() + secs(30), 2));
    // `None` for shown keeps what is recorded.
    assert!(store
        .update_alert(
            &a.id,
            RiskBand::High,
            None,
            None,
            None,
            None,
            t0() + secs(60)
        )
        .await
        .unwrap());
    let u = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (u.band.as_str(), u.shown, u.version),
        ("high", Some(shown), 3)
    );

    assert!(store
        .resolve_alert(&a.id, "completed", t0() + secs(90))
        .await
        .unwrap());
    assert!(!store
        .resolve_alert(&a.id, "again", t0() + secs(99))
        .await
        .unwrap());
    let r = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(r.status, "resolved");
    assert!(!r.is_open());
    assert_eq!(r.resolution.as_deref(), Some("completed"));
    assert_eq!(r.resolved_at, Some(t0() + secs(90)));
    assert_eq!(r.version, 4);
    assert!(!store
        .update_alert(
            &a.id,
            RiskBand::Breached,
            None,
            None,
            None,
            None,
            t0() + secs(120)
        )
        .await
        .unwrap());
    assert!(!store
        .resolve_alert("no-such-alert", "x", t0())
        .await
        .unwrap());
    assert!(store.list_open_alerts(None).await.unwrap().is_empty());
}

contract_case!(set_alert_message_first_delivery_wins);
async fn set_alert_message_first_delivery_wins(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    assert!(store
        .set_alert_message(&a.id, "C0ALERTS", "1700000000.000100")
        .await
        .unwrap());
    assert!(!store
        .set_alert_message(&a.id, "C0OTHER", "1700000000.000200")
        .await
        .unwrap());
    let found = store
        .alert_by_message("C0ALERTS", "1700000000.000100")
        .await
        .unwrap()
        .expect("found by its message");
    assert_eq!(found.id, a.id);
    assert_eq!(found.channel.as_deref(), Some("C0ALERTS"));
    assert_eq!(
        store
            .alert_by_message("C0OTHER", "1700000000.000200")
            .await
            .unwrap(),
        None
    );
}

// ----------------------------------------------------------------- outbox

contract_case!(outbox_dedup_key_enqueues_once);
async fn outbox_dedup_key_enqueues_once(store: &Store) {
    let first = store
        .enqueue(post(Some("alert:1:post")), t0())
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(
        store
            .enqueue(post(Some("alert:1:post")), t0())
            .await
            .unwrap(),
        None
    );
    // No key: never deduplicated.
    let a = store.enqueue(post(None), t0()).await.unwrap().unwrap();
    let b = store.enqueue(post(None), t0()).await.unwrap().unwrap();
    assert!(first.unwrap() < a && a < b, "ids increase");
    let all = store.list_outbox(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let m = &all[0];
    assert_eq!(m.dedup_key.as_deref(), Some("alert:1:post"));
    assert_eq!(
        (m.method.as_str(), m.status.as_str()),
        ("chat.postMessage", "pending")
    );
    assert_eq!(m.payload, json!({"channel": "C0ALERTS", "text": "hello"}));
    assert_eq!(
        (m.attempts, m.next_attempt_at, m.created_at),
        (0, t0(), t0())
    );
    assert_eq!(store.list_outbox(Some("sent")).await.unwrap().len(), 0);

    // Concurrent enqueues of one logical message: one row.
    let ids = race(20, |_| {
        let s = store.clone();
        async move { s.enqueue(post(Some("raced")), t0()).await.unwrap() }
    })
    .await;
    assert_eq!(ids.iter().filter(|id| id.is_some()).count(), 1);

    assert!(matches!(
        store.list_outbox(Some("bogus")).await,
        Err(StoreError::Invalid(_))
    ));

    // Unknown link kinds and thread fields are refused up front.
    let mut bad = post(None);
    bad.link_kind = Some("user".into());
    assert!(matches!(
        store.enqueue(bad, t0()).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = post(None);
    bad.thread_field = Some("channel".into());
    assert!(matches!(
        store.enqueue(bad, t0()).await,
        Err(StoreError::Invalid(_))
    ));
}

contract_case!(outbox_enqueue_many_writes_each_once_in_order);
async fn outbox_enqueue_many_writes_each_once_in_order(store: &Store) {
    store
        .enqueue(ordered("alert:1", "already"), t0())
        .await
        .unwrap();
    let mut later = post(Some("later"));
    later.not_before = Some(t0() + secs(60));
    let batch = vec![
        ordered("alert:1", "dm"),
        ordered("alert:1", "already"), // used key: skipped
        later,
        post(None),
        ordered("alert:1", "thread"),
    ];
    assert_eq!(store.enqueue_many(&batch, t0()).await.unwrap(), 4);
    assert_eq!(
        store.enqueue_many(&batch, t0()).await.unwrap(),
        1,
        "only the keyless one again"
    );
    assert_eq!(store.enqueue_many(&[], t0()).await.unwrap(), 0);
    let all = store.list_outbox(None).await.unwrap();
    let texts: Vec<&str> = all
        .iter()
        .map(|m| m.payload["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["already", "dm", "hello", "hello", "thread", "hello"],
        "in the order given"
    );
    let later = all
        .iter()
        .find(|m| m.dedup_key.as_deref() == Some("later"))
        .unwrap();
    assert_eq!(
        (later.next_attempt_at, later.created_at, later.attempts),
        (t0() + secs(60), t0(), 0)
    );
    assert!(all.iter().all(|m| m.status == "pending"));

    // Past one statement's worth of rows: split, nothing lost.
    let many: Vec<NewOutboxMessage> = (0..1_000)
        .map(|i| post(Some(&format!("bulk:{i}"))))
        .collect();
    assert_eq!(store.enqueue_many(&many, t0()).await.unwrap(), 1_000);
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1_006);

    let mut bad = post(None);
    bad.link_kind = Some("user".into());
    assert!(matches!(
        store.enqueue_many(&[post(Some("fine")), bad], t0()).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.list_outbox(None).await.unwrap().len(),
        1_006,
        "a refused batch writes nothing"
    );
}

contract_case!(an_escalation_step_schedules_its_next_step_only_from_where_it_was_found);
async fn an_escalation_step_schedules_its_next_step_only_from_where_it_was_found(store: &Store) {
    let (alert, _) = store
        .open_alert(new_alert("acme", "esc"), t0())
        .await
        .unwrap();
    let esc = store
        .start_escalation(&alert.id, "acme", 0, "high", t0())
        .await
        .unwrap()
        .unwrap();
    let step = |tier: i64, key: &str| NewTimer {
        kind: "escalation_step".into(),
        subject_id: alert.id.clone(),
        payload: json!({ "epoch": esc.epoch, "tier": tier, "round": 0 }),
        due_at: t0() + secs(900),
        dedup_key: Some(key.into()),
    };
    let audit = |action: &str| AuditEntry {
        at: t0(),
        tenant_id: Some("acme".into()),
        actor: "bot".into(),
        action: action.into(),
        subject: Some(alert.id.clone()),
        outcome: "ok".into(),
        detail: None,
    };
    // A step's effects: its page, its next step and its audit entry.
    let effects = |tier: i64, key: &str| {
        let mut e = Effects::new();
        e.schedule(step(tier, key))
            .send(post(Some(&format!("page:{key}"))))
            .record(audit(&format!("step:{key}")));
        e
    };
    // From tier 0 to 1: the next step is scheduled, the page enqueued, the
    // step audited and the escalation moves, together.
    assert!(store
        .advance_escalation_with(
            &alert.id,
            esc.epoch,
            (0, 0),
            (1, 0),
            true,
            &effects(1, "esc:1"),
            t0()
        )
        .await
        .unwrap());
    let moved = store.get_escalation(&alert.id).await.unwrap().unwrap();
    assert_eq!((moved.tier, moved.round, moved.pd_triggered), (1, 0, 1));
    let timers = store.list_timers(Some(&alert.id)).await.unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(
        (timers[0].due_at, timers[0].payload["tier"].as_i64()),
        (t0() + secs(900), Some(1))
    );
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1);
    assert_eq!(
        store.list_audit(Some(&alert.id), 10).await.unwrap().len(),
        1
    );

    // The same step again (a re-fired timer): it has moved on, so nothing
    // of its effects is written.
    assert!(!store
        .advance_escalation_with(
            &alert.id,
            esc.epoch,
            (0, 0),
            (1, 0),
            false,
            &effects(1, "esc:1-again"),
            t0()
        )
        .await
        .unwrap());
    assert_eq!(store.list_timers(Some(&alert.id)).await.unwrap().len(), 1);
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1);
    assert_eq!(
        store.list_audit(Some(&alert.id), 10).await.unwrap().len(),
        1
    );

    // Acknowledged meanwhile, cancelling its steps in the same transaction:
    // no step is scheduled and nothing moves.
    let mut cancel = Effects::new();
    cancel.cancel(&alert.id, Some("escalation_step"));
    let ended = store
        .end_escalation_with(&alert.id, "acknowledged", t0(), &cancel, |_| {
            let mut e = Effects::new();
            e.record(audit("acknowledged"));
            e
        })
        .await
        .unwrap();
    assert_eq!(ended.unwrap().status, "acknowledged");
    let timers = store.list_timers(Some(&alert.id)).await.unwrap();
    assert_eq!(timers[0].status, "cancelled");
    assert!(!store
        .advance_escalation_with(
            &alert.id,
            esc.epoch,
            (1, 0),
            (2, 0),
            false,
            &effects(2, "esc:2"),
            t0()
        )
        .await
        .unwrap());
    assert_eq!(store.list_timers(Some(&alert.id)).await.unwrap().len(), 1);
    assert_eq!(
        store.get_escalation(&alert.id).await.unwrap().unwrap().tier,
        1
    );
    assert_eq!(
        store.list_audit(Some(&alert.id), 10).await.unwrap().len(),
        2
    );
}

contract_case!(a_transition_with_an_invalid_effect_writes_nothing);
async fn a_transition_with_an_invalid_effect_writes_nothing(store: &Store) {
    let (alert, _) = store
        .open_alert(new_alert("acme", "esc-bad"), t0())
        .await
        .unwrap();
    let mut bad = post(Some("bad"));
    bad.link_kind = Some("user".into());
    let started = store
        .start_escalation_with(&alert.id, "acme", 0, "high", t0(), |_| {
            let mut e = Effects::new();
            e.send(post(Some("plan"))).send(bad.clone());
            e
        })
        .await;
    assert!(matches!(started, Err(StoreError::Invalid(_))));
    assert!(
        store.get_escalation(&alert.id).await.unwrap().is_none(),
        "the escalation is not started without its effects"
    );
    assert!(store.list_outbox(None).await.unwrap().is_empty());

    // Started with valid effects, it is there with its plan, once.
    let esc = store
        .start_escalation_with(&alert.id, "acme", 0, "high", t0(), |_| {
            let mut e = Effects::new();
            e.send(post(Some("plan")));
            e
        })
        .await
        .unwrap()
        .expect("started");
    assert_eq!(esc.status, "active");
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1);
    // Already active: nothing is started and `then` writes nothing.
    let again = store
        .start_escalation_with(&alert.id, "acme", 0, "high", t0(), |_| {
            let mut e = Effects::new();
            e.send(post(Some("plan-again")));
            e
        })
        .await
        .unwrap();
    assert!(again.is_none());
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1);
}

contract_case!(outbox_ordering_key_delivers_strictly_in_order);
async fn outbox_ordering_key_delivers_strictly_in_order(store: &Store) {
    let first = store
        .enqueue(ordered("alert:1", "post"), t0())
        .await
        .unwrap()
        .unwrap();
    let second = store
        .enqueue(ordered("alert:1", "reply"), t0())
        .await
        .unwrap()
        .unwrap();
    let other = store
        .enqueue(ordered("alert:2", "post"), t0())
        .await
        .unwrap()
        .unwrap();
    let lease = secs(30);

    let claimed = store.claim_due_outbox("w1", t0(), lease, 10).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![first, other], "the reply waits for its post");
    let sent = json!({"ok": true, "channel": "C0ALERTS", "ts": "1.1"});
    assert!(store
        .mark_outbox_sent(other, "w1", &sent, t0())
        .await
        .unwrap());

    // The post is retried later: the reply still waits, even unclaimed.
    assert!(store
        .mark_outbox_retry(first, "w1", t0() + secs(60), "ratelimited")
        .await
        .unwrap());
    assert!(store
        .claim_due_outbox("w2", t0() + secs(1), lease, 10)
        .await
        .unwrap()
        .is_empty());

    let claimed = store
        .claim_due_outbox("w2", t0() + secs(60), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(store
        .mark_outbox_sent(first, "w2", &sent, t0() + secs(61))
        .await
        .unwrap());

    let claimed = store
        .claim_due_outbox("w2", t0() + secs(62), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![second]
    );
}

contract_case!(outbox_claims_are_leased);
async fn outbox_claims_are_leased(store: &Store) {
    let id = store.enqueue(post(Some("m")), t0()).await.unwrap().unwrap();
    let before = Utc::now();
    let claimed = store
        .claim_due_outbox("w1", t0(), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let m = &claimed[0];
    assert_eq!((m.id, m.attempts), (id, 1));
    assert_eq!(m.claimed_by.as_deref(), Some("w1"));
    assert!(a_lease_from(before, m.claim_until, secs(30)), "{m:#?}");

    // Held: nobody else, and not w1 again, while the lease runs, whatever
    // their clocks say.
    assert!(store
        .claim_due_outbox("w2", t0() + secs(29), secs(30), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_outbox("w2", t0() + secs(999), secs(30), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_outbox("w1", t0() + secs(10), secs(30), 10)
        .await
        .unwrap()
        .is_empty());

    // Expired (w1 crashed): w2 takes it over; w1 can no longer settle it.
    time_passes_on_the_database(store, secs(30)).await;
    let taken = store
        .claim_due_outbox("w2", t0() + secs(30), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].attempts, taken[0].claimed_by.as_deref()),
        (2, Some("w2"))
    );
    let ok = json!({"ok": true});
    assert!(!store
        .mark_outbox_sent(id, "w1", &ok, t0() + secs(31))
        .await
        .unwrap());
    assert!(!store
        .mark_outbox_retry(id, "w1", t0(), "late")
        .await
        .unwrap());
    assert!(!store
        .mark_outbox_failed(id, "w1", "late", t0())
        .await
        .unwrap());
    assert!(store
        .mark_outbox_sent(id, "w2", &ok, t0() + secs(31))
        .await
        .unwrap());
    assert!(!store
        .mark_outbox_sent(id, "w2", &ok, t0() + secs(32))
        .await
        .unwrap());

    let m = &store.list_outbox(Some("sent")).await.unwrap()[0];
    assert_eq!((m.claimed_by.as_ref(), m.claim_until), (None, None));
    assert_eq!(
        (m.response.as_ref(), m.sent_at),
        (Some(&ok), Some(t0() + secs(31)))
    );
    assert!(store
        .claim_due_outbox("w3", t0() + secs(999), secs(30), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_outbox_due().await.unwrap(), None);
}

contract_case!(a_claim_shows_an_attempt_before_it_that_ended_unrecorded);
/// The claim that starts an attempt counts it as unsettled before anything
/// is sent; recording how it ended (sent, retry, failed) settles it, and
/// handing it back before any call (paced, waiting) takes back only its own
/// count. An attempt whose worker died records nothing: the next claim
/// shows two unsettled attempts, whatever error an older attempt recorded.
async fn a_claim_shows_an_attempt_before_it_that_ended_unrecorded(store: &Store) {
    let id = store.enqueue(post(Some("m")), t0()).await.unwrap().unwrap();
    let claim = |worker: &'static str| {
        let store = store.clone();
        async move {
            let mut c = store
                .claim_due_outbox(worker, t0(), secs(30), 10)
                .await
                .unwrap();
            assert_eq!(c.len(), 1, "{worker} claims it");
            c.remove(0)
        }
    };
    let m = claim("w1").await;
    assert_eq!((m.attempts, m.unsettled_attempts), (1, 1));
    // A 429: recorded, settled.
    assert!(store
        .mark_outbox_retry(id, "w1", t0(), "Slack is unavailable: rate limited")
        .await
        .unwrap());
    let m = claim("w1").await;
    assert_eq!((m.attempts, m.unsettled_attempts), (2, 1));
    // Paced: settled too.
    assert!(store.defer_outbox(id, "w1", t0()).await.unwrap());
    let m = claim("w1").await;
    assert_eq!((m.attempts, m.unsettled_attempts), (2, 1));
    // w1 dies in the call; its claim runs out; w2's claim shows it.
    time_passes_on_the_database(store, secs(30)).await;
    let m = claim("w2").await;
    assert_eq!((m.attempts, m.unsettled_attempts), (3, 2));
    assert_eq!(
        m.last_error.as_deref(),
        Some("Slack is unavailable: rate limited"),
        "the last recorded error is an older attempt's"
    );
    // Handed back before it calls Slack (paced, or waiting for the message
    // it links to): the attempt that died is still unsettled.
    assert!(store.defer_outbox(id, "w2", t0()).await.unwrap());
    let m = claim("w3").await;
    assert_eq!(
        m.unsettled_attempts, 2,
        "pacing does not settle a dead attempt"
    );
    assert!(store
        .mark_outbox_waiting(
            id,
            "w3",
            t0(),
            "waiting for the message it links to to be posted"
        )
        .await
        .unwrap());
    let m = claim("w3").await;
    assert_eq!(
        m.unsettled_attempts, 2,
        "waiting does not settle a dead attempt"
    );
    // A claim handed back at shutdown keeps what it did not settle.
    assert_eq!(store.release_outbox_claims("w3").await.unwrap(), 1);
    let m = claim("w3").await;
    assert_eq!(m.unsettled_attempts, 3);
    assert!(store
        .mark_outbox_sent(id, "w3", &json!({"ok": true}), t0())
        .await
        .unwrap());
    let m = &store.list_outbox(Some("sent")).await.unwrap()[0];
    assert_eq!(m.unsettled_attempts, 0);

    let failed = store.enqueue(post(Some("f")), t0()).await.unwrap().unwrap();
    claim("w1").await;
    assert!(store
        .mark_outbox_failed(failed, "w1", "channel_not_found", t0())
        .await
        .unwrap());
    let m = &store.list_outbox(Some("failed")).await.unwrap()[0];
    assert_eq!(m.unsettled_attempts, 0);
}

contract_case!(claims_a_worker_renews_stay_its_own_past_the_first_lease);
/// A worker still at work renews its claims; a worker that died does not,
/// and its rows come back after one lease.
async fn claims_a_worker_renews_stay_its_own_past_the_first_lease(store: &Store) {
    store.enqueue(post(Some("m1")), t0()).await.unwrap();
    store
        .schedule_timer(timer("check_in", "a1", t0(), None), t0())
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due_outbox("w1", t0(), secs(15), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_due_timers("w1", t0(), secs(15), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // w1 renews 10 s later: still its own 20 s after the claim.
    time_passes_on_the_database(store, secs(10)).await;
    assert_eq!(store.renew_outbox_claims("w1", secs(15)).await.unwrap(), 1);
    assert_eq!(store.renew_timer_claims("w1", secs(15)).await.unwrap(), 1);
    assert_eq!(store.renew_outbox_claims("w2", secs(99)).await.unwrap(), 0);
    time_passes_on_the_database(store, secs(10)).await;
    assert!(store
        .claim_due_outbox("w2", t0() + secs(20), secs(15), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_timers("w2", t0() + secs(20), secs(15), 10)
        .await
        .unwrap()
        .is_empty());
    // w1 died after that renewal: w2 takes both once it has run out.
    time_passes_on_the_database(store, secs(5)).await;
    let taken = store
        .claim_due_outbox("w2", t0() + secs(25), secs(15), 10)
        .await
        .unwrap();
    assert_eq!(taken[0].claimed_by.as_deref(), Some("w2"));
    let taken = store
        .claim_due_timers("w2", t0() + secs(25), secs(15), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // w1 renews no more: what it held is w2's.
    assert_eq!(store.renew_outbox_claims("w1", secs(15)).await.unwrap(), 0);
    assert_eq!(store.renew_timer_claims("w1", secs(15)).await.unwrap(), 0);
}

contract_case!(outbox_racing_workers_claim_each_message_once);
async fn outbox_racing_workers_claim_each_message_once(store: &Store) {
    for i in 0..50 {
        store
            .enqueue(post(Some(&format!("m{i}"))), t0())
            .await
            .unwrap()
            .unwrap();
    }
    let claimed = race(4, |w| {
        let s = store.clone();
        async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = s
                    .claim_due_outbox(&worker, t0(), secs(300), 7)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for m in batch {
                    assert!(s
                        .mark_outbox_sent(m.id, &worker, &json!({"ok": true}), t0())
                        .await
                        .unwrap());
                    mine.push(m.id);
                }
            }
        }
    })
    .await;
    let all: Vec<i64> = claimed.into_iter().flatten().collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (50, 50),
        "each message claimed exactly once"
    );
    assert_eq!(store.list_outbox(Some("sent")).await.unwrap().len(), 50);
    assert!(store
        .list_outbox(None)
        .await
        .unwrap()
        .iter()
        .all(|m| m.attempts == 1));
}

contract_case!(mark_sent_records_the_message_on_its_alert_or_approval);
async fn mark_sent_records_the_message_on_its_alert_or_approval(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    let mut msg = post(Some("alert:post"));
    msg.link_kind = Some("alert".into());
    msg.link_id = Some(a.id.clone());
    let id = store.enqueue(msg, t0()).await.unwrap().unwrap();
    let claimed = store
        .claim_due_outbox("w1", t0(), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].link_kind.as_deref(), Some("alert"));
    assert_eq!(claimed[0].link_id.as_ref(), Some(&a.id));

    // Another worker's answer records nothing.
    let response = json!({"ok": true, "channel": "C0ALERTS", "ts": "1700000000.000100"});
    assert!(!store
        .mark_outbox_sent(id, "w2", &response, t0())
        .await
        .unwrap());
    assert_eq!(store.get_alert(&a.id).await.unwrap().unwrap().ts, None);

    assert!(store
        .mark_outbox_sent(id, "w1", &response, t0() + secs(1))
        .await
        .unwrap());
    let a2 = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(a2.channel.as_deref(), Some("C0ALERTS"));
    assert_eq!(a2.ts.as_deref(), Some("1700000000.000100"));
    let m = &store.list_outbox(None).await.unwrap()[0];
    assert_eq!(
        (m.status.as_str(), m.response.as_ref()),
        ("sent", Some(&response))
    );

    // A duplicate post does not re-point the alert: the first delivery wins.
    let mut dup = post(Some("alert:post:dup"));
    dup.link_kind = Some("alert".into());
    dup.link_id = Some(a.id.clone());
    let dup_id = store.enqueue(dup, t0()).await.unwrap().unwrap();
    store
        .claim_due_outbox("w1", t0(), secs(30), 10)
        .await
        .unwrap();
    let other = json!({"ok": true, "channel": "C0ALERTS", "ts": "1700000000.000999"});
    assert!(store
        .mark_outbox_sent(dup_id, "w1", &other, t0())
        .await
        .unwrap());
    assert_eq!(
        store.get_alert(&a.id).await.unwrap().unwrap().ts.as_deref(),
        Some("1700000000.000100")
    );

    // Approvals' request messages are linked the same way.
    let mut req = approval("acme", "1", "U01");
    req.alert_id = Some(a.id.clone());
    let (r, _) = store.create_approval(req, t0()).await.unwrap();
    assert_eq!(r.alert_id.as_ref(), Some(&a.id));
    let mut msg = post(Some("approval:post"));
    msg.link_kind = Some("approval".into());
    msg.link_id = Some(r.id.clone());
    msg.thread_alert_id = Some(a.id.clone());
    msg.thread_field = Some("thread_ts".into());
    let id = store.enqueue(msg, t0()).await.unwrap().unwrap();
    let claimed = store
        .claim_due_outbox("w1", t0(), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].thread_alert_id.as_ref(), Some(&a.id));
    assert_eq!(claimed[0].thread_field.as_deref(), Some("thread_ts"));
    let response = json!({"ok": true, "channel": "C0ALERTS", "ts": "1700000000.000300"});
    assert!(store
        .mark_outbox_sent(id, "w1", &response, t0())
        .await
        .unwrap());
    let r2 = store.get_approval(&r.id).await.unwrap().unwrap();
    assert_eq!(r2.channel.as_deref(), Some("C0ALERTS"));
    assert_eq!(r2.ts.as_deref(), Some("1700000000.000300"));
}

contract_case!(retry_releases_the_claim_and_honours_next_attempt);
async fn retry_releases_the_claim_and_honours_next_attempt(store: &Store) {
    let later = store
        .enqueue(
            NewOutboxMessage {
                not_before: Some(t0() + secs(600)),
                ..post(Some("later"))
            },
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    let id = store
        .enqueue(post(Some("now")), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.next_outbox_due().await.unwrap(), Some(t0()));

    let claimed = store
        .claim_due_outbox("w1", t0(), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    // While held, the message is not due: the next is the later one.
    assert_eq!(
        store.next_outbox_due().await.unwrap(),
        Some(t0() + secs(600))
    );

    assert!(store
        .mark_outbox_retry(id, "w1", t0() + secs(60), "HTTP 503")
        .await
        .unwrap());
    let m = store
        .list_outbox(None)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == id)
        .unwrap();
    assert_eq!((m.claimed_by, m.claim_until), (None, None));
    assert_eq!(
        (m.status.as_str(), m.last_error.as_deref()),
        ("pending", Some("HTTP 503"))
    );
    assert_eq!(m.next_attempt_at, t0() + secs(60));
    assert_eq!(
        store.next_outbox_due().await.unwrap(),
        Some(t0() + secs(60))
    );

    assert!(store
        .claim_due_outbox("w2", t0() + secs(59), secs(30), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = store
        .claim_due_outbox("w2", t0() + secs(60), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|m| (m.id, m.attempts))
            .collect::<Vec<_>>(),
        vec![(id, 2)]
    );
    assert!(store
        .mark_outbox_sent(id, "w2", &json!({"ok": true}), t0() + secs(61))
        .await
        .unwrap());
    let claimed = store
        .claim_due_outbox("w2", t0() + secs(600), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![later]
    );
}

contract_case!(release_and_failure_hand_work_back);
async fn release_and_failure_hand_work_back(store: &Store) {
    let a = store
        .enqueue(ordered("k", "a"), t0())
        .await
        .unwrap()
        .unwrap();
    let b = store
        .enqueue(ordered("k", "b"), t0())
        .await
        .unwrap()
        .unwrap();
    let c = store.enqueue(post(Some("c")), t0()).await.unwrap().unwrap();
    let d = store.enqueue(post(Some("d")), t0()).await.unwrap().unwrap();
    assert_eq!(
        store
            .claim_due_outbox("w1", t0(), secs(300), 10)
            .await
            .unwrap()
            .len(),
        3
    );

    // Graceful shutdown: w1 hands its claims back; w2 takes them at once.
    assert_eq!(store.release_outbox_claims("w1").await.unwrap(), 3);
    assert_eq!(store.release_outbox_claims("w1").await.unwrap(), 0);
    let claimed = store
        .claim_due_outbox("w2", t0(), secs(300), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![a, c, d]
    );

    // Given up on for good: failed, and no longer blocks its ordering key.
    assert!(store
        .mark_outbox_failed(a, "w2", "channel_not_found", t0() + secs(1))
        .await
        .unwrap());
    let failed = store.list_outbox(Some("failed")).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("channel_not_found"));
    assert_eq!(failed[0].sent_at, Some(t0() + secs(1)));
    let claimed = store
        .claim_due_outbox("w3", t0(), secs(300), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![b]);
}

// ----------------------------------------------------------------- timers

contract_case!(timers_schedule_dedup_claim_and_complete_once);
async fn timers_schedule_dedup_claim_and_complete_once(store: &Store) {
    let due = t0() + secs(300);
    let id = store
        .schedule_timer(
            timer("escalate", "alert-1", due, Some("alert-1:tier2")),
            t0(),
        )
        .await
        .unwrap()
        .expect("scheduled");
    assert_eq!(
        store
            .schedule_timer(
                timer("escalate", "alert-1", due, Some("alert-1:tier2")),
                t0()
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.next_timer_due().await.unwrap(), Some(due));
    assert!(store
        .claim_due_timers("w1", due - secs(1), secs(30), 10)
        .await
        .unwrap()
        .is_empty());

    let before = Utc::now();
    let claimed = store
        .claim_due_timers("w1", due, secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let t = &claimed[0];
    assert_eq!(
        (t.id.as_str(), t.kind.as_str(), t.subject_id.as_str()),
        (id.as_str(), "escalate", "alert-1")
    );
    assert_eq!(
        (t.payload.clone(), t.due_at, t.created_at),
        (json!({"step": 1}), due, t0())
    );
    assert_eq!(t.claimed_by.as_deref(), Some("w1"));
    assert!(a_lease_from(before, t.claim_until, secs(30)), "{t:#?}");
    assert!(store
        .claim_due_timers("w2", due + secs(1), secs(30), 10)
        .await
        .unwrap()
        .is_empty());

    assert!(!store
        .complete_timer(&id, "w2", due + secs(2))
        .await
        .unwrap());
    assert!(store
        .complete_timer(&id, "w1", due + secs(2))
        .await
        .unwrap());
    assert!(!store
        .complete_timer(&id, "w1", due + secs(3))
        .await
        .unwrap());
    let fired = &store.list_timers(Some("alert-1")).await.unwrap()[0];
    assert_eq!(
        (fired.status.as_str(), fired.fired_at),
        ("fired", Some(due + secs(2)))
    );
    assert_eq!(store.next_timer_due().await.unwrap(), None);
    assert!(store
        .claim_due_timers("w2", due + secs(999), secs(30), 10)
        .await
        .unwrap()
        .is_empty());

    // Released (one, or all of a worker's): claimable again at once.
    let a = store
        .schedule_timer(timer("checkin", "job-9", t0(), None), t0())
        .await
        .unwrap()
        .unwrap();
    let b = store
        .schedule_timer(timer("checkin", "job-9", t0() + secs(1), None), t0())
        .await
        .unwrap()
        .unwrap();
    let claimed = store
        .claim_due_timers("w1", t0() + secs(5), secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );
    assert!(!store.release_timer(&a, "w2").await.unwrap());
    assert!(store.release_timer(&a, "w1").await.unwrap());
    let claimed = store
        .claim_due_timers("w2", t0() + secs(5), secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![a]
    );
    assert_eq!(store.release_timer_claims("w1").await.unwrap(), 1);
    let claimed = store
        .claim_due_timers("w3", t0() + secs(5), secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![b]
    );

    // An expired claim is taken over.
    time_passes_on_the_database(store, secs(60)).await;
    let claimed = store
        .claim_due_timers("w4", t0() + secs(5), secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
}

contract_case!(a_lane_claims_only_its_kinds_of_timer);
/// The timer worker's lanes: a claim (and the next due time) of some kinds
/// only, or of every kind but some.
async fn a_lane_claims_only_its_kinds_of_timer(store: &Store) {
    use servo_sla_bot::store::TimerKinds;
    for (kind, due) in [
        ("home_refresh", 1),
        ("escalation_step", 2),
        ("approval_expiry", 3),
    ] {
        store
            .schedule_timer(timer(kind, "s", t0() + secs(due), None), t0())
            .await
            .unwrap();
    }
    let pages = TimerKinds::Only(&["escalation_step"]);
    let rest = TimerKinds::Except(&["escalation_step", "home_refresh"]);
    assert_eq!(
        store.next_timer_due_of(pages).await.unwrap(),
        Some(t0() + secs(2))
    );
    assert_eq!(
        store.next_timer_due_of(rest).await.unwrap(),
        Some(t0() + secs(3))
    );
    let kinds = |ts: Vec<servo_sla_bot::store::Timer>| -> Vec<String> {
        ts.into_iter().map(|t| t.kind).collect()
    };
    let claimed = store
        .claim_due_timers_of("w1", t0() + secs(10), secs(30), 10, pages)
        .await
        .unwrap();
    assert_eq!(kinds(claimed), ["escalation_step"]);
    let claimed = store
        .claim_due_timers_of("w1", t0() + secs(10), secs(30), 10, rest)
        .await
        .unwrap();
    assert_eq!(kinds(claimed), ["approval_expiry"]);
    assert_eq!(store.next_timer_due_of(pages).await.unwrap(), None);
    let claimed = store
        .claim_due_timers("w1", t0() + secs(10), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(kinds(claimed), ["home_refresh"]);
}

contract_case!(racing_workers_fire_each_timer_once);
async fn racing_workers_fire_each_timer_once(store: &Store) {
    for i in 0..50 {
        let t = timer(
            "escalate",
            &format!("alert-{i}"),
            t0() + Duration::milliseconds(i),
            None,
        );
        store.schedule_timer(t, t0()).await.unwrap().unwrap();
    }
    let fired = race(2, |w| {
        let s = store.clone();
        async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = s
                    .claim_due_timers(&worker, t0() + secs(1), secs(300), 5)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                let due: Vec<_> = batch.iter().map(|t| t.due_at).collect();
                assert!(due.windows(2).all(|w| w[0] <= w[1]), "earliest first");
                for t in batch {
                    assert!(s
                        .complete_timer(&t.id, &worker, t0() + secs(1))
                        .await
                        .unwrap());
                    mine.push(t.id);
                }
            }
        }
    })
    .await;
    let all: Vec<String> = fired.into_iter().flatten().collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (50, 50),
        "each timer fired exactly once"
    );
    let timers = store.list_timers(None).await.unwrap();
    assert_eq!(timers.len(), 50);
    assert!(timers.iter().all(|t| t.status == "fired"));
}

contract_case!(cancel_timers_cancels_pending_ones_only);
async fn cancel_timers_cancels_pending_ones_only(store: &Store) {
    let fired = store
        .schedule_timer(timer("escalate", "s", t0(), None), t0())
        .await
        .unwrap()
        .unwrap();
    store
        .claim_due_timers("w1", t0(), secs(30), 1)
        .await
        .unwrap();
    assert!(store.complete_timer(&fired, "w1", t0()).await.unwrap());
    let claimed = store
        .schedule_timer(timer("escalate", "s", t0() + secs(1), None), t0())
        .await
        .unwrap()
        .unwrap();
    store
        .claim_due_timers("w1", t0() + secs(1), secs(30), 1)
        .await
        .unwrap();
    store
        .schedule_timer(timer("escalate", "s", t0() + secs(60), None), t0())
        .await
        .unwrap()
        .unwrap();
    store
        .schedule_timer(timer("checkin", "s", t0() + secs(60), None), t0())
        .await
        .unwrap()
        .unwrap();
    store
        .schedule_timer(timer("escalate", "other", t0() + secs(60), None), t0())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        store
            .cancel_timers("s", Some("escalate"), t0() + secs(2))
            .await
            .unwrap(),
        2
    );
    // The claimed one was cancelled: its worker cannot fire it now.
    assert!(!store
        .complete_timer(&claimed, "w1", t0() + secs(3))
        .await
        .unwrap());
    assert_eq!(
        store
            .cancel_timers("s", None, t0() + secs(4))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .cancel_timers("s", None, t0() + secs(5))
            .await
            .unwrap(),
        0
    );

    let statuses: Vec<&str> = store
        .list_timers(Some("s"))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.status.as_str())
        .collect();
    assert_eq!(statuses, ["fired", "cancelled", "cancelled", "cancelled"]);
    let other = store.list_timers(Some("other")).await.unwrap();
    assert_eq!(other[0].status, "pending");
    assert_eq!(store.list_timers(None).await.unwrap().len(), 5);
    assert_eq!(store.next_timer_due().await.unwrap(), Some(t0() + secs(60)));
}

// -------------------------------------------------------------- approvals

contract_case!(a_new_approval_supersedes_the_pending_one);
async fn a_new_approval_supersedes_the_pending_one(store: &Store) {
    let (r1, superseded) = store
        .create_approval(approval("acme", "1", "U01"), t0())
        .await
        .unwrap();
    assert!(superseded.is_empty());
    assert!(r1.is_pending());
    assert_eq!(r1.reason.as_deref(), Some("upstream outage"));
    assert_eq!(
        (
            r1.current_deadline,
            r1.proposed_deadline,
            r1.expires_at,
            r1.created_at
        ),
        (
            t0() + secs(3600),
            t0() + secs(7200),
            t0() + secs(1800),
            t0()
        )
    );
    let (other_job, _) = store
        .create_approval(approval("acme", "2", "U01"), t0())
        .await
        .unwrap();

    let (r2, superseded) = store
        .create_approval(approval("acme", "1", "U02"), t0() + secs(10))
        .await
        .unwrap();
    assert_eq!(superseded.len(), 1);
    assert_eq!(
        (superseded[0].id.as_str(), superseded[0].status.as_str()),
        (r1.id.as_str(), "superseded")
    );
    let old = store.get_approval(&r1.id).await.unwrap().unwrap();
    assert_eq!(old.status, "superseded");
    assert_eq!(
        (old.decided_by.as_deref(), old.decided_at),
        (Some("U02"), Some(t0() + secs(10)))
    );
    assert_eq!(
        store
            .pending_approval_for_job("acme", "1")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(r2.id.clone())
    );
    assert_eq!(
        store
            .pending_approval_for_job("acme", "2")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(other_job.id)
    );
    assert_eq!(
        store.pending_approval_for_job("acme", "3").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .list_approvals(Some("acme"), Some("pending"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.list_approvals(None, None).await.unwrap().len(), 3);
    assert_eq!(
        store
            .list_approvals(Some("globex"), None)
            .await
            .unwrap()
            .len(),
        0
    );

    assert!(store
        .set_approval_message(&r2.id, "C0ALERTS", "1.5")
        .await
        .unwrap());
    assert!(!store
        .set_approval_message(&r2.id, "C0ALERTS", "1.6")
        .await
        .unwrap());
    assert_eq!(
        store
            .get_approval(&r2.id)
            .await
            .unwrap()
            .unwrap()
            .ts
            .as_deref(),
        Some("1.5")
    );
}

contract_case!(concurrent_requests_leave_one_pending);
async fn concurrent_requests_leave_one_pending(store: &Store) {
    let results = race(10, |i| {
        let s = store.clone();
        async move {
            s.create_approval(approval("acme", "1", &format!("U{i:02}")), t0())
                .await
                .unwrap()
        }
    })
    .await;
    let pending = store.list_approvals(None, Some("pending")).await.unwrap();
    assert_eq!(pending.len(), 1, "one pending request per job");
    let superseded: Vec<String> = results
        .iter()
        .flat_map(|(_, s)| s.iter().map(|a| a.id.clone()))
        .collect();
    let unique: HashSet<&String> = superseded.iter().collect();
    assert_eq!(
        unique.len(),
        superseded.len(),
        "each superseded by exactly one request"
    );
    assert_eq!(superseded.len(), 9);
    assert_eq!(
        store
            .list_approvals(None, Some("superseded"))
            .await
            .unwrap()
            .len(),
        9
    );
}

contract_case!(concurrent_decisions_have_one_winner);
async fn concurrent_decisions_have_one_winner(store: &Store) {
    let (r, _) = store
        .create_approval(approval("acme", "1", "U01"), t0())
        .await
        .unwrap();
    let decisions = race(20, |i| {
        let (s, id) = (store.clone(), r.id.clone());
        async move {
            let to = if i % 2 == 0 { "approved" } else { "rejected" };
            s.decide_approval(&id, to, &format!("U{i:02}"), Some("why"), t0() + secs(5))
                .await
                .unwrap()
        }
    })
    .await;
    let winners: Vec<_> = decisions.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one call decides");
    let won = &winners[0];
    let stored = store.get_approval(&r.id).await.unwrap().unwrap();
    assert_eq!(&stored, won);
    assert!(["approved", "rejected"].contains(&stored.status.as_str()));
    assert_eq!(stored.decision_reason.as_deref(), Some("why"));
    assert_eq!(stored.decided_at, Some(t0() + secs(5)));
    assert_eq!(
        store
            .decide_approval(&r.id, "rejected", "U99", None, t0())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store
            .decide_approval(&r.id, "pending", "U99", None, t0())
            .await,
        Err(StoreError::Invalid(_))
    ));

    // An approval whose change then fails is amended, conditionally.
    let from = stored.status.as_str();
    assert!(store
        .amend_approval(&r.id, from, "failed", "Servo refused")
        .await
        .unwrap());
    assert!(!store
        .amend_approval(&r.id, from, "failed", "again")
        .await
        .unwrap());
    let amended = store.get_approval(&r.id).await.unwrap().unwrap();
    assert_eq!(
        (amended.status.as_str(), amended.decision_reason.as_deref()),
        ("failed", Some("Servo refused"))
    );
}

contract_case!(due_approvals_expire_once);
async fn due_approvals_expire_once(store: &Store) {
    let (r1, _) = store
        .create_approval(approval("acme", "1", "U01"), t0())
        .await
        .unwrap();
    let mut later = approval("acme", "2", "U01");
    later.expires_at = t0() + secs(7200);
    let (r2, _) = store.create_approval(later, t0()).await.unwrap();
    let (decided, _) = store
        .create_approval(approval("acme", "3", "U01"), t0())
        .await
        .unwrap();
    store
        .decide_approval(&decided.id, "rejected", "U02", None, t0())
        .await
        .unwrap()
        .unwrap();

    assert!(store
        .expire_due_approvals(t0() + secs(1799))
        .await
        .unwrap()
        .is_empty());
    let expired = store.expire_due_approvals(t0() + secs(1800)).await.unwrap();
    assert_eq!(
        expired.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![r1.id.clone()]
    );
    assert_eq!(expired[0].status, "expired");
    assert_eq!(
        (expired[0].decided_by.as_deref(), expired[0].decided_at),
        (Some("bot"), Some(t0() + secs(1800)))
    );
    assert!(store
        .expire_due_approvals(t0() + secs(1801))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .decide_approval(&r1.id, "approved", "U02", None, t0())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_approval(&r2.id).await.unwrap().unwrap().status,
        "pending"
    );
    assert_eq!(
        store
            .get_approval(&decided.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "rejected"
    );
}

// ------------------------------------------------ audit, events and leases

contract_case!(audit_round_trips_newest_first);
async fn audit_round_trips_newest_first(store: &Store) {
    let entry = |at: DateTime<Utc>, action: &str, subject: Option<&str>| AuditEntry {
        at,
        tenant_id: Some("acme".into()),
        actor: "U01".into(),
        action: action.into(),
        subject: subject.map(str::to_string),
        outcome: "ok".into(),
        detail: Some(json!({"action": action, "n": [1, 2]})),
    };
    let entries = [
        entry(t0(), "acknowledge", Some("job-1")),
        entry(t0() + secs(2), "extend", Some("job-1")),
        entry(t0() + secs(1), "pause", Some("job-2")),
        // Same time as the previous: the later write comes first.
        entry(t0() + secs(1), "resume", Some("job-2")),
        AuditEntry {
            tenant_id: None,
            actor: "bot".into(),
            subject: None,
            detail: None,
            outcome: "refused: stale".into(),
            ..entry(t0() + secs(3), "poll", None)
        },
    ];
    for e in &entries {
        store.audit(e).await.unwrap();
    }
    let all = store.list_audit(None, 100).await.unwrap();
    let expected = vec![
        entries[4].clone(),
        entries[1].clone(),
        entries[3].clone(),
        entries[2].clone(),
        entries[0].clone(),
    ];
    assert_eq!(all, expected);
    let job1 = store.list_audit(Some("job-1"), 100).await.unwrap();
    assert_eq!(job1, vec![entries[1].clone(), entries[0].clone()]);
    assert_eq!(
        store.list_audit(None, 2).await.unwrap(),
        expected[..2].to_vec()
    );
    assert!(store
        .list_audit(Some("job-3"), 10)
        .await
        .unwrap()
        .is_empty());
}

contract_case!(first_delivery_is_true_once_under_concurrency);
async fn first_delivery_is_true_once_under_concurrency(store: &Store) {
    let firsts = race(20, |_| {
        let s = store.clone();
        async move { s.first_delivery("Ev0001", t0()).await.unwrap() }
    })
    .await;
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1);
    assert!(!store
        .first_delivery("Ev0001", t0() + secs(1))
        .await
        .unwrap());
    assert!(store
        .first_delivery("Ev0002", t0() + secs(3600))
        .await
        .unwrap());

    assert_eq!(store.prune_processed(t0() + secs(60)).await.unwrap(), 1);
    assert!(store
        .first_delivery("Ev0001", t0() + secs(3601))
        .await
        .unwrap());
    assert!(!store
        .first_delivery("Ev0002", t0() + secs(3601))
        .await
        .unwrap());
}

contract_case!(an_envelope_is_claimed_once_and_redeliveries_get_its_answer);
async fn an_envelope_is_claimed_once_and_redeliveries_get_its_answer(store: &Store) {
    let stale = secs(10);
    // Racing deliveries: one handles it, the others find it busy.
    let claims = race(20, |_| {
        let s = store.clone();
        async move {
            s.claim_envelope("env-1", "slash_commands", stale)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(
        claims
            .iter()
            .filter(|c| **c == EnvelopeClaim::Claimed)
            .count(),
        1
    );
    assert!(claims
        .iter()
        .all(|c| matches!(c, EnvelopeClaim::Claimed | EnvelopeClaim::Busy)));
    assert_eq!(store.envelope_answer("env-1").await.unwrap(), None);

    // Answered: a redelivery gets the same answer, even long after.
    let answer = r#"{"response_type":"ephemeral","text":"Paused"}"#;
    store
        .answer_envelope("env-1", Some(answer), t0() + secs(1))
        .await
        .unwrap();
    for passes in [secs(2), secs(3600)] {
        time_passes_on_the_database(store, passes).await;
        assert_eq!(
            store
                .claim_envelope("env-1", "slash_commands", stale)
                .await
                .unwrap(),
            EnvelopeClaim::Answered(Some(answer.to_string()))
        );
    }
    // An ack without payload is an answer too.
    assert_eq!(
        store
            .claim_envelope("env-2", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
    store.answer_envelope("env-2", None, t0()).await.unwrap();
    assert_eq!(
        store
            .claim_envelope("env-2", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Answered(None)
    );

    // A claim never answered (its handler died) is taken over once stale.
    assert_eq!(
        store
            .claim_envelope("env-3", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
    time_passes_on_the_database(store, secs(9)).await;
    assert_eq!(
        store
            .claim_envelope("env-3", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Busy
    );
    time_passes_on_the_database(store, secs(2)).await;
    assert_eq!(
        store
            .claim_envelope("env-3", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
    assert_eq!(
        store
            .claim_envelope("env-3", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Busy,
        "taken over once, by one delivery"
    );

    // Released (not handled, Slack should retry): the next delivery handles it.
    store.release_envelope("env-3").await.unwrap();
    assert_eq!(
        store
            .claim_envelope("env-3", "interactive", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
    // Releasing never forgets an answered envelope.
    store.release_envelope("env-1").await.unwrap();
    assert_eq!(
        store.envelope_answer("env-1").await.unwrap(),
        Some(Some(answer.to_string()))
    );

    // Pruning forgets by claim time: env-1 was claimed over an hour ago,
    // env-2 and env-3 just now.
    assert_eq!(store.prune_envelopes(secs(1800)).await.unwrap(), 1);
    assert_eq!(store.envelope_answer("env-1").await.unwrap(), None);
    assert_eq!(
        store.envelope_answer("env-2").await.unwrap(),
        Some(None),
        "kept"
    );
    assert_eq!(
        store
            .claim_envelope("env-1", "slash_commands", stale)
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
}

contract_case!(a_replica_whose_clock_is_skewed_cannot_take_what_another_holds);
/// Who holds an in-flight row, and for how long, is decided on the
/// database's clock: a replica whose clock runs an hour ahead (or behind)
/// still sees rows due by its own clock, but cannot take a row or the poll
/// lease another replica holds, and a replica whose clock runs behind does
/// not hand out claims that have already run out for everyone else.
async fn a_replica_whose_clock_is_skewed_cannot_take_what_another_holds(store: &Store) {
    let now = Utc::now();
    let ahead = now + Duration::hours(1);
    let behind = now - Duration::hours(1);
    store.enqueue(post(Some("m1")), behind).await.unwrap();
    store
        .schedule_timer(timer("escalation_step", "a1", behind, None), behind)
        .await
        .unwrap();

    // w1's clock is right: it claims both.
    assert_eq!(
        store
            .claim_due_outbox("w1", now, secs(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_due_timers("w1", now, secs(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // w2's clock is an hour ahead: by its clock w1's claims ran out long ago.
    assert!(
        store
            .claim_due_outbox("w2", ahead, secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "a clock ahead takes an outbox row another replica holds"
    );
    assert!(
        store
            .claim_due_timers("w2", ahead, secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "a clock ahead takes a timer another replica holds"
    );

    // A replica whose clock runs behind claims for a full lease, not for
    // one that has already run out by everyone else's clock.
    store.release_outbox_claims("w1").await.unwrap();
    store.release_timer_claims("w1").await.unwrap();
    assert_eq!(
        store
            .claim_due_outbox("w3", behind, secs(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_due_timers("w3", behind, secs(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_due_outbox("w4", now, secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "a claim made by a clock behind ran out at once"
    );
    assert!(store
        .claim_due_timers("w4", now, secs(30), 10)
        .await
        .unwrap()
        .is_empty());

    // A Socket Mode envelope one replica is handling is not taken over by
    // one whose clock runs ahead.
    // (Its claim takes no clock from the caller either.)
    assert_eq!(
        store
            .claim_envelope("env-s", "interactive", secs(10))
            .await
            .unwrap(),
        EnvelopeClaim::Claimed
    );
    assert_eq!(
        store
            .claim_envelope("env-s", "interactive", secs(10))
            .await
            .unwrap(),
        EnvelopeClaim::Busy,
        "an envelope another replica is handling is not taken over"
    );

    // The poll lease takes no clock from its callers at all: held for its
    // time on the database's clock, whoever asks.
    assert!(store
        .try_acquire_lease("poller", "slow", secs(30))
        .await
        .unwrap());
    assert!(!store
        .try_acquire_lease("poller", "fast", secs(30))
        .await
        .unwrap());
    assert_eq!(
        store.lease_holder("poller").await.unwrap().as_deref(),
        Some("slow")
    );
}

contract_case!(leases_are_exclusive_and_expire);
async fn leases_are_exclusive_and_expire(store: &Store) {
    let ttl = secs(30);
    assert_eq!(store.lease_holder("poller").await.unwrap(), None);
    assert!(store.try_acquire_lease("poller", "a", ttl).await.unwrap());
    time_passes_on_the_database(store, secs(10)).await;
    assert!(!store.try_acquire_lease("poller", "b", ttl).await.unwrap());
    // The holder extends it.
    time_passes_on_the_database(store, secs(10)).await;
    assert!(store.try_acquire_lease("poller", "a", ttl).await.unwrap());
    time_passes_on_the_database(store, secs(29)).await;
    assert!(!store.try_acquire_lease("poller", "b", ttl).await.unwrap());
    assert_eq!(
        store.lease_holder("poller").await.unwrap().as_deref(),
        Some("a")
    );
    // Other names are independent.
    assert!(store.try_acquire_lease("janitor", "b", ttl).await.unwrap());

    // Expired: free for the taking.
    time_passes_on_the_database(store, secs(1)).await;
    assert_eq!(store.lease_holder("poller").await.unwrap(), None);
    assert!(store.try_acquire_lease("poller", "b", ttl).await.unwrap());
    assert!(!store.try_acquire_lease("poller", "a", ttl).await.unwrap());
    assert!(!store.release_lease("poller", "a").await.unwrap());
    assert!(store.release_lease("poller", "b").await.unwrap());
    assert_eq!(store.lease_holder("poller").await.unwrap(), None);

    // Racing replicas: one wins.
    let won = race(20, |i| {
        let s = store.clone();
        async move {
            s.try_acquire_lease("race", &format!("r{i}"), ttl)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1);
}

// ------------------------------------------------------------------ times

contract_case!(times_round_trip_at_millisecond_precision);
async fn times_round_trip_at_millisecond_precision(store: &Store) {
    let precise =
        Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + Duration::nanoseconds(123_456_789);
    let before_1970 = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap()
        + Duration::nanoseconds(999_500_000);
    let ms = truncate_to_ms(precise);
    assert_eq!(ms.timestamp_subsec_nanos(), 123_000_000);
    assert_eq!(truncate_to_ms(before_1970).timestamp_millis(), -1);

    let alert = NewAlert {
        eta: Some(precise),
        deadline: Some(before_1970),
        ..new_alert("acme", "1")
    };
    let (a, _) = store.open_alert(alert, precise).await.unwrap();
    let a = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (a.eta, a.deadline),
        (Some(ms), Some(truncate_to_ms(before_1970)))
    );
    assert_eq!((a.opened_at, a.updated_at), (ms, ms));

    let id = store
        .enqueue(
            NewOutboxMessage {
                not_before: Some(precise),
                ..post(None)
            },
            precise,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .claim_due_outbox("w", ms - Duration::milliseconds(1), secs(1), 1)
        .await
        .unwrap()
        .is_empty());
    let before = Utc::now();
    let m = store
        .claim_due_outbox("w", ms, secs(1), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((m.id, m.next_attempt_at, m.created_at), (id, ms, ms));
    assert!(a_lease_from(before, m.claim_until, secs(1)), "{m:#?}");

    store
        .schedule_timer(timer("k", "s", precise, None), precise)
        .await
        .unwrap();
    assert_eq!(store.next_timer_due().await.unwrap(), Some(ms));
    let t = &store.list_timers(Some("s")).await.unwrap()[0];
    assert_eq!((t.due_at, t.created_at), (ms, ms));

    let req = NewApproval {
        current_deadline: precise,
        proposed_deadline: precise + Duration::nanoseconds(1_500_000),
        expires_at: precise,
        ..approval("acme", "1", "U01")
    };
    let (r, _) = store.create_approval(req, precise).await.unwrap();
    let r = store.get_approval(&r.id).await.unwrap().unwrap();
    assert_eq!(
        (r.current_deadline, r.expires_at, r.created_at),
        (ms, ms, ms)
    );
    assert_eq!(r.proposed_deadline, ms + Duration::milliseconds(1));

    store
        .audit(&AuditEntry {
            at: precise,
            tenant_id: None,
            actor: "bot".into(),
            action: "a".into(),
            subject: None,
            outcome: "ok".into(),
            detail: None,
        })
        .await
        .unwrap();
    assert_eq!(store.list_audit(None, 1).await.unwrap()[0].at, ms);
}

// ------------------------------------------------------------- corruption

contract_case!(rows_that_do_not_decode_are_corrupt);
async fn rows_that_do_not_decode_are_corrupt(store: &Store) {
    let (a, _) = store
        .open_alert(new_alert("acme", "1"), t0())
        .await
        .unwrap();
    raw(store, "UPDATE alerts SET shown = 'not json'").await;
    match store.get_alert(&a.id).await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("alert.shown"), "{why}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    store.enqueue(post(None), t0()).await.unwrap();
    raw(
        store,
        "UPDATE outbox SET next_attempt_at_ms = 9223372036854775807",
    )
    .await;
    assert!(matches!(
        store.list_outbox(None).await,
        Err(StoreError::Corrupt(_))
    ));
}

// ------------------------------------------------- not contract cases

/// Replicas starting together all migrate; the advisory lock serialises them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_migrate_concurrently() {
    let db = TestDb::postgres().await;
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(Store::connect(&db.url).await.expect("connect"));
    }
    let results = race(4, |i| {
        let s = replicas[i].clone();
        async move { s.migrate().await }
    })
    .await;
    for r in results {
        r.expect("every replica migrates");
    }
    replicas[0].ping().await.unwrap();
    assert_eq!(replicas[0].backend(), Backend::Postgres);
    for s in &replicas {
        s.close().await;
    }
}

/// The settings a PostgreSQL store session runs with.
async fn session_settings(store: &Store) -> Vec<String> {
    let Store::Postgres(p) = store else {
        panic!("a PostgreSQL store")
    };
    let mut shown = Vec::new();
    for sql in [
        "SHOW statement_timeout",
        "SHOW idle_in_transaction_session_timeout",
        "SHOW tcp_keepalives_idle",
        "SHOW tcp_keepalives_interval",
        "SHOW tcp_keepalives_count",
    ] {
        shown.push(sqlx::query_scalar(sql).fetch_one(p).await.unwrap());
    }
    shown
}

/// A PostgreSQL store's sessions end a statement stuck for 30 s, a
/// transaction left open a minute, and have the server probe a silent
/// connection (a replica gone in a failover) after 30 s; the URL's
/// `options` can say otherwise. Migrations run without the statement
/// timeout.
#[tokio::test]
async fn a_postgres_stores_sessions_have_statement_timeouts_and_keepalives() {
    let db = TestDb::postgres().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        session_settings(&store).await,
        ["30s", "1min", "30", "10", "3"]
    );
    store.close().await;
    let url = format!("{}?options=-c%20statement_timeout%3D5s", db.url);
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        session_settings(&store).await,
        ["5s", "1min", "30", "10", "3"]
    );
    store.close().await;
}

/// A plain path is a SQLite file, created on first use.
#[tokio::test]
async fn a_plain_path_is_a_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("sla-path-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("servo-sla-bot.db");
    let store = Store::connect(file.to_str().unwrap())
        .await
        .expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert!(file.exists());
    assert!(format!("{store}").contains("servo-sla-bot.db"));
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_databases_keep_the_admin_url_but_the_name() {
    use common::db::with_database;
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
    assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
}

contract_case!(forecasts_are_recorded_once_closed_or_dropped_and_kept_per_asset);
async fn forecasts_are_recorded_once_closed_or_dropped_and_kept_per_asset(store: &Store) {
    use servo_sla_bot::store::ForecastRecord;
    let rec = |job: &str, asset: &str, min: i64| ForecastRecord {
        tenant_id: "acme".into(),
        job_id: job.into(),
        checkpoint: 0,
        asset: asset.into(),
        made_at: t0() + secs(min * 60),
        progress: 0.25,
        p50: t0() + secs(min * 60 + 1800),
        p90: t0() + secs(min * 60 + 2400),
        servo_eta: None,
        completed_at: None,
        profile: None,
        period_end: None,
    };
    assert!(store
        .record_forecast(&rec("j1", "orders", 0))
        .await
        .unwrap());
    let mut again = rec("j1", "orders", 5);
    again.progress = 0.3;
    assert!(
        !store.record_forecast(&again).await.unwrap(),
        "the first forecast at a quarter done is the one kept"
    );
    // Half done is another checkpoint of the same job.
    let mut half = rec("j1", "orders", 30);
    (half.checkpoint, half.progress) = (1, 0.5);
    assert!(store.record_forecast(&half).await.unwrap());
    assert!(!store.record_forecast(&half).await.unwrap());
    // A poll records its forecasts in one go; the one already kept stays.
    let batch = [
        rec("j2", "orders", 10),
        rec("j3", "orders", 20),
        rec("j4", "refunds", 0),
        again.clone(),
    ];
    assert_eq!(store.record_forecasts(&batch).await.unwrap(), 3);
    assert_eq!(store.record_forecasts(&batch).await.unwrap(), 0);
    assert_eq!(store.record_forecasts(&[]).await.unwrap(), 0);
    let open = store.open_forecasts("acme").await.unwrap();
    assert_eq!(open.len(), 5);
    assert_eq!(open[0].made_at, t0(), "{open:?}");
    assert_eq!(open[0].progress, 0.25);
    assert!(store.open_forecasts("globex").await.unwrap().is_empty());

    assert!(store
        .close_forecast("acme", "j1", t0() + secs(3600))
        .await
        .unwrap());
    assert!(
        !store
            .close_forecast("acme", "j1", t0() + secs(7200))
            .await
            .unwrap(),
        "closed once"
    );
    store
        .close_forecast("acme", "j2", t0() + secs(4000))
        .await
        .unwrap();
    store
        .close_forecast("acme", "j4", t0() + secs(4000))
        .await
        .unwrap();
    store.drop_forecast("acme", "j3").await.unwrap();
    assert!(store.open_forecasts("acme").await.unwrap().is_empty());

    let finished = store.finished_forecasts("acme", 1).await.unwrap();
    let mut kept: Vec<(&str, i32)> = finished
        .iter()
        .map(|f| (f.asset.as_str(), f.checkpoint))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [("orders", 0), ("orders", 1), ("refunds", 0)],
        "at most one per asset and checkpoint, the newest"
    );
    let orders = finished
        .iter()
        .find(|f| f.asset == "orders" && f.checkpoint == 0)
        .unwrap();
    assert_eq!(orders.job_id, "j2");
    assert_eq!(orders.completed_at, Some(t0() + secs(4000)));
    let half_done = finished.iter().find(|f| f.checkpoint == 1).unwrap();
    assert_eq!(
        (half_done.job_id.as_str(), half_done.completed_at),
        ("j1", Some(t0() + secs(3600))),
        "closing a job closes its every checkpoint"
    );
    assert_eq!(store.finished_forecasts("acme", 20).await.unwrap().len(), 4);
}

contract_case!(a_new_asset_borrows_the_calibration_of_the_tenants_assets_most_like_it);
async fn a_new_asset_borrows_the_calibration_of_the_tenants_assets_most_like_it(store: &Store) {
    use servo_sla_bot::context::calibrations::learn;
    use servo_sla_bot::domain::forecast::pool::Profile;
    use servo_sla_bot::domain::forecast::ClassPrior;
    use servo_sla_bot::store::ForecastRecord;
    let daily = Profile {
        partitions: 365.0,
        partition_ms: 120_000.0,
    };
    let huge = Profile {
        partitions: 40_000.0,
        partition_ms: 2_000.0,
    };
    // Jobs forecast 30 minutes from a quarter done that took `took` minutes.
    let finished = |asset: &str, n: usize, took: f64, profile: Option<Profile>| {
        (0..n)
            .map(|i| {
                let made_at = t0() + secs(i as i64 * 86_400);
                let wobble = 1.0 + 0.1 * (i % 3) as f64 - 0.1;
                (
                    ForecastRecord {
                        tenant_id: "acme".into(),
                        job_id: format!("{asset}-{i}"),
                        checkpoint: 0,
                        asset: asset.into(),
                        made_at,
                        progress: 0.25,
                        p50: made_at + secs(1800),
                        p90: made_at + secs(2400),
                        servo_eta: None,
                        completed_at: None,
                        profile,
                        period_end: profile.map(|_| ClassPrior {
                            factor: 2.0,
                            period_end: 3,
                        }),
                    },
                    made_at + secs((took * wobble * 60.0) as i64),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut all = finished("orders_eu", 6, 45.0, Some(daily));
    all.extend(finished("orders_us", 6, 45.0, Some(daily)));
    all.extend(finished("clickstream", 6, 30.0, Some(huge)));
    // Recorded before sizes were: it calibrates its own asset only.
    all.extend(finished("legacy", 3, 30.0, None));
    let records: Vec<ForecastRecord> = all.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(store.record_forecasts(&records).await.unwrap(), 21);
    for (r, done) in &all {
        assert!(store
            .close_forecast("acme", &r.job_id, *done)
            .await
            .unwrap());
    }
    let kept = store.finished_forecasts("acme", 20).await.unwrap();
    let eu = kept.iter().find(|f| f.job_id == "orders_eu-0").unwrap();
    assert_eq!(eu.profile, Some(daily), "the job's size as recorded");
    assert_eq!(
        eu.period_end,
        Some(ClassPrior {
            factor: 2.0,
            period_end: 3
        })
    );
    let legacy = kept.iter().find(|f| f.asset == "legacy").unwrap();
    assert_eq!((legacy.profile, legacy.period_end), (None, None));

    let tenant = learn(store, "acme").await.unwrap();
    // A new daily asset: the two order assets (jobs took 1.5× the forecast)
    // are like it, the clickstream (as forecast) is not.
    let new = tenant
        .calibration("orders_apac", Some(daily))
        .expect("borrowed");
    let borrowed = new.for_progress(0.25);
    assert!(borrowed.bias_ratio() > 1.25, "{borrowed:?}");
    assert_eq!(borrowed.pairs(), 0, "no job of its own");
    assert_eq!(
        borrowed.accuracy(),
        None,
        "no accuracy of its own to report"
    );
    let like_clicks = tenant.calibration("new_events", Some(huge)).unwrap();
    assert!(
        like_clicks.for_progress(0.25).bias_ratio() < 1.1,
        "{:?}",
        like_clicks.for_progress(0.25)
    );
    let prior = tenant
        .period_end_prior("orders_apac", Some(daily), None)
        .expect("a borrowed period-end prior");
    assert!((prior.factor - 2.0).abs() < 1e-9, "{prior:?}");
    // An asset with finished jobs of its own keeps its own calibration,
    // the borrowed one only a start it moves from.
    let eu = tenant.calibration("orders_eu", Some(daily)).unwrap();
    assert_eq!(eu.for_progress(0.25).pairs(), 6);
    assert!(eu.for_progress(0.25).accuracy().is_some());

    // Five jobs of the new asset, run as forecast: its own history takes over.
    let own = finished("orders_apac", 5, 30.0, Some(daily));
    let records: Vec<ForecastRecord> = own.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(store.record_forecasts(&records).await.unwrap(), 5);
    for (r, done) in &own {
        store
            .close_forecast("acme", &r.job_id, *done)
            .await
            .unwrap();
    }
    let tenant = learn(store, "acme").await.unwrap();
    let grown = tenant.calibration("orders_apac", Some(daily)).unwrap();
    let grown = grown.for_progress(0.25);
    assert_eq!(grown.pairs(), 5);
    assert!(
        grown.bias_ratio() < borrowed.bias_ratio() - 0.1,
        "{grown:?} against {borrowed:?}"
    );
    // Another tenant's assets teach nothing here.
    assert!(learn(store, "globex")
        .await
        .unwrap()
        .calibration("orders_apac", Some(daily))
        .is_none());
}

contract_case!(a_job_is_first_seen_once_and_its_notice_opens_and_closes_once);
async fn a_job_is_first_seen_once_and_its_notice_opens_and_closes_once(store: &Store) {
    use servo_sla_bot::store::NewWatchedJob;
    let job = |id: &str, buffer: f64| NewWatchedJob {
        tenant_id: "acme".into(),
        job_id: id.into(),
        asset: "orders".into(),
        priority: 5,
        tier: "standard".into(),
        deadline: Some(t0() + secs(3600)),
        buffer: Some(buffer),
    };
    // Two pollers racing over the same jobs: each job is new to exactly one.
    let store = Arc::new(store.clone());
    let firsts = race(4, |_| {
        let store = store.clone();
        async move {
            store
                .watch_new(&[job("j1", 0.3), job("j2", 0.1)], t0())
                .await
                .unwrap()
        }
    })
    .await;
    let mut all: Vec<String> = firsts.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, ["j1", "j2"], "each job's first sight is handled once");

    // The lowest buffer only goes down; a breach is recorded once.
    store
        .watch_observe("acme", "j1", None, Some(0.2), false, t0() + secs(60))
        .await
        .unwrap();
    store
        .watch_observe("acme", "j1", None, Some(0.25), true, t0() + secs(120))
        .await
        .unwrap();
    store
        .watch_observe("acme", "j1", None, Some(0.24), true, t0() + secs(180))
        .await
        .unwrap();
    let w = store.get_watched("acme", "j1").await.unwrap().unwrap();
    assert_eq!(w.min_buffer, Some(0.2));
    assert_eq!(w.min_buffer_at, Some(t0() + secs(60)));
    assert_eq!(w.breached_at, Some(t0() + secs(120)));
    assert_eq!(w.deadline, None, "the deadline as last seen");

    // Marks: once each; last_mark only moves forward.
    store
        .watch_mark("acme", "j1", 50, Some(t0()), None, t0())
        .await
        .unwrap();
    store
        .watch_mark("acme", "j1", 25, Some(t0()), None, t0())
        .await
        .unwrap();
    store
        .watch_mark("acme", "j1", 50, Some(t0() + secs(9)), None, t0())
        .await
        .unwrap();
    assert_eq!(
        store
            .get_watched("acme", "j1")
            .await
            .unwrap()
            .unwrap()
            .last_mark,
        50
    );

    // Ends once; then it is no longer active.
    assert!(store
        .watch_end(
            "acme",
            "j1",
            "completed",
            Some(t0() + secs(900)),
            t0() + secs(960)
        )
        .await
        .unwrap());
    assert!(!store
        .watch_end("acme", "j1", "failed", None, t0() + secs(999))
        .await
        .unwrap());
    let active: Vec<String> = store
        .watched_active("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.job_id)
        .collect();
    assert_eq!(active, ["j2"]);
    let marks = store
        .marks_completed_between("acme", t0(), t0() + secs(3600))
        .await
        .unwrap();
    assert_eq!(marks.len(), 2);
    assert_eq!(
        marks[1].servo_eta,
        Some(t0()),
        "the first mark at 50% is kept"
    );

    // One open notice per job, however many ask at once; closed once.
    let opened = race(4, |_| {
        let store = store.clone();
        async move {
            store
                .open_notice("acme", "j2", "approaching", Some(0.1), None, t0())
                .await
                .unwrap()
        }
    })
    .await;
    let opened: Vec<_> = opened.into_iter().flatten().collect();
    assert_eq!(opened.len(), 1);
    let n = &opened[0];
    assert_eq!(
        store.notice_place(&n.id).await.unwrap(),
        servo_sla_bot::store::NoticePlace::Missing,
        "not posted yet"
    );
    assert!(store
        .close_notice(&n.id, "promoted", Some("a1"), t0() + secs(5))
        .await
        .unwrap());
    assert!(!store
        .close_notice(&n.id, "cleared", None, t0() + secs(6))
        .await
        .unwrap());
    assert!(store.close_notice(&n.id, "open", None, t0()).await.is_err());
    assert!(store
        .open_notice_for_job("acme", "j2")
        .await
        .unwrap()
        .is_none());
    let again = store
        .open_notice(
            "acme",
            "j2",
            "approaching",
            Some(0.05),
            Some("a0"),
            t0() + secs(10),
        )
        .await
        .unwrap();
    assert!(again.is_some(), "a closed notice leaves room for the next");

    // The weekly review is claimed once.
    assert!(!store.review_posted("acme", "w1").await.unwrap());
    assert!(store.claim_review("acme", "w1", t0()).await.unwrap());
    assert!(!store.claim_review("acme", "w1", t0()).await.unwrap());
    assert!(store.review_posted("acme", "w1").await.unwrap());
}

async fn what_an_alert_shows_is_written_only_over_the_version_read(store: &Store) {
    let (alert, _) = store
        .open_alert(new_alert("acme", "j1"), t0())
        .await
        .unwrap();
    let read = store.get_alert(&alert.id).await.unwrap().unwrap();
    // A poll edits the alert between the read and the write.
    assert!(store
        .update_alert(
            &alert.id,
            RiskBand::High,
            Some(0.9),
            None,
            None,
            Some(&json!({"band": "high"})),
            t0() + secs(1)
        )
        .await
        .unwrap());
    assert!(!store
        .set_alert_shown_at(&alert.id, &json!({"band": "stale"}), read.version)
        .await
        .unwrap());
    let now = store.get_alert(&alert.id).await.unwrap().unwrap();
    assert_eq!(
        now.shown,
        Some(json!({"band": "high"})),
        "the poll's view stays"
    );
    assert_eq!(now.band, RiskBand::High);
    assert!(store
        .set_alert_shown_at(
            &alert.id,
            &json!({"band": "high", "acked": true}),
            now.version
        )
        .await
        .unwrap());
    let after = store.get_alert(&alert.id).await.unwrap().unwrap();
    assert_eq!(after.version, now.version + 1);
    assert_eq!(after.severity, Some(0.9), "only what it shows changed");
}
contract_case!(what_an_alert_shows_is_written_only_over_the_version_read);

async fn a_scaling_request_is_recorded_once_per_cool_down(store: &Store) {
    let cool = Duration::minutes(30);
    let results = race(8, {
        let store = store.clone();
        move |i| {
            let store = store.clone();
            async move {
                store
                    .claim_scaling_request("a1", "acme", &format!("U{i}"), t0(), cool)
                    .await
                    .unwrap()
            }
        }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| **r == Some(1)).count(),
        1,
        "one of eight racing clicks records it: {results:?}"
    );
    assert_eq!(results.iter().filter(|r| r.is_none()).count(), 7);
    assert_eq!(
        store
            .claim_scaling_request("a1", "acme", "U9", t0() + Duration::minutes(29), cool)
            .await
            .unwrap(),
        None
    );
    let first = store.scaling_request("a1").await.unwrap().unwrap();
    assert_eq!(first.count, 1);
    assert!(store
        .ack_scaling_request("a1", 1, "U7", t0())
        .await
        .unwrap());
    assert!(
        !store
            .ack_scaling_request("a1", 1, "U8", t0())
            .await
            .unwrap(),
        "acknowledged once"
    );
    assert_eq!(
        store
            .claim_scaling_request("a1", "acme", "U9", t0() + cool, cool)
            .await
            .unwrap(),
        Some(2)
    );
    let second = store.scaling_request("a1").await.unwrap().unwrap();
    assert_eq!((second.count, second.requested_by.as_str()), (2, "U9"));
    assert_eq!(
        second.acked_by, None,
        "a new request waits for its own acknowledgement"
    );
    assert!(
        !store
            .ack_scaling_request("a1", 1, "U7", t0())
            .await
            .unwrap(),
        "the old one is gone"
    );
}
contract_case!(a_scaling_request_is_recorded_once_per_cool_down);

async fn history_begins_at_the_first_job_or_alert(store: &Store) {
    assert_eq!(store.history_begins("acme").await.unwrap(), None);
    store
        .open_alert(new_alert("acme", "j1"), t0() + secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.history_begins("acme").await.unwrap(),
        Some(t0() + secs(60))
    );
    assert_eq!(store.history_begins("globex").await.unwrap(), None);
}
contract_case!(history_begins_at_the_first_job_or_alert);

async fn a_failed_timer_is_due_again_later_and_counts_its_failures(store: &Store) {
    let due = t0();
    store
        .schedule_timer(
            NewTimer {
                kind: "escalation_step".into(),
                subject_id: "a1".into(),
                payload: json!({}),
                due_at: due,
                dedup_key: Some("t1".into()),
            },
            t0(),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due_timers("w1", due, secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 0);
    assert!(
        !store
            .retry_timer(&claimed[0].id, "w2", due + secs(2))
            .await
            .unwrap(),
        "only its claimant hands it back"
    );
    assert!(store
        .retry_timer(&claimed[0].id, "w1", due + secs(2))
        .await
        .unwrap());
    assert!(
        store
            .claim_due_timers("w1", due + secs(1), secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "not again at once"
    );
    let again = store
        .claim_due_timers("w1", due + secs(2), secs(30), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
}
contract_case!(a_failed_timer_is_due_again_later_and_counts_its_failures);
