//! Which NAS may send accounting, and with which shared secret: configured per network.

use std::net::IpAddr;

use ipnet::IpNet;

/// One configured client network and its shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub network: IpNet,
    pub secret: Vec<u8>,
}

/// The secret is never printed.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("network", &self.network)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The configured clients; a source address matches the most specific network that
/// contains it.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    clients: Vec<Client>,
}

impl Clients {
    pub fn new(mut clients: Vec<Client>) -> Clients {
        // Longest prefix first, so the first match is the most specific.
        clients.sort_by_key(|client| std::cmp::Reverse(client.network.prefix_len()));
        Clients { clients }
    }

    /// The client whose network holds `source` (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address), or `None`: an unknown NAS.
    pub fn lookup(&self, source: IpAddr) -> Option<&Client> {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        self.clients
            .iter()
            .find(|client| client.network.contains(&source))
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}
