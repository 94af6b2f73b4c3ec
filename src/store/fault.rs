//! The crash-point tests' fault hook (issue 20). Inside [`failing_at`], the
//! Nth store statement (each `on_pool!` query or `in_tx!` transaction) of the
//! running task fails with [`StoreError::Injected`], as if the process had
//! stopped there: the flow that ran it ends half done, and the test checks
//! that the bot puts everything right afterwards. Outside it (always, in
//! production) a statement pays one task-local lookup.

use super::{Result, StoreError};
use std::cell::Cell;
use std::future::Future;

struct Hook {
    /// Statements seen so far.
    seen: Cell<u32>,
    /// The statement to fail (1-based).
    fail_at: u32,
    fired: Cell<bool>,
}

tokio::task_local! {
    static HOOK: Hook;
}

/// Runs `f` with its `n`th store statement failing. Returns what `f`
/// returned, and whether the fault fired (false: the flow ran fewer than `n`
/// statements, so it completed).
pub async fn failing_at<F: Future>(n: u32, f: F) -> (F::Output, bool) {
    let hook = Hook {
        seen: Cell::new(0),
        fail_at: n,
        fired: Cell::new(false),
    };
    HOOK.scope(hook, async move {
        let out = f.await;
        (out, HOOK.with(|h| h.fired.get()))
    })
    .await
}

/// Runs `f` counting its store statements, none failing: what a flow costs
/// the store (the tests that keep a poll's statements from growing with its
/// alerts, issue 40).
pub async fn counting<F: Future>(f: F) -> (F::Output, u32) {
    let hook = Hook {
        seen: Cell::new(0),
        fail_at: 0,
        fired: Cell::new(false),
    };
    HOOK.scope(hook, async move {
        let out = f.await;
        (out, HOOK.with(|h| h.seen.get()))
    })
    .await
}

/// Called before every store statement.
pub(crate) fn check() -> Result<()> {
    HOOK.try_with(|h| {
        let n = h.seen.get() + 1;
        h.seen.set(n);
        if n == h.fail_at {
            h.fired.set(true);
            Err(StoreError::Injected(n))
        } else {
            Ok(())
        }
    })
    .unwrap_or(Ok(()))
}
