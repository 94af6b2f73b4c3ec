//! Servo's lineage and scheduled workflows (issue 37), read against Servo's
//! real schema under row-level security, as an ordinary role: what a late
//! job breaks downstream, and what holds it up upstream.

mod common;

use chrono::{Duration, Utc};
use common::servo_fixture::ServoFixture;
use servo_sla_bot::config::DatabaseUrl;
use servo_sla_bot::servo::Servo;

async fn servo_for(fx: &ServoFixture) -> Servo {
    Servo::connect_lazy(&DatabaseUrl::new(fx.bot_url())).unwrap()
}

#[tokio::test]
async fn the_lineage_is_read_in_one_query_under_the_tenants_rls() {
    let fx = ServoFixture::start().await;
    let now = Utc::now();
    fx.asset("acme", "revenue_report", Some("U0FINANCE1")).await;
    fx.depends("acme", "revenue_daily", "revenue_report").await;
    fx.depends("acme", "revenue_report", "exec_dashboard").await;
    // Another tenant's lineage and workflows, and a dependency that crosses
    // into it: none of it is visible to acme.
    fx.depends("globex", "revenue_daily", "globex_report").await;
    let acme_daily = fx.asset("acme", "revenue_daily", None).await;
    let globex_report = fx.asset("globex", "globex_report", None).await;
    sqlx::query(
        "INSERT INTO asset_dependencies (upstream_asset_id, downstream_asset_id, dependency_type) \
         VALUES ($1, $2, 'data')",
    )
    .bind(acme_daily)
    .bind(globex_report)
    .execute(&fx.admin)
    .await
    .unwrap();
    fx.workflow(
        "globex",
        "globex_daily",
        None,
        Some("0 6 * * *"),
        "UTC",
        None,
        &["globex_report"],
    )
    .await;
    // Two versions of one workflow: only the live (highest) one counts.
    fx.workflow(
        "acme",
        "finance_daily",
        Some("U0FINOWNER"),
        Some("0 6 * * *"),
        "UTC",
        None,
        &["exec_dashboard"],
    )
    .await;
    fx.workflow(
        "acme",
        "finance_daily",
        Some("U0FINOWNER"),
        None,
        "UTC",
        Some(now + Duration::hours(2)),
        &["revenue_report"],
    )
    .await;
    // A cron the parser refuses: left out (and logged once).
    fx.workflow(
        "acme",
        "broken",
        None,
        Some("every morning"),
        "UTC",
        None,
        &["revenue_report"],
    )
    .await;
    let servo = servo_for(&fx).await;
    let lineage = servo.lineage("acme", now).await.unwrap();
    let mut names: Vec<&str> = lineage.assets.values().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["exec_dashboard", "revenue_daily", "revenue_report"]);
    assert_eq!(lineage.downstream.values().map(Vec::len).sum::<usize>(), 2);
    assert_eq!(lineage.workflows.len(), 1, "{:?}", lineage.workflows);
    let wf = &lineage.workflows[0];
    assert_eq!(wf.name, "finance_daily");
    assert_eq!(wf.assets.len(), 1);
    assert_eq!(
        lineage.assets[&wf.assets[0]].name, "revenue_report",
        "the live version's assets"
    );
    let impact = lineage.impact(acme_daily, Some(now + Duration::hours(3)), 3, now);
    assert_eq!(impact.stale_runs.len(), 1);
    assert_eq!(
        impact.stale_runs[0].path,
        ["revenue_daily", "revenue_report"]
    );
    let globex = servo.lineage("globex", now).await.unwrap();
    assert_eq!(globex.workflows.len(), 1);
    assert_eq!(globex.workflows[0].name, "globex_daily");
}

#[tokio::test]
async fn an_older_servo_without_the_lineage_tables_reads_an_empty_lineage() {
    let fx = ServoFixture::start_without_lineage().await;
    fx.job(common::servo_fixture::JobSpec {
        deadline: Some(Utc::now() + Duration::hours(2)),
        ..Default::default()
    })
    .await;
    let servo = servo_for(&fx).await;
    let lineage = servo.lineage("acme", Utc::now()).await.unwrap();
    assert!(lineage.assets.is_empty() && lineage.workflows.is_empty());
    // The rest of Servo works as before.
    assert_eq!(servo.active_jobs("acme", true).await.unwrap().len(), 1);
}
