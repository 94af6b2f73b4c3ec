//! The binary's command line: exit codes and messages for missing settings.

mod common;

use common::servo_fixture::ServoFixture;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"));
    // Nothing configured: no inherited settings, and a directory with no config file.
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir());
    c
}

#[test]
fn serve_with_nothing_configured_lists_what_is_missing_and_exits_2() {
    let out = bot().arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for item in [
        "config file",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SERVO_DATABASE_URL",
    ] {
        assert!(err.contains(item), "stderr should name {item}:\n{err}");
    }
    assert!(
        err.contains("--config"),
        "it says how to give a config file:\n{err}"
    );
}

#[test]
fn serve_never_prints_a_secret_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    std::fs::write(&cfg, "poll_interval = \"often\"\n").unwrap();
    let out = bot()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SLACK_BOT_TOKEN", "not-a-bot-token-SECRETVALUE1")
        .env("SLACK_SIGNING_SECRET", "SECRETVALUE2")
        .env("SERVO_DATABASE_URL", "mysql://bot:SECRETVALUE3@db/servo")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("poll_interval"), "{all}");
    assert!(all.contains("SLACK_BOT_TOKEN"), "{all}");
    assert!(all.contains("SERVO_DATABASE_URL"), "{all}");
    assert!(!all.contains("SECRETVALUE"), "a secret leaked:\n{all}");
}

#[test]
fn check_config_accepts_the_example_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/servo-sla-bot.toml");
    let out = bot().args(["check-config", example]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

/// Issue 33, item 14: "1 tenant, 1 escalation tier", never "1 tenant(s)".
#[test]
fn check_config_counts_one_tenant_and_one_tier_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("one.toml");
    std::fs::write(
        &cfg,
        "runbook_url = \"https://docs.servo.io/runbooks/backfill-sla-risk\"\n\
         [[tenants]]\nid = \"acme\"\nchannel = \"C0ACMEALERT\"\noperators = [\"U0PLATLEAD\"]\n\
         [[escalation.tiers]]\nname = \"On-call Engineer\"\nnotify = [\"U0ONCALL\"]\nack_timeout = \"15m\"\n",
    )
    .unwrap();
    let out = bot().arg("check-config").arg(&cfg).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("OK (1 tenant, 1 escalation tier,"), "{said}");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/servo-sla-bot.toml");
    let out = bot().args(["check-config", example]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("OK (1 tenant, 3 escalation tiers,"), "{said}");
    // One problem: "has 1 problem", never "1 problem(s)".
    std::fs::write(
        &cfg,
        "runbook_url = \"https://docs.servo.io/runbooks/backfill-sla-risk\"\n\
         [[tenants]]\nid = \"acme\"\nchannel = \"C0ACMEALERT\"\noperators = [\"U0PLATLEAD\"]\n",
    )
    .unwrap();
    let out = bot().arg("check-config").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has 1 problem:"), "{err}");
}

#[test]
fn check_config_names_every_problem_with_its_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[tenants]]\nid = \"acme\"\nchannel = \"alerts\"\noperators = []\n",
    )
    .unwrap();
    let out = bot().arg("check-config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "tenants[0].channel",
        "tenants[0].operators",
        "escalation.tiers",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

#[test]
fn migrate_creates_the_sqlite_store_with_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let out = bot()
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    // Migrating again is a no-op.
    let again = bot()
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(again.status.success());
}

#[test]
fn forecast_replays_a_recorded_job_one_csv_line_per_completion() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trace_steady.csv"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"))
        .args(["forecast", "--trace", fixture, "--total", "40"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "at,completed,servo_eta,p50,p90");
    assert_eq!(lines.len(), 31, "one line per completed partition");
    // Servo's own estimate at the first completion: 39 left x 2 min (its first observation).
    assert_eq!(
        lines[1],
        "2026-03-02T08:02:00Z,1,2026-03-02T09:20:00Z,2026-03-02T09:20:00Z,2026-03-02T09:59:00Z"
    );
    let time = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        assert!(time(f[3]) <= time(f[4]), "P50 before P90: {line}");
        assert!(
            time(f[0]) < time(f[3]),
            "the forecast is in the future: {line}"
        );
    }
    // At the last completion (09:00:44) ten 2-minute partitions remain: about 09:21.
    let last: Vec<&str> = lines[30].split(',').collect();
    let p50 = time(last[3]);
    assert!(
        (time("2026-03-02T09:19:00Z")..=time("2026-03-02T09:23:00Z")).contains(&p50),
        "{p50}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "partition_key,state,started_at,completed_at,duration_ms,attempt_count\n2025-01-01,completed,yesterday,,1,1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_servo-sla-bot"))
        .args(["forecast", "--trace"])
        .arg(&bad)
        .args(["--total", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn forecast_with_history_forecasts_as_the_bot_does_once_it_has_seen_earlier_jobs() {
    use servo_sla_bot::domain::forecast::kinds::Pattern;
    use servo_sla_bot::domain::forecast::trace_csv;
    use servo_sla_bot::domain::forecast::traces::generate;
    // Earlier jobs of an asset that slows 2.5x halfway: forecasts made a
    // quarter done came out about twice too short. The bot learns that from
    // them, whether they are this asset's (DIR/*.csv) or, for a new asset,
    // the tenant's other asset's (DIR/NAME/*.csv).
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own");
    let borrowed = dir.path().join("new");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::create_dir_all(borrowed.join("orders_eu")).unwrap();
    for seed in 21..=26 {
        let csv = trace_csv(&generate(Pattern::Degraded, seed).partitions);
        std::fs::write(own.join(format!("job-{seed}.csv")), &csv).unwrap();
        std::fs::write(
            borrowed.join("orders_eu").join(format!("job-{seed}.csv")),
            &csv,
        )
        .unwrap();
    }
    std::fs::write(own.join("notes.txt"), "not a trace").unwrap();
    let job = generate(Pattern::Degraded, 7);
    let trace = dir.path().join("job.csv");
    std::fs::write(&trace, trace_csv(&job.partitions)).unwrap();
    let replay = |history: Option<&std::path::Path>| {
        let mut cmd = bot();
        cmd.args(["forecast", "--trace"])
            .arg(&trace)
            .args(["--total", "300"]);
        if let Some(h) = history {
            cmd.arg("--history").arg(h);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The time left the P50 gives at 90 of 300 done.
    let left_at_90 = |csv: &str| {
        let line = csv.lines().nth(90).unwrap();
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[1], "90", "{line}");
        let time = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        (time(f[3]) - time(f[0])).num_seconds() as f64
    };
    let alone = left_at_90(&replay(None));
    let with_own = left_at_90(&replay(Some(&own)));
    let as_new = left_at_90(&replay(Some(&borrowed)));
    assert!(
        with_own > 1.5 * alone,
        "own history: {with_own} s against {alone} s"
    );
    assert!(
        as_new > 1.3 * alone,
        "borrowed: {as_new} s against {alone} s"
    );
    assert_eq!(replay(None).lines().count(), 301, "one line per completion");

    // A trace that does not parse is named with its line; an unfinished job
    // teaches nothing; an empty directory is no history.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("job.csv"),
        "partition_key,state,started_at,completed_at,duration_ms,attempt_count\n2025-01-01,done,,,,1\n",
    )
    .unwrap();
    let unfinished = dir.path().join("unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(
        unfinished.join("job.csv"),
        trace_csv(&servo_sla_bot::domain::forecast::parse_trace_csv(
            "partition_key,state,started_at,completed_at,duration_ms,attempt_count\n2025-01-01,pending,,,,0\n",
        )
        .unwrap()),
    )
    .unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for (history, says) in [
        (&bad, "job.csv: line 2: unknown state 'done'"),
        (&unfinished, "not a finished job"),
        (&empty, "no finished job"),
        (&dir.path().join("missing"), "cannot read"),
    ] {
        let out = bot()
            .args(["forecast", "--trace"])
            .arg(&trace)
            .args(["--total", "300", "--history"])
            .arg(history)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", history.display());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{err}");
    }
}

/// The example config with `socket_mode = true` in its `[slack]` section.
fn socket_mode_config(dir: &std::path::Path) -> std::path::PathBuf {
    let example = include_str!("../examples/servo-sla-bot.toml");
    assert!(example.contains("\n[slack]\n"));
    let cfg = dir.join("socket.toml");
    std::fs::write(
        &cfg,
        example.replace("\n[slack]\n", "\n[slack]\nsocket_mode = true\n"),
    )
    .unwrap();
    cfg
}

#[test]
fn serve_in_socket_mode_without_an_app_token_says_so_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = socket_mode_config(dir.path());
    let out = bot()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SLACK_BOT_TOKEN", "xoxb-1")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("SERVO_DATABASE_URL", "postgres://bot@127.0.0.1:9/servo")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bot.db").display()),
        )
        .env("BIND_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 thing to fix"), "{err}");
    assert!(err.contains("SLACK_APP_TOKEN"), "{err}");
    assert!(err.contains("xapp-"), "it says what token to use:\n{err}");
}

#[test]
fn serve_refuses_a_bot_token_as_the_app_token_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = socket_mode_config(dir.path());
    let out = bot()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SLACK_BOT_TOKEN", "xoxb-1")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("SERVO_DATABASE_URL", "postgres://bot@127.0.0.1:9/servo")
        .env("SLACK_APP_TOKEN", "xoxb-SECRETVALUE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("SLACK_APP_TOKEN"), "{all}");
    assert!(!all.contains("SECRETVALUE"), "a secret leaked:\n{all}");
}

/// `serve` with the example config, a fresh SQLite store and Servo at
/// `servo_url`; stderr is piped (info logs) for the test to read.
fn serve_on(servo_url: &str, dir: &std::path::Path, extra: &[&str]) -> Child {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/servo-sla-bot.toml");
    bot()
        .args(["serve", "--config", example])
        .args(extra)
        .env("RUST_LOG", "info,sqlx=warn")
        .env("SLACK_BOT_TOKEN", "xoxb-1")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("SLACK_API_URL", "http://127.0.0.1:9/api")
        .env("SERVO_DATABASE_URL", servo_url)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("bot.db").display()),
        )
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bot runs")
}

/// What `child` wrote to stderr until it exited, or until a line containing
/// `until` (then it is killed), within 30 s: (its exit code if it exited,
/// everything it wrote).
fn watch(mut child: Child, until: &str) -> (Option<i32>, String) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all = String::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                all.push_str(&line);
                all.push('\n');
                if line.contains(until) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return (None, all);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let code = child.wait().unwrap().code();
                return (code, all);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("neither exited nor logged `{until}` within 30 s:\n{all}");
        }
    }
}

const LISTENING: &str = "servo-sla-bot listening";

/// A role that bypasses RLS without being a superuser, created once (roles
/// are cluster-wide), with the same grants as the bot's ordinary role.
async fn bypass_role_url(fx: &ServoFixture) -> String {
    const ROLE: &str = "servo_sla_bot_test_bypassrls";
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN BYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
    )))
    .execute(&fx.admin)
    .await
    .unwrap();
    let dbname = fx.db.url.rsplit('/').next().unwrap().to_string();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE \"{dbname}\" TO {ROLE}; \
         GRANT USAGE ON SCHEMA public TO {ROLE}; \
         GRANT SELECT, INSERT, UPDATE ON assets, backfill_jobs, backfill_partitions TO {ROLE};"
    )))
    .execute(&fx.admin)
    .await
    .unwrap();
    let mut url = url::Url::parse(&fx.db.url).unwrap();
    url.set_username(ROLE).unwrap();
    let _ = url.set_password(None);
    url.to_string()
}

#[tokio::test]
async fn serve_refuses_a_servo_role_that_bypasses_row_level_security_and_exits_2() {
    let fx = ServoFixture::start().await;
    // The fixture's own URL is the test server's superuser.
    let superuser = fx.db.url.clone();
    let bypass = bypass_role_url(&fx).await;
    for (url, what) in [(superuser, "a superuser"), (bypass, "BYPASSRLS")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let (code, err) =
            tokio::task::spawn_blocking(move || watch(serve_on(&url, &path, &[]), LISTENING))
                .await
                .unwrap();
        assert_eq!(code, Some(2), "refused, as a setting to fix:\n{err}");
        for expected in [
            "cannot start",
            what,
            "row-level security",
            "another tenant",
            "ordinary role",
            "--allow-rls-bypass",
        ] {
            assert!(
                err.contains(expected),
                "stderr should say {expected}:\n{err}"
            );
        }
        assert!(!err.contains(LISTENING), "{err}");
    }
}

#[tokio::test]
async fn serve_starts_on_a_role_that_bypasses_rls_only_with_allow_rls_bypass_and_warns() {
    let fx = ServoFixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, path) = (fx.db.url.clone(), dir.path().to_path_buf());
    let (code, err) = tokio::task::spawn_blocking(move || {
        watch(serve_on(&url, &path, &["--allow-rls-bypass"]), LISTENING)
    })
    .await
    .unwrap();
    assert_eq!(code, None, "it started:\n{err}");
    assert!(err.contains("--allow-rls-bypass"), "it warns:\n{err}");
    assert!(err.contains("lab setup only"), "{err}");
}

#[tokio::test]
async fn serve_starts_on_an_ordinary_role_and_while_servo_is_down() {
    let fx = ServoFixture::start().await;
    for url in [fx.bot_url(), "postgres://bot@127.0.0.1:9/servo".to_string()] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let (code, err) =
            tokio::task::spawn_blocking(move || watch(serve_on(&url, &path, &[]), LISTENING))
                .await
                .unwrap();
        assert_eq!(code, None, "it started:\n{err}");
        assert!(!err.contains("row-level security"), "{err}");
    }
}
