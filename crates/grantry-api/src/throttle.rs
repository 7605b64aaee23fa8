//! Fairness between callers: each request runs with a database statement budget, and an
//! expensive query (one with `$filter`, `$search`, `$orderby` or `$count`) needs one of its
//! caller's few slots, so one caller cannot take every reader. A caller over its slots is
//! answered 429 with `Retry-After`, as Graph throttles.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use grantry_domain::{Error, ErrorKind};
use grantry_store::budget::{self, RequestBudget};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Callers kept before idle ones are forgotten.
const FORGET_ABOVE: usize = 10_000;

/// Every caller's slots for expensive queries.
pub struct CallerSlots {
    per_caller: usize,
    callers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl CallerSlots {
    pub fn new(per_caller: usize) -> CallerSlots {
        CallerSlots { per_caller: per_caller.max(1), callers: Mutex::new(HashMap::new()) }
    }

    pub fn per_caller(&self) -> usize {
        self.per_caller
    }

    /// One of `caller`'s slots, or `None` when all are taken.
    pub fn try_take(&self, caller: &str) -> Option<OwnedSemaphorePermit> {
        let slots = {
            let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
            if callers.len() > FORGET_ABOVE {
                let full = self.per_caller;
                callers.retain(|_, s| s.available_permits() < full);
            }
            callers.entry(caller.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_caller))).clone()
        };
        slots.try_acquire_owned().ok()
    }
}

/// Whether a query string asks for work whose cost grows with the data.
pub fn is_expensive(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        let key = key.to_ascii_lowercase().replace("%24", "$");
        let key = key.trim_start_matches('$');
        matches!(key, "filter" | "search" | "orderby" | "count")
    })
}

/// Runs the request inside its statement budget.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let heavy = is_expensive(req.uri().query());
    budget::scope(RequestBudget::new(state.config.statement_budget, heavy), next.run(req)).await
}

/// Called once the caller is known: an expensive query takes one of the caller's slots
/// for the rest of the request, or is refused with 429.
pub fn admit(state: &AppState, caller_id: &str) -> Result<(), ApiError> {
    let Some(current) = budget::current() else { return Ok(()) };
    if !current.is_heavy() {
        return Ok(());
    }
    match state.expensive_slots.try_take(caller_id) {
        Some(slot) => {
            current.hold(slot);
            Ok(())
        }
        None => Err(ApiError(Error::new(
            ErrorKind::TooManyRequests,
            "TooManyRequests",
            format!(
                "You already have {} queries with $filter, $search, $orderby or $count running (the limit per caller); retry after the time in Retry-After.",
                state.expensive_slots.per_caller()
            ),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expensive_queries_are_recognized() {
        assert!(is_expensive(Some("$filter=displayName eq 'a'")));
        assert!(is_expensive(Some("%24count=true")));
        assert!(is_expensive(Some("$top=5&$OrderBy=displayName")));
        assert!(is_expensive(Some("search=%22x%22")));
        assert!(!is_expensive(Some("$top=5&$select=id")));
        assert!(!is_expensive(None));
    }

    #[test]
    fn each_caller_has_its_own_slots() {
        let slots = CallerSlots::new(2);
        let a1 = slots.try_take("a");
        let _a2 = slots.try_take("a");
        assert!(a1.is_some() && slots.try_take("a").is_none());
        assert!(slots.try_take("b").is_some());
        drop(a1);
        assert!(slots.try_take("a").is_some());
    }
}
