//! Declaration acceptances (migration 0010): recorded once per version, audited, the
//! logged-on people's acceptances for the engine, who is outstanding, the export.

use std::net::IpAddr;

use hallpass_store::StoreError;
use hallpass_store::declarations::Place;

use super::{TestDb, import_roster, ts};

pub async fn declarations_accepted_once_per_version(db: &TestDb) {
    let store = db.store().await;
    import_roster(&store).await;
    let d = store.declarations();
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    let here = Place {
        workstation: Some("LAB1-PC04"),
        ip: Some(ip),
    };
    let t = ts("2026-09-02T08:45:00Z");
    let required = [("wcs", "2023")];
    assert_eq!(
        d.outstanding(&required)
            .await
            .unwrap()
            .iter()
            .map(|o| o.username.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob", "ms.clark"],
        "year groups first, staff last"
    );

    // Unknown and departed people are refused and nothing is written.
    let audit_before = store.audit().recent(100).await.unwrap().len();
    match d
        .accept("token:logon", "nobody", "wcs", "2023", here, t)
        .await
    {
        Err(StoreError::UnknownUser(u)) => assert_eq!(u, "nobody"),
        other => panic!("expected unknown user, got {other:?}"),
    }
    db.exec("UPDATE people SET left_us = 1 WHERE username = 'bob'")
        .await;
    assert!(matches!(
        d.accept("token:logon", "bob", "wcs", "2023", here, t).await,
        Err(StoreError::PersonLeft(_))
    ));
    assert!(d.all(None).await.unwrap().is_empty());
    assert_eq!(store.audit().recent(100).await.unwrap().len(), audit_before);

    // The first acceptance is recorded and audited; the second of the same version is not.
    let first = d
        .accept("token:logon", "alice", "wcs", "2023", here, t)
        .await
        .unwrap();
    assert!(first.new);
    let again = d
        .accept(
            "alice",
            "alice",
            "wcs",
            "2023",
            Place::default(),
            ts("2026-09-02T09:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!((again.id, again.new), (first.id, false));
    let recorded = d.of_person("alice").await.unwrap();
    assert_eq!(recorded.len(), 1);
    let a = &recorded[0];
    assert_eq!(
        (
            a.document.as_str(),
            a.version.as_str(),
            a.accepted,
            a.workstation.as_deref(),
            a.ip.as_deref(),
            a.actor.as_str()
        ),
        (
            "wcs",
            "2023",
            t,
            Some("LAB1-PC04"),
            Some("10.0.0.5"),
            "token:logon"
        )
    );
    let log = store.audit().recent(100).await.unwrap();
    let accepts: Vec<_> = log
        .iter()
        .filter(|e| e.action == "declaration.accept")
        .collect();
    assert_eq!(
        accepts.len(),
        1,
        "an idempotent repeat is not audited again"
    );
    assert_eq!(accepts[0].subject, "alice");
    assert!(accepts[0].details.contains("\"version\":\"2023\""));
    assert!(matches!(
        d.of_person("nobody").await,
        Err(StoreError::UnknownUser(_))
    ));

    // Outstanding: alice is done with 2023; bob has left, so he is no longer asked.
    let outstanding = d.outstanding(&required).await.unwrap();
    assert_eq!(
        outstanding
            .iter()
            .map(|o| o.username.as_str())
            .collect::<Vec<_>>(),
        ["ms.clark"]
    );
    assert_eq!(outstanding[0].groups, ["Science", "Staff"]);
    assert_eq!(outstanding[0].pending, ["wcs"]);

    // A new version asks alice again; the old row stays as evidence.
    let next = [("wcs", "2027"), ("aup", "1")];
    let outstanding = d.outstanding(&next).await.unwrap();
    let alice = outstanding.iter().find(|o| o.username == "alice").unwrap();
    assert_eq!(alice.pending, ["wcs", "aup"]);
    assert_eq!(alice.year_group.as_deref(), Some("9"));
    d.accept(
        "alice",
        "alice",
        "wcs",
        "2027",
        here,
        ts("2027-09-01T08:00:00Z"),
    )
    .await
    .unwrap();
    let outstanding = d.outstanding(&next).await.unwrap();
    let alice = outstanding.iter().find(|o| o.username == "alice").unwrap();
    assert_eq!(alice.pending, ["aup"]);
    assert_eq!(d.all(Some("wcs")).await.unwrap().len(), 2);
    assert!(d.all(Some("aup")).await.unwrap().is_empty());

    // The engine's view: only people with an open logon session.
    assert!(d.accepted_by_logged_on().await.unwrap().is_empty());
    store
        .sessions()
        .start("cli:ops", "alice", ip, None, t)
        .await
        .unwrap();
    store
        .sessions()
        .start("cli:ops", "ms.clark", "10.0.9.1".parse().unwrap(), None, t)
        .await
        .unwrap();
    let by_person = d.accepted_by_logged_on().await.unwrap();
    assert_eq!(by_person.len(), 1, "ms.clark has accepted nothing");
    let alice: Vec<(&str, &str)> = by_person["alice"]
        .iter()
        .map(|(doc, v)| (doc.as_str(), v.as_str()))
        .collect();
    assert_eq!(alice, [("wcs", "2023"), ("wcs", "2027")]);
    // Alice's acceptances are in her export, and go with her people row on erasure.
    let mut out = Vec::new();
    let summary = store
        .export_person(
            "alice",
            hallpass_store::ExportOptions::default(),
            t,
            &mut out,
        )
        .await
        .unwrap();
    assert!(summary.rows["declaration_acceptances"] >= 1, "{summary:?}");
    let erased = store
        .erase_person(
            "alice",
            hallpass_store::EraseOptions { people_row: true },
            "dpo",
            t,
        )
        .await
        .unwrap();
    assert!(erased.rows["declaration_acceptances"] >= 1, "{erased:?}");
    assert!(
        d.all(None)
            .await
            .unwrap()
            .iter()
            .all(|a| a.username != "alice")
    );
}

/// The captive portal's guest codes and its sessions that last a fixed time.
pub async fn guest_codes_and_portal_sessions(db: &TestDb) {
    let store = db.store().await;
    import_roster(&store).await;
    let g = store.guests();
    let t = ts("2026-09-02T08:45:00Z");
    let expires = ts("2026-09-02T16:00:00Z");
    let id = g
        .issue("ms.clark", "guest-k7q2", "Dr Visitor", "hash-1", expires, t)
        .await
        .unwrap();
    assert!(matches!(
        g.issue("ms.clark", "alice", "Not Alice", "hash-2", expires, t)
            .await,
        Err(StoreError::Invalid(_))
    ));
    let person = store
        .people()
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.username == "guest-k7q2")
        .unwrap();
    assert_eq!(
        (person.role.as_str(), person.display_name.as_str()),
        ("guest", "Dr Visitor")
    );
    assert_eq!(
        g.redeem("hash-1", t).await.unwrap().as_deref(),
        Some("guest-k7q2")
    );
    assert_eq!(g.redeem("hash-9", t).await.unwrap(), None);
    assert_eq!(g.redeem("hash-1", expires).await.unwrap(), None, "expired");
    let valid = g.valid(Some("ms.clark"), t).await.unwrap();
    assert_eq!((valid.len(), valid[0].id), (1, id));
    assert!(g.valid(Some("bob"), t).await.unwrap().is_empty());
    assert_eq!(g.valid(None, t).await.unwrap().len(), 1);
    assert!(g.valid(None, expires).await.unwrap().is_empty());

    // Portal sessions end after their time; other sessions are left alone.
    let s = store.sessions();
    s.start(
        "portal",
        "guest-k7q2",
        "10.50.0.7".parse().unwrap(),
        Some("captive portal"),
        t,
    )
    .await
    .unwrap();
    s.start(
        "cli",
        "alice",
        "10.0.0.5".parse().unwrap(),
        Some("LAB1-PC04"),
        t,
    )
    .await
    .unwrap();
    let later = ts("2026-09-02T09:00:00Z");
    assert_eq!(
        s.end_started_before("portal", "captive portal", t, later)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.end_started_before("portal", "captive portal", later, later)
            .await
            .unwrap(),
        1
    );
    let active: Vec<String> = s
        .active()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(active, ["alice"]);
    let log = store.audit().recent(100).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "session.expire" && e.subject == "guest-k7q2")
    );
    assert!(
        log.iter()
            .any(|e| e.action == "guest.issue" && e.subject == "guest-k7q2")
    );
}
