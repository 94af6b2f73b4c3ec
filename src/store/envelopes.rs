//! Socket Mode envelopes, handled once across redeliveries and reconnects.

use super::{clocked, ms, on_pool, Clocked, Result, Store};
use chrono::{DateTime, Utc};

/// What one delivery of an envelope may do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeClaim {
    /// This delivery handles it: the first one, or one taking over a claim
    /// that was never answered (its handler died).
    Claimed,
    /// Handled already: ack with this payload (JSON text; `None` acks with
    /// none) and do nothing else.
    Answered(Option<String>),
    /// Another delivery is handling it right now.
    Busy,
}

impl Store {
    /// Claims envelope `id` for handling. A claim that was never answered
    /// is taken over once it is older than `stale_after`. Claim times are
    /// the database's clock (`claimed_at_ms`), never a replica's, so a
    /// replica whose clock runs ahead cannot take over an envelope another
    /// is still handling. One conditional statement decides, so of racing
    /// deliveries exactly one gets `Claimed`.
    pub async fn claim_envelope(
        &self,
        id: &str,
        kind: &str,
        stale_after: chrono::Duration,
    ) -> Result<EnvelopeClaim> {
        const SQL: Clocked = clocked!(
            "INSERT INTO socket_envelopes (envelope_id, kind, claimed_at_ms) VALUES ($1, $2, ",
            NOW,
            ") ON CONFLICT (envelope_id) DO UPDATE SET claimed_at_ms = excluded.claimed_at_ms \
             WHERE socket_envelopes.answered_at_ms IS NULL \
               AND socket_envelopes.claimed_at_ms < ",
            NOW,
            " - $3",
        );
        let sql = self.sql(&SQL);
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(id)
            .bind(kind)
            .bind(stale_after.num_milliseconds())
            .execute(p)
            .await?
            .rows_affected());
        if n == 1 {
            return Ok(EnvelopeClaim::Claimed);
        }
        Ok(match self.envelope_answer(id).await? {
            Some(answer) => EnvelopeClaim::Answered(answer),
            None => EnvelopeClaim::Busy,
        })
    }

    /// The stored answer of an answered envelope (`Some(None)`: acked with
    /// no payload); `None` while it is unanswered or unknown.
    pub async fn envelope_answer(&self, id: &str) -> Result<Option<Option<String>>> {
        let row: Option<(Option<i64>, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT answered_at_ms, answer FROM socket_envelopes WHERE envelope_id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(match row {
            Some((Some(_), answer)) => Some(answer),
            _ => None,
        })
    }

    /// Records that envelope `id` was handled and what its ack carries.
    pub async fn answer_envelope(
        &self,
        id: &str,
        answer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE socket_envelopes SET answered_at_ms = $2, answer = $3 WHERE envelope_id = $1")
            .bind(id)
            .bind(ms(now))
            .bind(answer)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Gives an unanswered claim back, so the next delivery handles the
    /// envelope (it was not handled: Slack is asked to send it again).
    pub async fn release_envelope(&self, id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "DELETE FROM socket_envelopes WHERE envelope_id = $1 AND answered_at_ms IS NULL")
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Forgets envelopes claimed longer than `older_than` ago (by the
    /// database's clock, which claimed them); returns how many.
    pub async fn prune_envelopes(&self, older_than: chrono::Duration) -> Result<u64> {
        const SQL: Clocked = clocked!(
            "DELETE FROM socket_envelopes WHERE claimed_at_ms < ",
            NOW,
            " - $1",
        );
        let sql = self.sql(&SQL);
        Ok(on_pool!(self, p => sqlx::query(sql)
            .bind(older_than.num_milliseconds())
            .execute(p)
            .await?
            .rows_affected()))
    }
}
