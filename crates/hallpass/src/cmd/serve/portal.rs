//! The block page as one of `serve`'s services: its `[portal]` section and listener.
//! DNS block answers point browsers here (the policy's block-page address); the page
//! says why, and takes access requests and warning acknowledgements.

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
}

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
        let state = WebState::new(
            shared.store.clone(),
            Arc::clone(&shared.engine),
            shared.clock.clone(),
            WebConfig::default(),
            policy,
        );
        let stop = shared.stop.clone();
        let run = async move {
            hallpass_web::portal::serve(listener, state, stop)
                .await
                .map_err(|error| anyhow::anyhow!("block page on {addr}: {error}"))
        };
        Ok(Some(Service {
            name: "portal",
            addrs: vec![addr],
            banner: vec![format!("block page: http://{addr}/ (any Host)")],
            run: Box::pin(run),
        }))
    })
}
