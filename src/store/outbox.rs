//! The outbox: Slack calls that must not be lost, delivered by a worker with
//! retries. A row records the resulting channel/ts, so a restart neither
//! loses nor repeats a message.

use super::claims::{claim_sql, Claim, ClaimTable};
use super::{
    clocked, in_tx, json_text, ms, on_pool, Clocked, NewOutboxMessage, OutboxMessage, OutboxRow,
    OutboxStatus, Result, Store, StoreError, LINK_KINDS, THREAD_FIELDS,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Stands in a payload for the link to a message (an alert, an extension
/// request) whose post may not have gone out yet; the worker puts the
/// message's `chat.getPermalink` in its place when it sends the payload.
pub const PERMALINK: &str = "%SLACK_PERMALINK%";
/// The `_permalink` field of a payload that uses [`PERMALINK`]: the message
/// it links to (an alert id, or `approval:<id>`), and the channel to link to
/// if that message cannot be linked.
pub fn permalink_spec(anchor: &str, channel: &str) -> Value {
    json!({
        "anchor": anchor,
        "fallback": format!("https://slack.com/app_redirect?channel={channel}"),
    })
}

/// The message metadata every post carries, naming its outbox row: how the
/// outbox finds a post Slack accepted when the answer was lost.
pub const METADATA_EVENT: &str = "servo_sla_bot_outbox";

/// Claimable: pending, due (by the caller's clock, `$3`), unclaimed or its
/// claim expired (by the database's clock), and no earlier pending message
/// with the same ordering key (strict order within a key: a reply never
/// overtakes the post it threads under, even while that post waits for a
/// retry). Shared by both engines' claim statements.
macro_rules! claimable_outbox {
    ($engine:ident) => {
        concat!(
            "o.status = 'pending' AND o.next_attempt_at_ms <= $3 \
             AND (o.claimed_by IS NULL OR o.claim_until_ms <= ",
            super::db_now_ms!($engine),
            ") AND (o.ordering_key IS NULL OR NOT EXISTS ( \
             SELECT 1 FROM outbox e \
             WHERE e.ordering_key = o.ordering_key AND e.status = 'pending' AND e.id < o.id))"
        )
    };
}

/// Claims due messages in priority order, then id, counting each claim as
/// an attempt and as an unsettled one.
const CLAIM_OUTBOX: Clocked = claim_sql!(
    table: "outbox",
    alias: "o",
    claimable: claimable_outbox,
    order: "o.priority, o.id",
    set: ", attempts = attempts + 1, unsettled_attempts = unsettled_attempts + 1",
);

pub(crate) fn check_message(msg: &NewOutboxMessage) -> Result<()> {
    check_one_of("link_kind", &msg.link_kind, LINK_KINDS)?;
    check_one_of("thread_field", &msg.thread_field, THREAD_FIELDS)
}

fn check_one_of(what: &str, value: &Option<String>, allowed: &[&str]) -> Result<()> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(StoreError::Invalid(format!(
            "{what} '{v}' is not one of {allowed:?}"
        ))),
        _ => Ok(()),
    }
}

/// The INSERT of outbox rows, up to its conflict clause: shared by
/// [`Store::enqueue_many`] and a transition's effects. A macro, so that each
/// engine's branch builds its own query. 13 binds a row.
macro_rules! insert_outbox {
    ($msgs:expr, $now:expr) => {{
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO outbox (dedup_key, method, payload, ordering_key, thread_alert_id, \
               thread_field, link_kind, link_id, status, attempts, next_attempt_at_ms, \
               created_at_ms, priority) ",
        );
        qb.push_values($msgs, |mut row, msg| {
            row.push_bind(&msg.dedup_key)
                .push_bind(&msg.method)
                .push_bind($crate::store::json_text(&msg.payload))
                .push_bind(&msg.ordering_key)
                .push_bind(&msg.thread_alert_id)
                .push_bind(&msg.thread_field)
                .push_bind(&msg.link_kind)
                .push_bind(&msg.link_id)
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind($crate::store::ms(msg.not_before.unwrap_or($now)))
                .push_bind($crate::store::ms($now))
                .push_bind(msg.priority());
        });
        qb
    }};
}
pub(crate) use insert_outbox;

/// Coalesces edits: a pending edit of a message (`chat.update` filled from
/// its anchor's `ts`) that a newer pending edit of the same message follows
/// is not sent; only the newest content matters. Rows a worker holds are
/// left alone, and so is a row whose claim ran out with its worker (whether
/// a claim has run out is the database clock's to say, and this runs inside
/// a transition's transaction on either engine): the next claim delivers it
/// and the newer edit follows. The superseded row is closed as sent, with
/// an answer that says so, so nothing pending is left behind it.
macro_rules! supersede_edits {
    ($tx:ident, $now:expr) => {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at_ms = $1, \
               response = '{\"ok\":true,\"superseded\":true}', \
               last_error = 'superseded by a newer edit of the same message' \
             WHERE method = 'chat.update' AND status = 'pending' AND thread_field = 'ts' \
               AND thread_alert_id IS NOT NULL AND claimed_by IS NULL \
               AND EXISTS (SELECT 1 FROM outbox n WHERE n.method = 'chat.update' \
                   AND n.status = 'pending' AND n.thread_field = 'ts' \
                   AND n.thread_alert_id = outbox.thread_alert_id AND n.id > outbox.id)",
        )
        .bind($crate::store::ms($now))
        .execute(&mut *$tx)
        .await?;
    };
}
pub(crate) use supersede_edits;

impl Store {
    /// Writes a Slack call to deliver; `None` if the dedup key was used before
    /// (whatever became of that message).
    ///
    /// Ids increase, and a key's messages are delivered in id order. On
    /// PostgreSQL two enqueues for one key that race each other may commit
    /// out of id order; a key's messages come from one flow, in sequence.
    pub async fn enqueue(&self, msg: NewOutboxMessage, now: DateTime<Utc>) -> Result<Option<i64>> {
        check_message(&msg)?;
        Ok(self
            .enqueue_chunk(std::slice::from_ref(&msg), now)
            .await?
            .first()
            .copied())
    }

    /// Writes several Slack calls with one statement (a page's DMs and its
    /// thread note): each as [`Store::enqueue`] would, skipping used dedup
    /// keys. Returns how many were written.
    pub async fn enqueue_many(
        &self,
        msgs: &[NewOutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        for msg in msgs {
            check_message(msg)?;
        }
        let mut written = 0;
        // 12 binds a row: 400 rows stay well under SQLite's 32,766 variables.
        for chunk in msgs.chunks(400) {
            written += self.enqueue_chunk(chunk, now).await?.len();
        }
        Ok(written)
    }

    /// One INSERT for the messages; the ids of those written, in order.
    async fn enqueue_chunk(
        &self,
        msgs: &[NewOutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let ids: Vec<i64> = in_tx!(self, tx => {
            let mut qb = insert_outbox!(msgs, now);
            qb.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id");
            let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
            // A thread note is also a line in the alert's incident channel.
            let lines = super::incident_lines::incident_lines!(tx, msgs);
            if !lines.is_empty() {
                let mut qb = insert_outbox!(&lines, now);
                qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            if msgs.iter().any(|m| m.method == "chat.update") {
                supersede_edits!(tx, now);
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Claims up to `limit` messages due at `now` (the caller's clock) for
    /// `worker`, for `lease` on the database's clock, in id order,
    /// incrementing their attempts and their unsettled attempts (set back to
    /// 0 when the end of an attempt that reached Slack is recorded; see
    /// [`OutboxMessage::unsettled_attempts`]). A claimed row is nobody else's
    /// until its lease expires (a crashed worker's rows come back), whatever
    /// the clocks of the replicas say.
    pub async fn claim_due_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let claim = Claim {
            worker,
            now,
            lease,
            limit,
        };
        let rows: Vec<OutboxRow> = self.claim_rows(&CLAIM_OUTBOX, claim, &[]).await?;
        let mut claimed: Vec<OutboxMessage> = rows
            .into_iter()
            .map(OutboxMessage::try_from)
            .collect::<Result<_>>()?;
        // RETURNING promises no order.
        claimed.sort_by_key(|m| m.id);
        if !claimed.is_empty() {
            tracing::debug!(worker, count = claimed.len(), "claimed outbox messages");
        }
        Ok(claimed)
    }

    /// Marks a message that `worker` still holds as sent, with Slack's
    /// answer. If it links to an alert or approval and the answer has a
    /// channel and ts, records them there (first delivery wins) in the same
    /// transaction: either both happen or neither does.
    pub async fn mark_outbox_sent(
        &self,
        id: i64,
        worker: &str,
        response: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let field = |name: &str| {
            response
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let (channel, ts) = (field("channel"), field("ts"));
        in_tx!(self, tx => {
            let link: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                "UPDATE outbox SET status = 'sent', response = $3, sent_at_ms = $4, \
                   claimed_by = NULL, claim_until_ms = NULL, last_error = NULL, unsettled_attempts = 0 \
                 WHERE id = $1 AND claimed_by = $2 AND status = 'pending' \
                 RETURNING link_kind, link_id")
                .bind(id)
                .bind(worker)
                .bind(json_text(response))
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
            let Some((kind, link_id)) = link else {
                // Not ours any more (lease expired and taken over), or done.
                return Ok(false);
            };
            if let (Some(kind), Some(link_id), Some(channel), Some(ts)) = (kind, link_id, &channel, &ts) {
                let sql = match kind.as_str() {
                    "alert" => "UPDATE alerts SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL",
                    "approval" => "UPDATE approvals SET channel = $2, ts = $3 WHERE id = $1 AND ts IS NULL",
                    // The CHECK constraint makes this unreachable; the message
                    // was delivered, so record that rather than resend it.
                    other => {
                        tracing::warn!(id, link_kind = other, "outbox message links to an unknown kind");
                        ""
                    }
                };
                if !sql.is_empty() {
                    sqlx::query(sql).bind(&link_id).bind(channel).bind(ts).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Hands a message that `worker` holds back until `until` without
    /// counting the claim as an attempt: it was paced, not tried. An earlier
    /// attempt that ended unrecorded stays unsettled: only this claim's
    /// count is taken back.
    pub async fn defer_outbox(&self, id: i64, worker: &str, until: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $3, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
               unsettled_attempts = CASE WHEN unsettled_attempts > 0 THEN unsettled_attempts - 1 ELSE 0 END, \
               claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(until))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Hands a message that `worker` holds back before calling Slack with it
    /// (the message it threads under or links to is not posted yet), to be
    /// tried again at `next_attempt_at`, recording why. Counted as an
    /// attempt, but an earlier attempt that ended unrecorded stays
    /// unsettled: only this claim's count is taken back.
    pub async fn mark_outbox_waiting(
        &self,
        id: i64,
        worker: &str,
        next_attempt_at: DateTime<Utc>,
        why: &str,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $3, last_error = $4, \
               unsettled_attempts = CASE WHEN unsettled_attempts > 0 THEN unsettled_attempts - 1 ELSE 0 END, \
               claimed_by = NULL, claim_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(next_attempt_at))
            .bind(why)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Hands a message that `worker` holds back after calling Slack with
    /// it, to be tried again at `next_attempt_at` (by any worker), recording
    /// why it failed. Its attempts are settled: `error` says what became of
    /// the call (and the look-up before it, if one was due, was made).
    pub async fn mark_outbox_retry(
        &self,
        id: i64,
        worker: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $3, last_error = $4, \
               claimed_by = NULL, claim_until_ms = NULL, unsettled_attempts = 0 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(ms(next_attempt_at))
            .bind(error)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Why the post of an alert (`anchor` = its id) or an extension request
    /// (`approval:<id>`) was refused for good, if it was: the message that
    /// replies and edits refer to will never exist.
    pub async fn anchor_refused(&self, anchor: &str) -> Result<Option<String>> {
        let (kind, id) = match anchor.split_once(':') {
            Some(("approval", id)) => ("approval", id),
            Some(_) => return Ok(None),
            None => ("alert", anchor),
        };
        let why: Option<Option<String>> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT last_error FROM outbox WHERE link_kind = $1 AND link_id = $2 AND status = 'failed' \
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.link_kind = $1 AND o.link_id = $2 \
                                 AND o.status IN ('pending', 'sent')) \
             ORDER BY id DESC LIMIT 1")
            .bind(kind)
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(why.map(|w| w.unwrap_or_else(|| "refused".into())))
    }

    /// What became of the row with this dedup key: its status and, when it
    /// failed, why (Slack's refusal). `None` when no row has the key.
    pub async fn outbox_fate(
        &self,
        dedup_key: &str,
    ) -> Result<Option<(OutboxStatus, Option<String>)>> {
        let row: Option<(String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT status, last_error FROM outbox WHERE dedup_key = $1")
            .bind(dedup_key)
            .fetch_optional(p)
            .await?);
        row.map(|(status, why)| Ok((status.parse::<OutboxStatus>()?, why)))
            .transpose()
    }

    /// Gives up on a message that `worker` holds (Slack refused it for good).
    /// It no longer blocks later messages with its ordering key.
    pub async fn mark_outbox_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $3, sent_at_ms = $4, \
               claimed_by = NULL, claim_until_ms = NULL, unsettled_attempts = 0 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'")
            .bind(id)
            .bind(worker)
            .bind(error)
            .bind(ms(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Extends every claim `worker` holds to `lease` from now, on the
    /// database's clock: it is still working on them. Returns how many it
    /// still holds.
    pub async fn renew_outbox_claims(&self, worker: &str, lease: chrono::Duration) -> Result<u64> {
        self.renew_claims(ClaimTable::Outbox, worker, lease).await
    }

    /// Hands back every claim of a worker that is shutting down, so another
    /// takes them now rather than when the leases expire.
    pub async fn release_outbox_claims(&self, worker: &str) -> Result<u64> {
        self.release_claims(ClaimTable::Outbox, worker).await
    }

    /// Messages in id order, all or of one status.
    pub async fn list_outbox(&self, status: Option<&str>) -> Result<Vec<OutboxMessage>> {
        let status = status
            .map(|s| s.parse::<OutboxStatus>().map(|s| s.as_str()))
            .transpose()?;
        let rows: Vec<OutboxRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id")
            .bind(status)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    /// When the worker should look next: the earliest time a pending message
    /// nobody holds becomes due. `None` when there is none. A held message
    /// is left out: its claim runs on the database's clock, not the
    /// caller's, and the worker looks again within a second anyway.
    pub async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>> {
        const SQL: Clocked = clocked!(
            "SELECT MIN(next_attempt_at_ms) FROM outbox WHERE status = 'pending' \
               AND (claimed_by IS NULL OR claim_until_ms <= ",
            NOW,
            ")",
        );
        let sql = self.sql(&SQL);
        let t: Option<i64> = on_pool!(self, p => sqlx::query_scalar(sql)
            .fetch_one(p)
            .await?);
        t.map(|t| super::from_ms(t, "outbox next due")).transpose()
    }
}
