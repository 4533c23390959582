//! TCP listeners: length-prefixed messages, connections served concurrently. Bounded
//! per client address and in total; when the total is reached the connection that has
//! been idle longest is closed to make room (RFC 7766 §6.2.2 lets a server close idle
//! connections), so one host holding idle connections cannot lock others out, and a
//! host that opens more than its share is refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::filter::{QueryFilter, QueryLog, Transport};
use crate::metrics::Metrics;
use crate::resolver::{Handled, Resolver};

pub(crate) fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// One client connection, as the table sees it.
struct Conn {
    id: u64,
    client: IpAddr,
    /// A query is being read, resolved or answered.
    busy: AtomicBool,
    /// When it last went idle, on the table's tick (smaller is older).
    idle_since: AtomicU64,
    /// Told to close, to make room.
    evict: Notify,
}

#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<Conn>>,
    per_client: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&conn.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&conn.client);
            }
        }
        Some(conn)
    }
}

/// Every open client connection of the server (all TCP listeners share it). Locked when
/// a connection opens or closes, never per query.
pub(crate) struct Connections {
    table: Mutex<Table>,
    tick: AtomicU64,
    total: usize,
    per_client: usize,
    metrics: Arc<Metrics>,
}

/// Why a new connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The client already holds its share.
    ClientFull,
    /// The total is reached and no connection is idle.
    AllBusy,
}

/// A connection's place in the table; dropping it frees the place.
struct Admitted {
    conns: Arc<Connections>,
    conn: Arc<Conn>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.conns.lock().remove(self.conn.id);
    }
}

impl Connections {
    pub(crate) fn new(total: usize, per_client: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Connections {
            table: Mutex::new(Table::default()),
            tick: AtomicU64::new(0),
            total: total.max(1),
            per_client: per_client.max(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Admits a connection from `client`, closing the longest-idle one when the total
    /// is reached.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Admitted, Refusal> {
        let mut table = self.lock();
        if table.per_client.get(&client).copied().unwrap_or(0) >= self.per_client {
            return Err(Refusal::ClientFull);
        }
        if table.conns.len() >= self.total {
            let oldest_idle = table
                .conns
                .values()
                .filter(|c| !c.busy.load(Ordering::Relaxed))
                .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))
                .map(|c| c.id);
            let victim = oldest_idle.and_then(|id| table.remove(id));
            let Some(victim) = victim else {
                return Err(Refusal::AllBusy);
            };
            victim.evict.notify_one();
            Metrics::bump(&self.metrics.tcp_evicted);
        }
        let id = table.next_id;
        table.next_id += 1;
        let conn = Arc::new(Conn {
            id,
            client,
            busy: AtomicBool::new(true),
            idle_since: AtomicU64::new(0),
            evict: Notify::new(),
        });
        table.conns.insert(id, conn.clone());
        *table.per_client.entry(client).or_insert(0) += 1;
        Ok(Admitted {
            conns: self.clone(),
            conn,
        })
    }
}

/// Accepts connections on `listener` for as long as the server runs.
pub(crate) async fn tcp_accept<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    listener: Arc<TcpListener>,
    conns: Arc<Connections>,
    stop: watch::Receiver<bool>,
    idle: Duration,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, usually: give closing connections a moment.
                tracing::debug!("DNS TCP accept error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let client = peer.ip().to_canonical();
        let admitted = match conns.admit(client) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%client, ?why, "DNS TCP connection refused");
                Metrics::bump(&resolver.metrics().tcp_refused);
                drop(stream);
                continue;
            }
        };
        let r = resolver.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tcp_conn(r, stream, client, &admitted, stop, idle).await;
            drop(admitted);
        });
    }
}

async fn tcp_conn<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    mut stream: TcpStream,
    client: IpAddr,
    admitted: &Admitted,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) {
    let _ = stream.set_nodelay(true);
    let conn = &admitted.conn;
    let tick = &admitted.conns.tick;
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    loop {
        conn.idle_since
            .store(tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        conn.busy.store(false, Ordering::Relaxed);
        let len = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_u16()) => match r {
                Ok(Ok(l)) => usize::from(l),
                _ => return,
            },
            _ = stop.changed() => return,
            _ = conn.evict.notified() => return,
        };
        conn.busy.store(true, Ordering::Relaxed);
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        match resolver.handle_packet(&buf, client, Transport::Tcp, &mut out) {
            Handled::Answered => {}
            Handled::Dropped => continue,
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(_permit) => resolver.resolve(p, &mut out).await,
                None => resolver.overloaded(p, &mut out),
            },
        }
        if out.is_empty() || out.len() > usize::from(u16::MAX) {
            continue;
        }
        framed.clear();
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_longest_idle_connection_makes_room_and_a_client_keeps_to_its_share() {
        let conns = Connections::new(3, 2, Arc::new(Metrics::default()));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            [10, 0, 0, 3].into(),
        );
        let a1 = conns.admit(a).unwrap();
        let a2 = conns.admit(a).unwrap();
        assert_eq!(conns.admit(a).err(), Some(Refusal::ClientFull));
        let b1 = conns.admit(b).unwrap();
        // All three busy: nothing to evict.
        assert_eq!(conns.admit(c).err(), Some(Refusal::AllBusy));
        // a2 went idle first, then a1: a2 is evicted.
        for (conn, at) in [(&a2, 1), (&a1, 2)] {
            conn.conn.idle_since.store(at, Ordering::Relaxed);
            conn.conn.busy.store(false, Ordering::Relaxed);
        }
        let c1 = conns.admit(c).unwrap();
        assert_eq!(conns.lock().conns.len(), 3);
        assert!(!conns.lock().conns.contains_key(&a2.conn.id));
        assert_eq!(conns.metrics.tcp_evicted.load(Ordering::Relaxed), 1);
        // a may open another now that it holds one.
        drop(a2);
        assert_eq!(conns.lock().per_client.get(&a), Some(&1));
        drop((a1, b1, c1));
        assert!(conns.lock().conns.is_empty() && conns.lock().per_client.is_empty());
    }
}
