//! The acceptable-use declaration API (000 §14): a logon token (`sessions` scope) fetches
//! what a person has to accept and records the answer; a signed-in person answers only
//! for themselves; bad input is refused and records nothing; who has not accepted, with
//! a head of year limited to their years, and the CSV export.

use serde_json::{Value, json};

use crate::kit::{self, DECLARATION_PENDING};

async fn token(kit: &kit::Kit, scopes: &[&str]) -> String {
    let secret = hallpass_web::password::new_secret();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    kit.store
        .accounts()
        .create_token(
            &format!("t{}", scopes.join("-")),
            &hallpass_web::password::secret_hash(&secret),
            &scopes,
            "test",
            kit.clock.now(),
        )
        .await
        .unwrap();
    secret
}

#[tokio::test]
async fn a_logon_token_shows_the_declaration_and_records_the_answer() {
    let kit = kit::start().await;
    let secret = token(&kit, &["sessions"]).await;
    let c = kit::client();
    let url = |path: &str| format!("{}{path}", kit.base);

    let r = c
        .get(url(&format!(
            "/api/v1/declarations/pending?user=WCS%5C{DECLARATION_PENDING}"
        )))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pending: Value = r.json().await.unwrap();
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["document"], "wcs");
    assert_eq!(pending[0]["version"], "2023");
    assert!(pending[0]["text"].as_str().unwrap().contains("(14)"));

    // Bad input: each refused with its reason, and nothing recorded.
    let post = |body: String| {
        c.post(url("/api/v1/declarations"))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, status, reason) in [
        (
            json!({"user": "nobody", "document": "wcs", "version": "2023"}).to_string(),
            404,
            "nobody",
        ),
        (
            json!({"user": DECLARATION_PENDING, "document": "aup", "version": "1"}).to_string(),
            400,
            "no declaration in the policy",
        ),
        (
            json!({"user": DECLARATION_PENDING, "document": "wcs", "version": "2022"}).to_string(),
            400,
            "not the current version",
        ),
        (
            json!({"document": "wcs", "version": "2023"}).to_string(),
            400,
            "user: give the username",
        ),
        (
            json!({"user": DECLARATION_PENDING, "document": "wcs", "version": "2023", "ip": "a.b"})
                .to_string(),
            400,
            "not an IP address",
        ),
        (
            "{\"user\": \"ben.student\", \"document\": ".to_string(),
            400,
            "",
        ),
        (
            json!({"user": DECLARATION_PENDING, "document": "wcs", "version": "2023", "colour": 1})
                .to_string(),
            400,
            "colour",
        ),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["reason"].as_str().unwrap().contains(reason),
            "{body}: {v}"
        );
    }
    assert!(
        kit.store
            .declarations()
            .of_person(DECLARATION_PENDING)
            .await
            .unwrap()
            .is_empty(),
        "bad input recorded nothing"
    );

    let body = json!({"user": DECLARATION_PENDING, "document": "wcs", "version": "2023",
                      "workstation": "LAB1-PC04"})
    .to_string();
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    let r = post(body).await.unwrap();
    assert_eq!(r.status(), 200, "accepting again changes nothing");
    let again: Value = r.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let recorded = kit
        .store
        .declarations()
        .of_person(DECLARATION_PENDING)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].workstation.as_deref(), Some("LAB1-PC04"));
    assert_eq!(recorded[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(recorded[0].actor.starts_with("token:"), "{recorded:?}");
    let r = c
        .get(url(&format!(
            "/api/v1/declarations/pending?user={DECLARATION_PENDING}"
        )))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    assert!(
        kit::audit_actions(&kit.store)
            .await
            .iter()
            .filter(|(_, action, subject)| {
                action == "declaration.accept" && subject == DECLARATION_PENDING
            })
            .count()
            == 1
    );

    // A token for something else may not answer anyone's declaration.
    let reports = token(&kit, &["dashboard.view"]).await;
    let r = c
        .get(url("/api/v1/declarations/pending?user=ava.student"))
        .bearer_auth(&reports)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_person_answers_only_for_themselves() {
    let kit = kit::start().await;
    let hash =
        hallpass_web::password::hash_password(&kit::password_for(DECLARATION_PENDING)).unwrap();
    kit.store
        .accounts()
        .add(
            DECLARATION_PENDING,
            "student",
            &[],
            &hash,
            "test",
            kit.clock.now(),
        )
        .await
        .unwrap();
    let (c, csrf) = kit::signed_in(&kit, DECLARATION_PENDING).await;
    let url = |path: &str| format!("{}{path}", kit.base);
    let r = c
        .get(url("/api/v1/declarations/pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()[0]["document"], "wcs");
    let r = c
        .get(url("/api/v1/declarations/pending?user=ava.student"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(url("/api/v1/declarations"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"user": "ava.student", "document": "wcs", "version": "2023"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(url("/api/v1/declarations"))
        .json(&json!({"document": "wcs", "version": "2023"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "without the CSRF token");
    assert!(
        kit.store
            .declarations()
            .of_person(DECLARATION_PENDING)
            .await
            .unwrap()
            .is_empty()
    );
    let r = c
        .post(url("/api/v1/declarations"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"document": "wcs", "version": "2023"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let recorded = kit
        .store
        .declarations()
        .of_person(DECLARATION_PENDING)
        .await
        .unwrap();
    assert_eq!(recorded[0].actor, DECLARATION_PENDING);
}

#[tokio::test]
async fn who_has_not_accepted_by_year_with_an_export() {
    let kit = kit::start().await;
    let url = |path: &str| format!("{}{path}", kit.base);
    let (nm, _) = kit::signed_in(&kit, "nina.netman").await;
    let o: Value = nm
        .get(url("/api/v1/declarations/outstanding"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["declarations"][0]["version"], "2023");
    let people: Vec<&str> = o["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["username"].as_str().unwrap())
        .collect();
    assert_eq!(people, [DECLARATION_PENDING]);
    assert_eq!(o["by_year"], json!([{"year_group": "11", "people": 1}]));
    let filtered: Value = nm
        .get(url("/api/v1/declarations/outstanding?year=9"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["people"], json!([]));

    let csv = nm.get(url("/declarations.csv")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "username,display_name,role,year_group,form,groups,pending"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with(&format!("{DECLARATION_PENDING},")),
        "{csv}"
    );
    let page = nm
        .get(url("/declarations"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(DECLARATION_PENDING), "{page}");

    // The head of year (year 9) does not see a year 11 student.
    let (hoy, _) = kit::signed_in(&kit, "hana.hoy").await;
    let o: Value = hoy
        .get(url("/api/v1/declarations/outstanding"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["people"], json!([]));
}
