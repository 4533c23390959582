//! Test kit: a fake upstream, a map-based test filter, a recording log, a client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hallpass_dns::clock::Clock;
use hallpass_dns::safe_search::{self, SafeSearchSettings};
use hallpass_dns::{
    BlockMode, DnsConfig, DnsServer, EdeCode, FilterDecision, FilterVerdict, QueryFilter, QueryLog,
    QueryRecord, ServerHandle,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, NULL, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// What the fake upstream does for a name.
#[derive(Clone, Debug)]
pub enum Behave {
    /// A records (and an RRSIG-typed record when the query has DO).
    A(Vec<Ipv4Addr>, u32),
    /// NXDOMAIN with an SOA (record TTL, MINIMUM).
    Nx(u32, u32),
    /// `n` 100-byte TXT records (a large answer).
    Big(usize),
    /// A record, but over UDP only an empty reply with TC set.
    TcOnUdp(Ipv4Addr),
    /// A record after a delay.
    Slow(Ipv4Addr, Duration),
    /// Answer SERVFAIL.
    Servfail,
}

#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Seen {
    pub name: String,
    /// The name as it arrived (0x20 case), without the trailing dot.
    pub raw_name: String,
    /// The source port (0 over TCP).
    pub port: u16,
    pub qtype: RecordType,
    pub tcp: bool,
    pub dnssec_ok: bool,
    pub udp_size: Option<u16>,
}

#[derive(Default)]
pub struct UpstreamState {
    pub names: Mutex<HashMap<String, Behave>>,
    pub silent: AtomicBool,
    /// Echo the question in lowercase (a server that does not keep 0x20 case).
    pub lowercase_echo: AtomicBool,
    pub seen: Mutex<Vec<Seen>>,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub state: Arc<UpstreamState>,
}

/// Fake RRSIG rdata, checked byte for byte on the client side.
pub const FAKE_RRSIG: &[u8] = b"\x00\x01\x08\x02\x00\x00\x01\x2cfake-signature-bytes";

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        // UDP and TCP on one port: the port the system gives the UDP socket may be
        // taken for TCP (another test's connection), so try again with another.
        let mut tries = 0;
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, addr, tcp),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => tries += 1,
                Err(e) => panic!("no port free for both UDP and TCP: {e}"),
            }
        };
        let state = Arc::new(UpstreamState::default());
        let udp = Arc::new(udp);
        let st = state.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let q = buf[..n].to_vec();
                let (st, udp) = (st.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(r) = respond(&st, &q, false, peer.port()).await {
                        let _ = udp.send_to(&r, peer).await;
                    }
                });
            }
        });
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    while let Ok(len) = s.read_u16().await {
                        let mut q = vec![0u8; len as usize];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        if let Some(r) = respond(&st, &q, true, 0).await {
                            let mut f = (r.len() as u16).to_be_bytes().to_vec();
                            f.extend_from_slice(&r);
                            let _ = s.write_all(&f).await;
                        }
                    }
                });
            }
        });
        FakeUpstream { addr, state }
    }

    pub fn set(&self, name: &str, b: Behave) {
        self.state.names.lock().unwrap().insert(name.to_owned(), b);
    }

    pub fn silence(&self, silent: bool) {
        self.state.silent.store(silent, Ordering::SeqCst);
    }

    /// How many queries for `name` arrived (UDP and TCP).
    pub fn count(&self, name: &str) -> usize {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

fn soa(minimum: u32) -> RData {
    RData::SOA(SOA::new(
        Name::from_ascii("ns.test.").unwrap(),
        Name::from_ascii("hostmaster.test.").unwrap(),
        1,
        3600,
        600,
        86400,
        minimum,
    ))
}

async fn respond(st: &UpstreamState, q: &[u8], tcp: bool, port: u16) -> Option<Vec<u8>> {
    let query = Message::from_vec(q).ok()?;
    let question = query.queries().first()?.clone();
    let raw_name = question.name().to_ascii().trim_end_matches('.').to_owned();
    let name = raw_name.to_ascii_lowercase();
    let edns = query.extensions().clone();
    st.seen.lock().unwrap().push(Seen {
        name: name.clone(),
        raw_name,
        port,
        qtype: question.query_type(),
        tcp,
        dnssec_ok: edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        udp_size: edns.as_ref().map(|e| e.max_payload()),
    });
    if st.silent.load(Ordering::SeqCst) {
        return None;
    }
    let behave = st
        .names
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or(Behave::A(vec![Ipv4Addr::new(192, 0, 2, 1)], 300));
    let mut r = Message::new();
    r.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    if st.lowercase_echo.load(Ordering::SeqCst) {
        let mut lower = Query::query(Name::from_ascii(&name).unwrap(), question.query_type());
        lower.set_query_class(question.query_class());
        r.add_query(lower);
    } else {
        r.add_query(question.clone());
    }
    if let Some(e) = &edns {
        let mut out = Edns::new();
        out.set_max_payload(1232);
        out.set_dnssec_ok(e.flags().dnssec_ok);
        r.set_edns(out);
    }
    let owner = question.name().clone();
    let do_bit = edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let qt = question.query_type();
    let add_a = |r: &mut Message, ips: &[Ipv4Addr], ttl: u32| {
        if qt == RecordType::A {
            for ip in ips {
                r.add_answer(Record::from_rdata(owner.clone(), ttl, RData::A(A(*ip))));
            }
            if do_bit {
                r.add_answer(Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::Unknown {
                        code: RecordType::RRSIG,
                        rdata: NULL::with(FAKE_RRSIG.to_vec()),
                    },
                ));
            }
        } else {
            r.add_name_server(Record::from_rdata(
                Name::from_ascii("test.").unwrap(),
                60,
                soa(60),
            ));
        }
    };
    match behave {
        Behave::Servfail => {
            r.set_response_code(ResponseCode::ServFail);
        }
        Behave::A(ips, ttl) => add_a(&mut r, &ips, ttl),
        Behave::Nx(ttl, min) => {
            r.set_response_code(ResponseCode::NXDomain);
            r.add_name_server(Record::from_rdata(
                Name::from_ascii("test.").unwrap(),
                ttl,
                soa(min),
            ));
        }
        Behave::Big(n) => {
            for i in 0..n {
                r.add_answer(Record::from_rdata(
                    owner.clone(),
                    300,
                    RData::TXT(TXT::new(vec![format!("{i:03}-{}", "x".repeat(96))])),
                ));
            }
        }
        Behave::TcOnUdp(ip) => {
            if tcp {
                add_a(&mut r, &[ip], 300);
            } else {
                r.set_truncated(true);
            }
        }
        Behave::Slow(ip, d) => {
            tokio::time::sleep(d).await;
            add_a(&mut r, &[ip], 300);
        }
    }
    r.to_vec().ok()
}

/// A filter from a map of names to verdicts; canaries NXDOMAIN; safe search (all engines,
/// strict) for every client. Info is a string naming the rule.
#[derive(Default)]
pub struct MapFilter {
    pub verdicts: Mutex<HashMap<String, FilterVerdict>>,
    pub safe_search: bool,
    /// A name whose check panics (a filter bug, to see the listener survive it).
    pub panics_on: Mutex<Option<String>>,
    /// Holds the listener inside `check` of `stall.example` while closed.
    pub gate: Gate,
}

/// A gate `check` waits at (for `stall.example`) while it is closed, so a test can queue
/// datagrams behind a busy listener.
#[derive(Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: std::sync::Condvar,
    pub waiting: AtomicBool,
}

impl Gate {
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        self.waiting.store(true, Ordering::SeqCst);
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}

impl QueryFilter for MapFilter {
    type Info = String;
    fn check(&self, _client: IpAddr, qname: &str, _qtype: u16) -> FilterDecision<String> {
        if qname == "stall.example" {
            self.gate.pass();
        }
        if self.panics_on.lock().unwrap().as_deref() == Some(qname) {
            panic!("test filter panics on {qname}");
        }
        if safe_search::is_canary(qname) {
            return FilterDecision::new(FilterVerdict::Block {
                mode: BlockMode::Nxdomain,
                ttl: 10,
                reason: "canary: ICT policy 4.2".into(),
                ede: EdeCode::Blocked,
            })
            .with_info("canary".into());
        }
        if self.safe_search
            && let Some(t) = safe_search::target_for(qname, &SafeSearchSettings::STRICT)
        {
            return FilterDecision::new(FilterVerdict::SafeSearch { target: t.into() })
                .with_info("safe".into());
        }
        match self.verdicts.lock().unwrap().get(qname) {
            Some(v) => FilterDecision::new(v.clone()).with_info(format!("rule:{qname}")),
            None => FilterDecision::allow().with_info("default".into()),
        }
    }
}

#[derive(Default)]
pub struct VecLog(pub Mutex<Vec<QueryRecord<String>>>);

impl QueryLog<String> for VecLog {
    fn record(&self, r: QueryRecord<String>) {
        self.0.lock().unwrap().push(r);
    }
}

pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    pub up: FakeUpstream,
    pub filter: Arc<MapFilter>,
    pub log: Arc<VecLog>,
    pub clock: Clock,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_, _| {}).await
    }

    /// Starts a fake upstream and a server forwarding to it; `tweak` may change the
    /// config (it receives the upstream's address).
    pub async fn start_with(tweak: impl FnOnce(&mut DnsConfig, SocketAddr)) -> TestServer {
        let up = FakeUpstream::start().await;
        let clock = Clock::manual();
        let mut config = DnsConfig {
            upstreams: vec![up.addr],
            upstream_timeout: Duration::from_millis(300),
            udp_sockets: 2,
            clock: clock.clone(),
            ..DnsConfig::default()
        };
        tweak(&mut config, up.addr);
        let filter = Arc::new(MapFilter {
            safe_search: true,
            ..Default::default()
        });
        let log = Arc::new(VecLog::default());
        let server = DnsServer::bind(config, filter.clone(), log.clone())
            .await
            .unwrap();
        let addr = server.udp_addrs()[0];
        assert_eq!(server.tcp_addrs()[0], addr);
        let handle = server.spawn();
        TestServer {
            handle,
            addr,
            up,
            filter,
            log,
            clock,
        }
    }

    pub fn block(&self, name: &str, v: FilterVerdict) {
        self.filter
            .verdicts
            .lock()
            .unwrap()
            .insert(name.to_owned(), v);
    }

    pub fn records(&self) -> Vec<QueryRecord<String>> {
        self.log.0.lock().unwrap().clone()
    }

    pub fn last_record(&self) -> QueryRecord<String> {
        self.records().last().cloned().expect("a record")
    }

    pub async fn udp(&self, name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Message {
        udp_query(self.addr, &build_query(name, qtype, edns))
            .await
            .expect("an answer")
    }

    pub async fn tcp(&self, name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Message {
        let bytes = tcp_exchange(self.addr, &build_query(name, qtype, edns))
            .await
            .unwrap();
        Message::from_vec(&bytes).unwrap()
    }
}

pub fn build_query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(rand_id())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    // from_ascii keeps the case (from_str would lowercase it).
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(1u8) as u16
}

/// Sends raw bytes over UDP; `None` if nothing comes back within 1s.
pub async fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let local = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let s = UdpSocket::bind(local).await.unwrap();
    s.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(1), s.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn udp_query(addr: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let r = udp_raw(addr, bytes).await?;
    let m = Message::from_vec(&r).unwrap();
    assert_eq!(&r[..2], &bytes[..2], "ID echoed");
    Some(m)
}

pub async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    let mut f = (bytes.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(bytes);
    s.write_all(&f).await?;
    let len = s.read_u16().await?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The EDE (code, text) in a response, if any.
pub fn ede(m: &Message) -> Option<(u16, String)> {
    let e = m.extensions().as_ref()?;
    e.options().as_ref().iter().find_map(|(_, o)| match o {
        EdnsOption::Unknown(15, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        _ => None,
    })
}

pub fn a_addrs(m: &Message) -> Vec<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

pub fn aaaa_addrs(m: &Message) -> Vec<Ipv6Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .collect()
}
