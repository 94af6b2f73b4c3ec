//! Hostile input: generated slash commands, deadlines and interaction
//! payloads never panic and always get a clear answer; signed requests that
//! are giant, truncated or wrong-typed get a 4xx (or Slack's 200 with an
//! explanation), never a 500; the app keeps serving.
//!
//! The generator is a fixed-seed splitmix64, so a failure reruns the same way;
//! `FUZZ_SEED=<n>` explores other inputs and `FUZZ_CASES=<n>` changes how many.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::bot::{form, spawn_app, Backend};
use serde_json::{json, Value};
use servo_sla_bot::actions::clicks;
use servo_sla_bot::commands::grammar::{DeadlineSpec, JobId, DEADLINE_EXAMPLES};
use servo_sla_bot::commands::Command;

struct Rng(u64);

impl Rng {
    fn from_env() -> (Rng, u64) {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5e7f_51a5);
        (Rng(seed), seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

const UUID: &str = "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10";

/// A word near the grammar: real tokens, their mutations and garbage.
fn word(r: &mut Rng) -> String {
    let tokens = [
        "help",
        "status",
        "list",
        "pause",
        "resume",
        "extend-deadline",
        "extend",
        "running",
        "paused",
        "at-risk",
        "all",
        "--tenant",
        "--tenant=acme",
        "acme",
        UUID,
        "+90m",
        "+4h",
        "+1d",
        "+1h30m",
        "2026-12-01T18:00:00Z",
        "2026-12-01T18:00:00",
        "-5m",
        "+0m",
        "+99999999999999999999d",
        "`",
        "<>",
        "\u{0}",
        "\u{202e}",
        "é",
        "🙂",
        "",
        "--",
        "=",
        "<@U123>",
        "<!channel>",
        "&lt;",
        "\t",
    ];
    let mut w = r.pick(&tokens).to_string();
    match r.below(6) {
        0 => w = w.to_uppercase(),
        1 if !w.is_empty() => {
            let cut = r.below(w.chars().count());
            w = w.chars().take(cut).collect();
        }
        2 => w.push(char::from_u32(r.below(0x3000) as u32).unwrap_or('?')),
        3 => w = w.repeat(1 + r.below(50)),
        4 => w = format!("`{w}`"),
        _ => {}
    }
    w
}

fn sentence(r: &mut Rng) -> String {
    (0..r.below(7))
        .map(|_| word(r))
        .collect::<Vec<_>>()
        .join(if r.chance(80) { " " } else { "  \n" })
}

#[test]
fn the_command_grammar_never_panics_and_names_what_is_wrong() {
    let (mut r, seed) = Rng::from_env();
    for i in 0..cases() {
        let text = sentence(&mut r);
        let parsed = std::panic::catch_unwind(|| Command::parse(&text)).unwrap_or_else(|_| {
            panic!("seed {seed} case {i}: Command::parse panicked on {text:?}")
        });
        match &parsed.command {
            Command::Invalid(why) => assert!(
                !why.trim().is_empty(),
                "seed {seed} case {i}: an empty explanation for {text:?}"
            ),
            Command::Unknown(what) => assert!(
                text.to_lowercase()
                    .contains(&what.to_lowercase().trim_end_matches('…').to_string())
                    || what.ends_with('…'),
                "seed {seed} case {i}: Unknown({what:?}) does not name what was typed in {text:?}"
            ),
            _ => {}
        }
    }
}

#[test]
fn a_job_id_reads_back_the_same_however_it_is_written() {
    let (mut r, _) = Rng::from_env();
    for _ in 0..cases() {
        let id = uuid::Uuid::from_u64_pair(r.next(), r.next());
        let written = match r.below(4) {
            0 => id.to_string(),
            1 => id.to_string().to_uppercase(),
            2 => format!("`{id}`"),
            _ => format!("<{id}>"),
        };
        assert_eq!(JobId::parse(&written).unwrap().0, id, "{written}");
        let parsed = Command::parse(&format!("status {written}"));
        assert_eq!(parsed.command, Command::Status(JobId(id)));
    }
}

#[test]
fn the_deadline_parser_never_panics_and_every_refusal_shows_the_examples() {
    let (mut r, seed) = Rng::from_env();
    let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
    for i in 0..cases() {
        let text = if r.chance(50) {
            word(&mut r)
        } else {
            sentence(&mut r)
        };
        let result = std::panic::catch_unwind(|| DeadlineSpec::parse(&text))
            .unwrap_or_else(|_| panic!("seed {seed} case {i}: panicked on {text:?}"));
        match result {
            Err(why) => assert!(
                why.contains(DEADLINE_EXAMPLES),
                "seed {seed} case {i}: {text:?} -> {why}"
            ),
            Ok(spec) => {
                // Whatever parsed resolves without panicking, to a time or a reason.
                let resolved =
                    std::panic::catch_unwind(|| spec.resolve(now, now)).unwrap_or_else(|_| {
                        panic!("seed {seed} case {i}: resolve panicked on {text:?}")
                    });
                if let Err(why) = resolved {
                    assert!(why.contains(DEADLINE_EXAMPLES), "{why}");
                }
            }
        }
    }
    // Generated valid steps parse to exactly their value.
    for _ in 0..cases() {
        let (h, m) = (r.below(48) as i64, r.below(60) as i64);
        if h == 0 && m == 0 {
            continue;
        }
        let text = match r.below(3) {
            0 => format!("+{}m", h * 60 + m),
            1 if m == 0 => format!("+{h}h"),
            _ => format!("+{h}h{m}m"),
        };
        assert_eq!(
            DeadlineSpec::parse(&text).unwrap(),
            DeadlineSpec::Step(Duration::minutes(h * 60 + m)),
            "{text}"
        );
    }
}

/// A JSON value of any shape, some of them near an interaction payload.
fn value(r: &mut Rng, depth: usize) -> Value {
    let keys = [
        "type",
        "user",
        "id",
        "actions",
        "action_id",
        "value",
        "channel",
        "view",
        "callback_id",
        "private_metadata",
        "state",
        "values",
        "trigger_id",
        "response_url",
        "message",
        "ts",
        "container",
        "team",
    ];
    match r.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => json!(r.next() as i64),
        3 => json!(word(r)),
        4 => json!(r.pick(&[
            "block_actions",
            "view_submission",
            "view_closed",
            "shortcut",
            ""
        ])),
        5 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.below(6) {
                m.insert(r.pick(&keys).to_string(), value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

#[test]
fn decoding_clicks_never_panics_on_any_payload() {
    let (mut r, seed) = Rng::from_env();
    for i in 0..cases() {
        let v = value(&mut r, 0);
        let decoded = std::panic::catch_unwind(|| clicks(&v))
            .unwrap_or_else(|_| panic!("seed {seed} case {i}: clicks panicked on {v}"));
        if let Ok(cs) = decoded {
            let user = v.pointer("/user/id").and_then(Value::as_str);
            assert!(cs.iter().all(|c| Some(c.user.as_str()) == user), "{v}");
            assert!(!cs.is_empty(), "Ok means at least one click: {v}");
        }
    }
}

#[tokio::test]
async fn generated_signed_payloads_never_get_a_5xx() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut r, seed) = Rng::from_env();
    for i in 0..300 {
        let mut v = value(&mut r, 0);
        if r.chance(60) {
            // Near-valid: the right type with garbage inside.
            let kind = *r.pick(&["block_actions", "view_submission", "view_closed"]);
            v = json!({ "type": kind, "user": value(&mut r, 2), "actions": value(&mut r, 1),
                        "view": value(&mut r, 1), "channel": value(&mut r, 2) });
        }
        let answer = app.interact(&v).await;
        assert!(
            answer.status < 500,
            "seed {seed} case {i}: {} for {v}: {}",
            answer.status,
            answer.body
        );
        let text = sentence(&mut r);
        let answer = app.slash(&text, "U0PLATLEAD", "C0ACMEALERT").await;
        assert_eq!(answer.status, 200, "seed {seed} case {i}: {text:?}");
        let body = answer.json();
        assert!(
            body["text"].as_str().is_some_and(|t| !t.trim().is_empty()),
            "seed {seed} case {i}: no explanation for {text:?}: {body}"
        );
    }
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn giant_truncated_and_wrong_typed_requests_get_a_4xx_and_the_app_keeps_serving() {
    let app = spawn_app(Backend::Sqlite).await;
    let payload = json!({"type": "block_actions", "user": {"id": "U1"},
                         "actions": [{"action_id": "alert_ack", "value": "x"}]})
    .to_string();
    let valid = form(&[("payload", &payload)]);
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        // Truncated form and JSON.
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            valid.as_bytes()[..valid.len() / 2].to_vec(),
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", &payload[..payload.len() - 3])]).into_bytes(),
        ),
        (
            "/slack/events",
            "application/json",
            br#"{"type":"event_callback","event":{"type":"#.to_vec(),
        ),
        // Wrong types where objects are expected.
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", "[1,2,3]")]).into_bytes(),
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", "42")]).into_bytes(),
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", r#""block_actions""#)]).into_bytes(),
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[(
                "payload",
                r#"{"type":"block_actions","user":"U1","actions":{"a":1}}"#,
            )])
            .into_bytes(),
        ),
        (
            "/slack/events",
            "application/json",
            br#"[{"type":"url_verification"}]"#.to_vec(),
        ),
        (
            "/slack/events",
            "application/json",
            br#"{"type":42,"challenge":{"x":1}}"#.to_vec(),
        ),
        // No payload field, duplicated fields, percent-encoding garbage, invalid UTF-8.
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            b"nothing=here".to_vec(),
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            format!("{valid}&{valid}").into_bytes(),
        ),
        (
            "/slack/commands",
            "application/x-www-form-urlencoded",
            b"command=%2Fbackfill&text=%ZZ%&user_id=%".to_vec(),
        ),
        (
            "/slack/commands",
            "application/x-www-form-urlencoded",
            b"command=%2Fbackfill&text=\xff\xfe\xfd".to_vec(),
        ),
        (
            "/slack/commands",
            "application/x-www-form-urlencoded",
            Vec::new(),
        ),
        ("/slack/events", "application/json", b"\xff\xfe{".to_vec()),
        // The wrong content type.
        (
            "/slack/commands",
            "application/json",
            br#"{"command":"/backfill","text":"help"}"#.to_vec(),
        ),
        (
            "/slack/interactions",
            "text/plain",
            valid.as_bytes().to_vec(),
        ),
    ];
    for (path, content_type, body) in bodies {
        let text = String::from_utf8_lossy(&body).into_owned();
        let answer = signed_raw(&app, path, content_type, body).await;
        assert!(
            answer.status < 500,
            "{path} {content_type} {text:?}: {} {}",
            answer.status,
            answer.body
        );
        if answer.status == 200 && path == "/slack/commands" {
            assert!(!answer.body.trim().is_empty(), "a 200 explains: {text:?}");
        }
    }
    // Giant: just under the limit is read (and refused for what it is); over it is 413.
    let big = "x".repeat(60 * 1024);
    let answer = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &form(&[("command", "/backfill"), ("text", &big)]),
        )
        .await;
    assert!(answer.status < 500, "{}", answer.status);
    let huge = "x".repeat(5 * 1024 * 1024);
    let answer = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &form(&[("payload", &huge)]),
        )
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(app.get("/healthz").await.status, 200, "still serving");
}

#[tokio::test]
async fn replayed_requests_from_the_past_or_the_future_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = form(&[
        ("command", "/backfill"),
        ("text", "help"),
        ("user_id", "U1"),
        ("channel_id", "C0ACMEALERT"),
    ]);
    let now = Utc::now().timestamp();
    for skew in [-301, -3600, -86_400 * 365, 301, 3600] {
        let answer = app
            .post_signed_at(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                &body,
                now + skew,
            )
            .await;
        assert_eq!(
            answer.status, 401,
            "a request signed {skew} s away is a replay"
        );
    }
    let answer = app
        .post_signed_at(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
            now - 10,
        )
        .await;
    assert_eq!(answer.status, 200, "a fresh one is served");
}

async fn signed_raw(
    app: &common::bot::TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> common::bot::Answer {
    let ts = Utc::now().timestamp().to_string();
    let sig = common::bot::slack_signature(common::bot::SIGNING_SECRET, &ts, &body);
    app.post_raw(
        path,
        content_type,
        body,
        &[
            ("x-slack-request-timestamp", ts),
            ("x-slack-signature", sig),
        ],
    )
    .await
}
