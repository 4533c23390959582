//! Every route x every role, against a table written out here independently of
//! `access::MATRIX`: changing one entry of the matrix fails this test.

use hallpass_web::Role;

use crate::kit;

/// Allowed per role, in the order: network_manager, dsl, head_of_year, headteacher, dpo,
/// teacher, governor, student.
const EXPECTED: &[(&str, [bool; 8])] = &[
    (
        "/api/v1/dashboard",
        [true, true, true, true, true, true, true, false],
    ),
    (
        "/api/v1/events",
        [true, true, true, false, false, false, false, false],
    ),
    (
        "/api/v1/events?person=ava.student",
        [true, true, true, false, false, false, false, false],
    ),
    (
        "/api/v1/me/events",
        [true, true, true, true, true, true, false, true],
    ),
    (
        "/api/v1/people",
        [true, true, true, true, true, false, false, false],
    ),
    (
        "/api/v1/people/ava.student",
        [true, true, true, true, true, false, false, false],
    ),
    (
        "/api/v1/people/ava.student/activity",
        [true, true, true, false, false, false, false, false],
    ),
    (
        "/api/v1/policy",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "/api/v1/explain?group=students&target=www.roblox.com",
        [true, true, true, true, true, true, false, false],
    ),
    (
        "/api/v1/audit",
        [true, false, false, true, true, false, false, false],
    ),
    (
        "/api/v1/me",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "/api/v1/requests",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "/api/v1/grants",
        [true, true, false, true, false, false, false, false],
    ),
    (
        "/api/v1/overrides",
        [true, false, true, false, false, true, false, false],
    ),
    (
        "/api/v1/sessions",
        [true, false, false, false, false, false, false, false],
    ),
    (
        "/api/v1/alerts",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/api/v1/sanctions",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/api/v1/incidents",
        [false, true, true, true, false, false, false, false],
    ),
    (
        "/api/v1/investigations",
        [false, true, false, true, false, false, false, false],
    ),
    (
        "/api/v1/overrides/rules",
        [true, false, true, false, false, true, false, false],
    ),
    (
        "/api/v1/declarations/pending",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "/api/v1/declarations/outstanding",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/api/v1/guests",
        [true, true, true, true, true, true, false, false],
    ),
    (
        "/api/v1/quarantine",
        [true, true, false, false, false, false, false, false],
    ),
    (
        "/api/v1/mail/blocks",
        [true, true, false, false, false, false, false, false],
    ),
    (
        "/dashboard",
        [true, true, true, true, true, true, true, false],
    ),
    (
        "/activity",
        [true, true, true, false, false, false, false, false],
    ),
    (
        "/my-activity",
        [true, true, true, true, true, true, false, true],
    ),
    (
        "/people",
        [true, true, true, true, true, false, false, false],
    ),
    (
        "/people/ava.student",
        [true, true, true, true, true, false, false, false],
    ),
    (
        "/people/ava.student/activity",
        [true, true, true, false, false, false, false, false],
    ),
    ("/policy", [true, true, true, true, true, true, true, true]),
    (
        "/audit",
        [true, false, false, true, true, false, false, false],
    ),
    (
        "/requests",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "/overrides",
        [true, false, true, false, false, true, false, false],
    ),
    (
        "/alerts",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/incidents",
        [false, true, true, true, false, false, false, false],
    ),
    (
        "/sanctions",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/investigations",
        [false, true, false, true, false, false, false, false],
    ),
    (
        "/sessions",
        [true, false, false, false, false, false, false, false],
    ),
    (
        "/declarations",
        [true, true, true, true, false, false, false, false],
    ),
    (
        "/guests",
        [true, true, true, true, true, true, false, false],
    ),
    (
        "/quarantine",
        [true, true, false, false, false, false, false, false],
    ),
    (
        "/declarations.csv",
        [true, true, true, true, false, false, false, false],
    ),
];

const ROLE_ORDER: [Role; 8] = [
    Role::NetworkManager,
    Role::Dsl,
    Role::HeadOfYear,
    Role::Headteacher,
    Role::Dpo,
    Role::Teacher,
    Role::Governor,
    Role::Student,
];

#[tokio::test]
async fn every_route_for_every_role_is_allowed_or_forbidden_as_the_matrix_says() {
    let kit = kit::start().await;
    let mut wrong = Vec::new();
    for (column, role) in ROLE_ORDER.iter().enumerate() {
        let (username, ..) = kit::PEOPLE.iter().find(|p| p.4 == *role).unwrap();
        let (client, _) = kit::signed_in(&kit, username).await;
        for (path, allowed) in EXPECTED {
            let r = client
                .get(format!("{}{path}", kit.base))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            let want = if allowed[column] { 200 } else { 403 };
            if status != want {
                wrong.push(format!(
                    "{role} GET {path}: {status}, expected {want}: {body:.200}"
                ));
            }
            // A forbidden API call says why, naming the role (checked when it was refused
            // as expected; a wrong status is collected above and reported together).
            if want == 403 && status == 403 && path.starts_with("/api/") {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"], "forbidden", "{body}");
                assert!(
                    v["reason"].as_str().unwrap().contains(role.as_str()),
                    "{body}"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn unauthenticated_calls_are_401_and_pages_send_you_to_sign_in() {
    let kit = kit::start().await;
    let c = kit::client();
    for (path, _) in EXPECTED {
        let r = c.get(format!("{}{path}", kit.base)).send().await.unwrap();
        if path.starts_with("/api/") {
            assert_eq!(r.status(), 401, "{path}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"], "unauthenticated");
        } else {
            assert_eq!(r.status(), 303, "{path}");
            assert_eq!(r.headers()["location"], "/login", "{path}");
        }
    }
}

#[tokio::test]
async fn tokens_get_exactly_their_scopes() {
    let kit = kit::start().await;
    let secret = hallpass_web::password::new_secret();
    kit.store
        .accounts()
        .create_token(
            "reports",
            &hallpass_web::password::secret_hash(&secret),
            &["dashboard.view".to_string()],
            "test",
            kit.clock.now(),
        )
        .await
        .unwrap();
    let c = kit::client();
    let get = |path: &str| {
        c.get(format!("{}{path}", kit.base))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(get("/api/v1/dashboard").await.unwrap().status(), 200);
    assert_eq!(get("/api/v1/events").await.unwrap().status(), 403);
    assert_eq!(get("/api/v1/audit").await.unwrap().status(), 403);
    let bad = c
        .get(format!("{}/api/v1/dashboard", kit.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn a_head_of_year_sees_only_their_years_and_governors_no_people() {
    let kit = kit::start().await;
    let (hoy, _) = kit::signed_in(&kit, "hana.hoy").await;
    let page: serde_json::Value = hoy
        .get(format!("{}/api/v1/events?verdict=block", kit.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["year_group"] == "9"), "{page}");
    let r = hoy
        .get(format!("{}/api/v1/people/{}", kit.base, kit::OTHER_STUDENT))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let people: serde_json::Value = hoy
        .get(format!("{}/api/v1/people", kit.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = people
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ava.student"]);

    let (governor, _) = kit::signed_in(&kit, "gus.governor").await;
    let dashboard = governor
        .get(format!("{}/api/v1/dashboard", kit.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("www.roblox.com"), "{dashboard}");
    // The kit recorded 31 blocked and 20 allowed queries in the last hour.
    let numbers: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!(numbers["queries_24h"], 51, "{numbers}");
    assert_eq!(numbers["blocked_24h"], 31, "{numbers}");
    assert_eq!(numbers["queries_7d"], 51, "{numbers}");
    assert_eq!(numbers["blocked_7d"], 31, "{numbers}");
    for (username, ..) in kit::PEOPLE {
        assert!(!dashboard.contains(username), "{username} in {dashboard}");
    }
    assert!(!dashboard.contains(kit::OTHER_STUDENT));

    // A student's own activity is theirs only.
    let (student, _) = kit::signed_in(&kit, "ava.student").await;
    let own: serde_json::Value = student
        .get(format!("{}/api/v1/me/events?person=ben.student", kit.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = own["events"].as_array().unwrap();
    assert!(!own.is_empty());
    assert!(own.iter().all(|e| e["person"] == "ava.student"));
}
