//! `Exceptions`: requests filed (rate limited per address), approved once into a grant,
//! denied with a reason; overrides and acknowledgements; what is open at a time; expiry
//! and "until the policy changes" marked once and audited.

use hallpass_store::exceptions::{Approval, GrantScope, NewRequest, RequestLimit};
use hallpass_store::people::parse_roster;

use super::{TestDb, ts};

pub async fn exceptions_requests_grants_overrides(db: &TestDb) {
    let store = db.store().await;
    let t0 = ts("2026-11-23T10:00:00Z");
    let roster = parse_roster(
        "username,display_name,role,year_group,form,email,mis_id\n\
         ava,Ava A,student,9,9B,ava@school.example,M1\n"
            .as_bytes(),
    )
    .unwrap();
    store
        .people()
        .import(&roster, false, "it", "roster.csv", t0)
        .await
        .unwrap();
    let exceptions = store.exceptions();
    let limit = RequestLimit {
        per_client: 2,
        window: std::time::Duration::from_secs(600),
    };
    let request = |target: &'static str| NewRequest {
        person: "ava",
        client_ip: "10.0.0.9",
        target,
        reason: "homework",
        rule: Some("games"),
        safeguarding: false,
    };
    let first = exceptions
        .file_request(&request("steampowered.com"), limit, t0)
        .await
        .unwrap();
    let second = exceptions
        .file_request(&request("example.org"), limit, t0)
        .await
        .unwrap();
    let flood = exceptions
        .file_request(&request("example.net"), limit, t0)
        .await
        .unwrap_err();
    assert!(
        flood
            .to_string()
            .starts_with(hallpass_store::exceptions::RATE_LIMITED),
        "{flood}"
    );
    assert_eq!(
        exceptions
            .requests(None, None, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        exceptions
            .requests(Some("pending"), Some("ava"), Some(false), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        exceptions
            .requests(None, None, Some(true), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let t1 = ts("2026-11-23T11:00:00Z");
    let grant = exceptions
        .approve(
            first,
            &Approval {
                scope: GrantScope::Person("ava".into()),
                target: "steampowered.com".into(),
                until: Some(t1),
                draft: None,
            },
            "ms.netman",
            t0,
        )
        .await
        .unwrap();
    let twice = exceptions
        .approve(
            first,
            &Approval {
                scope: GrantScope::Everyone,
                target: "x.org".into(),
                until: Some(t1),
                draft: None,
            },
            "ms.netman",
            t0,
        )
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("already approved"), "{twice}");
    exceptions
        .deny(second, "not for school work", "ms.netman", t0)
        .await
        .unwrap();
    let denied = exceptions.request(second).await.unwrap().unwrap();
    assert_eq!(
        (denied.status.as_str(), denied.decision_note.as_deref()),
        ("denied", Some("not for school work"))
    );
    let approved = exceptions.request(first).await.unwrap().unwrap();
    assert_eq!(
        (approved.status.as_str(), approved.grant_id),
        ("approved", Some(grant.id))
    );

    let lesson_end = ts("2026-11-23T10:40:00Z");
    exceptions
        .add_override("form-9b", "games", lesson_end, "mr.teacher", t0)
        .await
        .unwrap();
    exceptions
        .acknowledge("ava", "discord.com", t1, t0)
        .await
        .unwrap();
    let forever = exceptions
        .approve(
            exceptions
                .file_request(&request("wiki.example.org"), RequestLimit::default(), t0)
                .await
                .unwrap(),
            &Approval {
                scope: GrantScope::Group("students".into()),
                target: "wiki.example.org".into(),
                until: None,
                draft: Some("[[rules]]".into()),
            },
            "ms.netman",
            t0,
        )
        .await
        .unwrap();
    let open = exceptions.open(t0).await.unwrap();
    assert_eq!(
        (
            open.grants.len(),
            open.overrides.len(),
            open.acknowledged.len()
        ),
        (2, 1, 1)
    );

    // 10:40: the override has ended; 11:00: the grant and the acknowledgement too; the
    // grant "until the policy changes" only when the policy does.
    assert_eq!(exceptions.expire(lesson_end).await.unwrap(), 1);
    assert_eq!(
        exceptions.expire(lesson_end).await.unwrap(),
        0,
        "marked once"
    );
    assert_eq!(exceptions.expire(t1).await.unwrap(), 2);
    let open = exceptions.open(t1).await.unwrap();
    assert_eq!(
        open.grants.iter().map(|g| g.id).collect::<Vec<_>>(),
        [forever.id]
    );
    assert!(open.overrides.is_empty() && open.acknowledged.is_empty());
    assert_eq!(exceptions.end_policy_change_grants(t1).await.unwrap(), 1);
    assert!(exceptions.open(t1).await.unwrap().grants.is_empty());

    let actions: Vec<String> = store
        .audit()
        .recent(50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "request.file",
        "request.approve",
        "request.deny",
        "override.create",
        "warning.acknowledge",
        "grant.expire",
        "override.expire",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} in {actions:?}"
        );
    }
}
