//! The block page as one of `serve`'s services: its `[portal]` section and listener.
//! DNS block answers point browsers here (the policy's block-page address); the page
//! says why, and takes access requests and warning acknowledgements. It is also the
//! captive portal: an unidentified client signs in there (console account or guest code)
//! and its address is theirs for `[portal] sign_in_minutes`, after which this service
//! ends the session.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use hallpass_web::{PolicySource, WebConfig, WebState};
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// `[portal]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSection {
    /// Start the block page at all. Default true.
    pub enabled: Option<bool>,
    /// Address of the block page. Default 127.0.0.1:8081. In a school: port 80 of the
    /// address the policy's DNS block answers give (`[dns] block_page` of the policy).
    pub listen: Option<SocketAddr>,
    /// How long a sign-in on the captive portal identifies the address, in minutes.
    /// Default 480 (a school day).
    pub sign_in_minutes: Option<u64>,
}

/// How often the portal's sign-ins are checked for their end.
const SIGN_IN_EXPIRY_POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub const DEFAULT_PORTAL_LISTEN: &str = "127.0.0.1:8081";

/// The block page's entry in `serve`'s table of services.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let Some(listen) = settings.portal_listen else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for the block page on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        // The portal shows no policy text of its own; the source is only for the type.
        let policy = PolicySource::Text {
            name: String::new(),
            text: Arc::from(""),
        };
        let minutes = settings.config.portal.sign_in_minutes.unwrap_or(480);
        if minutes == 0 {
            anyhow::bail!("[portal] sign_in_minutes must be at least 1");
        }
        let sign_in = std::time::Duration::from_secs(minutes.saturating_mul(60));
        let state = WebState::new(
            shared.store.clone(),
            Arc::clone(&shared.engine),
            shared.clock.clone(),
            WebConfig {
                portal_sign_in: sign_in,
                ..WebConfig::default()
            },
            policy,
        );
        let stop = shared.stop.clone();
        let expiry = end_portal_sign_ins(shared.clone(), sign_in);
        let run = async move {
            // Ends with the stop token, as the server does.
            let expiry = tokio::spawn(expiry);
            let served = hallpass_web::portal::serve(listener, state, stop)
                .await
                .map_err(|error| anyhow::anyhow!("block page on {addr}: {error}"));
            expiry.abort();
            served
        };
        Ok(Some(Service {
            name: "portal",
            addrs: vec![addr],
            banner: vec![format!("block page: http://{addr}/ (any Host)")],
            run: Box::pin(run),
        }))
    })
}

/// Ends captive-portal sessions once their time is up (on the shared clock, so tests
/// move it), until the stop token is cancelled.
async fn end_portal_sign_ins(shared: Shared, lasts: std::time::Duration) {
    let lasts = jiff::SignedDuration::try_from(lasts).unwrap_or(jiff::SignedDuration::MAX);
    let mut tick = tokio::time::interval(SIGN_IN_EXPIRY_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = shared.clock.now();
        let started_before = now.checked_sub(lasts).unwrap_or(now);
        match shared
            .store
            .sessions()
            .end_started_before(
                "portal",
                hallpass_web::ops::portal::PORTAL_WORKSTATION,
                started_before,
                now,
            )
            .await
        {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "captive portal sign-ins ended (time up)"),
            Err(error) => tracing::warn!("could not end captive portal sign-ins: {error:#}"),
        }
    }
}
