//! `People::sync`: the directory's people added, changed, disabled when they leave (never
//! deleted: logged off, console account disabled, no new session), re-enabled when they
//! return; a sync with nothing to do writes nothing, not even an audit entry.

use std::net::IpAddr;

use hallpass_store::people::parse_roster;

use super::{TestDb, ts};

const DIRECTORY: &str = "\
mis_id,username,display_name,role,year_group,form,email,groups
M001,alice,Alice Adams,student,9,9B,alice@school.example,Year 9
M002,bob,Bob Brown,student,10,10C,bob@school.example,
M003,ms.clark,Carol Clark,teacher,,,carol@school.example,Staff
";

pub async fn directory_sync_disables_leavers(db: &TestDb) {
    let store = db.store().await;
    let people = &store.people();
    let t0 = ts("2026-09-01T06:00:00Z");
    // Dan came from a CSV import: the directory sync never disables him.
    let csv = parse_roster(
        "username,display_name,role,year_group,form,email,mis_id\n\
         dan,Dan Dee,staff,,,dan@school.example,M9\n"
            .as_bytes(),
    )
    .unwrap();
    people
        .import(&csv, false, "it", "roster.csv", t0)
        .await
        .unwrap();
    let all = parse_roster(DIRECTORY.as_bytes()).unwrap();
    let sync = |records: Vec<_>, dry_run: bool, at: &str| {
        let at = ts(at);
        async move {
            people
                .sync(&records, &[], dry_run, "it", "ldap", "ldap://dc1", at)
                .await
                .unwrap()
        }
    };
    let dry = sync(all.clone(), true, "2026-09-01T06:00:00Z").await;
    assert_eq!(dry.added, vec!["alice", "bob", "ms.clark"]);
    assert_eq!(
        people.list().await.unwrap().len(),
        1,
        "a dry run wrote people"
    );
    let first = sync(all.clone(), false, "2026-09-01T06:00:00Z").await;
    assert_eq!(first.added.len(), 3);
    assert!(first.audit_seq.is_some());
    let head = store.audit().head_entry().await.unwrap();
    let second = sync(all.clone(), false, "2026-09-02T06:00:00Z").await;
    assert!(
        second.is_empty() && second.audit_seq.is_none(),
        "{second:?}"
    );
    assert_eq!(second.unchanged, 3);
    assert_eq!(
        store.audit().head_entry().await.unwrap(),
        head,
        "an idle sync audited"
    );

    // Bob is logged on and has a console account; then he leaves the directory.
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let t1 = ts("2026-09-03T05:00:00Z");
    store
        .sessions()
        .start("it", "bob", ip, None, t1)
        .await
        .unwrap();
    store
        .accounts()
        .add("bob", "teacher", &[], "$argon2id$not-a-hash", "it", t1)
        .await
        .unwrap();
    let without_bob: Vec<_> = all
        .iter()
        .filter(|r| r.username != "bob")
        .cloned()
        .collect();
    // A skipped entry (protected) is not a leaver.
    let kept = people
        .sync(
            &without_bob,
            &["bob".into()],
            false,
            "it",
            "ldap",
            "ldap://dc1",
            t1,
        )
        .await
        .unwrap();
    assert!(kept.disabled.is_empty(), "{kept:?}");
    let gone = sync(without_bob.clone(), false, "2026-09-03T06:00:00Z").await;
    assert_eq!(gone.disabled, vec!["bob"]);
    let list = people.list().await.unwrap();
    let bob = list.iter().find(|p| p.username == "bob").unwrap();
    assert_eq!(
        bob.left_at,
        Some(ts("2026-09-03T06:00:00Z")),
        "bob was deleted or not marked"
    );
    assert!(
        list.iter()
            .any(|p| p.username == "dan" && p.left_at.is_none())
    );
    assert!(
        store.sessions().active().await.unwrap().is_empty(),
        "bob still logged on"
    );
    let account = store.accounts().list().await.unwrap();
    assert_eq!(account[0].disabled, Some(ts("2026-09-03T06:00:00Z")));
    let refused = store
        .sessions()
        .start("it", "bob", ip, None, t1)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("\"bob\" has left"),
        "{refused}"
    );
    let again = sync(without_bob, false, "2026-09-04T06:00:00Z").await;
    assert!(again.is_empty(), "disabling is not idempotent: {again:?}");

    // He returns in another year group: re-enabled and changed in one step.
    let mut back = all.clone();
    back[1].year_group = Some("11".into());
    let returned = sync(back, false, "2026-09-05T06:00:00Z").await;
    let fields: Vec<_> = returned.changed["bob"]
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, vec!["year_group", "left"]);
    assert_eq!(returned.changed["bob"][0].old, "10");
    store
        .sessions()
        .start("it", "bob", ip, None, t1)
        .await
        .unwrap();
}
