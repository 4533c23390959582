//! The store's commands end to end through the built binary: `people import`,
//! `session start|end|list`, `audit verify|head`, `retention run`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hallpass(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HALLPASS_DATABASE")
        .output()
        .unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/store")
        .join(name)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn roster_with_errors_imports_nothing_and_names_every_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = data("roster-bad.csv");
    let o = hallpass(dir.path(), &["people", "import", bad.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "roster-bad.csv:3: column year_group",
        "roster-bad.csv:4: column username",
        "roster-bad.csv:5: column email",
        "roster-bad.csv:6: column username",
        "nothing was imported",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let o = hallpass(dir.path(), &["people", "list"]);
    assert!(o.status.success());
    assert_eq!(text(&o).0, "", "nobody was imported");
}

#[test]
fn good_roster_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let good = data("roster-good.csv");
    let good = good.to_str().unwrap();
    let o = hallpass(dir.path(), &["people", "import", good, "--dry-run"]);
    assert!(o.status.success());
    assert!(
        text(&o)
            .0
            .contains("dry run: 3 added, 0 changed, 0 unchanged")
    );
    let o = hallpass(dir.path(), &["people", "import", good]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("3 added, 0 changed, 0 unchanged"));
    let o = hallpass(dir.path(), &["people", "import", good]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("0 added, 0 changed, 3 unchanged"),
        "second import: {out}"
    );
    assert!(!out.contains("added alice"));
    let (list, _) = text(&hallpass(dir.path(), &["people", "list"]));
    assert!(
        list.contains("alice\tAlice Adams\tstudent\t9\t9B\tChess club;Year 9"),
        "{list}"
    );
}

#[test]
fn sessions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = data("roster-good.csv");
    assert!(
        hallpass(dir.path(), &["people", "import", good.to_str().unwrap()])
            .status
            .success()
    );
    let o = hallpass(
        dir.path(),
        &["session", "start", "--user", "zed", "--ip", "10.0.0.9"],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("unknown user \"zed\""),
        "{:?}",
        text(&o)
    );
    let o = hallpass(
        dir.path(),
        &[
            "session",
            "start",
            "--user",
            "alice",
            "--ip",
            "10.0.0.9",
            "--workstation",
            "LAB1-PC04",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (list, _) = text(&hallpass(dir.path(), &["session", "list"]));
    assert!(
        list.contains("10.0.0.9\talice\tstudent\t9\t9B\tChess club;Year 9\tLAB1-PC04"),
        "{list}"
    );
    let o = hallpass(
        dir.path(),
        &[
            "session",
            "end",
            "--ip",
            "10.0.0.9",
            "--actor",
            "logon-script",
        ],
    );
    assert!(text(&o).0.contains("1 session(s) ended"));
    assert_eq!(text(&hallpass(dir.path(), &["session", "list"])).0, "");

    // Ending an unknown person's sessions is an error, not "0 ended".
    let o = hallpass(dir.path(), &["session", "end", "--user", "nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("unknown user \"nosuch\": import people first"),
        "{:?}",
        text(&o)
    );
    let o = hallpass(dir.path(), &["session", "end", "--user", "alice"]);
    assert!(text(&o).0.contains("0 session(s) ended for alice"));

    // Each start and end is in the audit log: who ran it, for whom, where.
    let (log, _) = text(&hallpass(dir.path(), &["audit", "list"]));
    let sessions: Vec<(String, String, String, serde_json::Value)> = log
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|f| f[3].starts_with("session."))
        .map(|f| {
            (
                f[2].to_string(),
                f[3].to_string(),
                f[4].to_string(),
                serde_json::from_str(f[5]).unwrap(),
            )
        })
        .collect();
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into());
    assert_eq!(sessions.len(), 3, "{log}");
    let id = sessions[0].3["session"].clone();
    assert!(id.is_i64(), "{log}");
    assert_eq!(
        sessions,
        vec![
            (
                user.clone(),
                "session.start".into(),
                "alice".into(),
                serde_json::json!({"ip": "10.0.0.9", "workstation": "LAB1-PC04", "session": id, "ended_at_this_address": []}),
            ),
            (
                "logon-script".into(),
                "session.end".into(),
                "10.0.0.9".into(),
                serde_json::json!({"ip": "10.0.0.9", "ended_for": ["alice"]}),
            ),
            (
                user,
                "session.end".into(),
                "alice".into(),
                serde_json::json!({"ips": []})
            ),
        ],
        "{log}"
    );
}

#[test]
fn roster_validation_names_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("mis.csv");
    std::fs::write(
        &roster,
        "username,display_name,role,year_group,form,email,mis_id\n\
         a1,A,student,nine,9B,a1@s.example,M1\n\
         a2,A,student,0,9B,a2@s.example,M2\n\
         a3,A,student,-3,9B,a3@s.example,M3\n\
         a4,A,staff,,,,M4\n\
         a5,A,staff,,,a5@s.example,\n\
         a6,A,staff,,,a6@s.example,M1\n\
         \"a,7\",A,staff,,,a7@s.example,M7\n\
         a\u{1}8,A,staff,,,a8@s.example,M8\n",
    )
    .unwrap();
    let o = hallpass(dir.path(), &["people", "import", roster.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let file = roster.display().to_string();
    for want in [
        format!(
            "{file}:2: column year_group: \"nine\" is not a year group: expected 1 to 13, R (reception) or N (nursery)"
        ),
        format!("{file}:3: column year_group: \"0\" is not a year group"),
        format!("{file}:4: column year_group: \"-3\" is not a year group"),
        format!("{file}:5: column email: is empty"),
        format!("{file}:6: column mis_id: is empty"),
        format!("{file}:7: column mis_id: \"M1\" already appears on line 2"),
        format!("{file}:8: column username: \"a,7\" contains a comma"),
        format!("{file}:9: column username: \"a\\u{{1}}8\" contains a control character (U+0001)"),
        "8 problem(s)".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("contains spaces"), "{err}");
}

#[test]
fn the_demo_roster_alone_keeps_marketing_in_marketing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/roster.csv");
    let o = hallpass(dir.path(), &["people", "import", demo.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (list, _) = text(&hallpass(dir.path(), &["people", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("ms.marketing\t") && l.ends_with("\tmarketing")),
        "{list}"
    );
}

/// Tamper with the SQLite database directly; `audit verify` exits 1 naming the entry.
#[test]
fn audit_verify_detects_tampering() {
    let good = data("roster-good.csv");
    let tamper = |sql: &str| -> (Option<i32>, String) {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..4 {
            // four imports, four audit entries
            assert!(
                hallpass(dir.path(), &["people", "import", good.to_str().unwrap()])
                    .status
                    .success()
            );
        }
        let o = hallpass(dir.path(), &["audit", "verify"]);
        assert!(o.status.success(), "{:?}", text(&o));
        // The entry that put the audit key in use, then the four imports.
        assert!(text(&o).0.contains("audit log intact: 5 entries"));
        let head = text(&hallpass(dir.path(), &["audit", "head"]))
            .0
            .trim()
            .to_string();
        assert!(head.starts_with("5:") && head.len() == 66, "{head}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = hallpass_store::Store::connect_data_dir(dir.path())
                .await
                .unwrap();
            hallpass_store::testing::execute_raw_sql_bypassing_the_store(&store, sql)
                .await
                .unwrap();
            store.close().await;
        });
        let o = hallpass(dir.path(), &["audit", "verify", "--head", &head]);
        (o.status.code(), text(&o).1)
    };
    let (code, err) = tamper("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2");
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 2 was altered"), "{err}");
    let (code, err) = tamper("DELETE FROM audit_log WHERE seq = 3");
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 3 was removed"), "{err}");
    let (code, err) = tamper(
        "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; \
         UPDATE audit_log SET seq = 3 WHERE seq = -1",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 2 is out of order"), "{err}");
    let (code, err) = tamper("DELETE FROM audit_log WHERE seq = 5");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("the log was truncated: it ends at entry 4, but entry 5 existed"),
        "{err}"
    );
}

/// A real database with an old and a new row of every class (and an old row of each for a
/// person under a hold): the dry run counts exactly what the run then deletes, and exactly
/// the new and the held rows remain.
#[test]
fn retention_run_deletes_exactly_the_expired_rows_of_each_class() {
    const DAY: i64 = 86_400_000_000;
    let dir = tempfile::tempdir().unwrap();
    // Ages are far from every period, so the seconds between seeding and the run do not
    // matter.
    let now = hallpass_clock::Clock::system().now().as_microsecond();
    let ago = |days: i64| now - days * DAY;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        let store = hallpass_store::Store::connect_data_dir(dir.path())
            .await
            .unwrap();
        let roster = "username,display_name,role,year_group,form,email,mis_id\n\
                      ann,Ann A,student,9,9A,ann@school.example,M1\n\
                      ben,Ben B,student,9,9A,ben@school.example,M2\n";
        let people = hallpass_store::people::parse_roster(roster.as_bytes()).unwrap();
        let t = |us: i64| jiff::Timestamp::from_microsecond(us).unwrap();
        store
            .people()
            .import(&people, false, "test", "roster.csv", t(ago(500)))
            .await
            .unwrap();
        let mut sql = String::new();
        let decision = |kind: &str, days: i64, who: &str, target: &str| {
            format!(
                "INSERT INTO decisions (kind, at_us, person, target, verdict) \
                 VALUES ('{kind}', {}, '{who}', '{target}', 'block');",
                ago(days)
            )
        };
        // (kind, kept at, expired at) under the defaults: dns 90, web 180, others 365.
        for (kind, kept, gone) in [
            ("dns", 60, 120),
            ("web", 120, 240),
            ("mail", 200, 400),
            ("file", 200, 400),
            ("logon", 200, 400),
        ] {
            sql += &decision(kind, kept, "ann", &format!("{kind}-new"));
            sql += &decision(kind, gone, "ann", &format!("{kind}-old"));
            sql += &decision(kind, gone, "ben", &format!("{kind}-held"));
        }
        // Content, 30 days: on a 60-day-old DNS decision (goes) and a 10-day-old one.
        sql += &decision("dns", 10, "ann", "dns-fresh");
        sql += "INSERT INTO event_content (event_id, kind, at_us, content) SELECT id, kind, \
                at_us, 'content of ' || target FROM decisions WHERE target IN ('dns-new', 'dns-fresh');";
        let visit = |days: i64, who: &str, name: &str| {
            let first = ago(days);
            format!(
                "INSERT INTO dns_visits (minute_us, first_us, last_us, person, client_ip, name, \
                 verdict, queries) VALUES ({}, {first}, {first}, '{who}', '10.0.0.1', '{name}', \
                 'allow', 4);",
                first - first.rem_euclid(60_000_000)
            )
        };
        sql += &visit(60, "ann", "visit-new");
        sql += &visit(120, "ann", "visit-old");
        sql += &visit(120, "ben", "visit-held");
        let traffic = |days: i64, who: &str, verdict: &str| {
            format!(
                "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) \
                 VALUES ({}, '{who}', '9', 'dns', '', '{verdict}', 4);",
                ago(days).div_euclid(DAY)
            )
        };
        sql += &traffic(60, "ann", "allow");
        sql += &traffic(120, "ann", "allow");
        sql += &traffic(120, "ben", "allow");
        // The hourly roll-up, a year (365 days).
        let activity = |days: i64, who: &str, site: &str| {
            format!(
                "INSERT INTO activity_hourly (person, hour_us, kind, site, verdict, n) \
                 VALUES ('{who}', {}, 'dns', '{site}', 'allow', 4);",
                ago(days).div_euclid(3_600_000_000) * 3_600_000_000
            )
        };
        sql += &activity(200, "ann", "activity-new");
        sql += &activity(400, "ann", "activity-old");
        sql += &activity(400, "ben", "activity-held");
        sql += &format!(
            "INSERT INTO committed_batches (batch_id, committed_us, events) \
             VALUES ('run-a:1', {}, 3), ('run-b:1', {}, 3);",
            ago(400),
            ago(10)
        );
        hallpass_store::testing::execute_raw_sql_bypassing_the_store(&store, &sql)
            .await
            .unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let sessions = store.sessions();
        sessions.start("test", "ann", ip("10.0.0.1"), None, t(ago(401))).await.unwrap();
        sessions.end_by_ip("test", ip("10.0.0.1"), t(ago(400))).await.unwrap();
        sessions.start("test", "ann", ip("10.0.0.2"), None, t(ago(11))).await.unwrap();
        sessions.end_by_ip("test", ip("10.0.0.2"), t(ago(10))).await.unwrap();
        sessions.start("test", "ben", ip("10.0.0.3"), None, t(ago(401))).await.unwrap();
        sessions.end_by_ip("test", ip("10.0.0.3"), t(ago(400))).await.unwrap();
        store
            .place_hold("ben", "exclusion appeal", "head", t(ago(1)))
            .await
            .unwrap();
        store.close().await;
        store
    });
    let expected = [
        "would delete 1 dns event(s)",
        "would delete 1 file event(s)",
        "would delete 1 logon event(s)",
        "would delete 1 mail event(s)",
        "would delete 1 web event(s)",
        "would delete 1 dns visit(s) (4 allowed queries)",
        "would delete 1 content record(s)",
        "would delete 1 ended logon session(s)",
        "would delete 1 hourly activity row(s)",
        "would anonymise 1 per-person daily traffic row(s)",
        "would delete 0 daily traffic row(s)",
        "would delete 1 replay record(s)",
        "kept the data of ben: under a hold",
    ];
    let o = hallpass(dir.path(), &["retention", "run", "--dry-run"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&o).0.lines().collect::<Vec<_>>(), expected);
    let o = hallpass(dir.path(), &["retention", "run"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let out = text(&o).0;
    let mut lines: Vec<&str> = out.lines().collect();
    // 1 puts the audit key in use, 2 the roster, 3-8 the six session starts and ends,
    // 9 the hold: the run is entry 10.
    assert_eq!(lines.pop(), Some("audit entry 10"), "{out}");
    let ran: Vec<String> = expected
        .iter()
        .map(|l| {
            l.replace("would delete", "deleted")
                .replace("would anonymise", "anonymised")
        })
        .collect();
    assert_eq!(lines, ran);

    let remaining = |sql: &str| {
        rt.block_on(async {
            let store = hallpass_store::Store::connect_data_dir(dir.path())
                .await
                .unwrap();
            let rows = hallpass_store::testing::query_strings(&store, sql)
                .await
                .unwrap();
            store.close().await;
            rows
        })
    };
    drop(store);
    assert_eq!(
        remaining("SELECT site FROM activity_hourly ORDER BY site"),
        ["activity-held", "activity-new"]
    );
    assert_eq!(
        remaining("SELECT target FROM decisions ORDER BY target"),
        [
            "dns-fresh",
            "dns-held",
            "dns-new",
            "file-held",
            "file-new",
            "logon-held",
            "logon-new",
            "mail-held",
            "mail-new",
            "web-held",
            "web-new",
        ]
    );
    assert_eq!(
        remaining("SELECT content FROM event_content"),
        ["content of dns-fresh"]
    );
    assert_eq!(
        remaining("SELECT name FROM dns_visits ORDER BY name"),
        ["visit-held", "visit-new"]
    );
    assert_eq!(
        remaining("SELECT ip FROM logon_sessions ORDER BY ip"),
        ["10.0.0.2", "10.0.0.3"]
    );
    let d = |days: i64| ago(days).div_euclid(DAY);
    assert_eq!(
        remaining(
            "SELECT CAST(day AS TEXT) || ':' || person || '=' || CAST(n AS TEXT) \
             FROM traffic_daily ORDER BY day, person"
        ),
        [
            format!("{}:=4", d(120)),
            format!("{}:ben=4", d(120)),
            format!("{}:ann=4", d(60)),
        ]
    );
    assert_eq!(
        remaining("SELECT batch_id FROM committed_batches"),
        ["run-b:1"]
    );
    // The run is audited, and nothing is left for a second one.
    let o = hallpass(dir.path(), &["audit", "list", "--last", "1"]);
    assert!(text(&o).0.contains("retention.run"), "{:?}", text(&o));
    let o = hallpass(dir.path(), &["retention", "run", "--dry-run"]);
    let (out, _) = text(&o);
    assert!(out.contains("would delete 0 dns event(s)"), "{out}");
    assert!(out.contains("would delete 0 dns visit(s)"), "{out}");
    assert!(out.contains("would delete 0 content record(s)"), "{out}");
}

#[test]
fn unavailable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "audit",
            "head",
            "--database",
            "postgres://hallpass:s3cret@127.0.0.1:1/hallpass",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("postgres://hallpass:***@127.0.0.1:1/hallpass is unavailable"),
        "{err}"
    );
    assert!(!err.contains("s3cret"));
    drop(dir);
}
