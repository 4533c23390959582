//! Following live exceptions: every quarter second the store's open grants, warning
//! acknowledgements and teacher overrides are read and, when they changed, a snapshot
//! with them is swapped in, so an approval or an override reaches every enforcement point
//! within a second of the click. Expired ones are marked (and audited) here too; the
//! decision itself compares end times with the clock, so nothing outlives its time even
//! between two reads.

use std::sync::Arc;
use std::time::Duration;

use hallpass_clock::Clock;
use hallpass_policy::{Grant, Live, Override, OverrideTarget, Policy, Sanction, Subject};
use hallpass_store::Store;
use hallpass_store::exceptions::{GrantRow, GrantScope, OpenExceptions};
use tokio_util::sync::CancellationToken;

use crate::Engine;

/// How often live exceptions are read.
pub const LIVE_POLL: Duration = Duration::from_millis(250);

/// The far future, for grants made "until the policy changes" (ended by the follower
/// when a changed policy is loaded).
fn forever() -> jiff::Timestamp {
    jiff::Timestamp::MAX
}

/// The `Live` the policy decides with, from the store's open rows. Rows naming a group
/// the policy does not have are left out (with a warning): they apply again if a policy
/// with that group returns. A grant for a URL prefix (`domain/path`) is for the web
/// proxy, which sees paths; DNS sees only names, so it is not a DNS grant.
/// An instant in the school's time zone, as people read it.
fn local(policy: &Policy, at: jiff::Timestamp) -> String {
    at.to_zoned(policy.timezone().clone())
        .strftime("%A %-d %B %Y %H:%M")
        .to_string()
}

pub fn build_live(open: &OpenExceptions, policy: &Policy) -> Live {
    let subject = |scope: &GrantScope| match scope {
        GrantScope::Person(p) => Some(Subject::Person(p.clone())),
        GrantScope::Group(g) => match policy.group_id(g) {
            Some(id) => Some(Subject::Group(id)),
            None => {
                tracing::warn!(group = %g, "a grant names a group the policy does not have");
                None
            }
        },
        GrantScope::Everyone => Some(Subject::Everyone),
    };
    let grant = |row: &GrantRow| {
        if row.target.contains('/') {
            return None;
        }
        Some(Grant {
            subject: subject(&row.scope)?,
            domain: row.target.clone(),
            until: row.until.unwrap_or_else(forever),
        })
    };
    let overrides = open
        .overrides
        .iter()
        .filter_map(|o| match policy.group_id(&o.group) {
            Some(group) => Some(Override {
                group,
                target: OverrideTarget::Rule(o.rule.clone()),
                until: o.until,
            }),
            None => {
                tracing::warn!(group = %o.group, "an override names a group the policy does not have");
                None
            }
        })
        .collect();
    // Web sanctions for decide(); email ones are the mail filter's.
    let document = policy
        .documents()
        .first()
        .map(|d| d.id.clone())
        .unwrap_or_default();
    let sanction = |s: &hallpass_store::safeguarding::SanctionRow| Sanction {
        subject: Subject::Person(s.person.clone()),
        domain: s.target.clone().filter(|_| s.kind == "site"),
        until: s.until,
        document: document.clone(),
        clause: s.clause.clone().unwrap_or_else(|| "sanction".to_string()),
        message: match s.kind.as_str() {
            "site" => format!(
                "Your access to {} is withdrawn until {}: {}",
                s.target.as_deref().unwrap_or("this site"),
                local(policy, s.until),
                s.reason
            ),
            "email" => format!(
                "Your email account is suspended until {}: {}",
                local(policy, s.until),
                s.reason
            ),
            _ => format!(
                "Your internet access is suspended until {}: {}",
                local(policy, s.until),
                s.reason
            ),
        },
    };
    let (email, web): (Vec<_>, Vec<_>) = open.sanctions.iter().partition(|s| s.kind == "email");
    let sanctions = web.into_iter().map(sanction).collect();
    let email_sanctions = email.into_iter().map(sanction).collect();
    Live {
        overrides,
        grants: open.grants.iter().filter_map(grant).collect(),
        sanctions,
        acknowledged: open.acknowledged.iter().filter_map(grant).collect(),
        email_sanctions,
    }
}

/// How long a follower woken by a change waits for more before it reads: a class
/// logging on at once is one read, not thirty.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits [`COALESCE`], then marks every change so far as seen.
pub async fn coalesce(changes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::sleep(COALESCE).await;
    changes.borrow_and_update();
}

/// Swaps in a snapshot whenever the open exceptions (or the policy they resolve under)
/// change. When a new policy is loaded, grants made "until the policy changes" end.
pub async fn follow_live(engine: Arc<Engine>, store: Store, clock: Clock, stop: CancellationToken) {
    let mut tick = tokio::time::interval(LIVE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut policy_seen = Arc::clone(&engine.current().policy);
    let mut changes = store.watch_changes();
    loop {
        // Expiry writes, so it runs on the poll only; a change is read at once.
        let expire = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => true,
            // An approval, override or acknowledgement through this process: look now.
            Ok(()) = changes.changed() => {
                coalesce(&mut changes).await;
                false
            }
        };
        // A store call may wait on a busy database for seconds: the stop never waits for
        // it. The pass runs as a task of its own and is never dropped half-way: dropping a
        // store call that had begun a write transaction left its connection holding the
        // database's write lock, and the event writer's last batches at shutdown failed
        // with "database is locked" (seen in the DNS end-to-end check).
        let pass = {
            let (engine, store, clock) = (Arc::clone(&engine), store.clone(), clock.clone());
            let mut seen = Arc::clone(&policy_seen);
            async move {
                let now = clock.now();
                let exceptions = store.exceptions();
                let current_policy = Arc::clone(&engine.current().policy);
                if !Arc::ptr_eq(&current_policy, &seen) {
                    seen = current_policy;
                    match exceptions.end_policy_change_grants(now).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            grants = n,
                            "the policy changed: grants made until then ended"
                        ),
                        Err(error) => {
                            tracing::warn!("could not end grants on a policy change: {error:#}")
                        }
                    }
                }
                if expire && let Err(error) = exceptions.expire(now).await {
                    tracing::warn!("could not mark expired grants and overrides: {error:#}");
                }
                if expire && let Err(error) = store.safeguarding().expire_sanctions(now).await {
                    tracing::warn!("could not mark expired sanctions: {error:#}");
                }
                match exceptions.open(now).await {
                    Ok(open) => {
                        let current = engine.current();
                        let live = build_live(&open, &current.policy);
                        if live != *current.live {
                            tracing::info!(
                                grants = live.grants.len(),
                                overrides = live.overrides.len(),
                                acknowledged = live.acknowledged.len(),
                                "live exceptions changed"
                            );
                            engine.update(|snapshot| {
                                let live = build_live(&open, &snapshot.policy);
                                snapshot.with_live(live)
                            });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(
                            "could not read live exceptions (keeping the last known): {error:#}"
                        )
                    }
                }
                seen
            }
        };
        let mut pass = tokio::spawn(pass);
        tokio::select! {
            _ = stop.cancelled() => return,
            joined = &mut pass => {
                if let Ok(seen) = joined {
                    policy_seen = seen;
                }
            }
        }
    }
}
