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
use servo_sla_bot::commands::grammar::ListFilter;
use servo_sla_bot::commands::Command;
use servo_sla_bot::domain::deadline::DeadlineSpec;
use servo_sla_bot::domain::deadline::DEADLINE_EXAMPLES;
use servo_sla_bot::domain::job_id::JobId;
use servo_sla_bot::domain::job_id::JobRef;

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
        assert_eq!(parsed.command, Command::Status(JobRef::Id(JobId(id))));
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
    for skew in [-301, -3600, -86_400 * 365, 301, 3600] {
        // `now` at each request, so a slow run cannot drift a skew back inside the window.
        let now = Utc::now().timestamp();
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
            Utc::now().timestamp() - 10,
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

// ---------------------------------------------------------------------------
// Harder generators: control characters, any Unicode scalar, huge numbers,
// empty and very long words, Slack markup, and near-valid mutations.
// ---------------------------------------------------------------------------

/// Any Unicode scalar value, weighted towards the ones that break parsers.
fn any_char(r: &mut Rng) -> char {
    let c = match r.below(6) {
        0 => r.below(0x20) as u32,                 // C0 controls, NUL included
        1 => 0x20 + r.below(0x5f) as u32,          // printable ASCII
        2 => 0x7f + r.below(0x80) as u32,          // DEL, C1 controls, Latin-1
        3 => r.below(0x1_0000) as u32,             // anywhere in the BMP
        4 => 0x1_0000 + r.below(0x10_0000) as u32, // astral planes
        _ => *r.pick(&[
            0x200b, 0x200e, 0x202e, 0x2028, 0xfeff, 0x3000, 0xa0, 0xfffd, 0x85,
        ]),
    };
    char::from_u32(c).unwrap_or('\u{fffd}')
}

fn digits(r: &mut Rng) -> String {
    match r.below(4) {
        0 => u64::MAX.to_string(),
        1 => (i64::MAX as u64 + 1).to_string(),
        2 => format!("{}", r.next()),
        _ => (0..1 + r.below(60))
            .map(|_| char::from(b'0' + r.below(10) as u8))
            .collect(),
    }
}

/// Some valid tokens changed by a character or three.
fn near_valid(r: &mut Rng) -> String {
    let base = match r.below(4) {
        0 => uuid::Uuid::from_u64_pair(r.next(), r.next()).to_string(),
        1 => "2026-12-01T18:00:00+01:00".to_string(),
        2 => format!("+{}{}", 1 + r.below(2000), r.pick(&["m", "h", "d"])),
        _ => r
            .pick(&["extend-deadline", "--tenant=acme", "at-risk"])
            .to_string(),
    };
    let mut cs: Vec<char> = base.chars().collect();
    for _ in 0..1 + r.below(3) {
        let i = r.below(cs.len() + 1);
        match r.below(4) {
            0 if i < cs.len() => {
                cs.remove(i);
            }
            1 if i < cs.len() => cs[i] = *r.pick(&['0', '9', 'f', 'g', '-', ':', '+', 'Z', 'T']),
            2 if i < cs.len() => cs[i] = any_char(r),
            _ => cs.insert(i, any_char(r)),
        }
    }
    cs.into_iter().collect()
}

/// One hostile word (which may itself hold whitespace).
fn hostile(r: &mut Rng) -> String {
    match r.below(11) {
        0 | 1 => word(r),
        2 => String::new(),
        3 => (0..1 + r.below(8)).map(|_| any_char(r)).collect(),
        4 => format!(
            "{}{}{}",
            r.pick(&["", "+", "-", "+-", "++", "+0"]),
            digits(r),
            r.pick(&["", "m", "h", "d", "s", "M", "D", "ms", "d1", "m+"])
        ),
        5 => {
            // Long: a few kilobytes of one word, or of random characters.
            if r.chance(50) {
                word(r).repeat(200 + r.below(2000))
            } else {
                (0..1000 + r.below(5000)).map(|_| any_char(r)).collect()
            }
        }
        6 => r
            .pick(&[
                "<!channel>",
                "<!here>",
                "<!everyone>",
                "<@U0EVIL>",
                "<!subteam^S0ONCALL>",
                "<#C0GLOBEXALR>",
                "<https://evil.example|click me>",
                "&amp;",
                "a&b",
            ])
            .to_string(),
        7 => format!(
            "{}{}{}",
            word(r),
            r.pick(&["\u{3000}", "\u{a0}", "\u{2003}", "\u{85}", "\r\n", "\u{b}"]),
            word(r)
        ),
        8 => near_valid(r),
        _ => format!("{}{}", word(r), hostile_leaf(r)),
    }
}

fn hostile_leaf(r: &mut Rng) -> String {
    (0..r.below(4)).map(|_| any_char(r)).collect()
}

fn hostile_sentence(r: &mut Rng) -> String {
    let seps = [" ", " ", " ", "  ", "\t", "\n", "\u{3000}", ""];
    let mut out = String::new();
    for _ in 0..r.below(8) {
        out.push_str(&hostile(r));
        out.push_str(r.pick::<&str>(&seps));
    }
    out
}

/// What an explanation must carry so the user learns what to type.
fn shows_an_example(why: &str) -> bool {
    why.contains("`/backfill ")
        || why.contains(DEADLINE_EXAMPLES)
        || why.contains("`--tenant acme`")
}

#[test]
fn hostile_commands_never_panic_and_every_refusal_shows_how_to_write_it() {
    let (mut r, seed) = Rng::from_env();
    let n = cases();
    for i in 0..n {
        let text = hostile_sentence(&mut r);
        let parsed = std::panic::catch_unwind(|| Command::parse(&text)).unwrap_or_else(|_| {
            panic!("FUZZ_SEED={seed} case {i}: Command::parse panicked on {text:?}")
        });
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| !w.starts_with("--tenant"))
            .collect();
        match &parsed.command {
            Command::Invalid(why) => {
                assert!(
                    shows_an_example(why),
                    "FUZZ_SEED={seed} case {i}: {text:?} -> {why:?} shows no example"
                );
                // Whatever was typed, at most 60 characters of it come back.
                assert!(
                    why.chars().count() <= 300 + DEADLINE_EXAMPLES.len(),
                    "FUZZ_SEED={seed} case {i}: a {} character explanation",
                    why.chars().count()
                );
            }
            Command::Unknown(what) => {
                assert!(
                    what.chars().count() <= 61,
                    "FUZZ_SEED={seed} case {i}: Unknown echoes {} characters",
                    what.chars().count()
                );
                assert!(
                    what.ends_with('…')
                        || words.first() == Some(&what.as_str())
                        || text.contains("--tenant"),
                    "FUZZ_SEED={seed} case {i}: Unknown({what:?}) is not the first word of {text:?}"
                );
            }
            Command::Help => {
                // Help only for an empty command or a request for help.
                let first = words.first().map(|w| w.to_ascii_lowercase());
                assert!(
                    matches!(first.as_deref(), None | Some("help" | "-h" | "--help"))
                        || text.contains("--tenant"),
                    "FUZZ_SEED={seed} case {i}: {text:?} answered with plain help"
                );
            }
            _ => {}
        }
    }
}

/// A job id written any way Slack users paste one.
fn write_id(r: &mut Rng, id: uuid::Uuid) -> String {
    let plain = match r.below(4) {
        0 => id.hyphenated().to_string(),
        1 => id.simple().to_string(),
        2 => id.braced().to_string(),
        _ => id.hyphenated().to_string(),
    };
    let cased: String = plain
        .chars()
        .map(|c| {
            if r.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    match r.below(4) {
        0 => format!("`{cased}`"),
        1 => format!("<{cased}>"),
        _ => cased,
    }
}

fn random_case(r: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if r.chance(30) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// A valid step and what it means: `+1d2h30m`, `+007h`, `+90m`...
fn valid_step(r: &mut Rng) -> (String, Duration) {
    loop {
        let mut text = String::from("+");
        let mut total = Duration::zero();
        for _ in 0..1 + r.below(3) {
            let (unit, n, d) = match r.below(3) {
                0 => {
                    let n = r.below(3000) as i64;
                    ('m', n, Duration::minutes(n))
                }
                1 => {
                    let n = r.below(200) as i64;
                    ('h', n, Duration::hours(n))
                }
                _ => {
                    let n = r.below(40) as i64;
                    ('d', n, Duration::days(n))
                }
            };
            let zeros = "0".repeat(if r.chance(10) { r.below(4) } else { 0 });
            text.push_str(&format!("{zeros}{n}{unit}"));
            total += d;
        }
        if total > Duration::zero() && total <= Duration::days(90) {
            return (text, total);
        }
    }
}

/// A valid RFC 3339 time and the instant and offset it names.
fn valid_rfc3339(r: &mut Rng) -> (String, DateTime<chrono::FixedOffset>) {
    use chrono::{FixedOffset, NaiveDate, TimeZone};
    let y = 1970 + r.below(8000) as i32;
    let m = 1 + r.below(12) as u32;
    let d = 1 + r.below(28) as u32;
    let (hh, mm, ss) = (r.below(24) as u32, r.below(60) as u32, r.below(60) as u32);
    let frac_digits = r.below(10);
    let frac: String = (0..frac_digits)
        .map(|_| char::from(b'0' + r.below(10) as u8))
        .collect();
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().unwrap()
    };
    let (offset_text, offset_secs) = match r.below(3) {
        0 => (r.pick(&["Z", "z"]).to_string(), 0),
        _ => {
            let (oh, om) = (r.below(24) as i32, r.below(60) as i32);
            let sign = if r.chance(50) { 1 } else { -1 };
            (
                format!("{}{oh:02}:{om:02}", if sign > 0 { '+' } else { '-' }),
                sign * (oh * 3600 + om * 60),
            )
        }
    };
    let text = format!(
        "{y:04}-{m:02}-{d:02}{}{hh:02}:{mm:02}:{ss:02}{}{}{offset_text}",
        r.pick(&["T", "t"]),
        if frac.is_empty() { "" } else { "." },
        frac
    );
    let offset = FixedOffset::east_opt(offset_secs).unwrap();
    let local = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_nano_opt(hh, mm, ss, nanos)
        .unwrap();
    (text, offset.from_local_datetime(&local).single().unwrap())
}

#[test]
fn generated_valid_commands_parse_back_to_exactly_what_was_meant() {
    let (mut r, seed) = Rng::from_env();
    for i in 0..cases() {
        let id = uuid::Uuid::from_u64_pair(r.next(), r.next());
        let mut words: Vec<String> = Vec::new();
        let extra = |r: &mut Rng| -> Vec<String> {
            hostile(r)
                .split_whitespace()
                .filter(|w| !w.starts_with("--tenant"))
                .map(str::to_string)
                .collect()
        };
        let expected = match r.below(6) {
            0 => {
                let sub = r_pick(&mut r, &["help", "-h", "--help"]);
                words.push(random_case(&mut r, sub));
                words.extend(extra(&mut r));
                Command::Help
            }
            k @ 1..=3 => {
                let sub = ["status", "pause", "resume"][k - 1];
                words.push(random_case(&mut r, sub));
                words.push(write_id(&mut r, id));
                // Anything after the job id is ignored.
                words.extend(extra(&mut r));
                match k {
                    1 => Command::Status(JobRef::Id(JobId(id))),
                    2 => Command::Pause(JobRef::Id(JobId(id))),
                    _ => Command::Resume(JobRef::Id(JobId(id))),
                }
            }
            4 => {
                words.push(random_case(&mut r, "list"));
                let (alias, filter) = *r.pick(&[
                    ("", ListFilter::All),
                    ("all", ListFilter::All),
                    ("running", ListFilter::Running),
                    ("paused", ListFilter::Paused),
                    ("at-risk", ListFilter::AtRisk),
                    ("at_risk", ListFilter::AtRisk),
                    ("atrisk", ListFilter::AtRisk),
                    ("risk", ListFilter::AtRisk),
                ]);
                if !alias.is_empty() {
                    words.push(random_case(&mut r, alias));
                }
                Command::List(filter)
            }
            _ => {
                let sub = *r.pick(&["extend-deadline", "extend_deadline", "extend"]);
                words.push(random_case(&mut r, sub));
                words.push(write_id(&mut r, id));
                let deadline = if r.chance(50) {
                    let (text, d) = valid_step(&mut r);
                    words.push(text);
                    DeadlineSpec::Step(d)
                } else {
                    let (text, t) = valid_rfc3339(&mut r);
                    words.push(text);
                    DeadlineSpec::At(t)
                };
                let reason: Vec<String> = (0..r.below(4)).flat_map(|_| extra(&mut r)).collect();
                words.extend(reason.iter().cloned());
                Command::ExtendDeadline {
                    job: JobRef::Id(JobId(id)),
                    deadline,
                    reason: (!reason.is_empty()).then(|| reason.join(" ")),
                }
            }
        };
        let tenant = if r.chance(50) {
            let t = format!("tenant-{}", r.below(1000));
            let at = r.below(words.len() + 1);
            if r.chance(50) {
                words.insert(at, format!("--tenant={t}"));
            } else {
                words.insert(at, t.clone());
                words.insert(at, "--tenant".into());
            }
            Some(t)
        } else {
            None
        };
        let seps = [" ", "  ", "\t", "\n", "\u{3000}", "\u{a0}", " \r\n "];
        let mut text = r.pick(&["", " ", "\n"]).to_string();
        for w in &words {
            text.push_str(w);
            text.push_str(r.pick::<&str>(&seps));
        }
        let parsed = Command::parse(&text);
        assert_eq!(
            parsed.command, expected,
            "FUZZ_SEED={seed} case {i}: {text:?}"
        );
        assert_eq!(parsed.tenant, tenant, "FUZZ_SEED={seed} case {i}: {text:?}");
        if let Command::ExtendDeadline {
            deadline: DeadlineSpec::At(t),
            ..
        } = parsed.command
        {
            let DeadlineSpec::At(want) = (match expected {
                Command::ExtendDeadline { deadline, .. } => deadline,
                _ => unreachable!(),
            }) else {
                unreachable!()
            };
            assert_eq!(
                t.offset(),
                want.offset(),
                "FUZZ_SEED={seed} case {i}: {text:?}"
            );
        }
    }
}

fn r_pick<'a>(r: &mut Rng, items: &[&'a str]) -> &'a str {
    items[r.below(items.len())]
}

#[test]
fn the_deadline_parser_survives_hostile_text_and_resolves_against_any_current_deadline() {
    let (mut r, seed) = Rng::from_env();
    let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
    // Current deadlines up to the edges of what a DateTime can hold.
    let currents = [
        now,
        now - Duration::days(3650),
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::MAX_UTC - Duration::days(30),
        DateTime::<Utc>::MIN_UTC,
    ];
    let edges = [
        "+99999999999d",
        "+9223372036854775807m",
        "+9223372036854775808m",
        "+1000000m1000000m1000000m",
        "+0d0h0m",
        "+90d",
        "+90d1m",
        "+2160h",
        "+129600m",
        "+129601m",
        "+1d-1h",
        "+1d+1h",
        "+1dd",
        "+h",
        "+١h",
        "+1\u{0}h",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01T00:00:00+23:59",
        "+262143-12-31T23:59:59Z",
        "2026-06-30T23:59:60Z",
        "2026-02-30T10:00:00Z",
        "2026-12-01T24:00:00Z",
        "2026-12-01T18:00:00+24:00",
        "2026-12-01T18:00:00+99:99",
        "2026-12-01T18:00:00.123456789123456789Z",
        "2026-12-01T18:00:00",
        "2026-12-01T18:00",
        "2026-12-01 18:00:00Z",
        "1970-01-01T00:00:00Z",
    ];
    let n = cases();
    for i in 0..n + edges.len() {
        let text = if i < edges.len() {
            edges[i].to_string()
        } else {
            match r.below(4) {
                0 => hostile_sentence(&mut r),
                1 => format!("+{}", hostile(&mut r)),
                _ => hostile(&mut r),
            }
        };
        let result = std::panic::catch_unwind(|| DeadlineSpec::parse(&text))
            .unwrap_or_else(|_| panic!("FUZZ_SEED={seed} case {i}: parse panicked on {text:?}"));
        let spec = match result {
            Err(why) => {
                assert!(
                    why.contains(DEADLINE_EXAMPLES),
                    "FUZZ_SEED={seed} case {i}: {text:?} -> {why}"
                );
                continue;
            }
            Ok(spec) => spec,
        };
        if let DeadlineSpec::Step(d) = spec {
            assert!(
                d > Duration::zero() && d <= Duration::days(90),
                "FUZZ_SEED={seed} case {i}: {text:?} is a step of {d}"
            );
        }
        for current in currents {
            let resolved =
                std::panic::catch_unwind(|| spec.resolve(current, now)).unwrap_or_else(|_| {
                    panic!("FUZZ_SEED={seed} case {i}: resolve({current}) panicked on {text:?}")
                });
            match resolved {
                Ok(t) => assert!(t > current && t > now, "FUZZ_SEED={seed} case {i}"),
                Err(why) => assert!(
                    why.contains(DEADLINE_EXAMPLES),
                    "FUZZ_SEED={seed} case {i}: {text:?} from {current} -> {why}"
                ),
            }
        }
    }
    // Generated valid deadlines read back exactly: steps to their length,
    // RFC 3339 times to their instant and their offset.
    for i in 0..n {
        let (text, d) = valid_step(&mut r);
        assert_eq!(
            DeadlineSpec::parse(&text),
            Ok(DeadlineSpec::Step(d)),
            "FUZZ_SEED={seed} case {i}: {text}"
        );
        let (text, t) = valid_rfc3339(&mut r);
        match DeadlineSpec::parse(&text) {
            Ok(DeadlineSpec::At(got)) => {
                assert_eq!(got, t, "FUZZ_SEED={seed} case {i}: {text}");
                assert_eq!(
                    got.offset(),
                    t.offset(),
                    "FUZZ_SEED={seed} case {i}: {text}"
                );
            }
            other => panic!("FUZZ_SEED={seed} case {i}: {text} -> {other:?}"),
        }
        // A step too long is refused by name, however it is spelled.
        let days = 91 + r.below(100_000);
        let too_long = match r.below(3) {
            0 => format!("+{days}d"),
            1 => format!("+{}h", days * 24),
            _ => format!("+{}d{}m", days - 1, 24 * 60),
        };
        let why = DeadlineSpec::parse(&too_long).unwrap_err();
        assert!(
            why.contains("90 days") && why.contains(DEADLINE_EXAMPLES),
            "FUZZ_SEED={seed} case {i}: {too_long} -> {why}"
        );
    }
}

// ---------------------------------------------------------------------------
// Through the signed HTTP routes.
// ---------------------------------------------------------------------------

static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts every panic in this process, including those in the app's own
/// spawned tasks, which never show as a 5xx (a click's work runs in a task
/// whose failure the ack ignores).
fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            previous(info)
        }));
    });
}

fn panics() -> usize {
    PANICS.load(std::sync::atomic::Ordering::SeqCst)
}

const MARKUP: [&str; 6] = [
    "<!channel>",
    "<!here>",
    "<@U0EVIL>",
    "<https://evil.example|click me>",
    "<!subteam^S0ONCALL>",
    "<#C0GLOBEXALR>",
];

#[tokio::test]
async fn user_text_echoed_in_an_answer_cannot_forge_mentions_or_links() {
    // slack.md: escape `&`, `<`, `>` in user-supplied text. Every refusal
    // that quotes what was typed must do so, wherever the text stood.
    let app = spawn_app(Backend::Sqlite).await;
    let (mut r, seed) = Rng::from_env();
    let mut texts: Vec<String> = Vec::new();
    for m in MARKUP {
        texts.extend([
            format!("status {m}"),
            format!("pause `{m}`"),
            format!("list {m}"),
            format!("{m} list"),
            format!("--tenant {m} list"),
            format!("--tenant={m} status {UUID}"),
            format!("extend-deadline {UUID} {m}"),
            format!("extend-deadline {UUID} +{m}"),
            format!("extend {m} +4h"),
        ]);
    }
    for _ in 0..200 {
        let m = *r.pick(&MARKUP);
        let mut words: Vec<String> = (0..r.below(4)).map(|_| word(&mut r)).collect();
        let at = r.below(words.len() + 1);
        words.insert(at, m.to_string());
        texts.push(words.join(" "));
    }
    for (i, text) in texts.iter().enumerate() {
        let answer = app.slash(text, "U0PLATLEAD", "C0ACMEALERT").await;
        assert_eq!(answer.status, 200, "FUZZ_SEED={seed} {i}: {text:?}");
        let body = answer.json();
        let shown = format!("{} {}", body["text"], body["blocks"]);
        for m in MARKUP {
            assert!(
                !shown.contains(m),
                "FUZZ_SEED={seed} {i}: {text:?} is echoed with live markup {m}: {shown}"
            );
        }
    }
}

/// A real `block_actions` click and `view_submission`s as Slack sends them.
fn real_payloads(app: &common::bot::TestApp, alert: &str, approval: &str) -> Vec<Value> {
    let silence_value = format!("{alert}:1h");
    let ask_value = format!("{alert}:ask");
    let actions = [
        ("alert_silence", silence_value.as_str()),
        ("alert_silence", ask_value.as_str()),
        ("alert_unsilence", "abcdef12"),
        ("alert_ack", alert),
        ("alert_escalate", alert),
        ("extension_request", alert),
        ("extension_approve", approval),
        ("extension_reject", approval),
        ("mitigate_monitor", alert),
        ("mitigate_stop_monitor", alert),
        ("mitigate_defer", alert),
        ("mitigate_pause_lower", alert),
        ("mitigate_recreate", alert),
        ("mitigate_scaling", alert),
        ("mitigate_notify", alert),
        ("mitigate_resume_paused", alert),
    ];
    let mut out: Vec<Value> = actions
        .iter()
        .map(|(action, value)| {
            json!({
                "type": "block_actions",
                "user": {"id": "U0PLATLEAD", "username": "lead", "team_id": "T0TEAM"},
                "api_app_id": "A0APP",
                "team": {"id": "T0TEAM", "domain": "acme"},
                "channel": {"id": "C0ACMEALERT", "name": "alerts"},
                "container": {"type": "message", "channel_id": "C0ACMEALERT", "message_ts": "1700000000.000100"},
                "message": {"ts": "1700000000.000100", "thread_ts": "1700000000.000100", "text": "alert"},
                "response_url": app.slack.response_url(&format!("{action}-{}", uuid::Uuid::new_v4().simple())),
                "trigger_id": "1337.42.abcd",
                "actions": [{"action_id": action, "block_id": "b1", "value": value, "type": "button",
                             "action_ts": "1700000001.000200"}]
            })
        })
        .collect();
    let metadata =
        json!({"alert_id": alert, "approval_id": approval, "channel": "C0ACMEALERT"}).to_string();
    for (callback, values) in [
        (
            "extension_request",
            json!({"deadline": {"value": {"type": "plain_text_input", "value": "+4h"}},
                   "reason": {"value": {"type": "plain_text_input", "value": "vendor outage"}}}),
        ),
        (
            "extension_reject",
            json!({"reason": {"value": {"type": "plain_text_input", "value": "no"}}}),
        ),
        (
            "mitigate_pause",
            json!({"jobs": {"value": {"type": "checkboxes", "selected_options": [{"value": UUID}]}}}),
        ),
        (
            "mitigate_notify",
            json!({"impact": {"value": {"type": "plain_text_input", "value": "reports late"}}}),
        ),
        (
            "alert_silence",
            json!({"for": {"value": {"type": "radio_buttons", "selected_option": {"value": "other"}}},
                   "until": {"value": {"type": "plain_text_input", "value": "90m"}},
                   "scope": {"value": {"type": "radio_buttons", "selected_option": {"value": "asset"}}},
                   "reason": {"value": {"type": "plain_text_input", "value": "migration"}},
                   "breach": {"value": {"type": "checkboxes", "selected_options": [{"value": "hold"}]}}}),
        ),
    ] {
        out.push(json!({
            "type": "view_submission",
            "user": {"id": "U0PLATLEAD"},
            "view": {"id": "V0VIEW", "callback_id": callback, "private_metadata": metadata,
                     "state": {"values": values}},
        }));
        out.push(json!({
            "type": "view_closed",
            "user": {"id": "U0PLATLEAD"},
            "view": {"id": "V0VIEW", "callback_id": callback, "private_metadata": metadata},
        }));
    }
    out
}

/// Every path to a value inside `v`, as JSON pointers.
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

/// Changes one to three places in a payload: wrong types, removals, nested
/// garbage, huge or hostile strings, and strings that are JSON of the wrong shape.
fn mutate_payload(r: &mut Rng, mut v: Value) -> Value {
    for _ in 0..1 + r.below(3) {
        let mut all = Vec::new();
        paths(&v, String::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let p = r.pick(&all).clone();
        // Response URLs stay pointed at the fake Slack or go away: the bot
        // posts to them, and an unroutable one only tests the network.
        let is_url = p.ends_with("/response_url");
        let replacement = match r.below(9) {
            0 => None,
            1 => Some(Value::Null),
            2 => Some(json!(r.next() as i64)),
            3 => Some(json!([value(r, 2), value(r, 2)])),
            4 => Some(value(r, 1)),
            5 => Some(json!("x".repeat(1 + r.below(40_000)))),
            6 => Some(json!(hostile(r))),
            7 => Some(json!(r.pick(&[
                "{}",
                "[]",
                "null",
                "\"\"",
                "{\"alert_id\":7}",
                "{\"alert_id\":\"\"}",
                "{\"alert_id\":[]}",
                "{",
                "not json"
            ]))),
            _ => Some(json!({"id": hostile(r), "value": value(r, 2)})),
        };
        let (parent, key) = p.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        let Some(target) = v.pointer_mut(parent) else {
            continue;
        };
        match (target, replacement) {
            (Value::Object(m), None) => {
                m.remove(&key);
            }
            (Value::Object(m), Some(new)) if !is_url || !new.is_string() => {
                m.insert(key, new);
            }
            (Value::Array(a), None) => {
                if let Ok(i) = key.parse::<usize>() {
                    a.remove(i);
                }
            }
            (Value::Array(a), Some(new)) => {
                if let Ok(i) = key.parse::<usize>() {
                    a[i] = new;
                }
            }
            _ => {}
        }
    }
    v
}

#[tokio::test]
async fn mutated_clicks_and_dialogs_on_a_real_alert_never_fail_the_request_or_the_app() {
    use common::servo_fixture::{JobSpec, ServoFixture};
    watch_panics();
    let before = panics();
    let fx = ServoFixture::start().await;
    let pagerduty = common::fake_pagerduty::FakePagerDuty::start().await;
    let mut spec = common::bot::Spawn::new(Backend::Sqlite).servo_url(&fx.bot_url());
    spec.pagerduty_url = pagerduty.url();
    let app = common::bot::spawn(spec).await;
    app.slack.set_usergroup("S0ONCALL", &["U0ONCALL1"]);
    let now = Utc::now();
    let job = fx
        .job(JobSpec {
            asset: "revenue_daily".into(),
            deadline: Some(now + Duration::minutes(60)),
            eta: Some(now + Duration::minutes(120)),
            heartbeat: Some(now),
            priority: 5,
            ..JobSpec::default()
        })
        .await;
    app.poll().await;
    let alert = app
        .state
        .store
        .latest_alert_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .expect("the job is at risk and has an alert")
        .id;
    // A pending extension request, so approve/reject buttons have something to decide.
    let answer = app
        .slash(
            &format!("extend-deadline {job} +2h vendor outage"),
            "U0PLATLEAD",
            "C0ACMEALERT",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    app.drain_outbox().await;
    let approval = app
        .state
        .store
        .pending_approval_for_job("acme", &job.to_string())
        .await
        .unwrap()
        .expect("the extension request is pending")
        .id;
    let bases = real_payloads(&app, &alert, &approval);
    let (mut r, seed) = Rng::from_env();
    let n = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(200, |c| c / 25);
    let started = std::time::Instant::now();
    for i in 0..n {
        let base = r.pick(&bases).clone();
        let v = mutate_payload(&mut r, base);
        let answer = app.interact(&v).await;
        assert!(
            answer.status < 500,
            "FUZZ_SEED={seed} case {i}: {} for {v}: {}",
            answer.status,
            answer.body
        );
        if answer.status == 200 && !answer.body.is_empty() {
            // Slack's only ack body here: field errors that name the field.
            let body = answer.json();
            assert_eq!(
                body["response_action"], "errors",
                "FUZZ_SEED={seed} case {i}: {body}"
            );
            let errors = body["errors"].as_object().expect("errors by block");
            assert!(
                errors
                    .values()
                    .all(|m| m.as_str().is_some_and(|m| !m.trim().is_empty())),
                "FUZZ_SEED={seed} case {i}: {body}"
            );
        }
    }
    eprintln!("{n} mutated interactions in {:?}", started.elapsed());
    app.drain_outbox().await;
    assert_eq!(app.get("/healthz").await.status, 200, "still serving");
    assert_eq!(
        panics(),
        before,
        "FUZZ_SEED={seed}: something panicked while handling the payloads (see the log above)"
    );
    // Hostile text must never make the bot send Slack something it refuses
    // for its shape (the message would be lost).
    let malformed: Vec<_> = app
        .slack
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c.outcome.as_str(),
                "invalid_blocks" | "invalid_arguments" | "msg_too_long"
            )
        })
        .map(|c| (c.method, c.outcome, c.error_detail))
        .collect();
    assert!(malformed.is_empty(), "FUZZ_SEED={seed}: {malformed:#?}");
}

#[test]
fn decoding_mutated_real_clicks_keeps_exactly_what_is_well_formed() {
    // An exact oracle for `clicks`: it accepts a payload if and only if it has
    // a string user id and a non-empty array of actions that each have a
    // string action_id, and then reports each action as it was sent.
    let (mut r, seed) = Rng::from_env();
    let base = json!({
        "type": "block_actions",
        "user": {"id": "U0PLATLEAD"},
        "channel": {"id": "C0ACMEALERT"},
        "container": {"type": "message", "channel_id": "C0ACMEALERT", "message_ts": "1.2"},
        "message": {"ts": "1.2"},
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "alert_ack", "value": "a1"},
                    {"action_id": "mitigate_monitor", "value": "a1"}]
    });
    for i in 0..cases() {
        let v = mutate_payload(&mut r, base.clone());
        let decoded = std::panic::catch_unwind(|| clicks(&v))
            .unwrap_or_else(|_| panic!("FUZZ_SEED={seed} case {i}: clicks panicked on {v}"));
        let user = v.pointer("/user/id").and_then(Value::as_str);
        let actions = v.get("actions").and_then(Value::as_array);
        let well_formed = user.is_some()
            && actions.is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|x| x.get("action_id").is_some_and(Value::is_string))
            });
        match decoded {
            Ok(cs) => {
                assert!(well_formed, "FUZZ_SEED={seed} case {i}: accepted {v}");
                let actions = actions.unwrap();
                assert_eq!(cs.len(), actions.len(), "FUZZ_SEED={seed} case {i}");
                for (c, a) in cs.iter().zip(actions) {
                    assert_eq!(Some(c.user.as_str()), user);
                    assert_eq!(Some(c.action_id.as_str()), a["action_id"].as_str());
                    assert_eq!(c.value, a["value"].as_str().unwrap_or_default());
                    let channel = v
                        .pointer("/channel/id")
                        .or_else(|| v.pointer("/container/channel_id"))
                        .and_then(Value::as_str);
                    // A channel of the wrong type falls back to the container's.
                    let fallback = v.pointer("/container/channel_id").and_then(Value::as_str);
                    assert!(
                        c.channel.as_deref() == channel || c.channel.as_deref() == fallback,
                        "FUZZ_SEED={seed} case {i}: {v}"
                    );
                }
            }
            Err(_) => assert!(!well_formed, "FUZZ_SEED={seed} case {i}: refused {v}"),
        }
    }
}

/// A body of exactly `len` bytes for `path`, shaped as that route expects.
fn body_of_len(path: &str, len: usize) -> Vec<u8> {
    let (head, tail) = match path {
        "/slack/commands" => (
            "command=%2Fbackfill&user_id=U0PLATLEAD&channel_id=C0ACMEALERT&text=".to_string(),
            String::new(),
        ),
        "/slack/interactions" => (
            "payload=%7B%22type%22%3A%22view_closed%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%2C%22pad%22%3A%22".to_string(),
            "%22%7D".to_string(),
        ),
        _ => (
            r#"{"type":"url_verification","challenge":"c","pad":""#.to_string(),
            r#""}"#.to_string(),
        ),
    };
    let pad = len - head.len() - tail.len();
    format!("{head}{}{tail}", "a".repeat(pad)).into_bytes()
}

async fn signed_raw_at(
    app: &common::bot::TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    ts: &str,
) -> common::bot::Answer {
    let sig = common::bot::slack_signature(common::bot::SIGNING_SECRET, ts, &body);
    app.post_raw(
        path,
        content_type,
        body,
        &[
            ("x-slack-request-timestamp", ts.to_string()),
            ("x-slack-signature", sig),
        ],
    )
    .await
}

const FORM_CT: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn each_route_answers_hostile_signed_bodies_as_its_contract_says() {
    // What each route promises, following slack.md:
    // - /slack/commands: a body that is a slash-command form gets 200 and an
    //   ephemeral answer that explains (a person typed the text and Slack shows
    //   the 200's body); a body that is not one (missing fields, duplicated
    //   fields) cannot come from Slack, so it gets a 400 naming the problem for
    //   Slack's logs.
    // - /slack/interactions: no `payload`, or a payload that is not a JSON
    //   object or lacks what its type needs, is a 400; a well-typed payload with
    //   garbage inside is acked with 200 (a modal gets field errors).
    // - /slack/events: not a JSON object, a url_verification without a string
    //   challenge, an event_callback without a string event_id: 400.
    // - all: over 256 KiB is a 413, exactly 256 KiB is read; never a 5xx.
    watch_panics();
    let before = panics();
    let app = spawn_app(Backend::Sqlite).await;
    let cmd = |extra: &str| {
        format!("command=%2Fbackfill&user_id=U0PLATLEAD&channel_id=C0ACMEALERT{extra}").into_bytes()
    };
    let deep = |open: &str, n: usize| open.repeat(n).into_bytes();
    let payload = |p: &str| form(&[("payload", p)]).into_bytes();
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        // Slash commands that are forms: 200 with an explanation.
        ("/slack/commands", FORM_CT, cmd("&text=%ZZ%25%"), 200),
        ("/slack/commands", FORM_CT, [cmd("&text="), b"\xff\xfe%FF%C3%28".to_vec()].concat(), 200),
        ("/slack/commands", FORM_CT, cmd("&text=%00%01%1b%7f"), 200),
        ("/slack/commands", FORM_CT, cmd("&text=status+%3C%21channel%3E"), 200),
        ("/slack/commands", FORM_CT, cmd("&text=extend-deadline+7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10+%2B99999999999999999999d"), 200),
        ("/slack/commands", FORM_CT, cmd("&text=&&&=&=="), 200),
        ("/slack/commands", FORM_CT, cmd("&unknown_field=1&text=help"), 200),
        ("/slack/commands", "application/json", cmd("&text=help"), 200),
        ("/slack/commands", "multipart/form-data; boundary=x", cmd("&text=list"), 200),
        // ... that are not: 400.
        ("/slack/commands", FORM_CT, b"command=%2Fbackfill&text=help".to_vec(), 400),
        ("/slack/commands", FORM_CT, cmd("&text=help&text=list"), 400),
        ("/slack/commands", FORM_CT, cmd("&user_id=U2"), 400),
        ("/slack/commands", FORM_CT, b"%%%%%%".to_vec(), 400),
        ("/slack/commands", "application/json", br#"{"command":"/backfill","user_id":"U1","channel_id":"C1"}"#.to_vec(), 400),
        // Interactions.
        ("/slack/interactions", FORM_CT, payload("null"), 400),
        ("/slack/interactions", FORM_CT, payload("true"), 400),
        ("/slack/interactions", FORM_CT, payload(""), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":7}"#), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":["block_actions"]}"#), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"block_actions","user":{"id":"U1"},"actions":[]}"#), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"block_actions","user":{"id":7},"actions":[{"action_id":"alert_ack"}]}"#), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":{"x":1}}]}"#), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"block_actions","user":{"id":"U1"},"actions":"alert_ack"}"#), 400),
        ("/slack/interactions", FORM_CT, b"payload=%7B%22type%22%3A%22view_closed%22%7D&payload=%5B%5D".to_vec(), 400),
        ("/slack/interactions", FORM_CT, b"payload=%FF%FE%7B%7D".to_vec(), 400),
        ("/slack/interactions", FORM_CT, b"payload=%7B%ZZ%7D".to_vec(), 400),
        ("/slack/interactions", FORM_CT, b"payload=\xff{}".to_vec(), 400),
        ("/slack/interactions", FORM_CT, [b"payload=".to_vec(), deep("%5B", 50_000)].concat(), 400),
        ("/slack/interactions", "application/json", br#"{"type":"block_actions"}"#.to_vec(), 400),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"view_submission","user":"U1","view":"v"}"#), 200),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"extension_request","private_metadata":"{\"alert_id\":[1]}"}}"#), 200),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"mitigate_pause","state":{"values":{"jobs":{"value":{"selected_options":{"value":"x"}}}}}}}"#), 200),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"view_closed","view":[]}"#), 200),
        ("/slack/interactions", FORM_CT, payload(r#"{"type":"shortcut","user":"U1"}"#), 200),
        // Events.
        ("/slack/events", "application/json", b"".to_vec(), 400),
        ("/slack/events", "application/json", b"null".to_vec(), 400),
        ("/slack/events", "application/json", br#""url_verification""#.to_vec(), 400),
        ("/slack/events", "application/json", deep("[", 50_000), 400),
        ("/slack/events", "application/json", br#"{"type":"url_verification"}"#.to_vec(), 400),
        ("/slack/events", "application/json", br#"{"type":"url_verification","challenge":7}"#.to_vec(), 400),
        ("/slack/events", "application/json", br#"{"type":"event_callback","event_id":7}"#.to_vec(), 400),
        ("/slack/events", "application/json", br#"{"type":"event_callback","event_id":["Ev1"]}"#.to_vec(), 400),
        ("/slack/events", FORM_CT, b"type=url_verification&challenge=c".to_vec(), 400),
        ("/slack/events", "application/json", br#"{"type":"url_verification","challenge":"c","challenge":"d"}"#.to_vec(), 200),
        ("/slack/events", "text/plain", br#"{"type":"url_verification","challenge":"\u0000<>"}"#.to_vec(), 200),
        ("/slack/events", "application/json", format!(r#"{{"type":"event_callback","event_id":"{}"}}"#, "E".repeat(100_000)).into_bytes(), 200),
        ("/slack/events", "application/json", br#"{"type":"app_rate_limited","event":[]}"#.to_vec(), 200),
    ];
    for (path, content_type, body, want) in cases {
        let shown: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        let answer = signed_raw(&app, path, content_type, body).await;
        assert_eq!(
            answer.status, want,
            "{path} {content_type} {shown:?}: {}",
            answer.body
        );
        if want == 400 {
            assert!(
                !answer.body.trim().is_empty(),
                "a 400 says why: {path} {shown:?}"
            );
        }
        if want == 200 && path == "/slack/commands" {
            let text = answer.json()["text"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(!text.trim().is_empty(), "a 200 explains: {shown:?}");
        }
    }
    // The body limit, to the byte, on every route.
    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        let limit = servo_sla_bot::edge::inbound::MAX_BODY_BYTES;
        let content_type = if path == "/slack/events" {
            "application/json"
        } else {
            FORM_CT
        };
        let at = signed_raw(&app, path, content_type, body_of_len(path, limit)).await;
        assert_eq!(
            at.status, 200,
            "{path}: exactly {limit} bytes is read: {}",
            at.body
        );
        let over = signed_raw(&app, path, content_type, body_of_len(path, limit + 1)).await;
        assert_eq!(over.status, 413, "{path}: {} bytes", limit + 1);
    }
    assert_eq!(app.get("/healthz").await.status, 200, "still serving");
    assert_eq!(panics(), before, "something panicked (see the log above)");
}

#[tokio::test]
async fn a_command_of_256_kib_of_flags_is_answered_within_slacks_three_seconds() {
    // The grammar runs before the 3-second ack timer starts: it must stay
    // linear however many words (and `--tenant` flags) a body holds.
    let app = spawn_app(Backend::Sqlite).await;
    let limit = servo_sla_bot::edge::inbound::MAX_BODY_BYTES;
    for unit in ["--tenant=x ", "--tenant x ", "a ", "\u{3000}"] {
        let head = "command=%2Fbackfill&user_id=U0PLATLEAD&channel_id=C0ACMEALERT&text=";
        let encoded = form(&[("t", unit)]);
        let encoded = &encoded[2..];
        let text = encoded.repeat((limit - head.len()) / encoded.len());
        let started = std::time::Instant::now();
        let answer = app
            .post_signed("/slack/commands", FORM_CT, &format!("{head}{text}"))
            .await;
        let took = started.elapsed();
        assert_eq!(answer.status, 200, "{unit:?}: {}", answer.body);
        assert!(
            took < std::time::Duration::from_secs(3),
            "{unit:?} x {}: answered in {took:?}",
            text.len() / encoded.len()
        );
    }
}

/// One HTTP/1.1 exchange over a raw socket; the status code, if any came back.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: &str,
    chunks: &[Vec<u8>],
    close: bool,
) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for c in chunks {
        if s.write_all(c).await.is_err() {
            break; // the server answered and closed early: read what it said
        }
    }
    if close {
        let _ = s.shutdown().await;
    }
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    if read.is_err() && buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
}

#[tokio::test]
async fn bodies_that_stream_past_the_limit_or_lie_about_their_length_never_hurt_the_app() {
    let app = spawn_app(Backend::Sqlite).await;
    let ts = Utc::now().timestamp().to_string();
    let head = |path: &str, framing: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {FORM_CT}\r\nconnection: close\r\nx-slack-request-timestamp: {ts}\r\nx-slack-signature: v0=00\r\n{framing}\r\n"
        )
    };
    let limit = servo_sla_bot::edge::inbound::MAX_BODY_BYTES;
    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        // Chunked, with no length given, past the limit: refused as it streams.
        let chunk = |n: usize| {
            [
                format!("{n:x}\r\n").into_bytes(),
                vec![b'a'; n],
                b"\r\n".to_vec(),
            ]
            .concat()
        };
        let chunks: Vec<Vec<u8>> = (0..(limit / 16_384) + 2).map(|_| chunk(16_384)).collect();
        let status = raw_exchange(
            app.addr,
            &head(path, "transfer-encoding: chunked\r\n"),
            &chunks,
            false,
        )
        .await;
        assert_eq!(status, Some(413), "{path}: chunked past the limit");
        // A length far over the limit, then the body streaming in.
        let big: Vec<Vec<u8>> = (0..(limit / 65_536) + 2)
            .map(|_| vec![b'a'; 65_536])
            .collect();
        let status = raw_exchange(
            app.addr,
            &head(path, "content-length: 100000000\r\n"),
            &big,
            false,
        )
        .await;
        assert_eq!(status, Some(413), "{path}: declared 100 MB");
        // A length that promises more than is sent: the client gives up.
        let status = raw_exchange(
            app.addr,
            &head(path, "content-length: 5000\r\n"),
            &[b"text=help".to_vec()],
            true,
        )
        .await;
        assert_eq!(
            status,
            Some(400),
            "{path}: a body shorter than its length is a bad request, not one too large"
        );
        // Chunk sizes that are not hex, and a chunk that lies about its size.
        let status = raw_exchange(
            app.addr,
            &head(path, "transfer-encoding: chunked\r\n"),
            &[b"zz\r\nabc\r\n0\r\n\r\n".to_vec()],
            true,
        )
        .await;
        assert_eq!(status, Some(400), "{path}: bad chunk");
        let status = raw_exchange(
            app.addr,
            &head(path, "transfer-encoding: chunked\r\n"),
            &[b"ffffffffffffffffff\r\nabc".to_vec()],
            true,
        )
        .await;
        assert_eq!(status, Some(400), "{path}: huge chunk");
    }
    assert_eq!(app.get("/healthz").await.status, 200, "still serving");
}

#[tokio::test]
async fn replays_and_malformed_timestamps_are_refused_on_every_route_before_parsing() {
    let app = spawn_app(Backend::Sqlite).await;
    let bodies = [
        (
            "/slack/commands",
            FORM_CT,
            form(&[
                ("command", "/backfill"),
                ("text", "help"),
                ("user_id", "U1"),
                ("channel_id", "C0ACMEALERT"),
            ]),
        ),
        (
            "/slack/interactions",
            FORM_CT,
            form(&[("payload", r#"{"type":"view_closed","user":{"id":"U1"}}"#)]),
        ),
        (
            "/slack/events",
            "application/json",
            r#"{"type":"event_callback","event_id":"Ev0REPLAY","event":{"type":"app_mention"}}"#
                .to_string(),
        ),
    ];
    for (path, ct, body) in &bodies {
        // `now` at each request, so a slow run cannot drift a skew across the window.
        let now = Utc::now().timestamp();
        for skew in [-305, 305, -7 * 86_400, 10 * 365 * 86_400, -now] {
            let now = Utc::now().timestamp();
            let answer = app.post_signed_at(path, ct, body, now + skew).await;
            assert_eq!(answer.status, 401, "{path} signed {skew} s away");
        }
        // Signed correctly over a timestamp that is no number of seconds.
        for ts in [
            "".to_string(),
            "soon".into(),
            "1e9".into(),
            "0x6553f100".into(),
            format!("{now}.5"),
            format!("{now}\t"),
            "99999999999999999999".into(),
            i64::MAX.to_string(),
            i64::MIN.to_string(),
            format!("-{now}"),
        ] {
            let answer = signed_raw_at(&app, path, ct, body.clone().into_bytes(), &ts).await;
            assert_eq!(answer.status, 401, "{path} timestamp {ts:?}");
        }
        // Header values that are not visible ASCII.
        let answer = app
            .post_raw(
                path,
                ct,
                body.clone().into_bytes(),
                &[
                    ("x-slack-request-timestamp", format!("{now}é")),
                    ("x-slack-signature", "v0=é".into()),
                ],
            )
            .await;
        assert_eq!(answer.status, 401, "{path} non-ASCII headers");
        // Just inside the window on either side is served.
        for skew in [-290, 290] {
            let now = Utc::now().timestamp();
            let answer = app.post_signed_at(path, ct, body, now + skew).await;
            assert_eq!(
                answer.status, 200,
                "{path} signed {skew} s away is inside the window"
            );
        }
    }
    // The replays never reached the handler: the event was first recorded by
    // the in-window deliveries above, and by none of the refused ones before.
    let fresh = app
        .state
        .store
        .first_delivery("event:Ev0REPLAY", Utc::now())
        .await
        .unwrap();
    assert!(!fresh, "the in-window delivery recorded the event");
    let app2 = spawn_app(Backend::Sqlite).await;
    let (path, ct, body) = &bodies[2];
    let answer = app2
        .post_signed_at(path, ct, body, Utc::now().timestamp() - 400)
        .await;
    assert_eq!(answer.status, 401);
    let first = app2
        .state
        .store
        .first_delivery("event:Ev0REPLAY", Utc::now())
        .await
        .unwrap();
    assert!(first, "a replayed event must not have been recorded");
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_long_or_markup_heavy_extension_reason_never_loses_the_request() {
    // The request message quotes the reason in a section (3000 characters at
    // most, after escaping): a long reason from the slash command, or one of
    // `&` and `<` that escaping makes four or five times longer, must still
    // post the request for the stakeholders to decide.
    use common::servo_fixture::{JobSpec, ServoFixture};
    let fx = ServoFixture::start().await;
    let app =
        common::bot::spawn(common::bot::Spawn::new(Backend::Sqlite).servo_url(&fx.bot_url())).await;
    let now = Utc::now();
    for reason in [
        "slow vendor ".repeat(400),
        "&".repeat(1000),
        "<!channel>".repeat(200),
        "é🙂".repeat(1500),
    ] {
        let job = fx
            .job(JobSpec {
                asset: "revenue_daily".into(),
                deadline: Some(now + Duration::minutes(60)),
                eta: Some(now + Duration::minutes(120)),
                heartbeat: Some(now),
                ..JobSpec::default()
            })
            .await;
        let before = app.slack.calls().len();
        let answer = app
            .slash(
                &format!("extend-deadline {job} +2h {reason}"),
                "U0PLATLEAD",
                "C0ACMEALERT",
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        app.drain_outbox().await;
        let calls = app.slack.calls_since(before);
        let refused: Vec<_> = calls
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| (&c.outcome, &c.error_detail))
            .collect();
        assert!(
            refused.is_empty(),
            "{} chars of {:?}: {refused:?}",
            reason.chars().count(),
            reason.chars().take(10).collect::<String>()
        );
        let posted = calls
            .iter()
            .find(|c| {
                c.method == "chat.postMessage" && c.body.to_string().contains(&job.to_string())
            })
            .unwrap_or_else(|| {
                panic!(
                    "no request posted for a reason of {:?}",
                    reason.chars().take(10).collect::<String>()
                )
            });
        assert!(
            !posted.body.to_string().contains("<!channel>"),
            "the reason is escaped"
        );
    }
}

/// Issue 33, item 11: the status card of a job whose asset is named like
/// markup, with a failure share under 1% and a date token after it: the
/// asset is escaped everywhere (the forecast note too), and "<1%" is
/// written `&lt;1%`, so it cannot pair with the date token's `>` and garble
/// the card.
async fn status_card_markup(backend: Backend) {
    use common::servo_fixture::{JobSpec, ServoFixture};
    use servo_sla_bot::store::ForecastRecord;
    let fx = ServoFixture::start().await;
    let app = common::bot::spawn(common::bot::Spawn::new(backend).servo_url(&fx.bot_url())).await;
    let now = Utc::now();
    let asset = "<!channel>";
    let job = fx
        .job(JobSpec {
            asset: asset.into(),
            state: "paused".into(),
            total: 1100,
            completed: 999,
            failed: 1,
            deadline: Some(now + Duration::hours(6)),
            eta: Some(now + Duration::hours(2)),
            heartbeat: Some(now),
            ..JobSpec::default()
        })
        .await;
    fx.update_job(job, "paused_at = now() - interval '10 minutes'")
        .await;
    // Finished jobs of the asset, forecast at every checkpoint: the card
    // says how accurate the forecast has been for it.
    for (i, done) in ["a", "b", "c"].iter().enumerate() {
        let id = format!("finished-{done}");
        for checkpoint in 0..3 {
            let made =
                now - Duration::hours(10 - i as i64) + Duration::minutes(checkpoint as i64 * 30);
            app.state
                .store
                .record_forecast(&ForecastRecord {
                    tenant_id: "acme".into(),
                    job_id: id.clone(),
                    checkpoint,
                    asset: asset.into(),
                    made_at: made,
                    progress: [0.25, 0.5, 0.75][checkpoint as usize],
                    p50: made + Duration::minutes(60),
                    p90: made + Duration::minutes(90),
                    servo_eta: None,
                    completed_at: None,
                    profile: None,
                    period_end: None,
                })
                .await
                .unwrap();
        }
        app.state
            .store
            .close_forecast("acme", &id, now - Duration::hours(8 - i as i64))
            .await
            .unwrap();
    }
    let answer = app
        .slash(&format!("status {job}"), "U0PLATLEAD", "C0ACMEALERT")
        .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    let shown = format!("{} {}", body["text"], body["blocks"]);
    assert!(
        shown.contains("Forecast accuracy for &lt;!channel&gt;"),
        "{shown}"
    );
    assert!(
        !shown.contains(asset),
        "the asset's name is live markup: {shown}"
    );
    assert!(shown.contains("(&lt;1%)"), "{shown}");
    assert!(!shown.contains("<1%"), "a bare < garbles the card: {shown}");
    assert!(
        shown.contains("Paused: no progress since <!date^"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_status_card_escapes_the_asset_in_its_forecast_note_and_a_share_under_one_percent_on_sqlite(
) {
    status_card_markup(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_status_card_escapes_the_asset_in_its_forecast_note_and_a_share_under_one_percent_on_postgres(
) {
    status_card_markup(Backend::Postgres).await;
}
