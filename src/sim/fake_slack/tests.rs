//! The rules checked request by request, straight through the fake's
//! request processing (no sockets): permalinks, group handles,
//! broadcasts in form bodies, rate limits, and Block Kit limits.
use super::wire::Answer;
use super::*;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use serde_json::json;

struct Fake {
    shared: Shared,
    _stop: watch::Sender<bool>,
}

fn fake() -> Fake {
    let (stop, stopped) = watch::channel(false);
    Fake {
        shared: Shared {
            token: DEFAULT_TOKEN.into(),
            app_token: DEFAULT_APP_TOKEN.into(),
            state: Mutex::new(Workspace::default()),
            stopped,
        },
        _stop: stop,
    }
}

impl Fake {
    fn send(&self, method: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {DEFAULT_TOKEN}")).unwrap(),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        self.shared.process(
            &Method::POST,
            &format!("/api/{method}"),
            None,
            &headers,
            Ok(Bytes::from(body)),
            Instant::now(),
        )
    }

    fn json(&self, method: &str, body: Value) -> Answer {
        self.send(method, "application/json", body.to_string().into_bytes())
    }

    fn form(&self, method: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            method,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
    }

    fn post(&self, channel: &str, text: &str) -> String {
        let a = self.json(
            "chat.postMessage",
            json!({ "channel": channel, "text": text }),
        );
        assert_eq!(a.outcome, "ok", "{:?}", a.error_detail);
        a.body["ts"].as_str().unwrap().to_string()
    }

    /// The outcome of posting these blocks (with a top-level text).
    fn blocks(&self, blocks: Value) -> Answer {
        self.json(
            "chat.postMessage",
            json!({ "channel": "C1", "text": "t", "blocks": blocks }),
        )
    }

    fn state(&self) -> MutexGuard<'_, Workspace> {
        self.shared.lock()
    }
}

/// The answer's code, and for `invalid_blocks` the pointers it names.
fn refused_at(a: &Answer) -> (String, Vec<String>) {
    let pointers = a.body["response_metadata"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str()?.split("[json-pointer:").nth(1))
        .map(|p| p.trim_end_matches(']').to_string())
        .collect();
    (a.outcome.clone(), pointers)
}

fn assert_refused(a: &Answer, code: &str, pointer: &str) {
    let (got, pointers) = refused_at(a);
    assert_eq!(got, code, "{:?}", a.body);
    assert!(
        pointers.iter().any(|p| p == pointer),
        "no error at {pointer}: {pointers:?}"
    );
}

fn assert_ok(a: &Answer) {
    assert_eq!(a.outcome, "ok", "{:?}", a.body);
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text })
}

fn option(text: &str, value: &str) -> Value {
    json!({ "text": plain(text), "value": value })
}

fn options(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| option(&format!("Option {i}"), &format!("v{i}")))
        .collect()
}

fn actions(elements: Value) -> Value {
    json!([{ "type": "actions", "elements": elements }])
}

#[test]
fn a_permalink_to_a_dm_takes_the_user_id_or_the_dm_id_and_opens_nothing() {
    let f = fake();
    let ts = f.post("U1", "hello");
    let by_user = f.json(
        "chat.getPermalink",
        json!({ "channel": "U1", "message_ts": ts }),
    );
    let by_dm = f.json(
        "chat.getPermalink",
        json!({ "channel": "DU1", "message_ts": ts }),
    );
    assert_ok(&by_user);
    assert_eq!(by_user.body, by_dm.body);
    assert_eq!(by_user.body["channel"], "DU1");
    assert_eq!(
        by_user.body["permalink"],
        format!(
            "https://fake-slack.test/archives/DU1/p{}",
            ts.replace('.', "")
        )
    );
    let stranger = f.json(
        "chat.getPermalink",
        json!({ "channel": "U9", "message_ts": ts }),
    );
    assert_eq!(stranger.outcome, "channel_not_found");
    assert_eq!(f.state().dms.len(), 1, "asking opened no DM");
    let no_channel = f.json("chat.getPermalink", json!({ "message_ts": ts }));
    assert_eq!(no_channel.outcome, "channel_not_found");
    let no_ts = f.json("chat.getPermalink", json!({ "channel": "DU1" }));
    assert_eq!(no_ts.outcome, "message_not_found");
    // A DM that is open but empty exists; its messages do not.
    assert_ok(&f.json("conversations.open", json!({ "users": "U2" })));
    let empty = f.json(
        "chat.getPermalink",
        json!({ "channel": "DU2", "message_ts": ts }),
    );
    assert_eq!(empty.outcome, "message_not_found");
    // Form bodies too.
    assert_ok(&f.form(
        "chat.getPermalink",
        &[("channel", "DU1"), ("message_ts", &ts)],
    ));
}

#[test]
fn permalinks_and_group_lists_have_their_tiers_rate_limits() {
    let f = fake();
    let ts = f.post("C1", "hello");
    f.state().buckets = Some(HashMap::new());
    for i in 0..100 {
        let a = f.json(
            "chat.getPermalink",
            json!({ "channel": "C1", "message_ts": ts }),
        );
        assert_eq!(a.outcome, "ok", "call {i}");
    }
    let over = f.json(
        "chat.getPermalink",
        json!({ "channel": "C1", "message_ts": ts }),
    );
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(over.retry_after.is_some_and(|s| s >= 1));
    for i in 0..20 {
        assert_eq!(
            f.json("usergroups.list", json!({})).outcome,
            "ok",
            "call {i}"
        );
    }
    let over = f.json("usergroups.list", json!({}));
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.body["error"], "ratelimited");
}

#[test]
fn a_group_list_names_members_only_when_asked_to() {
    let f = fake();
    {
        let mut ws = f.state();
        ws.usergroups
            .insert("S0ONCALL".into(), vec!["U1".into(), "U2".into()]);
        ws.handles.insert("S0ONCALL".into(), "oncall".into());
    }
    let plain = f.json("usergroups.list", json!({}));
    assert_eq!(
        plain.body["usergroups"],
        json!([{ "id": "S0ONCALL", "handle": "oncall", "name": "oncall" }])
    );
    let with_users = f.json("usergroups.list", json!({ "include_users": true }));
    assert_eq!(
        with_users.body["usergroups"][0]["users"],
        json!(["U1", "U2"])
    );
    let form = f.form(
        "usergroups.list",
        &[("include_users", "true"), ("include_count", "true")],
    );
    assert_eq!(form.body["usergroups"][0]["users"], json!(["U1", "U2"]));
    assert_eq!(form.body["usergroups"][0]["user_count"], 2);
}

#[test]
fn a_form_body_broadcasts_with_the_string_true_and_only_in_a_thread() {
    let f = fake();
    let root = f.post("C1", "root");
    for (thread, flag, want) in [
        (true, "true", true),
        (true, "1", true),
        (true, "false", false),
        (false, "true", false),
    ] {
        let mut fields = vec![
            ("channel", "C1"),
            ("text", "reply"),
            ("reply_broadcast", flag),
        ];
        if thread {
            fields.push(("thread_ts", &root));
        }
        let a = f.form("chat.postMessage", &fields);
        assert_ok(&a);
        let ts = a.body["ts"].as_str().unwrap();
        let stored = f
            .state()
            .messages
            .iter()
            .find(|m| m.ts == ts)
            .cloned()
            .unwrap();
        assert_eq!(
            stored.broadcast, want,
            "thread {thread}, reply_broadcast={flag}"
        );
    }
    let a = f.json(
        "chat.postMessage",
        json!({ "channel": "C1", "text": "r", "thread_ts": root, "reply_broadcast": false }),
    );
    assert_ok(&a);
    assert!(!f.state().messages.last().unwrap().broadcast);
}

#[test]
fn an_overflow_menu_is_held_to_slacks_limits() {
    let f = fake();
    let menu =
        |opts: Vec<Value>| json!({ "type": "overflow", "action_id": "more", "options": opts });
    assert_ok(&f.blocks(actions(json!([menu(options(2))]))));
    assert_ok(&f.blocks(actions(json!([menu(options(5))]))));
    // A section accessory, with a confirmation.
    let mut confirmed = menu(options(3));
    confirmed["confirm"] = json!({
        "title": plain("Sure?"), "text": plain("Really"),
        "confirm": plain("Yes"), "deny": plain("No"),
    });
    assert_ok(&f.blocks(json!([{
        "type": "section", "text": plain("x"), "accessory": confirmed.clone()
    }])));
    for (opts, pointer) in [
        (options(1), "/blocks/0/elements/0/options"),
        (options(6), "/blocks/0/elements/0/options"),
    ] {
        assert_refused(
            &f.blocks(actions(json!([menu(opts)]))),
            "invalid_blocks",
            pointer,
        );
    }
    let mut long = options(2);
    long[1] = option(&"x".repeat(76), "v");
    assert_refused(
        &f.blocks(actions(json!([menu(long)]))),
        "invalid_blocks",
        "/blocks/0/elements/0/options/1/text/text",
    );
    let mut at_limit = options(2);
    at_limit[1] = option(&"x".repeat(75), &"v".repeat(150));
    assert_ok(&f.blocks(actions(json!([menu(at_limit)]))));
    let mut rich = options(2);
    rich[0]["text"]["type"] = json!("mrkdwn");
    assert_refused(
        &f.blocks(actions(json!([menu(rich)]))),
        "invalid_blocks",
        "/blocks/0/elements/0/options/0/text/type",
    );
    let mut no_value = options(2);
    no_value[0].as_object_mut().unwrap().remove("value");
    assert_refused(
        &f.blocks(actions(json!([menu(no_value)]))),
        "invalid_blocks",
        "/blocks/0/elements/0/options/0/value",
    );
    let twice = json!([
        { "type": "button", "action_id": "more", "text": plain("Go") },
        menu(options(2)),
    ]);
    assert_refused(
        &f.blocks(actions(twice)),
        "invalid_blocks",
        "/blocks/0/elements/1/action_id",
    );
    confirmed["confirm"]["title"] = plain(&"t".repeat(101));
    assert_refused(
        &f.blocks(actions(json!([confirmed]))),
        "invalid_blocks",
        "/blocks/0/elements/0/confirm/title/text",
    );
    // chat.update holds it to the same rules.
    let ts = f.post("C1", "x");
    let update = f.json(
        "chat.update",
        json!({ "channel": "C1", "ts": ts, "text": "t", "blocks": actions(json!([menu(options(6))])) }),
    );
    assert_refused(&update, "invalid_blocks", "/blocks/0/elements/0/options");
}

fn modal(element: Value) -> Value {
    json!({
        "trigger_id": "1.2.abc",
        "view": {
            "type": "modal", "title": plain("Pick"), "submit": plain("Go"),
            "blocks": [{ "type": "input", "block_id": "b", "label": plain("L"), "element": element }],
        },
    })
}

#[test]
fn radio_buttons_and_checkboxes_take_one_to_ten_options_in_either_text() {
    let f = fake();
    for kind in ["radio_buttons", "checkboxes"] {
        let mut opts = options(10);
        opts[0]["text"] = json!({ "type": "mrkdwn", "text": "*bold*" });
        let el = json!({ "type": kind, "action_id": "pick", "options": opts });
        assert_ok(&f.json("views.open", modal(el.clone())));
        assert_ok(&f.blocks(actions(json!([el]))));
        for n in [0, 11] {
            let el = json!({ "type": kind, "action_id": "pick", "options": options(n) });
            let a = f.json("views.open", modal(el.clone()));
            assert_refused(&a, "invalid_arguments", "/view/blocks/0/element/options");
            assert_refused(
                &f.blocks(actions(json!([el]))),
                "invalid_blocks",
                "/blocks/0/elements/0/options",
            );
        }
        let mut long = options(2);
        long[0]["text"] = json!({ "type": "mrkdwn", "text": "x".repeat(76) });
        let el = json!({ "type": kind, "options": long });
        assert_refused(
            &f.blocks(actions(json!([el]))),
            "invalid_blocks",
            "/blocks/0/elements/0/options/0/text/text",
        );
    }
    let chosen = json!({ "type": "radio_buttons", "options": options(3), "initial_option": option("Option 1", "v1") });
    assert_ok(&f.json("views.open", modal(chosen)));
    let stranger = json!({ "type": "radio_buttons", "options": options(3), "initial_option": option("Other", "v9") });
    assert_refused(
        &f.json("views.open", modal(stranger)),
        "invalid_arguments",
        "/view/blocks/0/element/initial_option",
    );
    let ticked = json!({ "type": "checkboxes", "options": options(3), "initial_options": [option("Option 9", "v9")] });
    assert_refused(
        &f.blocks(actions(json!([ticked]))),
        "invalid_blocks",
        "/blocks/0/elements/0/initial_options/0",
    );
}

#[test]
fn a_home_is_published_per_user_within_100_blocks_and_a_stale_hash_is_refused() {
    let f = fake();
    let section = json!({ "type": "section", "text": plain("x") });
    let home = |n: usize| json!({ "type": "home", "blocks": vec![section.clone(); n] });
    let first = f.json(
        "views.publish",
        json!({ "user_id": "U1", "view": home(100) }),
    );
    assert_ok(&first);
    let hash = first.body["view"]["hash"].as_str().unwrap().to_string();
    assert_refused(
        &f.json(
            "views.publish",
            json!({ "user_id": "U1", "view": home(101) }),
        ),
        "invalid_arguments",
        "/view/blocks",
    );
    assert_refused(
        &f.json(
            "views.publish",
            json!({ "user_id": "U1", "view": { "type": "modal", "blocks": [] } }),
        ),
        "invalid_arguments",
        "/view/type",
    );
    assert_eq!(
        f.json("views.publish", json!({ "view": home(1) })).outcome,
        "invalid_arguments"
    );
    // Published again with the hash read: fine; with the old hash: refused.
    let again = f.json(
        "views.publish",
        json!({ "user_id": "U1", "view": home(2), "hash": hash }),
    );
    assert_ok(&again);
    assert_eq!(
        again.body["view"]["id"], first.body["view"]["id"],
        "one Home per user"
    );
    assert_eq!(
        f.json(
            "views.publish",
            json!({ "user_id": "U1", "view": home(3), "hash": hash })
        )
        .outcome,
        "hash_conflict"
    );
    assert_eq!(f.state().homes["U1"]["blocks"].as_array().unwrap().len(), 2);
    assert!(!f.state().homes.contains_key("U2"));
}

#[test]
fn a_modal_is_updated_by_view_id_and_a_stale_hash_is_refused() {
    let f = fake();
    let opened = f.json(
        "views.open",
        modal(json!({ "type": "plain_text_input", "action_id": "v" })),
    );
    assert_ok(&opened);
    let id = opened.body["view"]["id"].as_str().unwrap().to_string();
    let hash = opened.body["view"]["hash"].as_str().unwrap().to_string();
    let next = modal(json!({ "type": "datetimepicker", "action_id": "when" }));
    let updated = f.json(
        "views.update",
        json!({ "view_id": id, "hash": hash, "view": next["view"] }),
    );
    assert_ok(&updated);
    assert_eq!(updated.body["view"]["id"], id.as_str());
    assert_eq!(
        f.json(
            "views.update",
            json!({ "view_id": id, "hash": hash, "view": next["view"] })
        )
        .outcome,
        "hash_conflict"
    );
    assert_eq!(
        f.json(
            "views.update",
            json!({ "view_id": "V999", "view": next["view"] })
        )
        .outcome,
        "not_found"
    );
    assert_eq!(
        f.json("views.update", json!({ "view": next["view"] }))
            .outcome,
        "invalid_arguments"
    );
    assert_eq!(
        f.state().views[0].view["blocks"][0]["element"]["type"],
        "datetimepicker"
    );
}

#[test]
fn a_datetimepicker_takes_unix_seconds_in_inputs_and_actions_only() {
    let f = fake();
    let picker = json!({ "type": "datetimepicker", "action_id": "when", "initial_date_time": 1_767_000_000 });
    assert_ok(&f.json("views.open", modal(picker.clone())));
    assert_ok(&f.blocks(actions(json!([picker.clone()]))));
    assert_ok(&f.blocks(actions(json!([{ "type": "datetimepicker" }]))));
    for bad in [
        json!("1767000000"),
        json!(-1),
        json!(1.5),
        json!(99_999_999_999u64),
    ] {
        let el = json!({ "type": "datetimepicker", "initial_date_time": bad });
        assert_refused(
            &f.json("views.open", modal(el)),
            "invalid_arguments",
            "/view/blocks/0/element/initial_date_time",
        );
    }
    let accessory = json!([{ "type": "section", "text": plain("x"), "accessory": picker }]);
    assert_refused(
        &f.blocks(accessory),
        "invalid_blocks",
        "/blocks/0/accessory/type",
    );
}

#[test]
fn an_element_needs_a_known_type_for_its_place() {
    let f = fake();
    assert_refused(
        &f.blocks(actions(json!([{ "type": "sparkle_button" }]))),
        "invalid_blocks",
        "/blocks/0/elements/0/type",
    );
    assert_refused(
        &f.blocks(actions(json!([{ "action_id": "x", "text": plain("Go") }]))),
        "invalid_blocks",
        "/blocks/0/elements/0/type",
    );
    // A text input belongs in an input block, not an actions block.
    assert_refused(
        &f.blocks(actions(json!([{ "type": "plain_text_input" }]))),
        "invalid_blocks",
        "/blocks/0/elements/0/type",
    );
    assert_ok(&f.json(
        "views.open",
        modal(json!({ "type": "plain_text_input", "action_id": "v" })),
    ));
    assert_refused(
        &f.json(
            "views.open",
            modal(json!({ "type": "button", "text": plain("Go") })),
        ),
        "invalid_arguments",
        "/view/blocks/0/element/type",
    );
}

#[test]
fn message_limits_are_slacks() {
    let f = fake();
    let section = |n: usize| json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "x".repeat(n) } }]);
    assert_ok(&f.blocks(section(3000)));
    assert_refused(
        &f.blocks(section(3001)),
        "invalid_blocks",
        "/blocks/0/text/text",
    );
    let header = |n: usize| json!([{ "type": "header", "text": plain(&"h".repeat(n)) }]);
    assert_ok(&f.blocks(header(150)));
    assert_refused(
        &f.blocks(header(151)),
        "invalid_blocks",
        "/blocks/0/text/text",
    );
    let dividers = |n: usize| Value::Array(vec![json!({ "type": "divider" }); n]);
    assert_ok(&f.blocks(dividers(50)));
    assert_refused(&f.blocks(dividers(51)), "invalid_blocks", "/blocks");
    let button = |n: usize| {
        actions(json!([{ "type": "button", "action_id": "b", "text": plain(&"b".repeat(n)) }]))
    };
    assert_ok(&f.blocks(button(75)));
    assert_refused(
        &f.blocks(button(76)),
        "invalid_blocks",
        "/blocks/0/elements/0/text/text",
    );
    let context = |n: usize| json!([{ "type": "context", "elements": vec![json!({ "type": "mrkdwn", "text": "c" }); n] }]);
    assert_ok(&f.blocks(context(10)));
    assert_refused(
        &f.blocks(context(11)),
        "invalid_blocks",
        "/blocks/0/elements",
    );
    let text = |n: usize| json!({ "channel": "C1", "text": "t".repeat(n) });
    assert_ok(&f.json("chat.postMessage", text(40_000)));
    assert_eq!(
        f.json("chat.postMessage", text(40_001)).outcome,
        "msg_too_long"
    );
    let ts = f.post("C1", "short");
    let mut long = text(40_001);
    long["ts"] = json!(ts);
    assert_eq!(f.json("chat.update", long).outcome, "msg_too_long");
    assert_eq!(f.state().messages.last().unwrap().text, "short");
}

#[test]
fn a_created_channel_follows_slacks_naming_rules_and_names_are_unique() {
    let f = fake();
    let a = f.json(
        "conversations.create",
        json!({ "name": "sla-revenue-daily-0302" }),
    );
    assert_ok(&a);
    let id = a.body["channel"]["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["channel"]["creator"], BOT_USER_ID);
    let again = f.json(
        "conversations.create",
        json!({ "name": "sla-revenue-daily-0302" }),
    );
    assert_eq!(again.outcome, "name_taken");
    for bad in ["Sla-Revenue", "sla revenue", "sla.revenue", "sla#1"] {
        let a = f.json("conversations.create", json!({ "name": bad }));
        assert_eq!(a.outcome, "invalid_name_specials", "{bad}");
    }
    let long = "a".repeat(81);
    assert_eq!(
        f.json("conversations.create", json!({ "name": long }))
            .outcome,
        "invalid_name_maxlength"
    );
    assert_eq!(
        f.json("conversations.create", json!({ "name": "a".repeat(80) }))
            .outcome,
        "ok"
    );
    assert_eq!(
        f.json("conversations.create", json!({})).outcome,
        "invalid_name_required"
    );
    let state = f.state();
    let created = state.created.iter().find(|c| c.id == id).unwrap();
    assert_eq!(created.members, vec![BOT_USER_ID.to_string()]);
}

#[test]
fn invitations_topics_and_archiving_answer_slacks_errors() {
    let f = fake();
    let a = f.form("conversations.create", &[("name", "sla-x")]);
    let id = a.body["channel"]["id"].as_str().unwrap().to_string();
    assert_ok(&f.form(
        "conversations.invite",
        &[("channel", &id), ("users", "U1,U2")],
    ));
    // Some new: fine; all already in: refused.
    assert_ok(&f.form(
        "conversations.invite",
        &[("channel", &id), ("users", "U2,U3")],
    ));
    assert_eq!(
        f.form(
            "conversations.invite",
            &[("channel", &id), ("users", "U1,U3")]
        )
        .outcome,
        "already_in_channel"
    );
    assert_eq!(
        f.form(
            "conversations.invite",
            &[("channel", &id), ("users", BOT_USER_ID)]
        )
        .outcome,
        "cant_invite_self"
    );
    assert_eq!(
        f.form(
            "conversations.invite",
            &[("channel", &id), ("users", "nobody")]
        )
        .outcome,
        "user_not_found"
    );
    assert_eq!(
        f.form(
            "conversations.invite",
            &[("channel", "C404"), ("users", "U1")]
        )
        .outcome,
        "channel_not_found"
    );
    assert_ok(&f.form(
        "conversations.setTopic",
        &[("channel", &id), ("topic", "job a")],
    ));
    assert_eq!(
        f.form(
            "conversations.setTopic",
            &[("channel", &id), ("topic", &"t".repeat(251))]
        )
        .outcome,
        "too_long"
    );
    f.post(&id, "hello");
    assert_ok(&f.form("conversations.archive", &[("channel", &id)]));
    assert_eq!(
        f.form("conversations.archive", &[("channel", &id)]).outcome,
        "already_archived"
    );
    assert_eq!(
        f.json("chat.postMessage", json!({ "channel": id, "text": "late" }))
            .outcome,
        "is_archived"
    );
    assert_eq!(
        f.form("conversations.invite", &[("channel", &id), ("users", "U9")])
            .outcome,
        "is_archived"
    );
    let state = f.state();
    let c = &state.created[0];
    assert_eq!(c.members, vec![BOT_USER_ID, "U1", "U2", "U3"]);
    assert_eq!(c.topic, "job a");
    assert!(c.archived);
}
