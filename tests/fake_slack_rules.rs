//! The fake Slack's rules that issue 19 relies on, exercised through the
//! bot's own Web API client: permalinks, names, broadcast replies, and the
//! overflow menu's limits.

mod common;

use common::fake_slack::FakeSlack;
use serde_json::json;
use servo_sla_bot::config::SlackTuning;
use servo_sla_bot::domain::secret::Secret;
use servo_sla_bot::runtime::metrics::Metrics;
use servo_sla_bot::slack::api::{SlackApi, SlackCallError};
use std::sync::Arc;

async fn client() -> (FakeSlack, SlackApi) {
    let slack = FakeSlack::start().await;
    let api = SlackApi::new(
        &slack.base_url(),
        &Secret::new(slack.token()),
        SlackTuning::default(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    (slack, api)
}

fn refused(e: SlackCallError) -> String {
    match e {
        SlackCallError::Refused { code, .. } => code,
        other => panic!("not a refusal: {other}"),
    }
}

#[tokio::test]
async fn a_permalink_names_a_message_that_exists_and_its_thread() {
    let (slack, api) = client().await;
    let root = api
        .call(
            "chat.postMessage",
            &json!({"channel": "C0ALERTS", "text": "root"}),
        )
        .await
        .unwrap();
    let ts = root["ts"].as_str().unwrap().to_string();
    let reply = api
        .call(
            "chat.postMessage",
            &json!({"channel": "C0ALERTS", "text": "reply", "thread_ts": ts}),
        )
        .await
        .unwrap();
    let link = api
        .call(
            "chat.getPermalink",
            &json!({"channel": "C0ALERTS", "message_ts": ts}),
        )
        .await
        .unwrap();
    assert_eq!(
        link["permalink"],
        format!(
            "https://fake-slack.test/archives/C0ALERTS/p{}",
            ts.replace('.', "")
        )
    );
    let reply_ts = reply["ts"].as_str().unwrap();
    let link = api
        .call(
            "chat.getPermalink",
            &json!({"channel": "C0ALERTS", "message_ts": reply_ts}),
        )
        .await
        .unwrap();
    assert!(link["permalink"]
        .as_str()
        .unwrap()
        .ends_with(&format!("?thread_ts={ts}&cid=C0ALERTS")));
    let missing = api
        .call(
            "chat.getPermalink",
            &json!({"channel": "C0ALERTS", "message_ts": "1.000"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused(missing), "message_not_found");
    let nowhere = api
        .call(
            "chat.getPermalink",
            &json!({"channel": "C0NOWHERE", "message_ts": ts}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused(nowhere), "channel_not_found");
    assert_eq!(slack.calls_to("chat.getPermalink").len(), 4);
}

#[tokio::test]
async fn people_and_groups_have_names_to_name_them_by() {
    let (slack, api) = client().await;
    slack.set_usergroup("S0ONCALL", &["U1", "U2"]);
    slack.set_usergroup("S0PLATFORM", &["U3"]);
    slack.set_usergroup_handle("S0ONCALL", "oncall");
    slack.set_user_name("U1", "Ada");
    let groups = api.call("usergroups.list", &json!({})).await.unwrap();
    let groups = groups["usergroups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["id"], "S0ONCALL");
    assert_eq!(groups[0]["handle"], "oncall");
    assert_eq!(
        groups[1]["handle"], "s0platform",
        "the id lowercased by default"
    );
    assert!(groups[0].get("users").is_none(), "members only when asked");
    let groups = api
        .call("usergroups.list", &json!({"include_users": true}))
        .await
        .unwrap();
    assert_eq!(groups["usergroups"][0]["users"], json!(["U1", "U2"]));
    let ada = api
        .call("users.info", &json!({"user": "U1"}))
        .await
        .unwrap();
    assert_eq!(ada["user"]["profile"]["display_name"], "Ada");
    assert_eq!(ada["user"]["profile"]["real_name"], "Ada");
    assert_eq!(ada["user"]["real_name"], "Ada");
    let other = api
        .call("users.info", &json!({"user": "U9"}))
        .await
        .unwrap();
    assert_eq!(other["user"]["profile"]["display_name"], "u9");
}

#[tokio::test]
async fn a_broadcast_reply_is_marked_and_a_broadcast_without_a_thread_is_not() {
    let (slack, api) = client().await;
    let root = api
        .call(
            "chat.postMessage",
            &json!({"channel": "C0ALERTS", "text": "root"}),
        )
        .await
        .unwrap();
    api.call(
        "chat.postMessage",
        &json!({"channel": "C0ALERTS", "text": "loud", "thread_ts": root["ts"], "reply_broadcast": true}),
    )
    .await
    .unwrap();
    api.call(
        "chat.postMessage",
        &json!({"channel": "C0ALERTS", "text": "quiet", "thread_ts": root["ts"]}),
    )
    .await
    .unwrap();
    api.call(
        "chat.postMessage",
        &json!({"channel": "C0ALERTS", "text": "top", "reply_broadcast": true}),
    )
    .await
    .unwrap();
    let marked: Vec<(String, bool)> = slack
        .messages()
        .into_iter()
        .map(|m| (m.text, m.broadcast))
        .collect();
    assert_eq!(
        marked,
        [
            ("root".to_string(), false),
            ("loud".to_string(), true),
            ("quiet".to_string(), false),
            ("top".to_string(), false)
        ]
    );
}

#[tokio::test]
async fn an_overflow_menu_needs_two_to_five_options_with_short_values() {
    let (_slack, api) = client().await;
    let menu = |options: serde_json::Value| {
        json!({
            "channel": "C0ALERTS", "text": "menu",
            "blocks": [{"type": "actions", "elements": [
                {"type": "overflow", "action_id": "more", "options": options}
            ]}]
        })
    };
    let option = |v: &str| json!({"text": {"type": "plain_text", "text": "Do it"}, "value": v});
    assert!(api
        .call(
            "chat.postMessage",
            &menu(json!([option("a|1"), option("b|2")]))
        )
        .await
        .is_ok());
    let one = api
        .call("chat.postMessage", &menu(json!([option("a|1")])))
        .await
        .unwrap_err();
    assert_eq!(refused(one), "invalid_blocks");
    let long = api
        .call(
            "chat.postMessage",
            &menu(json!([option(&"x".repeat(151)), option("b")])),
        )
        .await
        .unwrap_err();
    assert_eq!(refused(long), "invalid_blocks");
}

/// As Slack documents them: `conversations.replies` returns the parent and
/// then its replies earliest first, a page at a time, with a cursor to the
/// next page; `conversations.history` returns the newest first.
#[tokio::test]
async fn a_threads_replies_come_earliest_first_in_pages_and_history_newest_first() {
    let (_slack, api) = client().await;
    let root = api
        .call(
            "chat.postMessage",
            &json!({"channel": "C0ALERTS", "text": "root"}),
        )
        .await
        .unwrap();
    let ts = root["ts"].as_str().unwrap().to_string();
    for i in 1..=5 {
        api.call(
            "chat.postMessage",
            &json!({"channel": "C0ALERTS", "text": format!("reply {i}"), "thread_ts": ts}),
        )
        .await
        .unwrap();
    }
    api.call(
        "chat.postMessage",
        &json!({"channel": "C0ALERTS", "text": "later"}),
    )
    .await
    .unwrap();
    let texts = |page: &serde_json::Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    let first = api
        .call(
            "conversations.replies",
            &json!({"channel": "C0ALERTS", "ts": ts, "limit": 4}),
        )
        .await
        .unwrap();
    assert_eq!(texts(&first), ["root", "reply 1", "reply 2", "reply 3"]);
    assert_eq!(first["has_more"], true);
    let cursor = first["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!cursor.is_empty());
    let second = api
        .call(
            "conversations.replies",
            &json!({"channel": "C0ALERTS", "ts": ts, "limit": 4, "cursor": cursor}),
        )
        .await
        .unwrap();
    assert_eq!(texts(&second), ["reply 4", "reply 5"]);
    assert_eq!(second["has_more"], false);
    assert_eq!(second["response_metadata"]["next_cursor"], "");
    let bad = api
        .call(
            "conversations.replies",
            &json!({"channel": "C0ALERTS", "ts": ts, "cursor": "not-ours"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused(bad), "invalid_cursor");

    let history = api
        .call(
            "conversations.history",
            &json!({"channel": "C0ALERTS", "limit": 10}),
        )
        .await
        .unwrap();
    assert_eq!(texts(&history), ["later", "root"]);
}
