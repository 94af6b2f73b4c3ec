//! The binary's command line: exit codes and messages for missing settings.

use std::process::Command;

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
