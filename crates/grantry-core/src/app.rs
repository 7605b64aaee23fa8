//! The service container handed to every use case.

use chrono::Duration;
use grantry_domain::clock::{Clock, OffsetClock};
use grantry_domain::{Error, Result};
use grantry_store::{Store, repo};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Present when the development clock is enabled: lets administrators advance time.
    pub dev_clock: Option<Arc<OffsetClock>>,
    /// Woken after a commit that made background work due now.
    pub work_signal: Arc<Notify>,
    /// Woken after a commit that wrote outbox messages (the sender sends them at once).
    pub outbox_signal: Arc<Notify>,
    /// Notified whenever the sender has recorded outcomes (`outbox::drain` waits on it).
    pub outbox_recorded: Arc<Notify>,
    /// The messages this process's senders hold (claimed, not yet recorded).
    pub outbox_held: Arc<crate::outbox::Held>,
    /// Makes the outbox's HTTP calls (allow-listed and bounded).
    pub transport: Arc<dyn crate::outbox::Transport>,
    /// Mints the bearer tokens callouts carry (absent in tools that never send).
    pub token_issuer: Option<Arc<dyn crate::outbox::TokenIssuer>>,
    /// How notification mail is sent (SMTP, or kept) and rendered.
    pub mail: Arc<crate::mail::MailSettings>,
    pub tenant_id: Arc<str>,
}

/// The `meta` key holding the development clock's offset, in microseconds. Stored so that
/// a restart does not put the clock back behind the records made while it was advanced.
const DEV_CLOCK_OFFSET_META: &str = "dev_clock_offset_micros";

impl App {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        grantry_domain::clock::truncate_micros(self.clock.now())
    }

    /// The development clock's offset stored in the database (zero if it was never advanced).
    pub async fn stored_clock_offset(&self) -> Result<Duration> {
        self.store.read(|c| read_offset(c)).await
    }

    /// Moves the development clock forward by `by`: the new offset is committed first and
    /// only then used, so no record is ever dated by an offset a restart would forget.
    /// Returns the new offset.
    pub async fn advance_dev_clock(&self, clock: &OffsetClock, by: Duration) -> Result<Duration> {
        let current = clock.offset();
        let offset = self
            .store
            .write(move |c| {
                let offset = read_offset(c)?.max(current) + by;
                let micros = offset.num_microseconds().ok_or_else(|| {
                    Error::invalid_property("duration", "The clock cannot be moved that far; advance it by less.")
                })?;
                repo::meta_put(c, DEV_CLOCK_OFFSET_META, &micros.to_string())?;
                Ok(offset)
            })
            .await?;
        clock.advance_to(offset);
        Ok(offset)
    }
}

fn read_offset(c: &mut dyn grantry_store::Conn) -> Result<Duration> {
    Ok(repo::meta_get(c, DEV_CLOCK_OFFSET_META)?
        .and_then(|v| v.parse::<i64>().ok())
        .map(Duration::microseconds)
        .unwrap_or_else(Duration::zero))
}
