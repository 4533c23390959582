//! One person's activity over a range from the hourly roll-up: the totals the writer
//! recorded, busiest sites first; heads of year reach only their years, nobody reaches
//! staff through it; every view audited with its reason; bad ranges refused.

use serde_json::Value;

use crate::kit;

#[tokio::test]
async fn a_pupil_s_year_per_day_and_site_audited_and_scoped() {
    let kit = kit::start().await;
    let url = |path: &str| format!("{}{path}", kit.base);
    let (dsl, _) = kit::signed_in(&kit, "dan.dsl").await;
    let got = dsl
        .get(url(
            "/api/v1/people/ava.student/activity?reason=concern%20raised%20by%20form%20tutor",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let a: Value = got.json().await.unwrap();
    // The kit recorded for ava: 20 allowed www.bbc.co.uk, 12 blocked roblox, 7 blocked
    // pornhub, all in the last hour.
    assert_eq!(a["person"], "ava.student");
    assert_eq!(a["year_group"], "9");
    assert_eq!(a["total"], 39);
    let sites: Vec<(String, i64, i64)> = a["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["site"].as_str().unwrap().to_string(),
                s["allowed"].as_i64().unwrap(),
                s["blocked"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sites,
        vec![
            ("www.bbc.co.uk".to_string(), 20, 0),
            ("www.roblox.com".to_string(), 0, 12),
            ("www.pornhub.com".to_string(), 0, 7),
        ]
    );
    let days = a["days"].as_array().unwrap();
    let per_day: i64 = days
        .iter()
        .map(|d| d["allowed"].as_i64().unwrap() + d["blocked"].as_i64().unwrap())
        .sum();
    assert_eq!(per_day, 39);
    let audit = kit.store.audit().recent(50).await.unwrap();
    let view = audit
        .iter()
        .find(|e| e.action == "activity.view" && e.subject == "ava.student")
        .expect("the view is audited");
    assert_eq!(view.actor, "dan.dsl");
    let details: Value = serde_json::from_str(&view.details).unwrap();
    assert_eq!(details["reason"], "concern raised by form tutor");
    assert_eq!(details["view"], "hourly");

    // The head of year (year 9) reaches ava but not ben (year 11); nobody reaches staff.
    let (hoy, _) = kit::signed_in(&kit, "hana.hoy").await;
    let ok = hoy
        .get(url("/api/v1/people/ava.student/activity"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for (client, person) in [(&hoy, kit::OTHER_STUDENT), (&dsl, "mr.teacher")] {
        let refused = client
            .get(url(&format!("/api/v1/people/{person}/activity")))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 404, "{person}");
    }
    let audited = kit::audit_actions(&kit.store).await;
    assert!(
        !audited
            .iter()
            .any(|(_, action, subject)| action == "activity.view" && subject == "mr.teacher"),
        "a refused view reads nothing and is not recorded as a view"
    );

    // The page: the chart and the sites table.
    let page = dsl
        .get(url("/people/ava.student/activity?kind=dns"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("<td>www.roblox.com</td>"), "{html}");
    assert!(html.contains("39 events"), "{html}");
}

#[tokio::test]
async fn bad_ranges_and_kinds_are_refused_with_the_reason() {
    let kit = kit::start().await;
    let (nm, _) = kit::signed_in(&kit, "nina.netman").await;
    for (query, says) in [
        ("from=yesterday", "from: \"yesterday\" is not a time"),
        ("from=2026-01-01&to=2025-01-01", "from must be before to"),
        ("from=2020-01-01&to=2026-01-01", "longer than 400 days"),
        ("kind=telepathy", "kind: \"telepathy\" is not one of"),
    ] {
        let got = nm
            .get(format!(
                "{}/api/v1/people/ava.student/activity?{query}",
                kit.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 400, "{query}");
        let body: Value = got.json().await.unwrap();
        let reason = body["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{query}: {reason}");
    }
}
