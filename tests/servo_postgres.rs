//! The Servo interface against a real PostgreSQL holding Servo's tables, as an
//! ordinary role that row-level security applies to.

mod common;

use chrono::{Duration, Utc};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::tcp_proxy::TcpProxy;
use servo_sla_bot::config::DatabaseUrl;
use servo_sla_bot::domain::risk::JobState;
use servo_sla_bot::servo::{Servo, ServoActionError, ServoError};

async fn servo_for(fx: &ServoFixture) -> Servo {
    Servo::connect_lazy(&DatabaseUrl::new(fx.bot_url())).unwrap()
}

#[tokio::test]
async fn the_bot_role_is_not_a_superuser_so_rls_applies() {
    let fx = ServoFixture::start().await;
    let pool = sqlx::PgPool::connect(&fx.bot_url()).await.unwrap();
    let is_super: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!is_super);
    // Without the tenant set, the role sees nothing, and gets no error.
    fx.job(JobSpec::default()).await;
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM backfill_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_active_jobs() {
    let fx = ServoFixture::start().await;
    let deadline = Some(Utc::now() + Duration::hours(2));
    let a = fx
        .job(JobSpec {
            deadline,
            ..JobSpec::default()
        })
        .await;
    let b = fx
        .job(JobSpec {
            tenant: "globex".into(),
            deadline,
            ..JobSpec::default()
        })
        .await;
    fx.job(JobSpec {
        state: "completed".into(),
        deadline,
        ..JobSpec::default()
    })
    .await;
    let servo = servo_for(&fx).await;
    let acme: Vec<_> = servo
        .active_jobs("acme", true)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let globex: Vec<_> = servo
        .active_jobs("globex", true)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(acme, vec![a]);
    assert_eq!(globex, vec![b]);
    assert!(
        servo.get_job("acme", b).await.unwrap().is_none(),
        "another tenant's job is not found"
    );
    assert!(servo.get_job("acme", a).await.unwrap().is_some());
}

#[tokio::test]
async fn jobs_without_a_deadline_are_left_out_when_asked() {
    let fx = ServoFixture::start().await;
    fx.job(JobSpec::default()).await;
    let servo = servo_for(&fx).await;
    assert!(servo.active_jobs("acme", true).await.unwrap().is_empty());
    assert_eq!(servo.active_jobs("acme", false).await.unwrap().len(), 1);
}

#[tokio::test]
async fn recent_durations_are_the_last_completed_oldest_first() {
    let fx = ServoFixture::start().await;
    let durations: Vec<i64> = (1..=30).map(|i| i * 1000).collect();
    let id = fx
        .job(JobSpec {
            completed: 30,
            durations_ms: durations,
            ..JobSpec::default()
        })
        .await;
    let servo = servo_for(&fx).await;
    let got = servo.recent_durations("acme", &[id]).await.unwrap();
    let d = &got[&id];
    assert_eq!(d.len(), 24);
    assert_eq!(d.first(), Some(&7_000));
    assert_eq!(d.last(), Some(&30_000));
    // Under another tenant, the partitions are invisible.
    assert!(servo
        .recent_durations("globex", &[id])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn pause_follows_servos_semantics() {
    let fx = ServoFixture::start().await;
    let id = fx.job(JobSpec::default()).await;
    let servo = servo_for(&fx).await;
    let now = Utc::now();
    let job = servo.pause("acme", id, now).await.unwrap();
    assert_eq!(job.state, JobState::Paused);
    assert_eq!(job.version, 2);
    assert_eq!(job.checkpoint_partition_key.as_deref(), Some("p0049"));
    assert!(job.paused_at.is_some());
    match servo.pause("acme", id, now).await {
        Err(ServoActionError::InvalidState { message, .. }) => assert_eq!(
            message,
            "Cannot pause job in state 'paused'. Only running jobs can be paused."
        ),
        other => panic!("expected InvalidState, got {other:?}"),
    }
    let job = servo.resume("acme", id, now).await.unwrap();
    assert_eq!(job.state, JobState::Resuming);
    assert_eq!(job.version, 3);
    assert!(matches!(
        servo.pause("globex", id, now).await,
        Err(ServoActionError::NotFound)
    ));
}

#[tokio::test]
async fn a_deadline_change_checks_the_version() {
    let fx = ServoFixture::start().await;
    let id = fx
        .job(JobSpec {
            deadline: Some(Utc::now()),
            ..JobSpec::default()
        })
        .await;
    let servo = servo_for(&fx).await;
    let new = Utc::now() + Duration::hours(4);
    assert!(matches!(
        servo.set_deadline("acme", id, new, 7).await,
        Err(ServoActionError::VersionConflict)
    ));
    let job = servo.set_deadline("acme", id, new, 1).await.unwrap();
    assert_eq!(job.version, 2);
    assert_eq!(job.sla_deadline_at.unwrap().timestamp(), new.timestamp());
}

#[tokio::test]
async fn the_poll_reads_jobs_without_their_partition_keys_but_get_job_has_them() {
    let fx = ServoFixture::start().await;
    let id = fx
        .job(JobSpec {
            deadline: Some(Utc::now() + Duration::hours(1)),
            total: 3,
            completed: 1,
            ..JobSpec::default()
        })
        .await;
    let servo = servo_for(&fx).await;
    let listed = servo.active_jobs("acme", true).await.unwrap();
    assert_eq!(listed[0].id, id);
    assert!(
        listed[0].partition_keys.is_empty(),
        "the poll does not read them"
    );
    assert_eq!(listed[0].total_partitions, 3);
    let one = servo.get_job("acme", id).await.unwrap().unwrap();
    assert_eq!(one.partition_keys, vec!["p0000", "p0001", "p0002"]);
}

#[tokio::test]
async fn partition_history_reads_every_partition_of_the_tenants_jobs_only() {
    use servo_sla_bot::domain::forecast::PartitionState;
    let fx = ServoFixture::start().await;
    let servo = servo_for(&fx).await;
    let ours = fx
        .job(JobSpec {
            total: 10,
            completed: 6,
            failed: 1,
            durations_ms: vec![60_000, 61_000, 62_000],
            ..JobSpec::default()
        })
        .await;
    let theirs = fx
        .job(JobSpec {
            tenant: "globex".into(),
            ..JobSpec::default()
        })
        .await;
    let h = servo
        .partition_history("acme", &[ours, theirs])
        .await
        .unwrap();
    assert!(
        !h.contains_key(&theirs),
        "row-level security hides globex's partitions"
    );
    let parts = &h[&ours];
    assert_eq!(parts.len(), 10, "pending keys are known too");
    let count = |s: PartitionState| parts.iter().filter(|p| p.state == s).count();
    assert_eq!(count(PartitionState::Completed), 6);
    assert_eq!(count(PartitionState::Failed), 1);
    assert_eq!(count(PartitionState::Pending), 3);
    let done: Vec<i64> = parts
        .iter()
        .filter(|p| p.state == PartitionState::Completed)
        .filter_map(|p| p.duration_ms)
        .collect();
    assert!(done.contains(&61_000) && done.iter().filter(|d| **d == 62_000).count() == 4);
    assert!(parts
        .iter()
        .filter(|p| p.state == PartitionState::Completed)
        .all(|p| p.started_at.is_some() && p.completed_at > p.started_at));
}

#[tokio::test]
async fn asset_history_reads_the_last_completed_jobs_of_the_tenants_assets_only() {
    let fx = ServoFixture::start().await;
    let servo = servo_for(&fx).await;
    let done = |asset: &str, tenant: &str, ms: i64| JobSpec {
        tenant: tenant.into(),
        asset: asset.into(),
        state: "completed".into(),
        total: 10,
        completed: 10,
        durations_ms: vec![ms],
        ..JobSpec::default()
    };
    let older = fx.job(done("orders", "acme", 1_000)).await;
    fx.update_job(older, "completed_at = now() - interval '3 days'")
        .await;
    let newer = fx.job(done("orders", "acme", 2_000)).await;
    fx.update_job(newer, "completed_at = now() - interval '1 day'")
        .await;
    // Not evidence: a running job, a failed one, another tenant's.
    fx.job(JobSpec {
        asset: "orders".into(),
        durations_ms: vec![9_000],
        ..JobSpec::default()
    })
    .await;
    let failed = fx
        .job(JobSpec {
            state: "failed".into(),
            ..done("orders", "acme", 9_000)
        })
        .await;
    fx.update_job(failed, "completed_at = now()").await;
    let theirs = fx.job(done("orders", "globex", 9_000)).await;
    fx.update_job(theirs, "completed_at = now()").await;
    let refunds = fx.job(done("refunds", "acme", 3_000)).await;
    fx.update_job(refunds, "completed_at = now() - interval '2 days'")
        .await;

    let assets = ["orders".to_string(), "refunds".to_string()];
    let durations =
        |jobs: &Vec<Vec<servo_sla_bot::domain::forecast::PartitionObs>>| -> Vec<Vec<i64>> {
            jobs.iter()
                .map(|j| j.iter().filter_map(|p| p.duration_ms).collect())
                .collect()
        };
    let last = servo.asset_history("acme", &assets, 1).await.unwrap();
    assert_eq!(
        durations(&last["orders"]),
        [vec![2_000; 10]],
        "the newest completed job"
    );
    assert_eq!(durations(&last["refunds"]), [vec![3_000; 10]]);
    let five = servo.asset_history("acme", &assets, 5).await.unwrap();
    assert_eq!(
        durations(&five["orders"]),
        [vec![2_000; 10], vec![1_000; 10]],
        "newest first; running, failed and globex's jobs are not the asset's history"
    );
    assert!(servo
        .asset_history("acme", &[], 5)
        .await
        .unwrap()
        .is_empty());
}

/// The fixture's database as the test server's superuser, whom row-level
/// security does not apply to.
fn superuser_url(fx: &ServoFixture) -> DatabaseUrl {
    DatabaseUrl::new(fx.db.url.clone())
}

#[tokio::test]
async fn a_role_that_bypasses_rls_reads_nothing_unless_allowed_even_when_servo_was_down_at_first() {
    let fx = ServoFixture::start().await;
    fx.job(JobSpec::default()).await;
    // An ordinary role passes.
    servo_for(&fx).await.check_role().await.unwrap();
    // A superuser, first out of reach: the check cannot run yet.
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    proxy.cut();
    let mut url = url::Url::parse(&fx.db.url).unwrap();
    url.set_port(Some(proxy.addr().port())).unwrap();
    let servo = Servo::connect_lazy(&DatabaseUrl::new(url.to_string())).unwrap();
    assert!(matches!(
        servo.check_role().await,
        Err(ServoError::Unreachable(_))
    ));
    // Reached: refused before anything is read, and `/readyz`'s ping says so.
    proxy.restore();
    match servo.active_jobs("acme", false).await {
        Err(ServoError::RlsBypass(why)) => {
            assert!(
                why.contains("superuser") && why.contains("--allow-rls-bypass"),
                "{why}"
            )
        }
        other => panic!("expected the role to be refused, got {other:?}"),
    }
    assert!(matches!(servo.ping().await, Err(ServoError::RlsBypass(_))));
    assert!(matches!(
        servo.pause("acme", uuid::Uuid::new_v4(), Utc::now()).await,
        Err(ServoActionError::Servo(ServoError::RlsBypass(_)))
    ));
    // Allowed (a lab setup), it reads.
    let lab = Servo::connect_lazy(&superuser_url(&fx))
        .unwrap()
        .allow_rls_bypass(true);
    lab.check_role().await.unwrap();
    assert_eq!(lab.active_jobs("acme", false).await.unwrap().len(), 1);
}

/// Defence in depth: every read and change filters on `tenant_id` itself, so
/// a role that bypasses row-level security (allowed, in a lab) still keeps
/// each tenant to its own jobs.
#[tokio::test]
async fn every_read_and_change_keeps_to_its_tenant_without_row_level_security() {
    let fx = ServoFixture::start().await;
    let servo = Servo::connect_lazy(&superuser_url(&fx))
        .unwrap()
        .allow_rls_bypass(true);
    let deadline = Some(Utc::now() + Duration::hours(2));
    let ours = fx
        .job(JobSpec {
            asset: "orders".into(),
            deadline,
            ..JobSpec::default()
        })
        .await;
    let theirs = fx
        .job(JobSpec {
            tenant: "globex".into(),
            asset: "orders".into(),
            completed: 30,
            deadline,
            ..JobSpec::default()
        })
        .await;
    let done = fx
        .job(JobSpec {
            tenant: "globex".into(),
            asset: "orders".into(),
            state: "completed".into(),
            total: 10,
            completed: 10,
            ..JobSpec::default()
        })
        .await;
    fx.update_job(done, "completed_at = now()").await;

    let ids =
        |jobs: Vec<servo_sla_bot::servo::Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(servo.active_jobs("acme", true).await.unwrap()),
        vec![ours]
    );
    assert_eq!(
        ids(servo.active_jobs("acme", false).await.unwrap()),
        vec![ours]
    );
    assert!(servo.get_job("acme", theirs).await.unwrap().is_none());
    assert!(servo
        .job_with_history("acme", theirs)
        .await
        .unwrap()
        .is_none());
    assert!(servo
        .recent_durations("acme", &[theirs])
        .await
        .unwrap()
        .is_empty());
    assert!(servo
        .partition_history("acme", &[theirs])
        .await
        .unwrap()
        .is_empty());
    let history = servo
        .asset_history("acme", &["orders".to_string()], 5)
        .await
        .unwrap();
    assert!(
        history.values().all(Vec::is_empty),
        "globex's completed orders job is not acme's history: {history:?}"
    );

    let now = Utc::now();
    assert!(matches!(
        servo.pause("acme", theirs, now).await,
        Err(ServoActionError::NotFound)
    ));
    assert!(matches!(
        servo.resume("acme", theirs, now).await,
        Err(ServoActionError::NotFound)
    ));
    assert!(matches!(
        servo.cancel("acme", theirs, "no", now).await,
        Err(ServoActionError::NotFound)
    ));
    assert!(matches!(
        servo
            .set_deadline("acme", theirs, now + Duration::hours(9), 1)
            .await,
        Err(ServoActionError::NotFound)
    ));
    assert!(matches!(
        servo.recreate("acme", theirs, 10, "U0X", now).await,
        Err(ServoActionError::NotFound)
    ));
    assert_eq!(fx.job_field::<String>(theirs, "state").await, "running");
    assert_eq!(fx.job_field::<i32>(theirs, "version").await, 1);
    // The tenant's own job is still within reach.
    assert_eq!(
        servo.pause("acme", ours, now).await.unwrap().state,
        JobState::Paused
    );
}

/// Servo's job trees: a root still waiting on its upstream jobs, and an
/// upstream child, are not recreated (a new job knows nothing of the tree:
/// the root's would start before its inputs, the child's root would wait
/// for ever). Nothing is cancelled.
#[tokio::test]
async fn recreate_refuses_the_jobs_of_a_job_tree_and_changes_nothing() {
    let fx = ServoFixture::start().await;
    let servo = servo_for(&fx).await;
    let now = Utc::now();
    let root = fx
        .job(JobSpec {
            state: "waiting_upstream".into(),
            completed: 0,
            upstream: 2,
            upstream_done: 0,
            ..JobSpec::default()
        })
        .await;
    let child = fx
        .job(JobSpec {
            asset: "orders_raw".into(),
            ..JobSpec::default()
        })
        .await;
    sqlx::query("UPDATE backfill_jobs SET parent_job_id = $1 WHERE id = $2")
        .bind(root)
        .bind(child)
        .execute(&fx.admin)
        .await
        .unwrap();
    match servo.recreate("acme", root, 10, "U0X", now).await {
        Err(ServoActionError::InvalidState { message, .. }) => {
            assert!(
                message.contains("waits on 2 of its 2 upstream jobs"),
                "{message}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match servo.recreate("acme", child, 10, "U0X", now).await {
        Err(ServoActionError::InvalidState { message, .. }) => {
            assert!(
                message.contains("upstream job of another backfill"),
                "{message}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    for id in [root, child] {
        assert_eq!(fx.job_field::<i32>(id, "version").await, 1, "untouched");
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM backfill_jobs")
        .fetch_one(&fx.admin)
        .await
        .unwrap();
    assert_eq!(jobs, 2, "no job started");
}

/// An active job of the same asset that shares one remaining partition, at
/// a low priority, does not stand for the recreated job: the new one covers
/// every remaining partition at priority 10.
#[tokio::test]
async fn recreate_starts_every_remaining_partition_even_beside_a_job_that_shares_one() {
    let fx = ServoFixture::start().await;
    let servo = servo_for(&fx).await;
    let now = Utc::now();
    let old = fx
        .job(JobSpec {
            completed: 40,
            ..JobSpec::default()
        })
        .await;
    let other = fx
        .job(JobSpec {
            total: 1,
            completed: 0,
            priority: 0,
            ..JobSpec::default()
        })
        .await;
    // The other job holds p0099 only (the fixture names keys from p0000).
    sqlx::query("UPDATE backfill_jobs SET partition_keys = '[\"p0099\"]'::jsonb WHERE id = $1")
        .bind(other)
        .execute(&fx.admin)
        .await
        .unwrap();
    let (cancelled, new) = servo.recreate("acme", old, 10, "U0X", now).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_ne!(new.id, other, "the other job is not the recreated one");
    assert_eq!(new.priority, 10);
    assert_eq!(new.partition_keys.len(), 60, "{:?}", new.partition_keys);
    // Recreating a job whose remaining partitions a priority-10 job already
    // covers returns that job, as Servo's CLI does.
    let again = fx
        .job(JobSpec {
            completed: 40,
            ..JobSpec::default()
        })
        .await;
    let (_, same) = servo.recreate("acme", again, 10, "U0X", now).await.unwrap();
    assert_eq!(same.id, new.id, "the covering job stands for it");
}
