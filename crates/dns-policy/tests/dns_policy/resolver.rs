//! The DNS enforcement point with the real policy filter, end to end over real sockets:
//! a resolver on loopback, an upstream on loopback, a SQLite store with people and logon
//! sessions, and queries sent with hickory-proto from distinct loopback source addresses
//! (so each address is a different person). Time is set per test by moving the filter's
//! manual clock, so lesson time and lunchtime are both checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hallpass_catalog::Catalog;
use hallpass_clock::Clock;
use hallpass_dns::{DnsConfig, DnsServer, ServerHandle};
use hallpass_dns_policy::{EventLog, PolicyFilter};
use hallpass_engine::sessions::{follow_sessions, read_identities};
use hallpass_engine::{Engine, Snapshot, compile_policy};
use hallpass_store::{EventWriter, EventWriterConfig, ReportFilter, Store};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio_util::sync::CancellationToken;

/// The WCS example with its guest Wi-Fi moved onto loopback, where tests can send from.
fn wcs_on_loopback() -> String {
    include_str!("../../../../examples/policies/wcs.toml").replace("10.50.0.0/16", "127.0.50.0/24")
}

const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id\n\
    ava,Ava,student,9,9B,ava@school.example,M1\n\
    tom,Tom,staff,,,tom@school.example,M2\n\
    mia,Mia,staff,,,mia@school.example,M3\n";

const STUDENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const TEACHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 22);
const MARKETING: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 23);
const GUEST: Ipv4Addr = Ipv4Addr::new(127, 0, 50, 7);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BLOCK_PAGE: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 10);

/// Monday 23 November 2026 (term time, GMT) at `hh:mm` London time.
fn monday_at(hh: i8, mm: i8) -> jiff::Timestamp {
    jiff::civil::date(2026, 11, 23)
        .at(hh, mm, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
}

struct School {
    dns: SocketAddr,
    clock: Clock,
    store: Store,
    engine: Arc<Engine>,
    writer: EventWriter,
    server: Option<ServerHandle>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl School {
    async fn start() -> School {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let records = hallpass_store::people::parse_roster(ROSTER.as_bytes()).unwrap();
        // Sessions start at the real time (they are active now, whatever the test's
        // clock says); decisions read the manual clock.
        let now = Clock::system().now();
        store
            .people()
            .import(&records, false, "test", "roster", now)
            .await
            .unwrap();
        store
            .people()
            .add_membership("mia", "marketing")
            .await
            .unwrap();
        for (ip, user) in [(STUDENT, "ava"), (TEACHER, "tom"), (MARKETING, "mia")] {
            store
                .sessions()
                .start("test", user, IpAddr::V4(ip), None, now)
                .await
                .unwrap();
        }

        let catalog = Catalog::demo().unwrap();
        let (policy, _) = compile_policy("wcs.toml", &wcs_on_loopback(), &catalog).unwrap();
        // They have accepted the acceptable-use declaration (restriction is tested elsewhere).
        for user in ["ava", "tom", "mia"] {
            for d in policy.declarations() {
                store
                    .declarations()
                    .accept(
                        "test",
                        user,
                        &d.document,
                        &d.version,
                        Default::default(),
                        now,
                    )
                    .await
                    .unwrap();
            }
        }
        let identities = read_identities(&store, &policy).await.unwrap();
        let engine = Arc::new(Engine::new(Snapshot::new(
            Arc::new(policy),
            Arc::new(catalog),
            Arc::new(identities),
            Arc::default(),
        )));

        let (writer, _task) = EventWriter::start(
            store.clone(),
            EventWriterConfig::new(dir.path().join("spill")),
        )
        .unwrap();
        let clock = Clock::manual_at(monday_at(10, 0));
        let config = DnsConfig {
            upstreams: vec![spawn_upstream()],
            ..DnsConfig::default()
        };
        let server = DnsServer::bind(
            config,
            PolicyFilter::new(Arc::clone(&engine), clock.clone()),
            EventLog::new(writer.clone()),
        )
        .await
        .unwrap()
        .spawn();
        let stop = CancellationToken::new();
        tokio::spawn(follow_sessions(
            Arc::clone(&engine),
            store.clone(),
            stop.clone(),
        ));
        School {
            dns: server.udp_addrs()[0],
            clock,
            store,
            engine,
            writer,
            server: Some(server),
            stop,
            _dir: dir,
        }
    }

    fn set_time(&self, hh: i8, mm: i8) {
        self.clock.set(monday_at(hh, mm));
    }

    /// Sends one A query from `from` and returns the response and its raw bytes.
    async fn ask(&self, from: Ipv4Addr, name: &str) -> (Message, Vec<u8>) {
        let server = self.dns;
        let name = name.to_string();
        tokio::task::spawn_blocking(move || query(from, server, &name))
            .await
            .unwrap()
    }

    /// Stops the resolver and drains the event writer (idempotent).
    async fn stop_serving(&mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        self.writer.shutdown().await;
    }

    async fn stop(mut self) {
        self.stop_serving().await;
    }

    /// The SQLite file the store writes.
    fn database(&self) -> std::path::PathBuf {
        self._dir.path().join("hallpass.db")
    }
}

fn query(from: Ipv4Addr, server: SocketAddr, name: &str) -> (Message, Vec<u8>) {
    let socket = UdpSocket::bind((from, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut message = Message::new();
    message
        .set_id(0x4150)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let edns = message
        .extensions_mut()
        .get_or_insert_with(Default::default);
    edns.set_max_payload(1232);
    socket.send_to(&message.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    buf.truncate(len);
    (Message::from_vec(&buf).unwrap(), buf)
}

/// An upstream that answers every A query with 192.0.2.1 (TTL 300), others with NODATA.
fn spawn_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            let Ok(request) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut response = Message::new();
            response
                .set_id(request.id())
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true)
                .set_recursion_available(true)
                .add_queries(request.queries().to_vec());
            if let Some(q) = request.queries().first()
                && q.query_type() == RecordType::A
            {
                response.add_answer(hickory_proto::rr::Record::from_rdata(
                    q.name().clone(),
                    300,
                    RData::A(UPSTREAM_ANSWER.into()),
                ));
            }
            let _ = socket.send_to(&response.to_vec().unwrap(), peer);
        }
    });
    addr
}

fn addresses(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers()
        .iter()
        .filter_map(|record| match record.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn cname(message: &Message) -> Option<String> {
    message
        .answers()
        .iter()
        .find_map(|record| match record.data() {
            RData::CNAME(name) => Some(name.0.to_ascii()),
            _ => None,
        })
}

/// The EDE text rides in the OPT record; the clause citation is plain ASCII in it.
fn cites(raw: &[u8], citation: &str) -> bool {
    String::from_utf8_lossy(raw).contains(citation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_gets_its_own_policy_with_the_clause_cited() {
    let school = School::start().await;

    let (answer, raw) = school.ask(STUDENT, "mail.google.com").await;
    assert_eq!(
        addresses(&answer),
        vec![BLOCK_PAGE],
        "webmail is blocked to the block page"
    );
    assert!(cites(&raw, "wcs 4.5.1"), "EDE cites the webmail clause");

    let (answer, raw) = school.ask(TEACHER, "www.facebook.com").await;
    assert_eq!(addresses(&answer), vec![BLOCK_PAGE]);
    assert!(cites(&raw, "wcs 8.1.1"));
    let (answer, _) = school.ask(MARKETING, "www.facebook.com").await;
    assert_eq!(
        addresses(&answer),
        vec![UPSTREAM_ANSWER],
        "marketing may use social media"
    );

    let (answer, raw) = school.ask(STRANGER, "www.bbc.co.uk").await;
    assert_eq!(
        addresses(&answer),
        vec![BLOCK_PAGE],
        "an unidentified client fails closed"
    );
    assert!(cites(&raw, "wcs 2.1"));

    let (answer, _) = school.ask(GUEST, "www.bbc.co.uk").await;
    assert_eq!(
        addresses(&answer),
        vec![UPSTREAM_ANSWER],
        "guest Wi-Fi is identified by its range"
    );
    let (_, raw) = school.ask(GUEST, "www.instagram.com").await;
    assert!(cites(&raw, "wcs 8.1.1"));
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_of_day_decides_streaming_and_the_guest_network() {
    let school = School::start().await;
    school.set_time(10, 0);
    let (answer, raw) = school.ask(STUDENT, "www.deezer.com").await;
    assert_eq!(
        addresses(&answer),
        vec![BLOCK_PAGE],
        "streaming is blocked in lessons"
    );
    assert!(cites(&raw, "wcs 4.3.7"));
    school.set_time(12, 50);
    let (answer, _) = school.ask(STUDENT, "www.deezer.com").await;
    assert_eq!(
        addresses(&answer),
        vec![UPSTREAM_ANSWER],
        "allowed at lunchtime"
    );

    school.set_time(23, 30);
    let (answer, raw) = school.ask(GUEST, "www.bbc.co.uk").await;
    assert_eq!(
        addresses(&answer),
        vec![BLOCK_PAGE],
        "guest Wi-Fi closes overnight"
    );
    assert!(cites(&raw, "wcs 4.2.3"));
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_search_and_canaries() {
    let school = School::start().await;
    let (answer, _) = school.ask(STUDENT, "www.google.co.uk").await;
    assert_eq!(
        cname(&answer).as_deref(),
        Some("forcesafesearch.google.com.")
    );
    assert_eq!(
        addresses(&answer),
        vec![UPSTREAM_ANSWER],
        "the CNAME's target is resolved too"
    );
    // YouTube is audio-video: blocked for students in lessons (4.3.7); at lunchtime it
    // resolves, through YouTube's strict restricted mode; staff get moderate.
    let (answer, raw) = school.ask(STUDENT, "www.youtube.com").await;
    assert_eq!(addresses(&answer), vec![BLOCK_PAGE]);
    assert!(cites(&raw, "wcs 4.3.7"));
    school.set_time(12, 50);
    let (answer, _) = school.ask(STUDENT, "www.youtube.com").await;
    assert_eq!(cname(&answer).as_deref(), Some("restrict.youtube.com."));
    let (answer, _) = school.ask(MARKETING, "www.youtube.com").await;
    assert_eq!(
        cname(&answer).as_deref(),
        Some("restrictmoderate.youtube.com.")
    );
    for canary in [
        "use-application-dns.net",
        "mask.icloud.com",
        "mask-h2.icloud.com",
    ] {
        let (answer, _) = school.ask(TEACHER, canary).await;
        assert_eq!(answer.response_code(), ResponseCode::NXDomain, "{canary}");
    }
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_policy_changes_reach_the_resolver_mid_run() {
    let school = School::start().await;
    let (answer, _) = school.ask(STUDENT, "www.bbc.co.uk").await;
    assert_eq!(addresses(&answer), vec![UPSTREAM_ANSWER]);

    school
        .store
        .sessions()
        .end("test", "ava", Clock::system().now())
        .await
        .unwrap();
    let mut unidentified = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (answer, _) = school.ask(STUDENT, "www.bbc.co.uk").await;
        if addresses(&answer) == vec![BLOCK_PAGE] {
            unidentified = true;
            break;
        }
    }
    assert!(
        unidentified,
        "an ended session stops identifying its address within 3 s"
    );

    // A new policy (staff may use social media) swapped in mid-run applies to the next query.
    let text = wcs_on_loopback().replace(
        "except_groups = [\"marketing\"]\nteacher_override = true",
        "except_groups = [\"marketing\", \"staff\"]\nteacher_override = true",
    );
    let current = school.engine.current();
    let (policy, _) = compile_policy("wcs.toml", &text, &current.catalog).unwrap();
    let identities = read_identities(&school.store, &policy).await.unwrap();
    school.engine.replace(current.with_policy(
        Arc::new(policy),
        Arc::clone(&current.catalog),
        identities,
    ));
    let (answer, _) = school.ask(TEACHER, "www.facebook.com").await;
    assert_eq!(
        addresses(&answer),
        vec![UPSTREAM_ANSWER],
        "the reloaded policy is in force"
    );
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_is_recorded_with_person_and_clause() {
    let mut school = School::start().await;
    for _ in 0..3 {
        school.ask(STUDENT, "gmail.com").await;
    }
    school.ask(STUDENT, "www.bbc.co.uk").await;
    school.ask(STRANGER, "www.bbc.co.uk").await;
    school.writer.flush().await;
    assert_eq!(school.store.event_count().await.unwrap(), 5);

    // The events are stamped with the filter's clock: Monday 23 November 2026.
    let day = monday_at(0, 0);
    let today = ReportFilter::new(day, day + jiff::SignedDuration::from_hours(24));
    let people = school
        .store
        .reports()
        .blocked_by_person(&today, 10)
        .await
        .unwrap();
    let ava = people
        .iter()
        .find(|row| row.key == "ava")
        .expect("ava's blocked attempts");
    assert_eq!(ava.count, 3);
    let targets = school
        .store
        .reports()
        .top_blocked_targets(&today, 10)
        .await
        .unwrap();
    assert!(
        targets
            .iter()
            .any(|row| row.key == "gmail.com" && row.count == 3),
        "{targets:?}"
    );

    // Each event names the person, and a block cites its rule, document and clause,
    // as plain SQL over the events view shows them.
    school.stop_serving().await;
    let recorded = recorded_events(&school.database());
    let webmail = (
        Some("ava".to_string()),
        "block".to_string(),
        Some("webmail".to_string()),
        Some("wcs".to_string()),
        Some("4.5.1".to_string()),
    );
    let gmail: Vec<_> = recorded
        .iter()
        .filter(|(target, ..)| target == "gmail.com")
        .collect();
    assert_eq!(gmail.len(), 3, "{recorded:?}");
    for (_, who, verdict, rule, document, clause) in gmail {
        assert_eq!(
            (
                who.clone(),
                verdict.clone(),
                rule.clone(),
                document.clone(),
                clause.clone()
            ),
            webmail
        );
    }
    let stranger = recorded
        .iter()
        .find(|(target, who, ..)| target == "www.bbc.co.uk" && who.is_none())
        .expect("the unidentified client's query");
    assert_eq!(
        (
            stranger.2.as_str(),
            stranger.4.as_deref(),
            stranger.5.as_deref()
        ),
        ("block", Some("wcs"), Some("2.1")),
        "fails closed citing 2.1"
    );
    let allowed = recorded
        .iter()
        .find(|(target, who, ..)| target == "www.bbc.co.uk" && who.as_deref() == Some("ava"))
        .expect("ava's allowed query");
    assert_eq!(allowed.2, "allow");
    school.stop().await;
}

/// A recorded DNS event: target, person, verdict, rule, document, clause.
type Recorded = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn recorded_events(database: &std::path::Path) -> Vec<Recorded> {
    let db = rusqlite::Connection::open(database).unwrap();
    let mut statement = db
        .prepare(
            "SELECT target, person, verdict, rule, document, clause FROM events \
             WHERE kind = 'dns' ORDER BY at_us, target",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
