//! Following logon sessions: every half second the store's active sessions are read and,
//! when they changed, a snapshot with the new identity map is swapped in. A new or ended
//! logon therefore reaches every enforcement point within a second. Each person comes
//! with the declarations they have accepted, so an acceptance (a changed person) also
//! swaps a snapshot in, lifting the restricted group within a second.

use std::sync::Arc;
use std::time::Duration;

use hallpass_policy::Policy;
use hallpass_store::Store;
use tokio_util::sync::CancellationToken;

use crate::{Engine, IdentityMap, Person};

/// How often logon sessions are read.
pub const SESSION_POLL: Duration = Duration::from_millis(500);

/// Reads the active sessions and resolves them under `policy`.
pub async fn read_identities(
    store: &Store,
    policy: &Policy,
) -> Result<IdentityMap, hallpass_store::StoreError> {
    let sessions = store.sessions().active().await?;
    let accepted = store.declarations().accepted_by_logged_on().await?;
    Ok(IdentityMap::build(
        policy,
        sessions.into_iter().map(|session| {
            (
                session.ip,
                Person {
                    accepted: accepted.get(&session.username).cloned().unwrap_or_default(),
                    username: Arc::from(session.username.as_str()),
                    role: session.role,
                    year_group: session.year_group,
                    memberships: session.groups,
                },
            )
        }),
    ))
}

/// Swaps in a new snapshot whenever the sessions in the store change.
pub async fn follow_sessions(engine: Arc<Engine>, store: Store, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SESSION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = store.watch_changes();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            // A logon or logoff through this process: look now. (The sender lives as long
            // as `store`, which this task holds, so this never ends in an error.)
            Ok(()) = changes.changed() => crate::live::coalesce(&mut changes).await,
        }
        let current = engine.current();
        match read_identities(&store, &current.policy).await {
            Ok(identities) if !identities.same_people(&current.identities) => {
                tracing::info!(sessions = identities.len(), "logon sessions changed");
                let identities = Arc::new(identities);
                engine.update(|snapshot| snapshot.with_identities(Arc::clone(&identities)));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!("could not read logon sessions (keeping the last known): {error:#}")
            }
        }
    }
}
