//! The per-person hourly activity roll-up (`activity_hourly`, migration 0012): written by
//! the event writer with the events, read by person and range, part of a person's export
//! and erasure, kept by its own retention period (and by a hold), and rolled up from the
//! rows a store held before the migration.

use hallpass_store::{EraseOptions, Event, EventKind, EventWriter, ExportOptions, Retention};

use super::{TestDb, migrate_up_to, ts, writer_config};

fn event(kind: EventKind, at: &str, person: Option<&str>, target: &str, verdict: &str) -> Event {
    let mut e = Event::new(kind, ts(at), target);
    e.person = person.map(str::to_string);
    e.verdict = verdict.to_string().into();
    e.categories = vec!["games".into()];
    e
}

/// (hour, kind, site, verdict, n) of `person`'s rows on 2 September 2026.
async fn rows_of(
    store: &hallpass_store::Store,
    person: &str,
) -> Vec<(String, String, String, String, i64)> {
    let mut rows: Vec<_> = store
        .hourly_activity(
            person,
            ts("2026-09-02T00:00:00Z"),
            ts("2026-09-03T00:00:00Z"),
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.hour.to_string(), r.kind, r.site, r.verdict, r.n))
        .collect();
    rows.sort();
    rows
}

pub async fn hourly_activity_rolls_up_what_the_writer_records(db: &TestDb) {
    let store = db.store().await;
    let (w, task) = EventWriter::start(store.clone(), writer_config(db)).unwrap();
    let alice = Some("alice");
    for at in [
        "2026-09-02T09:00:01Z",
        "2026-09-02T09:00:02Z",
        "2026-09-02T09:10:00Z",
    ] {
        w.record(event(EventKind::Dns, at, alice, "a.example", "allow"));
    }
    w.record(event(
        EventKind::Dns,
        "2026-09-02T09:30:00Z",
        alice,
        "games.example",
        "block",
    ));
    w.record(event(
        EventKind::Web,
        "2026-09-02T10:15:00Z",
        alice,
        "a.example/maths/page",
        "allow",
    ));
    w.record(event(
        EventKind::Web,
        "2026-09-02T10:16:00Z",
        alice,
        "a.example:443",
        "allow",
    ));
    // Unidentified: in nobody's roll-up. Bob's: only in his.
    w.record(event(
        EventKind::Dns,
        "2026-09-02T09:00:03Z",
        None,
        "a.example",
        "allow",
    ));
    w.record(event(
        EventKind::Dns,
        "2026-09-02T09:00:04Z",
        Some("bob"),
        "a.example",
        "allow",
    ));
    w.shutdown().await;
    task.await.unwrap();

    let nine = "2026-09-02T09:00:00Z".to_string();
    let ten = "2026-09-02T10:00:00Z".to_string();
    let row = |hour: &String, kind: &str, site: &str, verdict: &str, n| {
        (
            hour.clone(),
            kind.to_string(),
            site.to_string(),
            verdict.to_string(),
            n,
        )
    };
    assert_eq!(
        rows_of(&store, "alice").await,
        vec![
            row(&nine, "dns", "a.example", "allow", 3),
            row(&nine, "dns", "games.example", "block", 1),
            row(&ten, "web", "a.example", "allow", 2),
        ]
    );
    assert_eq!(
        rows_of(&store, "bob").await,
        vec![row(&nine, "dns", "a.example", "allow", 1)]
    );
    assert_eq!(
        db.scalar("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM activity_hourly")
            .await,
        7
    );
    let web_only = store
        .hourly_activity(
            "alice",
            ts("2026-09-02T00:00:00Z"),
            ts("2026-09-03T00:00:00Z"),
            Some("web"),
        )
        .await
        .unwrap();
    assert_eq!(web_only.len(), 1);
    assert_eq!(web_only[0].categories, vec!["games".to_string()]);
    let tz = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let all = store
        .hourly_activity(
            "alice",
            ts("2026-09-01T00:00:00Z"),
            ts("2026-09-30T00:00:00Z"),
            None,
        )
        .await
        .unwrap();
    let summary = hallpass_store::summarise(&all, &tz);
    assert_eq!(summary.total, 6);
    assert_eq!(summary.days.len(), 1);
    assert_eq!((summary.days[0].allowed, summary.days[0].blocked), (5, 1));
    assert_eq!(summary.sites[0].site, "a.example");

    // An empty or reversed range is refused, not answered with nothing.
    let err = store
        .hourly_activity(
            "alice",
            ts("2026-09-03T00:00:00Z"),
            ts("2026-09-02T00:00:00Z"),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("range is empty"), "{err}");

    // The export carries the roll-up; erasure removes it (and only the person's).
    let mut out = Vec::new();
    store
        .export_person(
            "alice",
            ExportOptions::default(),
            ts("2026-10-01T00:00:00Z"),
            &mut out,
        )
        .await
        .unwrap();
    let exported = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""table":"activity_hourly""#))
        .count();
    assert_eq!(exported, 3);
    let report = store
        .erase_person(
            "alice",
            EraseOptions::default(),
            "dpo",
            ts("2026-10-01T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(report.rows.get("activity_hourly"), Some(&3));
    assert!(rows_of(&store, "alice").await.is_empty());
    assert_eq!(rows_of(&store, "bob").await.len(), 1);
}

pub async fn hourly_activity_retention_keeps_a_year_and_held_people(db: &TestDb) {
    let store = db.store().await;
    let now = ts("2027-12-31T12:00:00Z");
    let hour = |days_ago: i64| {
        (now - jiff::SignedDuration::from_hours(24 * days_ago)).as_microsecond() / 3_600_000_000
            * 3_600_000_000
    };
    for (person, days_ago) in [("alice", 400), ("alice", 300), ("bob", 400), ("carol", 500)] {
        db.exec(&format!(
            "INSERT INTO activity_hourly (person, hour_us, kind, site, verdict, categories, n) \
             VALUES ('{person}', {}, 'dns', 'a.example', 'allow', '', 4)",
            hour(days_ago)
        ))
        .await;
    }
    store
        .place_hold("bob", "safeguarding case 12", "dsl", now)
        .await
        .unwrap();
    let cfg = Retention::default();
    let dry = store.retention_dry_run(&cfg, now).await.unwrap();
    assert_eq!(dry.activity, 2, "alice's and carol's old rows");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM activity_hourly").await, 4);
    let run = store.retention_run(&cfg, now).await.unwrap();
    assert_eq!(run.activity, 2);
    let left = "SELECT COUNT(*) FROM activity_hourly WHERE (person = 'alice' AND hour_us = {a}) \
                OR (person = 'bob' AND hour_us = {b})";
    let left = left
        .replace("{a}", &hour(300).to_string())
        .replace("{b}", &hour(400).to_string());
    assert_eq!(
        db.scalar(&left).await,
        2,
        "alice's recent row and bob's held one"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM activity_hourly").await, 2);
}

/// 0012 rolls up the decisions and visits a store already held, with the same sites the
/// writer uses (the host of a web target).
pub async fn migration_0012_rolls_up_existing_rows(db: &TestDb) {
    let hour: i64 = 1_788_339_600_000_000; // 2026-09-02T09:00:00Z
    let old = format!(
        "INSERT INTO decisions (kind, at_us, person, target, categories, verdict) VALUES \
         ('dns', {a}, 'pupil1', 'bad.example', 'games', 'block'), \
         ('web', {b}, 'pupil1', 'www.example/a/b', '', 'allow'), \
         ('web', {c}, 'pupil1', 'www.example:443', '', 'allow'), \
         ('web', {c}, 'pupil1', '[2001:db8::1]:8080', '', 'allow'), \
         ('web', {c}, NULL, 'nobody.example/', '', 'allow'); \
         INSERT INTO dns_visits (minute_us, first_us, last_us, person, client_ip, name, \
                                 categories, verdict, queries) VALUES \
         ({hour}, {a}, {a}, 'pupil1', '10.0.0.5', 'a.example', 'news', 'allow', 4), \
         ({m}, {m}, {m}, 'pupil1', '10.0.0.5', 'a.example', 'news', 'allow', 2);",
        a = hour + 5_000_000,
        b = hour + 60_000_000,
        c = hour + 120_000_000,
        m = hour + 1_800_000_000,
    );
    migrate_up_to(db, 11, &old).await;
    let store = db.store().await; // runs 0012
    let mut rows: Vec<_> = store
        .hourly_activity(
            "pupil1",
            ts("2026-09-02T00:00:00Z"),
            ts("2026-09-03T00:00:00Z"),
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.site, r.verdict, r.n))
        .collect();
    rows.sort();
    let row = |k: &str, s: &str, v: &str, n| (k.to_string(), s.to_string(), v.to_string(), n);
    assert_eq!(
        rows,
        vec![
            row("dns", "a.example", "allow", 6),
            row("dns", "bad.example", "block", 1),
            row("web", "[2001:db8::1]", "allow", 1),
            row("web", "www.example", "allow", 2),
        ]
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM activity_hourly").await, 4);
}
