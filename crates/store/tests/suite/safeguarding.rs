//! `Safeguarding`: sanctions (checked, in force until their end, revoked or expired once,
//! recorded in their incident's chronology), incidents (actions, an outcome closes
//! them), investigations (checked; open only for the one who authorised them, in their
//! window) and the content they unlock.

use hallpass_store::people::parse_roster;
use hallpass_store::safeguarding::{NewIncident, NewSanction};
use hallpass_store::{Event, EventKind};

use super::{TestDb, ts};

pub async fn sanctions_incidents_and_investigations(db: &TestDb) {
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
    let sg = store.safeguarding();

    let incident = sg
        .open_incident(
            "hoy",
            &NewIncident {
                person: "ava",
                year_group: Some("9"),
                staff_case: false,
                title: "Search about self-harm",
                alert: None,
                assigned_to: Some("hoy"),
            },
            t0,
        )
        .await
        .unwrap();
    assert!(
        sg.open_incident(
            "hoy",
            &NewIncident {
                person: "nobody",
                year_group: None,
                staff_case: false,
                title: "x",
                alert: None,
                assigned_to: None
            },
            t0
        )
        .await
        .is_err()
    );

    let sanction = |kind: &'static str, target: Option<&'static str>, until: &str| NewSanction {
        person: "ava",
        kind,
        target,
        until: ts(until),
        reason: "pending a meeting",
        clause: None,
        incident: Some(incident),
    };
    // Refused: an unknown kind, a site without its site, a past end, no reason.
    for bad in [
        sanction("holiday", None, "2026-11-26T10:00:00Z"),
        sanction("site", None, "2026-11-26T10:00:00Z"),
        sanction("internet", Some("x.com"), "2026-11-26T10:00:00Z"),
        sanction("internet", None, "2026-11-22T10:00:00Z"),
        NewSanction {
            reason: " ",
            ..sanction("internet", None, "2026-11-26T10:00:00Z")
        },
    ] {
        assert!(sg.sanction("hoy", &bad, t0).await.is_err(), "{bad:?}");
    }
    assert!(sg.sanctions_in_force(t0).await.unwrap().is_empty());
    let internet = sg
        .sanction(
            "hoy",
            &sanction("internet", None, "2026-11-26T10:00:00Z"),
            t0,
        )
        .await
        .unwrap();
    let site = sg
        .sanction(
            "hoy",
            &sanction("site", Some("www.tiktok.com"), "2026-11-24T10:00:00Z"),
            t0,
        )
        .await
        .unwrap();
    assert_eq!(sg.sanctions_in_force(t0).await.unwrap().len(), 2);
    assert_eq!(sg.sanctions(Some("ava"), Some(t0)).await.unwrap().len(), 2);
    assert_eq!(sg.sanctions(None, None).await.unwrap().len(), 2);
    // The site sanction ends on time, marked and audited once.
    let day_later = ts("2026-11-24T10:00:01Z");
    let in_force = sg.sanctions_in_force(day_later).await.unwrap();
    assert_eq!(
        in_force.iter().map(|s| s.id).collect::<Vec<_>>(),
        [internet]
    );
    assert_eq!(sg.expire_sanctions(day_later).await.unwrap(), 1);
    assert_eq!(sg.expire_sanctions(day_later).await.unwrap(), 0);
    assert_eq!(
        sg.sanction_by_id(site).await.unwrap().ended_why.as_deref(),
        Some("expired")
    );
    // Revoked early, once.
    sg.revoke_sanction("dsl", internet, day_later)
        .await
        .unwrap();
    assert!(
        sg.revoke_sanction("dsl", internet, day_later)
            .await
            .is_err()
    );
    assert!(sg.sanctions_in_force(day_later).await.unwrap().is_empty());

    // The chronology: both sanctions, then actions; an outcome closes the incident.
    assert!(
        sg.record_action("hoy", incident, "gossip", "x", t0)
            .await
            .is_err()
    );
    assert!(
        sg.record_action("hoy", incident, "note", "  ", t0)
            .await
            .is_err()
    );
    sg.record_action("hoy", incident, "parents-informed", "Mother, by phone", t0)
        .await
        .unwrap();
    let closed = sg
        .record_action("hoy", incident, "outcome", "Support plan agreed", day_later)
        .await
        .unwrap();
    assert_eq!(closed.status, "closed");
    assert!(
        sg.record_action("hoy", incident, "note", "late", day_later)
            .await
            .is_err()
    );
    let kinds: Vec<String> = sg
        .actions(incident)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds,
        ["sanction", "sanction", "parents-informed", "outcome"]
    );
    assert_eq!(sg.incidents(true).await.unwrap().len(), 0);
    assert_eq!(sg.incidents(false).await.unwrap().len(), 1);

    // Investigations: checked; open for their author only, within their expiry.
    let (from, to, until) = (
        ts("2026-11-23T00:00:00Z"),
        ts("2026-11-24T00:00:00Z"),
        ts("2026-11-30T00:00:00Z"),
    );
    assert!(
        sg.open_investigation("head", "ava", " ", from, to, until, t0)
            .await
            .is_err()
    );
    assert!(
        sg.open_investigation("head", "ava", "concern", to, from, until, t0)
            .await
            .is_err()
    );
    assert!(
        sg.open_investigation("head", "ava", "concern", from, to, t0, t0)
            .await
            .is_err()
    );
    let id = sg
        .open_investigation("head", "ava", "concern", from, to, until, t0)
        .await
        .unwrap();
    assert_eq!(
        sg.open_investigation_for("head", "ava", t0)
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert!(
        sg.open_investigation_for("dsl", "ava", t0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sg.open_investigation_for("head", "ava", until)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sg.investigations(Some("ava")).await.unwrap().len(), 1);

    // Content in the window, and only there.
    let (writer, task) =
        hallpass_store::EventWriter::start(store.clone(), super::writer_config(db)).unwrap();
    for (at, text) in [
        ("2026-11-23T09:00:00Z", "inside"),
        ("2026-11-25T09:00:00Z", "outside"),
    ] {
        let mut e = Event::new(EventKind::Web, ts(at), "www.google.com");
        e.person = Some("ava".into());
        e.content = Some(text.into());
        writer.record_acked(e).await.unwrap();
    }
    drop(writer);
    task.await.unwrap();
    let content = sg.content_of("ava", from, to).await.unwrap();
    assert_eq!(
        content.iter().map(|c| c.3.as_str()).collect::<Vec<_>>(),
        ["inside"]
    );
    let audit = store.audit().recent(50).await.unwrap();
    for action in [
        "sanction.create",
        "sanction.expire",
        "sanction.revoke",
        "incident.open",
        "incident.action",
        "investigation.open",
    ] {
        assert!(
            audit.iter().any(|e| e.action == action),
            "{action} not audited"
        );
    }
}
