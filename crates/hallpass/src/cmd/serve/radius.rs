//! RADIUS accounting as one of `serve`'s services: Wi-Fi controllers and 802.1X switches
//! send Accounting-Start / Interim-Update / Stop (RFC 2866) and each becomes a logon
//! session (who is at which address), which the session follower puts in the snapshot.
//! The protocol is `hallpass_radius`; this is the socket, the store and the counters.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::future::BoxFuture;
use hallpass_radius::packet::{self, StatusType};
use hallpass_radius::{
    AccountingRequest, Clients, Counters, DropReason, PacketError, RecentRequests,
};
use hallpass_store::StoreError;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::net::UdpSocket;

use super::Settings;
use super::services::Service;
use super::shared::{MetricsSource, Shared};

/// `[radius]` in the configuration file. Off unless `listen` (or `--radius-listen`) is
/// given.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusSection {
    /// Where to receive accounting (UDP; the standard port is 1813).
    pub listen: Option<SocketAddr>,
    /// The NAS networks allowed to send accounting, each with its shared secret.
    pub clients: Vec<RadiusClient>,
}

/// `[[radius.clients]]`: a network of NASes (controllers, switches) and their secret.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RadiusClient {
    pub network: IpNet,
    pub secret: String,
}

/// The secret is never printed (Settings and Config are logged with `{:?}` in errors).
impl std::fmt::Debug for RadiusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusClient")
            .field("network", &self.network)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl MetricsSource for Counters {
    fn render(&self, out: &mut String) {
        self.render_prometheus(out);
    }
}

/// The RADIUS listener's entry in `serve`'s table: `Ok(None)` unless configured.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let Some(listen) = settings.radius_listen else {
            return Ok(None);
        };
        let clients = Clients::new(
            settings
                .config
                .radius
                .clients
                .iter()
                .map(|client| hallpass_radius::Client {
                    network: client.network,
                    secret: client.secret.as_bytes().to_vec(),
                })
                .collect(),
        );
        anyhow::ensure!(
            !clients.is_empty(),
            "RADIUS accounting on {listen} needs at least one [[radius.clients]] network and secret"
        );
        let socket = UdpSocket::bind(listen).await.map_err(|error| {
            anyhow::anyhow!("RADIUS accounting: cannot listen on {listen}: {error}")
        })?;
        let bound = socket.local_addr()?;
        let counters = Arc::new(Counters::default());
        shared
            .metrics
            .register(Arc::clone(&counters) as Arc<dyn MetricsSource>);
        let listener = Listener {
            socket,
            clients,
            counters,
            recent: RecentRequests::new(
                hallpass_radius::dedup::DEFAULT_WINDOW,
                hallpass_radius::dedup::DEFAULT_CAPACITY,
            ),
            shared: shared.clone(),
        };
        Ok(Some(Service {
            name: "radius",
            addrs: vec![bound],
            banner: vec![format!("radius     udp://{bound} (accounting)")],
            run: Box::pin(listener.run()),
        }))
    })
}

struct Listener {
    socket: UdpSocket,
    clients: Clients,
    counters: Arc<Counters>,
    recent: RecentRequests,
    shared: Shared,
}

/// What became of one valid request.
enum Outcome {
    /// Recorded (or nothing to record): acknowledge.
    Applied,
    /// Not recorded, for `DropReason`; acknowledged when `answer` (the NAS sending it
    /// again would change nothing), otherwise left for the NAS to retry.
    Refused { why: DropReason, answer: bool },
}

impl Listener {
    /// One request at a time, in arrival order: a Stop never overtakes its Start, and an
    /// answer goes out only after its store write.
    async fn run(mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; packet::MAX_PACKET_LEN + 1];
        loop {
            let received = tokio::select! {
                () = self.shared.stop.cancelled() => return Ok(()),
                received = self.socket.recv_from(&mut buf) => received,
            };
            let (len, source) = match received {
                Ok(received) => received,
                // ICMP errors from an earlier send surface here on some systems: not fatal.
                Err(error) => {
                    tracing::warn!(%error, "RADIUS accounting: receive failed");
                    continue;
                }
            };
            self.counters.received();
            if let Some(response) = self.handle(&buf[..len], source).await
                && let Err(error) = self.socket.send_to(&response, source).await
            {
                tracing::warn!(%source, %error, "RADIUS accounting: cannot send the response");
            }
        }
    }

    /// The response to send, if any.
    async fn handle(&mut self, datagram: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
        let Some(client) = self.clients.lookup(source.ip()) else {
            self.counters.dropped(DropReason::UnknownClient);
            tracing::warn!(%source, "RADIUS accounting: dropped a packet from an address in no [[radius.clients]] network");
            return None;
        };
        let (network, secret) = (client.network, client.secret.clone());
        if datagram.len() > packet::MAX_PACKET_LEN {
            self.counters.dropped(DropReason::Malformed);
            tracing::warn!(%source, "RADIUS accounting: dropped a datagram longer than 4096 octets");
            return None;
        }
        let request = match packet::parse_accounting_request(datagram, &secret) {
            Ok(request) => request,
            Err(error) => {
                let why = match error {
                    PacketError::BadAuthenticator => DropReason::BadAuthenticator,
                    PacketError::Malformed(_) | PacketError::NotAccountingRequest(_) => {
                        DropReason::Malformed
                    }
                };
                self.counters.dropped(why);
                tracing::warn!(%source, %network, "RADIUS accounting: dropped: {error}");
                return None;
            }
        };
        let now = self.shared.clock.instant();
        if let Some(response) =
            self.recent
                .get(source, request.identifier, &request.authenticator, now)
        {
            self.counters.dropped(DropReason::Duplicate);
            tracing::debug!(%source, id = request.identifier, "RADIUS accounting: retransmission answered again");
            return Some(response.to_vec());
        }
        let answer = match self.apply(&request, network, source).await {
            Outcome::Applied => {
                self.counters.accepted();
                true
            }
            Outcome::Refused { why, answer } => {
                self.counters.dropped(why);
                answer
            }
        };
        if !answer {
            return None;
        }
        let response =
            packet::accounting_response(request.identifier, &request.authenticator, &secret)
                .to_vec();
        self.recent.insert(
            source,
            request.identifier,
            request.authenticator,
            response.clone(),
            now,
        );
        Some(response)
    }

    /// Records the request as a session change.
    async fn apply(
        &self,
        request: &AccountingRequest,
        network: IpNet,
        source: SocketAddr,
    ) -> Outcome {
        let status = request.status;
        let (user, ip) = match (&request.user_name, request.framed_ip) {
            (Some(user), Some(ip)) => (user.as_str(), IpAddr::V4(ip)),
            _ if matches!(
                status,
                StatusType::Start | StatusType::Stop | StatusType::InterimUpdate
            ) =>
            {
                tracing::warn!(%source, status = status.as_str(), "RADIUS accounting: no User-Name or Framed-IP-Address, nothing to record");
                return Outcome::Refused {
                    why: DropReason::MissingAttribute,
                    answer: true,
                };
            }
            // Accounting-On/Off and other status types carry no session: acknowledged.
            _ => {
                tracing::info!(%source, status = status.as_str(), nas = ?request.nas_identifier, "RADIUS accounting: acknowledged");
                return Outcome::Applied;
            }
        };
        let actor = format!("radius:{network}");
        let workstation = request
            .calling_station_id
            .as_deref()
            .or(request.nas_identifier.as_deref());
        let now = self.shared.clock.now();
        let sessions = self.shared.store.sessions();
        let snapshot = self.shared.engine.snapshot();
        let here = snapshot
            .identities
            .get(ip)
            .map(|id| Arc::clone(&id.person.username));
        let result: Result<&str, StoreError> = match status {
            StatusType::Start => sessions
                .start(&actor, user, ip, workstation, now)
                .await
                .map(|_| "session started"),
            StatusType::InterimUpdate if here.as_deref() == Some(user) => {
                match sessions.touch(ip, now).await {
                    Ok(true) => Ok("session touched"),
                    Ok(false) => sessions
                        .start(&actor, user, ip, workstation, now)
                        .await
                        .map(|_| "session started (interim update, none open)"),
                    Err(error) => Err(error),
                }
            }
            StatusType::InterimUpdate => sessions
                .start(&actor, user, ip, workstation, now)
                .await
                .map(|_| "session started (interim update, none open for this person)"),
            StatusType::Stop => match here.as_deref() {
                // The address went to someone else since: their session stays.
                Some(other) if other != user => {
                    Ok("stop ignored: the address is another person's now")
                }
                _ => sessions
                    .end_by_ip(&actor, ip, now)
                    .await
                    .map(|_| "session ended"),
            },
            _ => Ok("acknowledged"),
        };
        match result {
            Ok(what) => {
                tracing::info!(%source, user, %ip, status = status.as_str(), session = ?request.session_id, "RADIUS accounting: {what}");
                Outcome::Applied
            }
            Err(StoreError::UnknownUser(_)) => {
                tracing::warn!(%source, user, %ip, "RADIUS accounting: unknown user (not in the roster), no session");
                Outcome::Refused {
                    why: DropReason::UnknownUser,
                    answer: true,
                }
            }
            Err(error) => {
                tracing::error!(%source, user, %ip, %error, "RADIUS accounting: cannot record; not acknowledged, the NAS will retry");
                Outcome::Refused {
                    why: DropReason::StoreFailed,
                    answer: false,
                }
            }
        }
    }
}
