//! The right person (issue 36): escalation paths per tenant, rotations with
//! overrides, handoffs in the middle of an escalation and `/backfill oncall`,
//! with a manual clock, on SQLite and PostgreSQL.

mod common;

use chrono::Duration;
use common::bot::{spawn, Backend, Spawn, TestApp};
use common::servo_fixture::{JobSpec, ServoFixture};
use common::slack_ui::{alert_message, button_value, click_in, t0, thread_texts, told_all};
use servo_sla_bot::runtime::clock::{Clock, ManualClock};

struct World {
    fx: ServoFixture,
    app: TestApp,
    clock: ManualClock,
}

/// acme follows its own path: the rotation `primary` (Alice, then Bob, a
/// day each, handing off 10 minutes after t0), then the platform lead.
/// globex has its own people; nobody else is on its path.
fn config(announce: bool) -> String {
    let handoff = t0() + Duration::minutes(10);
    let acme_path = r#"operators = ["S0ONCALL", "U0PLATLEAD"]

[[tenants.escalation.tiers]]
name = "On-call Engineer"
notify = ["rotation:primary"]
ack_timeout = "15m"

[[tenants.escalation.tiers]]
name = "Platform Team Lead"
notify = ["U0PLATLEAD"]
ack_timeout = "30m"
"#;
    let globex_path = r#"operators = ["U0GLOBEXOPS"]

[[tenants.escalation.tiers]]
name = "Globex On-call"
notify = ["U0GLOBEXOPS"]
ack_timeout = "15m"

[[tenants.escalation.tiers]]
name = "Globex Lead"
notify = ["U0GLOBEXLEAD"]
ack_timeout = "30m"
"#;
    format!(
        "{}\n[[rotations]]\nid = \"primary\"\nmembers = [\"U0ALICE\", \"U0BOB\"]\nshift = \"1d\"\nhandoff = \"{}\"\ntz = \"UTC\"\nstart = \"{}\"\nannounce = {announce}\n",
        common::bot::CONFIG
            .replace("operators = [\"S0ONCALL\", \"U0PLATLEAD\"]\n", acme_path)
            .replace("operators = [\"U0GLOBEXOPS\"]\n", globex_path),
        handoff.format("%H:%M"),
        (handoff - Duration::days(1)).format("%Y-%m-%d"),
    )
}

async fn world_with(backend: Backend, announce: bool) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = config(announce);
    let app = spawn(spec).await;
    app.slack
        .set_usergroup("S0ONCALL", &["U0ONCALL1", "U0ONCALL2"]);
    for (id, name) in [
        ("U0ALICE", "Alice"),
        ("U0BOB", "Bob"),
        ("U0CAROL", "Carol"),
        ("U0PLATLEAD", "Bo Lead"),
    ] {
        app.slack.set_user_name(id, name);
    }
    World { fx, app, clock }
}

/// A critical job (priority 9) at Low risk: critical jobs page from Low.
fn critical_low(tenant: &str, asset: &str) -> JobSpec {
    JobSpec {
        tenant: tenant.into(),
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(120)),
        eta: Some(t0() + Duration::minutes(130)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

fn pages_to(app: &TestApp, user: &str) -> Vec<String> {
    app.slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == user)
        .map(|c| c.body.to_string())
        .filter(|b| b.contains("You are paged"))
        .collect()
}

async fn slash(w: &World, text: &str, user: &str, channel: &str) -> String {
    let answer = w.app.slash(text, user, channel).await;
    w.app.drain_outbox().await;
    answer.json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn home_of(w: &World, user: &str) -> String {
    servo_sla_bot::flows::home::publish(&w.app.state, user)
        .await
        .unwrap();
    w.app
        .slack
        .ok_calls_to("views.publish")
        .iter()
        .rev()
        .find(|c| c.body["user_id"] == user)
        .expect("a Home published")
        .body
        .to_string()
}

// ------------------------------------------------------- per-tenant paths

async fn each_tenant_pages_and_shows_its_own_path(backend: Backend) {
    let w = world_with(backend, false).await;
    w.fx.job(critical_low("globex", "globex_orders")).await;
    w.app.poll().await;
    let globex = pages_to(&w.app, "U0GLOBEXOPS");
    assert_eq!(globex.len(), 1, "globex's own first tier is paged");
    assert!(globex[0].contains("Globex On-call"), "{}", globex[0]);
    for user in ["U0ONCALL1", "U0ALICE", "U0PLATLEAD"] {
        assert!(
            pages_to(&w.app, user).is_empty(),
            "{user} is not on globex's path"
        );
    }
    let plan = thread_texts(&w.app).join("\n");
    assert!(
        plan.contains("Globex On-call") && plan.contains("Globex Lead"),
        "the plan follows globex's path: {plan}"
    );
    assert!(!plan.contains("Platform Team Lead"), "{plan}");

    // acme's job pages acme's path: the rotation's Alice.
    w.fx.job(critical_low("acme", "acme_orders")).await;
    w.app.poll().await;
    assert_eq!(pages_to(&w.app, "U0ALICE").len(), 1);
    assert_eq!(pages_to(&w.app, "U0GLOBEXOPS").len(), 1);

    // Globex's lead, on globex's path only, sees globex and nothing of acme.
    let home = home_of(&w, "U0GLOBEXLEAD").await;
    assert!(home.contains("`globex`"), "{home}");
    assert!(
        !home.contains("`acme`") && !home.contains("acme_orders"),
        "{home}"
    );
    // The product owner is on the global path (which no tenant follows now)
    // and a stakeholder of acme: acme only.
    let home = home_of(&w, "U0PRODOWNER").await;
    assert!(
        home.contains("`acme`") && !home.contains("globex_orders"),
        "{home}"
    );
    // Alice, in acme's rotation, belongs to acme and sees that she is on call.
    let home = home_of(&w, "U0ALICE").await;
    assert!(
        home.contains("acme_orders") && !home.contains("globex_orders"),
        "{home}"
    );
    assert!(
        home.contains("You are on call for acme as On-call Engineer until"),
        "{home}"
    );
    assert!(home.contains("Your next shift on `primary`"), "{home}");
}

#[tokio::test]
async fn each_tenant_pages_and_shows_its_own_path_on_sqlite() {
    each_tenant_pages_and_shows_its_own_path(Backend::Sqlite).await;
}

#[tokio::test]
async fn each_tenant_pages_and_shows_its_own_path_on_postgres() {
    each_tenant_pages_and_shows_its_own_path(Backend::Postgres).await;
}

/// A new alert that does not page on its own (a standard job at Low) shows
/// its own tenant's path from its first post: its Escalate now names
/// acme's rotation, not the default path's tier, and the next poll has
/// nothing to correct.
async fn a_new_alert_that_does_not_page_shows_its_tenants_path_from_its_first_post(
    backend: Backend,
) {
    let w = world_with(backend, false).await;
    w.fx.job(JobSpec {
        priority: 5,
        ..critical_low("acme", "acme_orders")
    })
    .await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert!(pages_to(&w.app, "U0ALICE").is_empty(), "it does not page");
    let first = alert_message(&w.app).to_string();
    assert!(
        first.contains("This pages *On-call Engineer* (Alice) now."),
        "Escalate now pages acme's first tier, Alice on shift: {first}"
    );
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert!(
        w.app.slack.ok_calls_to("chat.update").is_empty(),
        "nothing to correct: {:#?}",
        w.app.slack.ok_calls_to("chat.update")
    );
}

#[tokio::test]
async fn a_new_alert_that_does_not_page_shows_its_tenants_path_from_its_first_post_on_sqlite() {
    a_new_alert_that_does_not_page_shows_its_tenants_path_from_its_first_post(Backend::Sqlite)
        .await;
}

#[tokio::test]
async fn a_new_alert_that_does_not_page_shows_its_tenants_path_from_its_first_post_on_postgres() {
    a_new_alert_that_does_not_page_shows_its_tenants_path_from_its_first_post(Backend::Postgres)
        .await;
}

// ------------------------------------------------- a handoff mid-escalation

async fn a_step_after_a_handoff_pages_the_new_person_and_the_old_one_can_acknowledge(
    backend: Backend,
) {
    let w = world_with(backend, false).await;
    let job = w.fx.job(critical_low("acme", "acme_orders")).await;
    w.app.poll().await;
    assert_eq!(pages_to(&w.app, "U0ALICE").len(), 1, "Alice is on shift");
    let plan = thread_texts(&w.app).join("\n");
    assert!(
        plan.contains("(Alice)") && plan.contains("(Bob)"),
        "the plan names who is on call at each step, Bob after the handoff: {plan}"
    );
    // Tier 2 at +15, then round 2 of tier 1 at +45: Bob's shift since +10.
    common::slack_ui::advance(&w.app, &w.clock, 15).await;
    w.fx.set_eta(job, t0() + Duration::minutes(130), w.clock.now())
        .await;
    assert_eq!(pages_to(&w.app, "U0PLATLEAD").len(), 1);
    common::slack_ui::advance(&w.app, &w.clock, 30).await;
    assert_eq!(
        pages_to(&w.app, "U0BOB").len(),
        1,
        "the new person is paged"
    );
    assert_eq!(
        pages_to(&w.app, "U0ALICE").len(),
        1,
        "Alice is not paged again"
    );
    assert!(pages_to(&w.app, "U0BOB")[0].contains("round 2"));
    // Alice, paged before the handoff, can still acknowledge.
    let alert = button_value(
        &alert_message(&w.app),
        servo_sla_bot::flows::ids::ACK_ACTION,
    )
    .expect("an Acknowledge button");
    let click = click_in(
        &w.app,
        "C0ACMEALERT",
        "U0ALICE",
        servo_sla_bot::flows::ids::ACK_ACTION,
        &alert,
    );
    w.app.interact(&click).await;
    w.app.drain_outbox().await;
    assert!(
        thread_texts(&w.app)
            .iter()
            .any(|t| t.contains("Acknowledged by <@U0ALICE>")),
        "{:#?} / {}",
        thread_texts(&w.app),
        told_all(&w.app)
    );
    // Someone in no rotation and on no path may not.
    let stranger = click_in(
        &w.app,
        "C0ACMEALERT",
        "U0GLOBEXLEAD",
        servo_sla_bot::flows::ids::ACK_ACTION,
        &alert,
    );
    w.app.interact(&stranger).await;
    assert!(told_all(&w.app).contains("Only the operators of tenant `acme`"));
}

#[tokio::test]
async fn a_step_after_a_handoff_pages_the_new_person_and_the_old_one_can_acknowledge_on_sqlite() {
    a_step_after_a_handoff_pages_the_new_person_and_the_old_one_can_acknowledge(Backend::Sqlite)
        .await;
}

#[tokio::test]
async fn a_step_after_a_handoff_pages_the_new_person_and_the_old_one_can_acknowledge_on_postgres() {
    a_step_after_a_handoff_pages_the_new_person_and_the_old_one_can_acknowledge(Backend::Postgres)
        .await;
}

// ------------------------------------------- overrides and /backfill oncall

fn override_id(answer: &str) -> String {
    let at = answer.find("(id `").expect("the answer names the id") + 5;
    answer[at..at + 8].to_string()
}

async fn an_override_wins_over_the_shift_until_cancelled(backend: Backend) {
    let w = world_with(backend, false).await;
    let who = slash(&w, "oncall", "U0ONCALL1", "C0ACMEALERT").await;
    assert!(
        who.contains("On-call Engineer") && who.contains("Alice"),
        "{who}"
    );
    assert!(who.contains("then Bob"), "who comes next: {who}");
    assert!(who.contains("Bo Lead"), "{who}");
    assert!(!who.contains("<@"), "names, no mentions: {who}");

    // Not an operator of acme: refused, audited.
    let refused = slash(
        &w,
        "oncall override primary <@U0CAROL|carol> now 2h",
        "U0GLOBEXOPS",
        "C0ACMEALERT",
    )
    .await;
    assert!(refused.contains("Only the operators"), "{refused}");
    // A rotation acme's path does not name.
    let unknown = slash(
        &w,
        "oncall override secondary <@U0CAROL|carol> now 2h",
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(
        unknown.contains("names no rotation `secondary`"),
        "{unknown}"
    );

    let set = slash(
        &w,
        "oncall override primary <@U0CAROL|carol> now 2h",
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(set.contains("Carol is on call for `primary`"), "{set}");
    let id = override_id(&set);
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "oncall_override" && e.actor == "U0PLATLEAD" && e.outcome == "ok"));
    assert!(audit.iter().any(|e| e.action == "oncall_override"
        && e.actor == "U0GLOBEXOPS"
        && e.outcome.starts_with("refused")));

    let who = slash(&w, "oncall acme", "U0ONCALL1", "C0ACMEALERT").await;
    assert!(who.contains("Carol (`primary`, override)"), "{who}");
    let list = slash(&w, "oncall overrides", "U0ONCALL1", "C0ACMEALERT").await;
    assert!(list.contains(&id) && list.contains("Carol"), "{list}");

    // The page goes to Carol, not to Alice, whose shift it is.
    w.fx.job(critical_low("acme", "acme_orders")).await;
    w.app.poll().await;
    assert_eq!(pages_to(&w.app, "U0CAROL").len(), 1);
    assert!(pages_to(&w.app, "U0ALICE").is_empty());

    let cancelled = slash(
        &w,
        &format!("oncall cancel {id}"),
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(cancelled.contains("Cancelled the override"), "{cancelled}");
    let again = slash(
        &w,
        &format!("oncall cancel {id}"),
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(again.contains("already ended"), "{again}");
    let who = slash(&w, "oncall", "U0ONCALL1", "C0ACMEALERT").await;
    assert!(who.contains("Alice") && !who.contains("Carol"), "{who}");
    // globex's channel answers for globex, whose path has no rotation.
    let who = slash(&w, "oncall", "U0GLOBEXOPS", "C0GLOBEXALR").await;
    assert!(
        who.contains("Globex On-call") && !who.contains("Alice"),
        "{who}"
    );
}

#[tokio::test]
async fn an_override_wins_over_the_shift_until_cancelled_on_sqlite() {
    an_override_wins_over_the_shift_until_cancelled(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_override_wins_over_the_shift_until_cancelled_on_postgres() {
    an_override_wins_over_the_shift_until_cancelled(Backend::Postgres).await;
}

// ------------------------------------------------------------- announcing

async fn an_announced_rotation_tells_the_channel_once_per_handoff(backend: Backend) {
    let w = world_with(backend, true).await;
    let told = |app: &TestApp| {
        app.slack
            .ok_calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body["channel"] == "C0ACMEALERT")
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
            .filter(|t| t.contains("Handoff on `primary`"))
            .collect::<Vec<_>>()
    };
    // Alice's shift began 23 h 50 min ago: too long ago to announce.
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert!(told(&w.app).is_empty());
    w.clock.advance(Duration::minutes(11));
    w.app.poll().await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    let lines = told(&w.app);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("Bob is now on call for acme as On-call Engineer")
            && !lines[0].contains("<@"),
        "{}",
        lines[0]
    );
    // globex's channel is not told about acme's rotation.
    assert!(!w
        .app
        .slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .any(|c| c.body["channel"] == "C0GLOBEXALR"));
}

#[tokio::test]
async fn an_announced_rotation_tells_the_channel_once_per_handoff_on_sqlite() {
    an_announced_rotation_tells_the_channel_once_per_handoff(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_announced_rotation_tells_the_channel_once_per_handoff_on_postgres() {
    an_announced_rotation_tells_the_channel_once_per_handoff(Backend::Postgres).await;
}

// ------------------------------------------------------ PagerDuty schedules

async fn a_pagerduty_schedule_pages_whoever_it_names_and_the_last_known_while_down(
    backend: Backend,
) {
    let pd = common::fake_pagerduty::FakePagerDuty::start().await;
    pd.set_oncall("PSCHED1", &[("Dana Doe", "dana@example.com")]);
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(backend)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.pagerduty_url = pd.url();
    spec.config = config(false).replace(
        "notify = [\"U0GLOBEXOPS\"]",
        "notify = [\"pagerduty-schedule:PSCHED1\"]",
    );
    let app = spawn(spec).await;
    for (id, name, email) in [
        ("U0DANA", "Dana", "dana@example.com"),
        ("U0ERIN", "Erin", "erin@example.com"),
    ] {
        app.slack.set_user_name(id, name);
        app.slack.set_user_email(id, email);
    }
    let w = World { fx, app, clock };

    w.fx.job(critical_low("globex", "globex_one")).await;
    w.app.poll().await;
    assert_eq!(
        pages_to(&w.app, "U0DANA").len(),
        1,
        "PagerDuty's on-call is paged"
    );
    let who = slash(&w, "oncall", "U0GLOBEXOPS", "C0GLOBEXALR").await;
    assert!(
        who.contains("Dana (PagerDuty schedule `PSCHED1`)") && !who.contains("<@"),
        "{who}"
    );
    assert_eq!(pd.oncalls_asked(), 1, "asked once, then kept for 5 minutes");

    // PagerDuty goes down, after handing over to Erin: the last known
    // person (Dana) is paged, and the thread warns.
    pd.set_oncall("PSCHED1", &[("Erin Roe", "erin@example.com")]);
    pd.set_down(true);
    w.clock.advance(Duration::minutes(6));
    w.fx.job(critical_low("globex", "globex_two")).await;
    w.app.poll().await;
    w.app.drain_outbox().await;
    assert_eq!(pages_to(&w.app, "U0DANA").len(), 2, "the last people known");
    assert!(pages_to(&w.app, "U0ERIN").is_empty());
    assert!(
        thread_texts(&w.app)
            .iter()
            .any(|t| t
                .contains("PagerDuty could not be asked who is on call for schedule `PSCHED1`")),
        "{:#?}",
        thread_texts(&w.app)
    );
    let who = slash(&w, "oncall", "U0GLOBEXOPS", "C0GLOBEXALR").await;
    assert!(
        who.contains("last known: PagerDuty does not answer"),
        "{who}"
    );
    assert_eq!(
        w.app
            .metric("servo_sla_bot_pagerduty_schedule_failures_total{}")
            .await,
        1.0,
        "asked once while down, not again within a minute"
    );

    // Back: Erin.
    pd.set_down(false);
    w.clock.advance(Duration::minutes(1));
    w.fx.job(critical_low("globex", "globex_three")).await;
    w.app.poll().await;
    assert_eq!(pages_to(&w.app, "U0ERIN").len(), 1);
}

#[tokio::test]
async fn a_pagerduty_schedule_pages_whoever_it_names_and_the_last_known_while_down_on_sqlite() {
    a_pagerduty_schedule_pages_whoever_it_names_and_the_last_known_while_down(Backend::Sqlite)
        .await;
}

#[tokio::test]
async fn a_pagerduty_schedule_pages_whoever_it_names_and_the_last_known_while_down_on_postgres() {
    a_pagerduty_schedule_pages_whoever_it_names_and_the_last_known_while_down(Backend::Postgres)
        .await;
}

// ------------------------------------------- every tenant on its own path

/// The test's paths with the global one left out (allowed when every tenant
/// has its own), and `extra` `[escalation.*]` sections.
fn own_paths_only(extra: &str) -> String {
    let c = config(false);
    let from = c.find("\n[[escalation.tiers]]").expect("the global path");
    let to = c.find("\n[slack]").expect("[slack]");
    format!("{}\n{extra}{}", &c[..from], &c[to..])
}

async fn own_paths_world(extra: &str) -> World {
    let fx = ServoFixture::start().await;
    let clock = ManualClock::new(t0());
    let mut spec = Spawn::new(Backend::Sqlite)
        .manual_clock(&clock)
        .servo_url(&fx.bot_url());
    spec.config = own_paths_only(extra);
    let app = spawn(spec).await;
    World { fx, app, clock }
}

/// Late by 40 minutes (High), priority 9.
fn urgent(tenant: &str, asset: &str) -> JobSpec {
    JobSpec {
        tenant: tenant.into(),
        asset: asset.into(),
        deadline: Some(t0() + Duration::minutes(60)),
        eta: Some(t0() + Duration::minutes(100)),
        heartbeat: Some(t0()),
        priority: 9,
        ..JobSpec::default()
    }
}

/// Several high-priority jobs across tenants, with no global path: each
/// tenant's platform tier is paged for its own share, and told nothing of
/// the other tenant's jobs.
#[tokio::test]
async fn without_a_global_path_high_priority_jobs_page_each_tenants_platform_tier() {
    let w = own_paths_world("").await;
    let jobs = [
        w.fx.job(urgent("acme", "acme_ledger")).await,
        w.fx.job(urgent("globex", "globex_ledger")).await,
    ];
    w.app.poll().await;
    w.app.drain_outbox().await;
    let high = |user: &str| -> Vec<String> {
        pages_to(&w.app, user)
            .into_iter()
            .filter(|p| p.contains("high-priority jobs"))
            .collect()
    };
    let (acme, globex) = (high("U0PLATLEAD"), high("U0GLOBEXLEAD"));
    assert_eq!((acme.len(), globex.len()), (1, 1), "{acme:#?} {globex:#?}");
    assert!(acme[0].contains("acme_ledger") && !acme[0].contains("globex_ledger"));
    assert!(globex[0].contains("globex_ledger") && !globex[0].contains("acme_ledger"));
    assert_eq!(
        w.app.state.store.open_incidents("*").await.unwrap().len(),
        1,
        "one episode"
    );
    // Both recover: the episode closes.
    for job in jobs {
        w.fx.update_job(
            job,
            "state = 'completed', completed_partitions = total_partitions, completed_at = now()",
        )
        .await;
    }
    w.clock.advance(Duration::minutes(1));
    w.app.poll().await;
    assert!(w
        .app
        .state
        .store
        .open_incidents("*")
        .await
        .unwrap()
        .is_empty());
}

/// System-wide degradation with no global path pages the platform tier of
/// each affected tenant's path, once.
#[tokio::test]
async fn without_a_global_path_system_wide_degradation_pages_each_affected_platform_tier() {
    let w = own_paths_world(
        "\n[escalation.widespread]\nmin_jobs = 10\n\n[escalation.system_wide]\nmin_jobs = 4\nshare = 0.6\n",
    )
    .await;
    let slowing = |tenant: &str, asset: &str| JobSpec {
        completed: 30,
        durations_ms: (0..30)
            .map(|i| if i < 20 { 60_000 } else { 150_000 })
            .collect(),
        ..urgent(tenant, asset)
    };
    for i in 0..3 {
        w.fx.job(slowing("acme", &format!("acme_{i}"))).await;
    }
    for i in 0..2 {
        w.fx.job(slowing("globex", &format!("globex_{i}"))).await;
    }
    w.app.poll().await;
    w.app.drain_outbox().await;
    for user in ["U0PLATLEAD", "U0GLOBEXLEAD"] {
        let pages: Vec<String> = pages_to(&w.app, user)
            .into_iter()
            .filter(|p| p.contains("system-wide degradation"))
            .collect();
        assert_eq!(pages.len(), 1, "{user}: {pages:#?}");
    }
}

/// `/backfill oncall <tenant>` answers anyone who belongs to the tenant as
/// the App Home counts them (a rotation member too), anywhere; a stranger
/// is told who may ask, and two tenants named are one too many.
#[tokio::test]
async fn oncall_for_a_named_tenant_answers_the_people_on_its_path() {
    let w = world_with(Backend::Sqlite, false).await;
    let alice = slash(&w, "oncall acme", "U0ALICE", "DU0ALICE").await;
    assert!(
        alice.contains("Alice"),
        "a rotation member may ask: {alice}"
    );
    let stranger = slash(&w, "oncall acme", "U0STRANGER", "DU0STRANGER").await;
    assert!(
        stranger.contains(
            "is for its operators, its stakeholders and the people on its escalation path"
        ) && !stranger.contains("--tenant"),
        "{stranger}"
    );
    let two = slash(
        &w,
        "oncall acme --tenant globex",
        "U0PLATLEAD",
        "C0ACMEALERT",
    )
    .await;
    assert!(two.contains("Two tenants were named"), "{two}");
    let none = slash(&w, "oncall nosuch", "U0PLATLEAD", "C0ACMEALERT").await;
    assert!(none.contains("There is no tenant `nosuch`"), "{none}");
    // A refused cancel is audited as a cancel.
    let no = slash(&w, "oncall cancel abcdef12", "U0ALICE", "C0ACMEALERT").await;
    assert!(no.contains("Only the operators"), "{no}");
    let audit = w.app.state.store.list_audit(None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "oncall_override_cancel"
        && e.actor == "U0ALICE"
        && e.outcome.starts_with("refused")));
}
