//! The email filter's quarantine (hold, list, release once, delete with the bytes
//! dropped, claims for delivery, audit) and journal (copies and their retention).

use hallpass_store::StoreError;
use hallpass_store::quarantine::{NewHeld, NewJournal, Release, ReleaseOutcome};

use super::{TestDb, ts};

pub async fn mail_quarantine_and_journal(db: &TestDb) {
    let store = db.store().await;
    let q = store.quarantine();
    let t = ts("2026-12-07T10:00:00Z");
    let to = vec!["alex@wcs.london".to_string()];
    let detectors = vec!["language:offensive-language".to_string()];
    let held = |message: &'static [u8]| NewHeld {
        sender: "sam@wcs.london",
        recipients: &to,
        person: Some("s.student"),
        rule: Some("mail-student-abusive-language"),
        document: Some("wcs"),
        clause: Some("3.2.3"),
        reason: "held",
        detectors: &detectors,
        message,
    };
    let first = q
        .hold(&held(b"Subject: one\r\n\r\nbody\r\n"), t)
        .await
        .unwrap();
    let second = q
        .hold(&held(b"Subject: two\r\n\r\nbody\r\n"), t)
        .await
        .unwrap();
    let waiting = q.list(false, 10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|h| h.id).collect::<Vec<_>>(),
        [second, first]
    );
    assert_eq!(waiting[0].recipients, to);
    assert_eq!(waiting[0].detectors, detectors);
    let two_len = i64::try_from(b"Subject: two\r\n\r\nbody\r\n".len()).unwrap();
    assert_eq!(
        (waiting[0].status.as_str(), waiting[0].size),
        ("held", two_len)
    );

    // Released once; a second decision is refused.
    let r = q.release(first, "ict", "a quote", t).await.unwrap();
    assert_eq!(r.status, "release");
    assert_eq!(r.decided_by.as_deref(), Some("ict"));
    assert!(matches!(
        q.release(first, "ict", "again", t).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        q.delete(first, "ict", "now", t).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        q.release(9999, "ict", "x", t).await,
        Err(StoreError::NotFound(_))
    ));

    // The mail service claims it once; a retry puts it back, delivery finishes it.
    let claimed = q.claim_releases(10).await.unwrap();
    assert_eq!(
        claimed,
        [Release {
            id: first,
            sender: "sam@wcs.london".into(),
            recipients: to.clone(),
            message: b"Subject: one\r\n\r\nbody\r\n".to_vec(),
        }]
    );
    assert!(q.claim_releases(10).await.unwrap().is_empty());
    q.finish_release(first, &ReleaseOutcome::Retry, t)
        .await
        .unwrap();
    assert_eq!(q.claim_releases(10).await.unwrap().len(), 1);
    q.finish_release(first, &ReleaseOutcome::Delivered, t)
        .await
        .unwrap();
    let done = q.get(first).await.unwrap();
    assert_eq!((done.status.as_str(), done.released), ("released", Some(t)));
    assert!(q.claim_releases(10).await.unwrap().is_empty());

    // A release the next hop refuses for good is marked so, the reason kept.
    let third = q
        .hold(&held(b"Subject: three\r\n\r\nx\r\n"), t)
        .await
        .unwrap();
    q.release(third, "ict", "asked by the head", t)
        .await
        .unwrap();
    assert_eq!(q.claim_releases(10).await.unwrap().len(), 1);
    q.finish_release(
        third,
        &ReleaseOutcome::Refused("550 no such user".into()),
        t,
    )
    .await
    .unwrap();
    let refused = q.get(third).await.unwrap();
    assert_eq!(refused.status, "refused");
    assert_eq!(
        refused.decision_reason.as_deref(),
        Some("asked by the head (refused by the next hop: 550 no such user)")
    );
    assert!(q.claim_releases(10).await.unwrap().is_empty());

    // Deleted: bytes gone, the row stays; only the decided view lists it.
    q.delete(second, "dsl", "dealt with", t).await.unwrap();
    assert!(q.list(false, 10).await.unwrap().is_empty());
    let all = q.list(true, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let audit: Vec<String> = store
        .audit()
        .recent(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("mail.quarantine."))
        .map(|e| format!("{} {} {}", e.actor, e.action, e.subject))
        .collect();
    assert_eq!(audit.len(), 3, "{audit:?}");

    // The journal keeps copies until their retention ends.
    let j = NewJournal {
        at: t,
        direction: "outbound",
        sender: "t@wcs.london",
        recipients: &to,
        person: Some("t.teacher"),
        message: b"Subject: kept\r\n\r\nx\r\n",
    };
    let later = NewJournal {
        at: ts("2026-12-08T10:00:00Z"),
        ..j.clone()
    };
    q.journal(&[j, later]).await.unwrap();
    assert_eq!(
        q.purge_journal(ts("2026-12-08T00:00:00Z")).await.unwrap(),
        1
    );
    assert_eq!(
        q.purge_journal(ts("2026-12-08T00:00:00Z")).await.unwrap(),
        0
    );

    // Sender blocks: once each, lifted by id, both audited.
    let b = q
        .block_sender("bulk.example", "junk", "ict", t)
        .await
        .unwrap();
    assert!(matches!(
        q.block_sender("bulk.example", "again", "ict", t).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(q.sender_blocks().await.unwrap(), std::slice::from_ref(&b));
    q.unblock_sender(b.id, "sorted", "ict", t).await.unwrap();
    assert!(q.sender_blocks().await.unwrap().is_empty());
    assert!(matches!(
        q.unblock_sender(b.id, "sorted", "ict", t).await,
        Err(StoreError::NotFound(_))
    ));
    let actions: Vec<String> = store
        .audit()
        .recent(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("mail.block."))
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
}

/// What an investigation reads from the journal (mail the person sent, or was sent at
/// their roster address, in its time range), a hold keeping it past retention, and a
/// person's export (what and when, never the message) and erasure.
pub async fn mail_journal_by_person_held_exported_erased(db: &TestDb) {
    let store = db.store().await;
    let at = |h: i8| ts(&format!("2026-12-07T{h:02}:00:00Z"));
    let sent = journal(&store, "ava@wcs.london", "ben@wcs.london", "ava", at(9)).await;
    let received = journal(&store, "ben@wcs.london", "Ava@WCS.london", "ben", at(10)).await;
    let other = journal(&store, "ben@wcs.london", "cal@wcs.london", "ben", at(11)).await;
    let late = journal(&store, "ava@wcs.london", "x@y.example", "ava", at(20)).await;
    let ids = |entries: Vec<hallpass_store::quarantine::JournalEntry>| {
        entries.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let read = store
        .quarantine()
        .journal_of("ava", Some("ava@wcs.london"), at(8), at(12), 100)
        .await
        .unwrap();
    assert_eq!(read[0].message, b"Subject: hi\r\n\r\nbody\r\n");
    assert_eq!(
        ids(read),
        vec![sent, received],
        "not ben's mail to cal, not after 12:00"
    );
    let without_address = store
        .quarantine()
        .journal_of("ava", None, at(8), at(23), 100)
        .await
        .unwrap();
    assert_eq!(ids(without_address), vec![sent, late]);
    assert_ne!(other, late);

    // A hold on ava keeps her copies past retention; ben's go.
    store
        .place_hold("ava", "safeguarding case", "dsl", at(12))
        .await
        .unwrap();
    let purged = store.quarantine().purge_journal(at(23)).await.unwrap();
    assert_eq!(purged, 2, "ben's two copies");
    let left = db.scalar("SELECT COUNT(*) FROM mail_journal").await;
    assert_eq!(left, 2);

    // The export names the copies without their bytes; erasure (after the hold) drops them.
    let mut out = Vec::new();
    store
        .export_person("ava", Default::default(), at(23), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let journal_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""table":"mail_journal""#))
        .collect();
    assert_eq!(journal_lines.len(), 2, "{text}");
    assert!(!text.contains("body"), "no message content in the export");
    let hold = store.holds(Some("ava"), false).await.unwrap()[0].id;
    store.release_hold(hold, "dsl", at(23)).await.unwrap();
    let report = store
        .erase_person("ava", Default::default(), "dpo", at(23))
        .await
        .unwrap();
    assert_eq!(report.rows.get("mail_journal"), Some(&2));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM mail_journal").await, 0);
}

/// Journal one internal message from `sender` (the roster's `person`) to `to`; its id.
async fn journal(
    store: &hallpass_store::Store,
    sender: &str,
    to: &str,
    person: &str,
    at: jiff::Timestamp,
) -> i64 {
    let q = store.quarantine();
    q.journal(&[NewJournal {
        at,
        direction: "internal",
        sender,
        recipients: &[to.to_string()],
        person: Some(person),
        message: b"Subject: hi\r\n\r\nbody\r\n",
    }])
    .await
    .unwrap();
    // The copy just written is the person's latest.
    let copies = q.journal_of(
        person,
        None,
        at,
        at + jiff::SignedDuration::from_secs(1),
        100,
    );
    copies.await.unwrap().last().unwrap().id
}
