//! The store's contract: every case runs on SQLite and on PostgreSQL.

mod common;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::db::TestDb;
use serde_json::json;
use servo_sla_bot::store::{
    AckOutcome, AuditEntry, NewAlert, NewApproval, NewOutboxMessage, NewTimer, Store,
};
use std::collections::HashSet;

/// Generates `<case>_sqlite` and `<case>_postgres` tests from one async fn.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let db = super::TestDb::sqlite().await;
                super::$case(&db.store().await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let db = super::TestDb::postgres().await;
                super::$case(&db.store().await).await;
            })*
        }
    };
}

contract!(
    migrating_twice_is_a_no_op,
    open_alert_returns_the_open_one_and_a_resolved_one_starts_a_new_episode,
    concurrent_open_alert_calls_create_one_alert,
    the_first_acknowledgement_wins_under_concurrency,
    resolve_is_conditional,
    the_first_message_delivery_wins,
    outbox_dedup_keys_enqueue_once,
    outbox_messages_of_one_thread_go_in_order,
    a_claim_holds_until_its_lease_expires,
    marking_sent_records_the_ts_on_the_linked_alert,
    a_retry_releases_the_claim_until_its_time,
    shutdown_hands_claims_back,
    timers_fire_once_across_racing_workers,
    timers_dedup_and_cancel,
    a_new_request_supersedes_the_pending_one,
    twenty_concurrent_decisions_give_one,
    requests_expire_at_their_time,
    the_audit_log_reads_newest_first,
    an_event_is_delivered_once_under_concurrency,
    leases_are_exclusive_until_they_expire,
    times_round_trip_at_millisecond_precision,
);

fn t0() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

fn new_alert(job: &str) -> NewAlert {
    NewAlert {
        tenant_id: "acme".into(),
        job_id: job.into(),
        band: "low".into(),
        severity: Some(0.1),
        eta: Some(t0() + Duration::hours(2)),
        deadline: Some(t0() + Duration::hours(1)),
        shown: Some(json!({"band": "low"})),
    }
}

fn post(key: &str, ordering: Option<&str>) -> NewOutboxMessage {
    let mut m = NewOutboxMessage::call(
        "chat.postMessage",
        json!({"channel": "C1", "text": key}),
        key,
    );
    m.ordering_key = ordering.map(str::to_string);
    m
}

async fn migrating_twice_is_a_no_op(store: &Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn open_alert_returns_the_open_one_and_a_resolved_one_starts_a_new_episode(store: &Store) {
    let (a, created) = store.open_alert(new_alert("job-1"), t0()).await.unwrap();
    assert!(created);
    assert_eq!(a.episode, 1);
    assert!(a.is_open());
    let (again, created) = store.open_alert(new_alert("job-1"), t0()).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, a.id);
    assert!(store
        .resolve_alert(&a.id, "back on track", t0())
        .await
        .unwrap());
    let (b, created) = store.open_alert(new_alert("job-1"), t0()).await.unwrap();
    assert!(created);
    assert_eq!(b.episode, 2);
    assert_ne!(b.id, a.id);
    let latest = store
        .latest_alert_for_job("acme", "job-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, b.id);
    assert_eq!(store.list_open_alerts(Some("acme")).await.unwrap().len(), 1);
    assert_eq!(
        store.list_open_alerts(Some("globex")).await.unwrap().len(),
        0
    );
}

async fn concurrent_open_alert_calls_create_one_alert(store: &Store) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.open_alert(new_alert("job-race"), t0()).await.unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (a, c) = t.await.unwrap();
        ids.insert(a.id);
        created += c as usize;
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
}

async fn the_first_acknowledgement_wins_under_concurrency(store: &Store) {
    let (a, _) = store.open_alert(new_alert("job-ack"), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        let id = a.id.clone();
        tasks.push(tokio::spawn(async move {
            s.acknowledge_alert(&id, &format!("U{i:03}"), t0())
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    let mut already = 0;
    for t in tasks {
        match t.await.unwrap() {
            AckOutcome::Acknowledged => wins += 1,
            AckOutcome::AlreadyAcknowledged { .. } => already += 1,
            AckOutcome::NotOpen => panic!("the alert is open"),
        }
    }
    assert_eq!((wins, already), (1, 19));
    assert!(store.clear_acknowledgement(&a.id).await.unwrap());
    assert_eq!(
        store.acknowledge_alert(&a.id, "U9", t0()).await.unwrap(),
        AckOutcome::Acknowledged
    );
}

async fn resolve_is_conditional(store: &Store) {
    let (a, _) = store.open_alert(new_alert("job-res"), t0()).await.unwrap();
    assert!(store.resolve_alert(&a.id, "completed", t0()).await.unwrap());
    assert!(!store.resolve_alert(&a.id, "completed", t0()).await.unwrap());
    assert!(!store
        .update_alert(&a.id, "high", None, None, None, None, t0())
        .await
        .unwrap());
    assert_eq!(
        store.acknowledge_alert(&a.id, "U1", t0()).await.unwrap(),
        AckOutcome::NotOpen
    );
    let r = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(r.resolution.as_deref(), Some("completed"));
}

async fn the_first_message_delivery_wins(store: &Store) {
    let (a, _) = store.open_alert(new_alert("job-msg"), t0()).await.unwrap();
    assert!(store.set_alert_message(&a.id, "C1", "1.1").await.unwrap());
    assert!(!store.set_alert_message(&a.id, "C1", "2.2").await.unwrap());
    let by_msg = store.alert_by_message("C1", "1.1").await.unwrap().unwrap();
    assert_eq!(by_msg.id, a.id);
}

async fn outbox_dedup_keys_enqueue_once(store: &Store) {
    assert!(store
        .enqueue(post("k1", None), t0())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .enqueue(post("k1", None), t0())
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_outbox(None).await.unwrap().len(), 1);
}

async fn outbox_messages_of_one_thread_go_in_order(store: &Store) {
    store
        .enqueue(post("first", Some("thread-a")), t0())
        .await
        .unwrap();
    store
        .enqueue(post("second", Some("thread-a")), t0())
        .await
        .unwrap();
    store
        .enqueue(post("other", Some("thread-b")), t0())
        .await
        .unwrap();
    let lease = Duration::minutes(5);
    let claimed = store.claim_due_outbox("w1", t0(), lease, 10).await.unwrap();
    let keys: Vec<_> = claimed
        .iter()
        .map(|m| m.dedup_key.clone().unwrap())
        .collect();
    assert_eq!(keys, ["first", "other"], "the second waits for the first");
    let first = &claimed[0];
    assert!(store
        .mark_outbox_sent(first.id, "w1", &json!({"ok": true}), t0())
        .await
        .unwrap());
    let next = store.claim_due_outbox("w1", t0(), lease, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].dedup_key.as_deref(), Some("second"));
}

async fn a_claim_holds_until_its_lease_expires(store: &Store) {
    store.enqueue(post("leased", None), t0()).await.unwrap();
    let lease = Duration::seconds(30);
    assert_eq!(
        store
            .claim_due_outbox("w1", t0(), lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .claim_due_outbox("w2", t0() + Duration::seconds(10), lease, 10)
        .await
        .unwrap()
        .is_empty());
    let taken = store
        .claim_due_outbox("w2", t0() + Duration::seconds(31), lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts, 2);
    // The first worker lost its claim: it can no longer mark the message.
    assert!(!store
        .mark_outbox_sent(taken[0].id, "w1", &json!({}), t0())
        .await
        .unwrap());
    assert!(store
        .mark_outbox_sent(taken[0].id, "w2", &json!({}), t0())
        .await
        .unwrap());
}

async fn marking_sent_records_the_ts_on_the_linked_alert(store: &Store) {
    let (a, _) = store.open_alert(new_alert("job-link"), t0()).await.unwrap();
    let mut m = post("alert-post", Some(&a.id));
    m.link_kind = Some("alert".into());
    m.link_id = Some(a.id.clone());
    store.enqueue(m, t0()).await.unwrap();
    let claimed = store
        .claim_due_outbox("w", t0(), Duration::minutes(1), 10)
        .await
        .unwrap();
    let answer = json!({"ok": true, "channel": "C0ACME", "ts": "1700000000.000100"});
    assert!(store
        .mark_outbox_sent(claimed[0].id, "w", &answer, t0())
        .await
        .unwrap());
    let a = store.get_alert(&a.id).await.unwrap().unwrap();
    assert_eq!(a.channel.as_deref(), Some("C0ACME"));
    assert_eq!(a.ts.as_deref(), Some("1700000000.000100"));
    let sent = &store.list_outbox(Some("sent")).await.unwrap()[0];
    assert_eq!(sent.response.as_ref().unwrap()["ts"], "1700000000.000100");
}

async fn a_retry_releases_the_claim_until_its_time(store: &Store) {
    store.enqueue(post("retry", None), t0()).await.unwrap();
    let m = store
        .claim_due_outbox("w", t0(), Duration::minutes(5), 10)
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .mark_outbox_retry(m.id, "w", t0() + Duration::seconds(30), "HTTP 500")
        .await
        .unwrap());
    assert!(store
        .claim_due_outbox("w", t0() + Duration::seconds(29), Duration::minutes(5), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.next_outbox_due().await.unwrap(),
        Some(t0() + Duration::seconds(30))
    );
    let again = store
        .claim_due_outbox("w2", t0() + Duration::seconds(30), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
    assert!(store
        .mark_outbox_failed(again[0].id, "w2", "channel_not_found", t0())
        .await
        .unwrap());
    assert_eq!(store.list_outbox(Some("failed")).await.unwrap().len(), 1);
}

async fn shutdown_hands_claims_back(store: &Store) {
    store.enqueue(post("a", None), t0()).await.unwrap();
    store.schedule_timer(timer("s1", t0()), t0()).await.unwrap();
    store
        .claim_due_outbox("w", t0(), Duration::minutes(5), 10)
        .await
        .unwrap();
    store
        .claim_due_timers("w", t0(), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(store.release_outbox_claims("w").await.unwrap(), 1);
    assert_eq!(store.release_timer_claims("w").await.unwrap(), 1);
    assert_eq!(
        store
            .claim_due_outbox("w2", t0(), Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_due_timers("w2", t0(), Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn timer(subject: &str, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        kind: "escalation_step".into(),
        subject_id: subject.into(),
        payload: json!({"tier": 1}),
        due_at: due,
        dedup_key: Some(format!("{subject}:step")),
    }
}

async fn timers_fire_once_across_racing_workers(store: &Store) {
    for i in 0..50 {
        store
            .schedule_timer(timer(&format!("t{i}"), t0()), t0())
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..2 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut fired = Vec::new();
            loop {
                let batch = s
                    .claim_due_timers(&format!("w{w}"), t0(), Duration::minutes(1), 7)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for t in batch {
                    if s.complete_timer(&t.id, &format!("w{w}"), t0())
                        .await
                        .unwrap()
                    {
                        fired.push(t.id);
                    }
                }
            }
            fired
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 50, "each timer fired once");
    assert_eq!(unique.len(), 50);
}

async fn timers_dedup_and_cancel(store: &Store) {
    assert!(store
        .schedule_timer(timer("al", t0() + Duration::minutes(15)), t0())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .schedule_timer(timer("al", t0() + Duration::minutes(15)), t0())
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .claim_due_timers("w", t0(), Duration::minutes(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    assert_eq!(
        store.next_timer_due().await.unwrap(),
        Some(t0() + Duration::minutes(15))
    );
    assert_eq!(store.cancel_timers("al", None, t0()).await.unwrap(), 1);
    assert!(store
        .claim_due_timers("w", t0() + Duration::hours(1), Duration::minutes(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.list_timers(Some("al")).await.unwrap()[0].status,
        "cancelled"
    );
}

fn request(by: &str) -> NewApproval {
    NewApproval {
        tenant_id: "acme".into(),
        job_id: "job-x".into(),
        alert_id: None,
        requested_by: by.into(),
        reason: Some("vendor outage".into()),
        current_deadline: t0() + Duration::hours(1),
        proposed_deadline: t0() + Duration::hours(5),
        expires_at: t0() + Duration::hours(1),
    }
}

async fn a_new_request_supersedes_the_pending_one(store: &Store) {
    let (first, superseded) = store.create_approval(request("U1"), t0()).await.unwrap();
    assert!(superseded.is_empty());
    let (second, superseded) = store.create_approval(request("U2"), t0()).await.unwrap();
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0].id, first.id);
    assert_eq!(superseded[0].status, "superseded");
    let pending = store
        .pending_approval_for_job("acme", "job-x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.id, second.id);
    assert!(store
        .set_approval_message(&second.id, "C1", "9.9")
        .await
        .unwrap());
    assert!(!store
        .set_approval_message(&second.id, "C1", "8.8")
        .await
        .unwrap());
}

async fn twenty_concurrent_decisions_give_one(store: &Store) {
    let (req, _) = store.create_approval(request("U1"), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        let id = req.id.clone();
        let to = if i % 2 == 0 { "approved" } else { "rejected" };
        tasks.push(tokio::spawn(async move {
            s.decide_approval(&id, to, &format!("U{i:03}"), None, t0())
                .await
                .unwrap()
        }));
    }
    let mut decided = Vec::new();
    for t in tasks {
        if let Some(a) = t.await.unwrap() {
            decided.push(a);
        }
    }
    assert_eq!(decided.len(), 1);
    let stored = store.get_approval(&req.id).await.unwrap().unwrap();
    assert_eq!(stored.status, decided[0].status);
    assert_eq!(stored.decided_by, decided[0].decided_by);
    assert!(store
        .amend_approval(&req.id, &stored.status, "failed", "Servo refused")
        .await
        .unwrap());
}

async fn requests_expire_at_their_time(store: &Store) {
    let (req, _) = store.create_approval(request("U1"), t0()).await.unwrap();
    assert!(store
        .expire_due_approvals(t0() + Duration::minutes(59))
        .await
        .unwrap()
        .is_empty());
    let expired = store
        .expire_due_approvals(t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, req.id);
    assert!(store
        .decide_approval(&req.id, "approved", "U2", None, t0())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .list_approvals(Some("acme"), Some("expired"))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn the_audit_log_reads_newest_first(store: &Store) {
    for (i, outcome) in ["ok", "refused: not an operator", "ok"].iter().enumerate() {
        store
            .audit(&AuditEntry {
                at: t0() + Duration::seconds(i as i64),
                tenant_id: Some("acme".into()),
                actor: format!("U{i}"),
                action: "pause".into(),
                subject: Some("job-a".into()),
                outcome: outcome.to_string(),
                detail: Some(json!({"n": i})),
            })
            .await
            .unwrap();
    }
    let all = store.list_audit(Some("job-a"), 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].actor, "U2");
    assert_eq!(all[1].outcome, "refused: not an operator");
    assert_eq!(all[2].detail, Some(json!({"n": 0})));
    assert_eq!(all[2].at, t0());
    assert!(store
        .list_audit(Some("job-b"), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn an_event_is_delivered_once_under_concurrency(store: &Store) {
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.first_delivery("event:Ev1", t0()).await.unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += t.await.unwrap() as usize;
    }
    assert_eq!(firsts, 1);
    assert_eq!(
        store
            .prune_processed(t0() + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.first_delivery("event:Ev1", t0()).await.unwrap());
}

async fn leases_are_exclusive_until_they_expire(store: &Store) {
    let ttl = Duration::seconds(30);
    assert!(store
        .try_acquire_lease("poller", "a", t0(), ttl)
        .await
        .unwrap());
    assert!(!store
        .try_acquire_lease("poller", "b", t0() + Duration::seconds(10), ttl)
        .await
        .unwrap());
    assert!(
        store
            .try_acquire_lease("poller", "a", t0() + Duration::seconds(10), ttl)
            .await
            .unwrap(),
        "renewal"
    );
    assert_eq!(
        store
            .lease_holder("poller", t0() + Duration::seconds(20))
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    assert!(
        store
            .try_acquire_lease("poller", "b", t0() + Duration::seconds(41), ttl)
            .await
            .unwrap(),
        "expired"
    );
    assert!(!store.release_lease("poller", "a").await.unwrap());
    assert!(store.release_lease("poller", "b").await.unwrap());
    assert_eq!(store.lease_holder("poller", t0()).await.unwrap(), None);
}

async fn times_round_trip_at_millisecond_precision(store: &Store) {
    let t = DateTime::parse_from_rfc3339("2026-11-28T14:20:31.123456789Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut n = new_alert("job-time");
    n.eta = Some(t);
    let (a, _) = store.open_alert(n, t).await.unwrap();
    let expected = DateTime::parse_from_rfc3339("2026-11-28T14:20:31.123Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(a.eta, Some(expected));
    assert_eq!(a.opened_at, expected);
}
