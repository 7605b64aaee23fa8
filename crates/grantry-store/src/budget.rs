//! What one HTTP request may spend on database reads, and which connections it may use.
//!
//! The API wraps each request in [`scope`]. [`crate::Store::read`] then bounds every read by
//! what is left of the request's statement time and interrupts a read whose deadline
//! passes; a request that may be expensive (a query with `$filter`, `$search`, `$orderby`
//! or `$count`) uses only a share of the readers, so cheap reads always find one. Work that
//! runs outside a request (background jobs, start-up) is not bounded.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

tokio::task_local! {
    static CURRENT: Arc<RequestBudget>;
}

/// One request's allowance.
#[derive(Debug)]
pub struct RequestBudget {
    /// Total time the request's reads may run on a database connection.
    statement_time: Duration,
    used_micros: AtomicU64,
    /// A query that may be expensive: it uses the readers' expensive share.
    heavy: bool,
    /// Held until the request ends (e.g. the caller's slot for expensive queries).
    held: Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

impl RequestBudget {
    pub fn new(statement_time: Duration, heavy: bool) -> RequestBudget {
        RequestBudget { statement_time, used_micros: AtomicU64::new(0), heavy, held: Mutex::new(Vec::new()) }
    }

    pub fn statement_time(&self) -> Duration {
        self.statement_time
    }

    pub fn is_heavy(&self) -> bool {
        self.heavy
    }

    /// What is left of the statement time.
    pub fn remaining(&self) -> Duration {
        self.statement_time.saturating_sub(Duration::from_micros(self.used_micros.load(Ordering::Relaxed)))
    }

    pub(crate) fn spend(&self, spent: Duration) {
        let micros = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        self.used_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn use_up(&self) {
        let micros = u64::try_from(self.statement_time.as_micros()).unwrap_or(u64::MAX);
        self.used_micros.store(micros, Ordering::Relaxed);
    }

    /// Keeps `value` alive until the request ends.
    pub fn hold(&self, value: impl std::any::Any + Send + Sync) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(value));
    }
}

/// Runs `work` (one request) with `budget`.
pub async fn scope<F: Future>(budget: RequestBudget, work: F) -> F::Output {
    CURRENT.scope(Arc::new(budget), work).await
}

/// The budget of the request being served, if any.
pub fn current() -> Option<Arc<RequestBudget>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The refusal when a request has used up its statement time.
pub(crate) fn exceeded(budget: &RequestBudget) -> grantry_domain::Error {
    grantry_domain::Error::bad_request(
        "QueryTooExpensive",
        format!(
            "The request used up its database time budget of {} ms (the statement time limit per request) and was stopped; narrow the $filter (fewer terms, 'eq' or 'startswith' instead of 'contains'), drop $count, or ask for fewer items with $top.",
            budget.statement_time.as_millis()
        ),
    )
}
