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
