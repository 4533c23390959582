//! Guest codes for the captive portal: a teacher issues one on the console's page (the
//! code shown once) or the API; the code redeems to the guest; bad input changes nothing.

use serde_json::{Value, json};

use crate::kit;

#[tokio::test]
async fn a_teacher_issues_a_guest_code_that_redeems_to_the_guest() {
    let kit = kit::start().await;
    let url = |path: &str| format!("{}{path}", kit.base);
    let (teacher, csrf) = kit::signed_in(&kit, "mr.teacher").await;
    let page = teacher
        .post(url("/guests"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Dr Visitor"),
            ("hours", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let code = page
        .split("id=\"code\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no code shown: {page}"))
        .to_string();
    let hash = hallpass_web::password::secret_hash(&hallpass_web::password::normalise_guest_code(
        &code.to_lowercase(),
    ));
    let guest = kit
        .store
        .guests()
        .redeem(&hash, kit.clock.now())
        .await
        .unwrap()
        .expect("the code shown redeems");
    assert!(guest.starts_with("guest-"), "{guest}");
    let again = teacher
        .get(url("/guests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        again.contains(&guest) && !again.contains(&code),
        "listed, code not shown again"
    );

    // Bad input through the API: refused, nothing issued.
    for (body, reason) in [
        (json!({"name": "  "}), "name"),
        (json!({"name": "Dr Other", "hours": 0}), "hours"),
        (json!({"name": "Dr Other", "hours": 169}), "hours"),
        (json!({"name": "Dr Other", "colour": "red"}), "colour"),
    ] {
        let r = teacher
            .post(url("/api/v1/guests"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["reason"].as_str().unwrap().contains(reason),
            "{body}: {v}"
        );
    }
    assert_eq!(
        kit.store
            .guests()
            .valid(None, kit.clock.now())
            .await
            .unwrap()
            .len(),
        1
    );
    let (governor, csrf) = kit::signed_in(&kit, "gus.governor").await;
    let r = governor
        .post(url("/api/v1/guests"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Dr Visitor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
