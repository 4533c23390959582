//! `Alerts` and `Outbox`: an occurrence is recorded once by its key; repeats of a person
//! and theme within the fold window join the open alert; routes filter what a role sees;
//! status changes are checked and audited; a person's alerts and mail are in their
//! export and go with their erasure.

use hallpass_store::alerts::{AlertFilter, NewAlert, Raised};
use hallpass_store::{EraseOptions, ExportOptions};

use super::{TestDb, ts};

fn alert<'a>(person: &'a str, key: &'a str, evidence: &'a serde_json::Value) -> NewAlert<'a> {
    NewAlert {
        person,
        year_group: Some("9"),
        kind: "conduct",
        theme: "shared-credentials",
        severity: 2,
        route: "network_manager",
        document: Some("wcs"),
        clause: Some("2.2"),
        summary: "logged on at two workstations at once",
        key,
        evidence,
    }
}

pub async fn alerts_fold_route_and_follow_the_person(db: &TestDb) {
    let store = db.store().await;
    let alerts = store.alerts();
    let day = std::time::Duration::from_secs(24 * 3600);
    let t0 = ts("2026-11-23T10:00:00Z");
    let evidence = serde_json::json!({"sessions": ["10.0.0.1", "10.0.0.2"]});

    let first = alerts
        .raise(&alert("ava", "pair-1", &evidence), day, t0)
        .await
        .unwrap();
    let Raised::New(id) = first else {
        panic!("{first:?}")
    };
    // The same occurrence again (a check that runs every few seconds): nothing changes.
    let again = alerts
        .raise(
            &alert("ava", "pair-1", &evidence),
            day,
            ts("2026-11-23T10:00:05Z"),
        )
        .await
        .unwrap();
    assert_eq!(again, Raised::Known(id));
    // Another occurrence within the window folds in.
    let folded = alerts
        .raise(
            &alert("ava", "pair-2", &evidence),
            day,
            ts("2026-11-23T12:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(folded, Raised::Folded(id));
    // Past the window it is a new alert.
    let later = alerts
        .raise(
            &alert("ava", "pair-3", &evidence),
            day,
            ts("2026-11-25T12:00:00Z"),
        )
        .await
        .unwrap();
    assert!(
        matches!(later, Raised::New(other) if other != id),
        "{later:?}"
    );
    // A severity outside 1..5 is refused and records nothing.
    let mut bad = alert("ava", "pair-4", &evidence);
    bad.severity = 9;
    assert!(alerts.raise(&bad, day, t0).await.is_err());

    let (one, occurrences) = alerts.get(id).await.unwrap();
    assert_eq!(one.count, 2);
    assert_eq!(one.first, t0);
    assert_eq!(one.last, ts("2026-11-23T12:00:00Z"));
    assert_eq!(occurrences.len(), 2);
    assert_eq!(occurrences[0].evidence, evidence);

    let routes = |r: &'static [&'static str]| AlertFilter {
        routes: r,
        open_only: true,
        person: None,
        year_groups: None,
        limit: 100,
    };
    assert_eq!(
        alerts
            .list(&routes(&["network_manager"]))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(alerts.list(&routes(&["dsl"])).await.unwrap().is_empty());
    assert!(alerts.list(&routes(&[])).await.unwrap().is_empty());

    // Closing needs an outcome; "new" and unknown statuses are refused; nothing changes.
    let now = ts("2026-11-26T09:00:00Z");
    for (status, outcome) in [("closed", None), ("new", None), ("done", Some("x"))] {
        assert!(
            alerts
                .set_status("it", id, status, outcome, now)
                .await
                .is_err()
        );
    }
    assert_eq!(alerts.get(id).await.unwrap().0.status, "new");
    assert!(
        alerts
            .set_status("it", 999, "acknowledged", None, now)
            .await
            .is_err()
    );
    let closed = alerts
        .set_status("it", id, "closed", Some("password changed"), now)
        .await
        .unwrap();
    assert_eq!(closed.status, "closed");
    assert_eq!(closed.outcome.as_deref(), Some("password changed"));
    assert_eq!(
        alerts
            .list(&routes(&["network_manager"]))
            .await
            .unwrap()
            .len(),
        1
    );
    let audit = store.audit().recent(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "alert.status" && e.subject == "ava")
    );

    // The outbox: due, failed (retried later), sent.
    let outbox = store.outbox();
    let mail = outbox
        .enqueue(
            "ava@school.example",
            "Your request",
            "Approved",
            Some("ava"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(outbox.due(now, 10).await.unwrap().len(), 1);
    let retry = ts("2026-11-26T09:05:00Z");
    outbox
        .failed(mail, "connection refused", retry)
        .await
        .unwrap();
    assert!(outbox.due(now, 10).await.unwrap().is_empty());
    let due = outbox.due(retry, 10).await.unwrap();
    assert_eq!((due.len(), due[0].attempts), (1, 1));
    outbox.sent(mail, retry).await.unwrap();
    assert!(outbox.due(retry, 10).await.unwrap().is_empty());
    assert_eq!(outbox.waiting().await.unwrap(), 0);

    // Everything about Ava: her alerts, their evidence and her mail are in the export...
    let mut out = Vec::new();
    let summary = store
        .export_person("ava", ExportOptions::default(), now, &mut out)
        .await
        .unwrap();
    assert_eq!(summary.rows["alerts"], 2);
    assert_eq!(summary.rows["alert_occurrences"], 3);
    assert_eq!(summary.rows["outbox"], 1);
    // ...and go with her erasure.
    let erased = store
        .erase_person("ava", EraseOptions::default(), "dpo", now)
        .await
        .unwrap();
    assert_eq!(erased.rows["alerts"], 2);
    assert_eq!(erased.rows["alert_occurrences"], 3);
    assert!(alerts.get(id).await.is_err());
}
