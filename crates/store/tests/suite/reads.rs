//! The read side on the 0007 layout: timeline, export, erasure and holds, retention per
//! class, reports. Rows are put in by SQL, as the writer would have stored them, so these
//! tests say what each read returns for a known table content whatever the writer does.

use std::collections::{BTreeMap, BTreeSet};

use hallpass_store::{
    EraseOptions, ExportOptions, ReportFilter, Retention, StoreError, TimelineCursor,
    TimelineQuery, TimelineSource, TrafficBy,
};

use super::{TestDb, import_roster, ts};

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 86_400_000_000;

fn us(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

/// A decision row: (kind, at_us, person, year group, target, categories, verdict).
fn decision(
    kind: &str,
    at: i64,
    person: Option<&str>,
    year: &str,
    target: &str,
    cats: &str,
    verdict: &str,
) -> String {
    let person = person.map_or("NULL".to_string(), |p| format!("'{p}'"));
    format!(
        "INSERT INTO decisions (kind, at_us, person, year_group, client_ip, device, target, \
         categories, verdict, rule, document, clause) VALUES ('{kind}', {at}, {person}, '{year}', \
         '10.0.0.9', 'LAB1-PC01', '{target}', '{cats}', '{verdict}', 'students-no-games', 'wcs', '4.2');"
    )
}

/// A visit row: first query at `first`, `queries` of them.
fn visit(
    first: i64,
    person: Option<&str>,
    year: &str,
    name: &str,
    cats: &str,
    queries: i64,
) -> String {
    let person = person.map_or("NULL".to_string(), |p| format!("'{p}'"));
    let minute = first.div_euclid(MINUTE) * MINUTE;
    format!(
        "INSERT INTO dns_visits (minute_us, first_us, last_us, person, year_group, client_ip, \
         device, name, categories, verdict, queries, cache_hits) VALUES ({minute}, {first}, \
         {first}, {person}, '{year}', '10.0.0.9', 'LAB1-PC01', '{name}', '{cats}', 'allow', \
         {queries}, 0);"
    )
}

fn traffic(
    day: i64,
    person: &str,
    year: &str,
    kind: &str,
    cat: &str,
    verdict: &str,
    n: i64,
) -> String {
    format!(
        "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) VALUES \
         ({day}, '{person}', '{year}', '{kind}', '{cat}', '{verdict}', {n});"
    )
}

pub async fn timeline_pages_newest_first(db: &TestDb) {
    let store = db.store().await;
    import_roster(&store).await;
    let t0 = us(ts("2026-10-05T08:00:00Z"));
    let mut sql = String::new();
    let mut expected = BTreeSet::new();
    for i in 0..25 {
        let at = t0 + i * 10 * MINUTE + 17;
        sql += &decision(
            "dns",
            at,
            Some("alice"),
            "9",
            &format!("blocked{i}.example"),
            "games",
            "block",
        );
        expected.insert(format!("blocked{i}.example"));
    }
    for i in 0..4 {
        let at = t0 + i * 37 * MINUTE;
        sql += &decision(
            "web",
            at,
            Some("alice"),
            "9",
            &format!("https://docs{i}.example/"),
            "education",
            "allow",
        );
        expected.insert(format!("https://docs{i}.example/"));
    }
    for i in 0..30 {
        let first = t0 + i * 7 * MINUTE + 5_000_000;
        let cats = if i % 3 == 0 { "news" } else { "search" };
        sql += &visit(
            first,
            Some("alice"),
            "9",
            &format!("site{i}.example"),
            cats,
            i + 1,
        );
        expected.insert(format!("site{i}.example"));
    }
    // Ties: a decision and two visits at one microsecond.
    let tie = t0 + 100 * MINUTE + 1;
    sql += &decision(
        "dns",
        tie,
        Some("alice"),
        "9",
        "tie-decision.example",
        "games",
        "block",
    );
    sql += &visit(tie, Some("alice"), "9", "tie-visit-a.example", "news", 2);
    sql += &visit(tie, Some("alice"), "9", "tie-visit-b.example", "news", 3);
    expected.extend(
        [
            "tie-decision.example",
            "tie-visit-a.example",
            "tie-visit-b.example",
        ]
        .map(String::from),
    );
    // Not in the timeline: another person, and alice outside the range.
    sql += &decision(
        "dns",
        t0 + MINUTE,
        Some("bob"),
        "10",
        "bob.example",
        "games",
        "block",
    );
    sql += &visit(
        t0 + MINUTE,
        Some("bob"),
        "10",
        "bob-visit.example",
        "news",
        1,
    );
    sql += &decision(
        "dns",
        t0 - DAY,
        Some("alice"),
        "9",
        "yesterday.example",
        "games",
        "block",
    );
    sql += &visit(t0 + 2 * DAY, Some("alice"), "9", "later.example", "news", 1);
    db.exec(&sql).await;

    let range = |limit| {
        TimelineQuery::new(
            ts("2026-10-05T00:00:00Z"),
            ts("2026-10-06T00:00:00Z"),
            limit,
        )
    };
    // Walk in pages of 7.
    let mut q = range(7);
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.timeline("alice", &q).await.unwrap();
        assert!(page.entries.len() <= 7);
        pages += 1;
        all.extend(page.entries);
        match page.next {
            Some(c) => {
                // The cursor survives a URL.
                let text = c.to_string();
                assert_eq!(text.parse::<TimelineCursor>().unwrap(), c);
                q.after = Some(c);
            }
            None => break,
        }
    }
    let n = expected.len();
    assert_eq!(all.len(), n, "every entry once");
    assert_eq!(pages, n.div_ceil(7));
    let got: BTreeSet<String> = all.iter().map(|e| e.target.clone()).collect();
    assert_eq!(got, expected);
    let keys: Vec<_> = all
        .iter()
        .map(|e| e.cursor())
        .map(|c| (c.at_us, c.source, c.id))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first: {keys:?}"
    );
    // At the tie the decision comes first, then the visits by id, newest first.
    let at_tie: Vec<&str> = all
        .iter()
        .filter(|e| us(e.at) == tie)
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(
        at_tie,
        [
            "tie-decision.example",
            "tie-visit-b.example",
            "tie-visit-a.example"
        ]
    );
    // A visit shows its count; a decision counts one; the evidence is there.
    let site5 = all.iter().find(|e| e.target == "site5.example").unwrap();
    assert_eq!(
        (site5.source, site5.queries, site5.kind.as_str()),
        (TimelineSource::Visit, 6, "dns")
    );
    let b3 = all.iter().find(|e| e.target == "blocked3.example").unwrap();
    assert_eq!((b3.source, b3.queries), (TimelineSource::Decision, 1));
    assert_eq!(
        (b3.rule.as_deref(), b3.clause.as_deref()),
        (Some("students-no-games"), Some("4.2"))
    );
    assert_eq!(b3.categories, ["games"]);

    // A page that ends exactly at the tie continues past it without loss.
    let mut q = range(1);
    q.after = Some(
        all.iter()
            .find(|e| e.target == "tie-decision.example")
            .unwrap()
            .cursor(),
    );
    let next = store.timeline("alice", &q).await.unwrap();
    assert_eq!(next.entries[0].target, "tie-visit-b.example");

    // Filters.
    let filtered = |f: &dyn Fn(&mut TimelineQuery)| {
        let mut q = range(1000);
        f(&mut q);
        let store = store.clone();
        async move {
            let page = store.timeline("alice", &q).await.unwrap();
            assert!(page.next.is_none());
            page.entries
                .into_iter()
                .map(|e| e.target)
                .collect::<BTreeSet<_>>()
        }
    };
    let web = filtered(&|q| q.kind = Some("web".into())).await;
    assert_eq!(web.len(), 4);
    assert!(web.iter().all(|t| t.starts_with("https://docs")));
    assert_eq!(
        filtered(&|q| q.kind = Some("dns".into())).await.len(),
        n - 4
    );
    let allowed = filtered(&|q| q.verdict = Some("allow".into())).await;
    assert_eq!(allowed.len(), 4 + 30 + 2, "web allows and visits");
    let news = filtered(&|q| q.category = Some("news".into())).await;
    assert_eq!(news.len(), 10 + 2);
    let blocked = filtered(&|q| q.verdict = Some("block".into())).await;
    assert_eq!(blocked.len(), 26);
    let site1 = filtered(&|q| q.target_contains = Some("SITE1".into())).await;
    let want: BTreeSet<String> = std::iter::once(1)
        .chain(10..20)
        .map(|i| format!("site{i}.example"))
        .collect();
    assert_eq!(site1, want, "case-insensitive substring");
    // A narrower time range.
    let mut q = TimelineQuery::new(
        jiff::Timestamp::from_microsecond(t0).unwrap(),
        jiff::Timestamp::from_microsecond(t0 + 20 * MINUTE).unwrap(),
        100,
    );
    q.kind = Some("dns".into());
    let few = store.timeline("alice", &q).await.unwrap();
    let few: BTreeSet<String> = few.entries.into_iter().map(|e| e.target).collect();
    let want: BTreeSet<String> = [
        "blocked0.example",
        "blocked1.example",
        "site0.example",
        "site1.example",
        "site2.example",
    ]
    .map(String::from)
    .into();
    assert_eq!(few, want);
    // Nobody's timeline is empty, not an error; a silly page size is refused.
    assert!(
        store
            .timeline("nobody", &range(10))
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert!(matches!(
        store.timeline("alice", &range(0)).await,
        Err(StoreError::Invalid(_))
    ));
}

/// alice's and bob's rows in every table that names a person, for export and erasure.
async fn seed_two_people(db: &TestDb, store: &hallpass_store::Store) {
    import_roster(store).await;
    let now = ts("2026-10-05T12:00:00Z");
    store
        .sessions()
        .start(
            "test",
            "alice",
            "10.0.0.9".parse().unwrap(),
            Some("LAB1-PC01"),
            now,
        )
        .await
        .unwrap();
    store
        .sessions()
        .start(
            "test",
            "bob",
            "10.0.0.10".parse().unwrap(),
            Some("LAB1-PC02"),
            now,
        )
        .await
        .unwrap();
    store
        .accounts()
        .add(
            "alice",
            "student",
            &[],
            "$argon2id$secret-hash",
            "admin",
            now,
        )
        .await
        .unwrap();
    store
        .accounts()
        .record_failure("user:alice", now)
        .await
        .unwrap();
    let t0 = us(now) - 3 * DAY;
    let mut sql = String::new();
    for (who, year) in [("alice", "9"), ("bob", "10")] {
        for i in 0..5 {
            sql += &decision(
                "dns",
                t0 + i * MINUTE,
                Some(who),
                year,
                &format!("{who}-block{i}.example"),
                "games",
                "block",
            );
            sql += &visit(
                t0 + i * MINUTE,
                Some(who),
                year,
                &format!("{who}-site{i}.example"),
                "news",
                2,
            );
        }
        sql += &decision(
            "web",
            t0,
            Some(who),
            year,
            &format!("https://search.example/{who}"),
            "search",
            "allow",
        );
        sql += &format!(
            "INSERT INTO event_content (event_id, kind, at_us, content) SELECT id, kind, at_us, \
             '{who} searched for secrets' FROM decisions WHERE target = 'https://search.example/{who}';"
        );
        let day = t0.div_euclid(DAY);
        sql += &traffic(day, who, year, "dns", "", "block", 5);
        sql += &traffic(day, who, year, "dns", "games", "block", 5);
        sql += &traffic(day, who, year, "dns", "", "allow", 10);
        sql += &traffic(day, who, year, "dns", "news", "allow", 10);
    }
    // An unattributed row the erasure folds alice's counts into.
    sql += &traffic(t0.div_euclid(DAY), "", "9", "dns", "", "block", 1);
    db.exec(&sql).await;
}

async fn export_lines(
    store: &hallpass_store::Store,
    person: &str,
    opts: ExportOptions,
) -> Vec<serde_json::Value> {
    let mut out: Vec<u8> = Vec::new();
    let summary = store
        .export_person(person, opts, ts("2026-10-06T00:00:00Z"), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let data_rows = lines
        .iter()
        .filter(|l| !["export", "export_end"].contains(&l["table"].as_str().unwrap()))
        .filter(|l| l.get("withheld_rows").is_none())
        .count() as u64;
    assert_eq!(
        summary.total(),
        data_rows,
        "the summary counts what was written"
    );
    lines
}

fn per_table(lines: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l["table"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

pub async fn export_everything_about_one_person(db: &TestDb) {
    let store = db.store().await;
    seed_two_people(db, &store).await;
    store
        .place_hold(
            "alice",
            "safeguarding case 12",
            "dsl.jones",
            ts("2026-10-05T13:00:00Z"),
        )
        .await
        .unwrap();
    let lines = export_lines(&store, "alice", ExportOptions::default()).await;
    let tables = per_table(&lines);
    let want: BTreeMap<String, usize> = [
        ("export", 1),
        ("people", 1),
        ("memberships", 2),
        ("logon_sessions", 1),
        ("console_accounts", 1),
        ("signin_failures", 1),
        ("holds", 1),
        ("decisions", 6),
        ("event_content", 1), // the "withheld" line
        ("dns_visits", 5),
        ("traffic_daily", 4),
        ("audit_log", 3), // account.add, session.start and hold.place name her as subject
        ("export_end", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(tables, want);
    let all = serde_json::Value::Array(lines.clone()).to_string();
    assert!(!all.contains("bob"), "nothing of bob's: {all}");
    assert!(
        !all.contains("secret-hash") && !all.contains("password"),
        "no secrets"
    );
    assert!(
        !all.contains("searched for secrets"),
        "content withheld by default"
    );
    let withheld = lines
        .iter()
        .find(|l| l["table"] == "event_content")
        .unwrap();
    assert_eq!(withheld["withheld_rows"], 1);
    let person = lines.iter().find(|l| l["table"] == "people").unwrap();
    assert_eq!(person["display_name"], "Alice Adams");
    assert_eq!(person["email"], "alice@school.example");
    let groups: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["table"] == "memberships")
        .map(|l| l["group_name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["Chess club", "Year 9"].into());
    let d = lines
        .iter()
        .find(|l| l["table"] == "decisions" && l["verdict"] == "block")
        .unwrap();
    assert_eq!(d["clause"], "4.2");
    assert_eq!(d["categories"], serde_json::json!(["games"]));
    assert!(d["at"].as_str().unwrap().starts_with("2026-10-02T"), "{d}");
    let v = lines.iter().find(|l| l["table"] == "dns_visits").unwrap();
    assert_eq!(v["queries"], 2);

    // With content: the row itself, through the std::io::Write adapter.
    let mut buf = hallpass_store::BlockingWriter(Vec::new());
    let summary = store
        .export_person(
            "alice",
            ExportOptions {
                include_content: true,
            },
            ts("2026-10-06T00:00:00Z"),
            &mut buf,
        )
        .await
        .unwrap();
    assert_eq!(summary.rows["event_content"], 1);
    let text = String::from_utf8(buf.0).unwrap();
    assert!(text.contains("alice searched for secrets"));
    assert!(!text.contains("bob searched"));
    // Someone the store has never heard of: an export with nothing in it.
    let none = per_table(&export_lines(&store, "nobody", ExportOptions::default()).await);
    assert_eq!(
        none.keys().map(String::as_str).collect::<Vec<_>>(),
        ["event_content", "export", "export_end"]
    );
}

pub async fn erase_refused_under_hold_then_done(db: &TestDb) {
    let store = db.store().await;
    seed_two_people(db, &store).await;
    let now = ts("2026-10-06T09:00:00Z");
    let totals = "SELECT CAST(SUM(n) AS BIGINT) FROM traffic_daily WHERE category = ''";
    let total_before = db.scalar(totals).await;
    let hold = store
        .place_hold("alice", "police request", "dsl.jones", now)
        .await
        .unwrap();
    assert!(store.is_held("alice").await.unwrap());
    match store
        .erase_person("alice", EraseOptions::default(), "dpo", now)
        .await
    {
        Err(StoreError::Held {
            person,
            hold: id,
            reason,
        }) => {
            assert_eq!(
                (person.as_str(), id, reason.as_str()),
                ("alice", hold.id, "police request")
            );
        }
        other => panic!("erasure under a hold must be refused: {other:?}"),
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM decisions WHERE person = 'alice'")
            .await,
        6,
        "nothing erased"
    );
    let released = store.release_hold(hold.id, "dsl.jones", now).await.unwrap();
    assert_eq!(released.released, Some(now));
    assert!(!store.is_held("alice").await.unwrap());
    assert!(
        store.release_hold(hold.id, "dsl.jones", now).await.is_err(),
        "released once"
    );
    assert_eq!(store.holds(Some("alice"), true).await.unwrap().len(), 1);
    assert!(store.holds(Some("alice"), false).await.unwrap().is_empty());

    let report = store
        .erase_person("alice", EraseOptions::default(), "dpo", now)
        .await
        .unwrap();
    // Alice has no alerts, requests or mail here (alerts.rs erases those).
    let expect: BTreeMap<String, u64> = [
        ("access_requests", 0),
        ("activity_hourly", 0),
        ("alert_occurrences", 0),
        ("alerts", 0),
        ("decisions", 6),
        ("dns_visits", 5),
        ("event_content", 1),
        ("incident_actions", 0),
        ("incidents", 0),
        ("investigations", 0),
        ("logon_sessions", 1),
        ("mail_journal", 0),
        ("mail_quarantine", 0),
        ("outbox", 0),
        ("sanctions", 0),
        ("traffic_daily", 4),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(report.rows, expect);
    for sql in [
        "SELECT COUNT(*) FROM decisions WHERE person = 'alice'",
        "SELECT COUNT(*) FROM dns_visits WHERE person = 'alice'",
        "SELECT COUNT(*) FROM event_content WHERE content LIKE 'alice%'",
        "SELECT COUNT(*) FROM traffic_daily WHERE person = 'alice'",
        "SELECT COUNT(*) FROM logon_sessions s JOIN people p ON p.id = s.person_id WHERE p.username = 'alice'",
    ] {
        assert_eq!(db.scalar(sql).await, 0, "{sql}");
    }
    // bob untouched; the school's totals unchanged (alice's counts are anonymous now).
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM decisions WHERE person = 'bob'")
            .await,
        6
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM dns_visits WHERE person = 'bob'")
            .await,
        5
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM event_content").await, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM traffic_daily WHERE person = 'bob'")
            .await,
        4
    );
    assert_eq!(db.scalar(totals).await, total_before);
    assert_eq!(
        db.scalar("SELECT CAST(n AS BIGINT) FROM traffic_daily WHERE person = '' AND category = '' AND verdict = 'block'")
            .await,
        1 + 5
    );
    // The people row stays unless asked; then it goes with the account.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM people WHERE username = 'alice'")
            .await,
        1
    );
    let report = store
        .erase_person("alice", EraseOptions { people_row: true }, "dpo", now)
        .await
        .unwrap();
    assert_eq!(report.rows["people"], 1);
    assert_eq!(report.rows["console_accounts"], 1);
    assert_eq!(report.rows["memberships"], 2);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM people WHERE username = 'alice'")
            .await,
        0
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM console_accounts").await, 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM signin_failures").await, 0);
    // Every step is in the audit log, by whom.
    let log = store.audit().recent(100).await.unwrap();
    let acts: Vec<(String, String, String)> = log
        .iter()
        .filter(|e| e.subject == "alice" && e.action != "account.add")
        .map(|e| (e.actor.clone(), e.action.clone(), e.subject.clone()))
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string(), "alice".to_string());
    assert_eq!(
        acts,
        [
            s("test", "session.start"),
            s("dsl.jones", "hold.place"),
            s("dsl.jones", "hold.release"),
            s("dpo", "person.erase"),
            s("dpo", "person.erase")
        ]
    );
    assert!(store.audit().verify(None).await.unwrap().ok());
}

/// Old and new rows of every class; bob is under a hold and keeps his old rows.
pub async fn retention(db: &TestDb) {
    let store = db.store().await;
    import_roster(&store).await;
    let now = ts("2026-12-31T12:00:00Z");
    let ago = |days: i64| us(now) - days * DAY;
    let mut sql = String::new();
    // decisions, per kind: (kind, age kept, age expired) under the defaults
    for (kind, kept, gone) in [
        ("dns", 80, 100),
        ("web", 170, 190),
        ("mail", 300, 400),
        ("file", 300, 400),
        ("logon", 300, 400),
    ] {
        sql += &decision(
            kind,
            ago(kept),
            Some("alice"),
            "9",
            &format!("{kind}-kept"),
            "",
            "block",
        );
        sql += &decision(
            kind,
            ago(gone),
            Some("alice"),
            "9",
            &format!("{kind}-gone"),
            "",
            "block",
        );
        sql += &decision(
            kind,
            ago(gone),
            Some("bob"),
            "10",
            &format!("{kind}-held"),
            "",
            "block",
        );
    }
    // content: 40 days old (its decision is kept, the content goes at 30), 10 days (kept),
    // bob's 40 days (held)
    sql += &decision(
        "web",
        ago(40),
        Some("alice"),
        "9",
        "web-content-old",
        "",
        "allow",
    );
    sql += &decision(
        "web",
        ago(10),
        Some("alice"),
        "9",
        "web-content-new",
        "",
        "allow",
    );
    sql += &decision(
        "web",
        ago(40),
        Some("bob"),
        "10",
        "web-content-held",
        "",
        "allow",
    );
    sql += "INSERT INTO event_content (event_id, kind, at_us, content) SELECT id, kind, at_us, target \
            FROM decisions WHERE target LIKE 'web-content-%';";
    // visits: 100 days (gone), 80 (kept), bob's 100 (held); one unattributed (gone)
    sql += &visit(ago(100), Some("alice"), "9", "visit-gone", "news", 3);
    sql += &visit(ago(80), Some("alice"), "9", "visit-kept", "news", 4);
    sql += &visit(ago(100), Some("bob"), "10", "visit-held", "news", 5);
    sql += &visit(ago(100), None, "", "visit-anon-gone", "news", 6);
    // traffic: alice's dns rows 100 days old (anonymised), web 100 days (kept: web 180),
    // dns 10 days (kept), bob's 100 days (held); an anonymous row they merge into
    let d100 = ago(100).div_euclid(DAY);
    sql += &traffic(d100, "alice", "9", "dns", "", "allow", 3);
    sql += &traffic(d100, "alice", "9", "dns", "", "block", 1);
    sql += &traffic(d100, "alice", "9", "web", "", "allow", 7);
    sql += &traffic(ago(10).div_euclid(DAY), "alice", "9", "dns", "", "allow", 4);
    sql += &traffic(d100, "bob", "10", "dns", "", "block", 1);
    sql += &traffic(d100, "", "9", "dns", "", "allow", 6);
    // replay records: 400 days (gone), 10 (kept)
    sql += &format!(
        "INSERT INTO committed_batches (batch_id, committed_us, events) VALUES ('old:1', {}, 5), ('new:1', {}, 5);",
        ago(400),
        ago(10)
    );
    db.exec(&sql).await;
    // logon sessions: ended 400 days ago (gone), ended 10 days ago (kept), open since 400
    // days (kept), bob's ended 400 days ago (held)
    let start = |who: &'static str, ip: &'static str, days: i64| {
        let store = store.clone();
        async move {
            store
                .sessions()
                .start(
                    "test",
                    who,
                    ip.parse().unwrap(),
                    None,
                    jiff::Timestamp::from_microsecond(ago(days)).unwrap(),
                )
                .await
                .unwrap()
        }
    };
    let end = |ip: &'static str, days: i64| {
        let store = store.clone();
        async move {
            store
                .sessions()
                .end_by_ip(
                    "test",
                    ip.parse().unwrap(),
                    jiff::Timestamp::from_microsecond(ago(days)).unwrap(),
                )
                .await
                .unwrap()
        }
    };
    start("alice", "10.0.0.1", 401).await;
    end("10.0.0.1", 400).await;
    start("alice", "10.0.0.2", 11).await;
    end("10.0.0.2", 10).await;
    start("alice", "10.0.0.3", 400).await;
    start("bob", "10.0.0.4", 401).await;
    end("10.0.0.4", 400).await;
    store
        .place_hold("bob", "appeal", "head", now)
        .await
        .unwrap();

    let cfg = Retention::default();
    let dry = store.retention_dry_run(&cfg, now).await.unwrap();
    let run = store.retention_run(&cfg, now).await.unwrap();
    for counts in [&dry, &run] {
        let events: BTreeMap<&str, u64> = counts
            .events
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            events,
            [
                ("dns", 1),
                ("file", 1),
                ("logon", 1),
                ("mail", 1),
                ("web", 1)
            ]
            .into()
        );
        assert_eq!((counts.visits, counts.visit_queries), (2, 3 + 6));
        assert_eq!(counts.content, 1);
        assert_eq!(counts.sessions, 1);
        assert_eq!(counts.traffic_anonymised, 2);
        assert_eq!(counts.traffic_deleted, 0);
        assert_eq!(counts.batches, 1);
        assert_eq!(counts.held, ["bob"]);
    }
    assert!(dry.dry_run && dry.audit_seq.is_none());
    assert!(run.audit_seq.is_some());
    // Exactly what remains.
    let targets = |sql: &'static str| async move {
        let rows: Vec<String> = if db.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        } else {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        };
        rows
    };
    assert_eq!(
        targets("SELECT target FROM decisions ORDER BY target").await,
        [
            "dns-held",
            "dns-kept",
            "file-held",
            "file-kept",
            "logon-held",
            "logon-kept",
            "mail-held",
            "mail-kept",
            "web-content-held",
            "web-content-new",
            "web-content-old",
            "web-held",
            "web-kept",
        ]
    );
    assert_eq!(
        targets("SELECT content FROM event_content ORDER BY content").await,
        ["web-content-held", "web-content-new"]
    );
    assert_eq!(
        targets("SELECT name FROM dns_visits ORDER BY name").await,
        ["visit-held", "visit-kept"]
    );
    assert_eq!(
        targets("SELECT ip FROM logon_sessions ORDER BY ip").await,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    );
    assert_eq!(
        targets(
            "SELECT person || '/' || kind || '/' || verdict || '/' || CAST(day AS TEXT) || '=' || CAST(n AS TEXT) \
             FROM traffic_daily ORDER BY day, person, kind, verdict"
        )
        .await,
        [
            format!("/dns/allow/{d100}=9"),
            format!("/dns/block/{d100}=1"),
            format!("alice/web/allow/{d100}=7"),
            format!("bob/dns/block/{d100}=1"),
            format!("alice/dns/allow/{}=4", ago(10).div_euclid(DAY)),
        ]
    );
    assert_eq!(
        targets("SELECT batch_id FROM committed_batches").await,
        ["new:1"]
    );
    // Nothing left to do; with a totals period the anonymous rows go too (bob's stay).
    let again = store.retention_run(&cfg, now).await.unwrap();
    assert_eq!(
        again.total_events()
            + again.visits
            + again.content
            + again.sessions
            + again.traffic_anonymised,
        0
    );
    let cfg = Retention {
        traffic_totals: Some(std::time::Duration::from_secs(50 * 86_400)),
        ..Retention::default()
    };
    let totals = store.retention_run(&cfg, now).await.unwrap();
    assert_eq!(totals.traffic_deleted, 3);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM traffic_daily").await, 2);
    // Released, bob's rows go at the next run.
    let hold = store.holds(Some("bob"), false).await.unwrap().remove(0);
    store.release_hold(hold.id, "head", now).await.unwrap();
    let after = store
        .retention_run(&Retention::default(), now)
        .await
        .unwrap();
    assert_eq!(after.total_events(), 5);
    assert_eq!((after.visits, after.content, after.sessions), (1, 1, 1));
    assert!(after.held.is_empty());
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM decisions WHERE person = 'bob'")
            .await,
        1,
        "web-content-held: 40 days"
    );
    assert!(store.audit().verify(None).await.unwrap().ok());
}

pub async fn reports(db: &TestDb) {
    let store = db.store().await;
    import_roster(&store).await;
    let d1 = us(ts("2026-09-02T00:00:00Z")).div_euclid(DAY);
    let d2 = d1 + 1;
    let mut sql = String::new();
    // alice (year 9): day 1 4 blocked (3 games, 1 games+social), day 2 2 social (dns) and
    // 1 games (web); bob (year 10): day 1 5 games; one unattributed; allowed traffic too.
    for (day, who, year, kind, cats, verdict, n) in [
        (d1, "alice", "9", "dns", &["games"][..], "block", 3),
        (
            d1,
            "alice",
            "9",
            "dns",
            &["games", "social"][..],
            "block",
            1,
        ),
        (d2, "alice", "9", "dns", &["social"][..], "block", 2),
        (d2, "alice", "9", "web", &["games"][..], "block", 1),
        (d1, "bob", "10", "dns", &["games"][..], "block", 5),
        (d1, "", "", "dns", &["games"][..], "block", 1),
        (d1, "alice", "9", "dns", &["news"][..], "allow", 40),
        (d1, "bob", "10", "dns", &["news", "search"][..], "allow", 60),
        (d2, "bob", "10", "web", &["search"][..], "warn", 2),
    ] {
        for c in std::iter::once(&"").chain(cats) {
            sql += &format!(
                "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) \
                 VALUES ({day}, '{who}', '{year}', '{kind}', '{c}', '{verdict}', {n}) \
                 ON CONFLICT (day, person, year_group, kind, category, verdict) \
                 DO UPDATE SET n = traffic_daily.n + excluded.n;"
            );
        }
    }
    // The blocks as decisions (per person, per target).
    let at1 = us(ts("2026-09-02T09:00:00Z"));
    let at2 = us(ts("2026-09-03T13:00:00Z"));
    for _ in 0..3 {
        sql += &decision(
            "dns",
            at1,
            Some("alice"),
            "9",
            "games.example",
            "games",
            "block",
        );
    }
    sql += &decision(
        "dns",
        at1,
        Some("alice"),
        "9",
        "both.example",
        "games,social",
        "block",
    );
    for _ in 0..2 {
        sql += &decision(
            "dns",
            at2,
            Some("alice"),
            "9",
            "social.example",
            "social",
            "block",
        );
    }
    sql += &decision(
        "web",
        at2,
        Some("alice"),
        "9",
        "https://games.example/play",
        "games",
        "block",
    );
    for _ in 0..5 {
        sql += &decision(
            "dns",
            at1,
            Some("bob"),
            "10",
            "games.example",
            "games",
            "block",
        );
    }
    sql += &decision("dns", at1, None, "", "games.example", "games", "block");
    sql += &decision(
        "web",
        at2,
        Some("bob"),
        "10",
        "https://search.example/",
        "search",
        "warn",
    );
    db.exec(&sql).await;

    let r = store.reports();
    let all = ReportFilter::new(ts("2026-09-01T00:00:00Z"), ts("2026-10-01T00:00:00Z"));
    let mut f = all.clone();
    f.year_group = Some("9".into());
    let got: Vec<(String, String, i64)> = r
        .blocked_by_category_per_day(&f)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.day.to_string(), c.category.clone(), c.count))
        .collect();
    let s = |d: &str, c: &str, n| (d.to_string(), c.to_string(), n);
    assert_eq!(
        got,
        [
            s("2026-09-02", "games", 4),
            s("2026-09-02", "social", 1),
            s("2026-09-03", "games", 1),
            s("2026-09-03", "social", 2)
        ]
    );
    let pairs =
        |v: Vec<hallpass_store::Count>| v.into_iter().map(|c| (c.key, c.count)).collect::<Vec<_>>();
    let p = |k: &str, n| (k.to_string(), n);
    assert_eq!(
        pairs(r.blocked_by_year_group(&all).await.unwrap()),
        [p("9", 7), p("10", 5), p("", 1)]
    );
    assert_eq!(
        pairs(r.blocked_by_person(&all, 10).await.unwrap()),
        [p("alice", 7), p("bob", 5)]
    );
    let mut day2 = ReportFilter::new(ts("2026-09-03T00:00:00Z"), ts("2026-09-04T00:00:00Z"));
    assert_eq!(
        pairs(r.blocked_by_person(&day2, 10).await.unwrap()),
        [p("alice", 3)]
    );
    day2.kind = Some(hallpass_store::EventKind::Dns);
    assert_eq!(
        pairs(r.blocked_by_person(&day2, 10).await.unwrap()),
        [p("alice", 2)]
    );
    let mut year10 = all.clone();
    year10.year_group = Some("10".into());
    assert_eq!(
        pairs(r.top_blocked_targets(&year10, 10).await.unwrap()),
        [p("games.example", 5)]
    );
    assert_eq!(
        pairs(r.top_blocked_targets(&all, 2).await.unwrap()),
        [p("games.example", 9), p("social.example", 2)]
    );

    // Allowed, warned and blocked traffic.
    let t = |by| {
        let r = store.reports();
        let f = all.clone();
        async move {
            r.traffic(&f, by)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.key, c.allowed, c.warned, c.blocked))
                .collect::<Vec<_>>()
        }
    };
    let k = |key: &str, a, w, b| (key.to_string(), a, w, b);
    assert_eq!(
        t(TrafficBy::Category).await,
        [
            k("news", 100, 0, 0),
            k("search", 60, 2, 0),
            k("games", 0, 0, 11),
            k("social", 0, 0, 3)
        ]
    );
    assert_eq!(
        t(TrafficBy::YearGroup).await,
        [k("10", 60, 2, 5), k("9", 40, 0, 7), k("", 0, 0, 1)]
    );
    assert_eq!(
        t(TrafficBy::Day).await,
        [k("2026-09-02", 100, 0, 10), k("2026-09-03", 0, 2, 3)]
    );
    // Groups through the memberships: alice is in Year 9 and Chess club, bob in Year 10.
    assert_eq!(
        t(TrafficBy::Group).await,
        [
            k("Year 10", 60, 2, 5),
            k("Chess club", 40, 0, 7),
            k("Year 9", 40, 0, 7)
        ]
    );
    let mut dns_day1 = ReportFilter::new(ts("2026-09-02T00:00:00Z"), ts("2026-09-03T00:00:00Z"));
    dns_day1.kind = Some(hallpass_store::EventKind::Dns);
    let got = r.traffic(&dns_day1, TrafficBy::Category).await.unwrap();
    let got: Vec<_> = got
        .into_iter()
        .map(|c| (c.total(), c.key))
        .map(|(n, k)| (k, n))
        .collect();
    assert_eq!(
        got,
        [
            p("news", 100),
            p("search", 60),
            p("games", 10),
            p("social", 1)
        ]
    );

    // The console's numbers: whole days from the roll-up, the ends from the tables.
    let a = store.activity();
    let (from, to) = (ts("2026-09-01T00:00:00Z"), ts("2026-09-05T00:00:00Z"));
    assert_eq!(a.count_between(from, to, None).await.unwrap(), 100 + 2 + 13);
    assert_eq!(a.count_between(from, to, Some("block")).await.unwrap(), 13);
    // Partial days: 09:00 to 13:00 on day 2 holds alice's 4 and bob's 5 blocks and the
    // anonymous one, from decisions (no visits stored).
    let (from, to) = (ts("2026-09-02T08:00:00Z"), ts("2026-09-03T12:00:00Z"));
    assert_eq!(a.count_between(from, to, Some("block")).await.unwrap(), 10);
}
