//! The service container handed to every use case.

use grantry_domain::clock::{Clock, OffsetClock};
use grantry_store::Store;
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
    /// Makes the outbox's HTTP calls (allow-listed and bounded).
    pub transport: Arc<dyn crate::outbox::Transport>,
    pub tenant_id: Arc<str>,
}

impl App {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        grantry_domain::clock::truncate_micros(self.clock.now())
    }
}
