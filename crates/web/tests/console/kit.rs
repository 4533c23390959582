//! The test kit: starts the console on port 0 over a fresh store with one account per
//! role and some recorded events, and hands out signed-in clients.

use std::net::IpAddr;
use std::sync::Arc;

use hallpass_clock::Clock;
use hallpass_store::{Event, EventKind, EventWriter, EventWriterConfig, Store};
use hallpass_web::{PolicySource, Role, WebConfig, WebState};
use tokio_util::sync::CancellationToken;

const POLICY: &str = include_str!("../../../../examples/policies/wcs.toml");

/// username, display name, roster role, year group; and the console role given.
pub const PEOPLE: &[(&str, &str, &str, &str, Role)] = &[
    (
        "nina.netman",
        "Nina Netman",
        "staff",
        "",
        Role::NetworkManager,
    ),
    ("dan.dsl", "Dan Dsl", "staff", "", Role::Dsl),
    ("hana.hoy", "Hana Hoy", "staff", "", Role::HeadOfYear),
    ("harry.head", "Harry Head", "staff", "", Role::Headteacher),
    ("dora.dpo", "Dora Dpo", "staff", "", Role::Dpo),
    ("mr.teacher", "Mr Teacher", "staff", "", Role::Teacher),
    ("gus.governor", "Gus Governor", "staff", "", Role::Governor),
    ("ava.student", "Ava Student", "student", "9", Role::Student),
];

/// A second student, in a year the head of year is not responsible for.
pub const OTHER_STUDENT: &str = "ben.student";

/// The one person who has not accepted the acceptable-use declaration.
pub const DECLARATION_PENDING: &str = OTHER_STUDENT;

pub fn password_for(username: &str) -> String {
    format!("violet-kettle-{}-drums", username.len() * 7 + 3)
}

pub struct Kit {
    pub base: String,
    pub clock: Clock,
    pub store: Store,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Kit {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start() -> Kit {
    start_with(WebConfig::default()).await
}

/// Where a test binary keeps the console's records: `tests/console` on SQLite,
/// `tests/postgres.rs` on the PostgreSQL server of `HALLPASS_TEST_POSTGRES_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each test binary names one
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store on the test binary's backend (`crate::BACKEND`).
async fn open_store(dir: &std::path::Path) -> Store {
    match crate::BACKEND {
        Backend::Sqlite => Store::connect_data_dir(dir).await.unwrap(),
        Backend::Postgres => Store::connect(&fresh_postgres_database().await)
            .await
            .unwrap(),
    }
}

/// A new database on the server named by `HALLPASS_TEST_POSTGRES_URL` (`source
/// .ci/postgres.sh` sets it). The PostgreSQL target runs only when named, so a missing
/// URL is a failure, never a skip.
async fn fresh_postgres_database() -> String {
    let base = std::env::var("HALLPASS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "HALLPASS_TEST_POSTGRES_URL is not set: run `source .ci/postgres.sh` first, then \
             `cargo test -p hallpass-web --test postgres`"
        )
    });
    let name = format!("hp_web_{:016x}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

pub async fn start_with(config: WebConfig) -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let clock = Clock::manual();
    let now = clock.now();
    let mut csv = String::from("username,display_name,role,year_group,form,email,mis_id\n");
    for (i, (u, name, role, year, _)) in PEOPLE.iter().enumerate() {
        csv.push_str(&format!(
            "{u},{name},{role},{year},,{u}@school.example,M{i}\n"
        ));
    }
    csv.push_str(&format!(
        "{OTHER_STUDENT},Ben Student,student,11,11R,{OTHER_STUDENT}@school.example,M99\n"
    ));
    let records = hallpass_store::people::parse_roster(csv.as_bytes()).unwrap();
    store
        .people()
        .import(&records, false, "test", "kit", now)
        .await
        .unwrap();
    for (u, _, _, _, role) in PEOPLE {
        let hash = hallpass_web::password::hash_password(&password_for(u)).unwrap();
        let years = if *role == Role::HeadOfYear {
            vec!["9".to_string()]
        } else {
            Vec::new()
        };
        store
            .accounts()
            .add(u, role.as_str(), &years, &hash, "test", now)
            .await
            .unwrap();
    }
    record_events(&store, dir.path(), now).await;

    let catalog = Arc::new(hallpass_catalog::Catalog::demo().unwrap());
    let (policy, _) = hallpass_engine::compile_policy("wcs.toml", POLICY, &catalog).unwrap();
    // Everyone has accepted the acceptable-use declaration but DECLARATION_PENDING.
    for user in PEOPLE
        .iter()
        .map(|p| p.0)
        .chain([OTHER_STUDENT])
        .filter(|u| *u != DECLARATION_PENDING)
    {
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
    let policy = Arc::new(policy);
    let identities = hallpass_engine::sessions::read_identities(&store, &policy)
        .await
        .unwrap();
    let engine = Arc::new(hallpass_engine::Engine::new(
        hallpass_engine::Snapshot::new(policy, catalog, Arc::new(identities), Arc::default()),
    ));
    let state = WebState::new(
        store.clone(),
        engine,
        clock.clone(),
        config,
        PolicySource::Text {
            name: "wcs.toml".into(),
            text: POLICY.into(),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(hallpass_web::serve(listener, state, stop.clone()));
    Kit {
        base: format!("http://{addr}"),
        clock,
        store,
        stop,
        _dir: dir,
    }
}

/// Blocked and allowed events in the last hour, across categories, people and years.
async fn record_events(store: &Store, dir: &std::path::Path, now: jiff::Timestamp) {
    let (writer, task) =
        EventWriter::start(store.clone(), EventWriterConfig::new(dir.join("spill"))).unwrap();
    let blocked: &[(&str, &str, &str, &str, usize)] = &[
        ("ava.student", "9", "www.pornhub.com", "adult", 7),
        ("ava.student", "9", "www.roblox.com", "games", 12),
        ("ben.student", "11", "www.bet365.com", "gambling", 5),
        ("ben.student", "11", "www.roblox.com", "games", 4),
        ("mr.teacher", "", "www.facebook.com", "social_networks", 3),
    ];
    for (i, (person, year, target, category, n)) in blocked.iter().enumerate() {
        for k in 0..*n {
            let mut e = Event::new(
                EventKind::Dns,
                now - jiff::SignedDuration::from_secs(60 * (i as i64 + 1) + k as i64),
                *target,
            );
            e.person = Some((*person).to_string());
            e.year_group = (!year.is_empty()).then(|| (*year).to_string());
            e.client_ip = Some(IpAddr::from([10, 0, 0, i as u8 + 1]));
            e.categories = vec![(*category).to_string()];
            e.verdict = "block".into();
            e.rule = Some(format!("{category}-rule"));
            e.clause = Some("4.6.1".into());
            writer.record_acked(e).await.unwrap();
        }
    }
    for k in 0..20 {
        let mut e = Event::new(
            EventKind::Dns,
            now - jiff::SignedDuration::from_secs(30 + k),
            "www.bbc.co.uk",
        );
        e.person = Some("ava.student".into());
        e.year_group = Some("9".into());
        e.categories = vec!["news".into()];
        writer.record_acked(e).await.unwrap();
    }
    writer.shutdown().await;
    let _ = task.await;
}

/// A client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client signed in as `username`, and its CSRF token.
pub async fn signed_in(kit: &Kit, username: &str) -> (reqwest::Client, String) {
    let c = client();
    let r = c
        .post(format!("{}/api/v1/login", kit.base))
        .json(&serde_json::json!({ "username": username, "password": password_for(username) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "signing in as {username}");
    let body: serde_json::Value = r.json().await.unwrap();
    (c, body["csrf_token"].as_str().unwrap().to_string())
}

pub async fn audit_actions(store: &Store) -> Vec<(String, String, String)> {
    store
        .audit()
        .recent(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.subject))
        .collect()
}
