//! The evaluation token: a value the database changes (by triggers) whenever anything a
//! new request's evaluation depends on changes — users, catalogs, access packages,
//! policies, incompatibilities, existing subjects, connected organizations and sponsors,
//! webhook subscriptions.
//!
//! A request is evaluated on a read first. The writer reads the token again: the same
//! token means none of those rows changed in between, so the read-side evaluation still
//! holds and the writer only re-checks what concurrent requests change (the target's
//! active assignment; one open request per target is a database constraint). Within one
//! write the token also keys a cache of the webhook subscriptions, which would otherwise be
//! read for every event.

use grantry_domain::Result;
use grantry_domain::model::WebhookSubscription;
use grantry_store::{Conn, repo};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// The current token (0 before the first change).
pub fn token(c: &mut dyn Conn) -> Result<i64> {
    Ok(c.query_one("SELECT token FROM eval_generation WHERE id = 1", &[])?.map(|r| r.int(0)).transpose()?.unwrap_or(0))
}

thread_local! {
    /// The token read at the start of the write under way on this thread, while that write
    /// changes none of the tables behind the token.
    static KNOWN: Cell<Option<i64>> = const { Cell::new(None) };
    /// The webhook subscriptions as of a token.
    static SUBSCRIPTIONS: RefCell<Option<(i64, Arc<Vec<WebhookSubscription>>)>> = const { RefCell::new(None) };
}

/// Runs `work` knowing that the token is `token` throughout (the caller read it in this
/// transaction and `work` changes no subscription).
pub fn with_known<T>(token: i64, work: impl FnOnce() -> T) -> T {
    struct Reset(Option<i64>);
    impl Drop for Reset {
        fn drop(&mut self) {
            KNOWN.with(|k| k.set(self.0));
        }
    }
    let _reset = Reset(KNOWN.with(|k| k.replace(Some(token))));
    work()
}

/// Every webhook subscription: from the cache when the token is known and unchanged, else
/// read (and cached under the known token).
pub fn subscriptions(c: &mut dyn Conn) -> Result<Arc<Vec<WebhookSubscription>>> {
    let Some(token) = KNOWN.with(Cell::get) else {
        return Ok(Arc::new(repo::find_all(c, "1 = 1", &[])?));
    };
    if let Some(cached) =
        SUBSCRIPTIONS.with(|s| s.borrow().as_ref().filter(|(t, _)| *t == token).map(|(_, v)| v.clone()))
    {
        return Ok(cached);
    }
    let loaded: Arc<Vec<WebhookSubscription>> = Arc::new(repo::find_all(c, "1 = 1", &[])?);
    SUBSCRIPTIONS.with(|s| *s.borrow_mut() = Some((token, loaded.clone())));
    Ok(loaded)
}

thread_local! {
    static MEMBERSHIP_LOOKUPS: Cell<u64> = const { Cell::new(0) };
}

/// Notes that an evaluation looked at group memberships (which requests' deliveries
/// change, so the token does not cover them).
pub(crate) fn looked_at_memberships() {
    MEMBERSHIP_LOOKUPS.with(|n| n.set(n.get() + 1));
}

/// Membership lookups made on this thread so far.
pub(crate) fn membership_lookups() -> u64 {
    MEMBERSHIP_LOOKUPS.with(Cell::get)
}
