//! An alert episode's incident channel and how the episode ended (issue 38).
//!
//! The channel is decided once, in the store: a claim row keyed by the
//! alert (one alert is one job's risk episode), inserted with the claim's
//! effects in one transaction, so whichever replica and however many
//! clicks, one of them opens it. Slack's `conversations.create` is the
//! claimed step of a timer; the channel it made is recorded with a
//! conditional update that carries the rest (invitations, topic, card,
//! links) as outbox rows. Archiving is once, the same way. While the channel
//! is open, every note in the alert's thread is also a line in it
//! (`incident_lines.rs`), written in the transaction that writes the note.

use super::once::Arg;
use super::{from_ms, ms, on_pool, open_alert_ids, Effects, EscalationPage, Result, Store};
use chrono::{DateTime, Utc};

/// An alert episode's incident channel, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentChannel {
    pub alert_id: String,
    pub tenant_id: String,
    pub job_id: String,
    /// The name asked for (before Slack's uniqueness made it `-2`, …).
    pub name: String,
    /// Slack's channel id, once created or linked.
    pub channel: Option<String>,
    /// An existing channel linked with `/backfill incident link`.
    pub linked: bool,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    /// Why Slack would not create it, when it would not.
    pub failed: Option<String>,
    pub archived_at: Option<DateTime<Utc>>,
    pub archived_by: Option<String>,
}

impl IncidentChannel {
    /// Open: created or linked, not archived.
    pub fn is_live(&self) -> bool {
        self.channel.is_some() && self.archived_at.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    alert_id: String,
    tenant_id: String,
    job_id: String,
    name: String,
    channel: Option<String>,
    linked: i64,
    requested_by: String,
    requested_at_ms: i64,
    opened_at_ms: Option<i64>,
    failed: Option<String>,
    archived_at_ms: Option<i64>,
    archived_by: Option<String>,
}

impl TryFrom<Row> for IncidentChannel {
    type Error = super::StoreError;
    fn try_from(r: Row) -> Result<IncidentChannel> {
        let opt = |m: Option<i64>, what: &str| m.map(|m| from_ms(m, what)).transpose();
        Ok(IncidentChannel {
            requested_at: from_ms(r.requested_at_ms, "incident_channels.requested_at_ms")?,
            opened_at: opt(r.opened_at_ms, "incident_channels.opened_at_ms")?,
            archived_at: opt(r.archived_at_ms, "incident_channels.archived_at_ms")?,
            alert_id: r.alert_id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            name: r.name,
            channel: r.channel,
            linked: r.linked != 0,
            requested_by: r.requested_by,
            failed: r.failed,
            archived_by: r.archived_by,
        })
    }
}

/// How an alert episode ended, as answered in its thread.
#[derive(Clone, Debug, PartialEq)]
pub struct Disposition {
    pub alert_id: String,
    pub tenant_id: String,
    pub job_id: String,
    pub asset: String,
    /// `mitigated`, `expected`, `false_alarm` or `missed`.
    pub disposition: String,
    pub note: Option<String>,
    pub answered_by: String,
    pub answered_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DispositionRow {
    alert_id: String,
    tenant_id: String,
    job_id: String,
    asset: String,
    disposition: String,
    note: Option<String>,
    answered_by: String,
    answered_at_ms: i64,
}

impl TryFrom<DispositionRow> for Disposition {
    type Error = super::StoreError;
    fn try_from(r: DispositionRow) -> Result<Disposition> {
        Ok(Disposition {
            answered_at: from_ms(r.answered_at_ms, "alert_dispositions.answered_at_ms")?,
            alert_id: r.alert_id,
            tenant_id: r.tenant_id,
            job_id: r.job_id,
            asset: r.asset,
            disposition: r.disposition,
            note: r.note,
            answered_by: r.answered_by,
        })
    }
}

impl Store {
    /// Claims the alert's incident channel (`claim`, its channel empty, or
    /// set when an existing channel is linked) and writes `then`'s effects
    /// with it, in one transaction. An alert that has one already returns
    /// it and `false`, writing nothing.
    pub async fn claim_incident_channel_with(
        &self,
        claim: &IncidentChannel,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<(IncidentChannel, bool)> {
        let sql = "INSERT INTO incident_channels (alert_id, tenant_id, job_id, name, channel, \
               linked, requested_by, requested_at_ms, opened_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING RETURNING *";
        let args = [
            Arg::text(&claim.alert_id),
            Arg::text(&claim.tenant_id),
            Arg::text(&claim.job_id),
            Arg::text(&claim.name),
            Arg::Text(claim.channel.as_deref()),
            Arg::int(claim.linked as i64),
            Arg::text(&claim.requested_by),
            Arg::int(ms(claim.requested_at)),
            Arg::Int(claim.opened_at.map(ms)),
        ];
        let made = self
            .once::<Row, IncidentChannel>(sql, &args, now, then)
            .await?;
        if let Some(made) = made {
            return Ok((made, true));
        }
        let existing = self
            .incident_channel(&claim.alert_id)
            .await?
            .ok_or_else(|| {
                super::StoreError::Corrupt("an incident channel claim vanished".into())
            })?;
        Ok((existing, false))
    }

    pub async fn incident_channel(&self, alert_id: &str) -> Result<Option<IncidentChannel>> {
        let sql = "SELECT * FROM incident_channels WHERE alert_id = $1";
        let row: Option<Row> =
            on_pool!(self, p => sqlx::query_as(sql).bind(alert_id).fetch_optional(p).await?);
        row.map(IncidentChannel::try_from).transpose()
    }

    /// The incident channels of a tenant's open alerts, by alert, in one read.
    pub async fn open_alerts_incident_channels(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashMap<String, IncidentChannel>> {
        let sql = concat!(
            "SELECT * FROM incident_channels WHERE alert_id IN ",
            open_alert_ids!()
        );
        let rows: Vec<Row> =
            on_pool!(self, p => sqlx::query_as(sql).bind(tenant).fetch_all(p).await?);
        rows.into_iter()
            .map(|r| IncidentChannel::try_from(r).map(|c| (c.alert_id.clone(), c)))
            .collect()
    }

    /// The newest episode a Slack channel is (or was) the incident channel
    /// of: commands there act on its tenant.
    pub async fn incident_channel_by_slack_id(
        &self,
        channel: &str,
    ) -> Result<Option<IncidentChannel>> {
        let sql = "SELECT * FROM incident_channels WHERE channel = $1 \
             ORDER BY requested_at_ms DESC LIMIT 1";
        let row: Option<Row> =
            on_pool!(self, p => sqlx::query_as(sql).bind(channel).fetch_optional(p).await?);
        row.map(IncidentChannel::try_from).transpose()
    }

    /// Records the channel Slack created for the claim, once, with `then`'s
    /// effects. `None`, writing nothing, when a channel was recorded already.
    pub async fn open_incident_channel_with(
        &self,
        alert_id: &str,
        channel: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<Option<IncidentChannel>> {
        let sql = "UPDATE incident_channels SET channel = $2, opened_at_ms = $3, failed = NULL \
             WHERE alert_id = $1 AND channel IS NULL RETURNING *";
        self.incident_channel_transition(sql, alert_id, channel, Some(ms(now)), now, then)
            .await
    }

    /// Records why Slack would not create the channel, once, with `then`'s
    /// effects (the thread note that says so).
    pub async fn fail_incident_channel_with(
        &self,
        alert_id: &str,
        why: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<Option<IncidentChannel>> {
        let sql = "UPDATE incident_channels SET failed = $2 \
             WHERE alert_id = $1 AND channel IS NULL AND failed IS NULL \
               AND requested_at_ms <= $3 RETURNING *";
        self.incident_channel_transition(sql, alert_id, why, Some(ms(now)), now, then)
            .await
    }

    /// Archives the channel, once (`by` whom), with `then`'s effects.
    pub async fn archive_incident_channel_with(
        &self,
        alert_id: &str,
        by: &str,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<Option<IncidentChannel>> {
        let sql = "UPDATE incident_channels SET archived_by = $2, archived_at_ms = $3 \
             WHERE alert_id = $1 AND channel IS NOT NULL AND archived_at_ms IS NULL RETURNING *";
        self.incident_channel_transition(sql, alert_id, by, Some(ms(now)), now, then)
            .await
    }

    /// Takes back the archive made at `archived_at` (Slack refused it: the
    /// channel is open), once, with `then`'s effects. `None`, writing
    /// nothing, when the channel no longer stands archived at that time.
    pub async fn unarchive_incident_channel_with(
        &self,
        alert_id: &str,
        archived_at: DateTime<Utc>,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<Option<IncidentChannel>> {
        let sql = "UPDATE incident_channels SET archived_by = NULL, archived_at_ms = NULL \
             WHERE alert_id = $1 AND archived_at_ms = $2 RETURNING *";
        let args = [Arg::text(alert_id), Arg::int(ms(archived_at))];
        self.once::<Row, IncidentChannel>(sql, &args, now, then)
            .await
    }

    async fn incident_channel_transition(
        &self,
        sql: &'static str,
        alert_id: &str,
        arg: &str,
        at_ms: Option<i64>,
        now: DateTime<Utc>,
        then: impl FnOnce(&IncidentChannel) -> Effects,
    ) -> Result<Option<IncidentChannel>> {
        let args = [Arg::text(alert_id), Arg::text(arg), Arg::Int(at_ms)];
        self.once::<Row, IncidentChannel>(sql, &args, now, then)
            .await
    }

    /// Every tier paged on an alert's path, oldest first.
    pub async fn escalation_pages_of(&self, alert_id: &str) -> Result<Vec<EscalationPage>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM escalation_pages WHERE alert_id = $1 \
             ORDER BY paged_at_ms, epoch, round, tier")
            .bind(alert_id)
            .fetch_all(p)
            .await?))
    }

    /// Records how an episode ended, once, with `then`'s effects; `None`,
    /// writing nothing, when it was answered already.
    pub async fn record_disposition_with(
        &self,
        d: &Disposition,
        now: DateTime<Utc>,
        then: impl FnOnce(&Disposition) -> Effects,
    ) -> Result<Option<Disposition>> {
        let sql = "INSERT INTO alert_dispositions (alert_id, tenant_id, job_id, asset, \
               disposition, note, answered_by, answered_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING *";
        let args = [
            Arg::text(&d.alert_id),
            Arg::text(&d.tenant_id),
            Arg::text(&d.job_id),
            Arg::text(&d.asset),
            Arg::text(&d.disposition),
            Arg::Text(d.note.as_deref()),
            Arg::text(&d.answered_by),
            Arg::int(ms(d.answered_at)),
        ];
        self.once::<DispositionRow, Disposition>(sql, &args, now, then)
            .await
    }

    pub async fn disposition(&self, alert_id: &str) -> Result<Option<Disposition>> {
        let sql = "SELECT * FROM alert_dispositions WHERE alert_id = $1";
        let row: Option<DispositionRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(alert_id).fetch_optional(p).await?);
        row.map(Disposition::try_from).transpose()
    }

    /// How each of a tenant's open alerts ended, where answered, in one read.
    pub async fn open_alerts_dispositions(
        &self,
        tenant: &str,
    ) -> Result<std::collections::HashMap<String, Disposition>> {
        let sql = concat!(
            "SELECT * FROM alert_dispositions WHERE alert_id IN ",
            open_alert_ids!()
        );
        let rows: Vec<DispositionRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(tenant).fetch_all(p).await?);
        rows.into_iter()
            .map(|r| Disposition::try_from(r).map(|d| (d.alert_id.clone(), d)))
            .collect()
    }

    /// A tenant's answers in `[from, to)`, oldest first.
    pub async fn dispositions(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Disposition>> {
        let sql = "SELECT * FROM alert_dispositions WHERE tenant_id = $1 \
             AND answered_at_ms >= $2 AND answered_at_ms < $3 ORDER BY answered_at_ms, alert_id";
        let rows: Vec<DispositionRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(tenant)
            .bind(ms(from))
            .bind(ms(to))
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Disposition::try_from).collect()
    }
}
