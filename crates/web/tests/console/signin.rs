//! Sign-in, sessions, CSRF, limits, bad input and the headers every reply carries.

use std::time::Duration;

use crate::kit;

#[tokio::test]
async fn wrong_passwords_are_refused_audited_and_lock_the_account() {
    let kit = kit::start().await;
    let c = kit::client();
    let login = |password: &str| {
        c.post(format!("{}/api/v1/login", kit.base))
            .json(&serde_json::json!({ "username": "dan.dsl", "password": password }))
            .send()
    };
    let r = login("not-the-password").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "wrong username or password");
    let actions = kit::audit_actions(&kit.store).await;
    assert!(actions.contains(&("dan.dsl".into(), "signin.failure".into(), "dan.dsl".into())));

    for _ in 0..4 {
        assert_eq!(login("still-wrong").await.unwrap().status(), 401);
    }
    // Five failures: even the right password is refused now.
    let r = login(&kit::password_for("dan.dsl")).await.unwrap();
    assert_eq!(r.status(), 429);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["reason"].as_str().unwrap().contains("locked"), "{v}");
    // Past the window it opens again.
    kit.clock.advance(Duration::from_secs(16 * 60));
    let r = login(&kit::password_for("dan.dsl")).await.unwrap();
    assert_eq!(r.status(), 200);
    let actions = kit::audit_actions(&kit.store).await;
    assert!(actions.contains(&("dan.dsl".into(), "signin".into(), "dan.dsl".into())));
}

#[tokio::test]
async fn an_unknown_user_gets_the_same_answer_and_the_address_is_limited() {
    let kit = kit::start().await;
    let c = kit::client();
    for i in 0..20 {
        let r = c
            .post(format!("{}/api/v1/login", kit.base))
            .json(&serde_json::json!({ "username": format!("nobody{i}"), "password": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = c
        .post(format!("{}/api/v1/login", kit.base))
        .json(&serde_json::json!({ "username": "nina.netman", "password": kit::password_for("nina.netman") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the address made 20 failed attempts");
}

#[tokio::test]
async fn the_cookie_is_httponly_strict_and_sessions_expire() {
    let kit = kit::start().await;
    let c = kit::client();
    let r = c
        .post(format!("{}/api/v1/login", kit.base))
        .json(&serde_json::json!({ "username": "nina.netman", "password": kit::password_for("nina.netman") }))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
    let me = |c: &reqwest::Client| c.get(format!("{}/api/v1/me", kit.base)).send();
    let v: serde_json::Value = me(&c).await.unwrap().json().await.unwrap();
    assert_eq!(v["role"], "network_manager");
    assert_eq!(v["username"], "nina.netman");
    // Idle timeout (30 minutes).
    kit.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(me(&c).await.unwrap().status(), 200);
    kit.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(me(&c).await.unwrap().status(), 401);
    let actions = kit::audit_actions(&kit.store).await;
    assert!(actions.iter().any(|a| a.1 == "signout.timeout"));

    // Absolute timeout (10 hours), however busy.
    let (busy, _) = kit::signed_in(&kit, "nina.netman").await;
    let mut last = 200;
    for _ in 0..26 {
        kit.clock.advance(Duration::from_secs(25 * 60));
        last = me(&busy).await.unwrap().status().as_u16();
        if last != 200 {
            break;
        }
    }
    assert_eq!(last, 401);
}

#[tokio::test]
async fn state_changes_with_the_cookie_need_the_csrf_token() {
    let kit = kit::start().await;
    let (c, csrf) = kit::signed_in(&kit, "dora.dpo").await;
    let logout = format!("{}/api/v1/logout", kit.base);
    let r = c.post(&logout).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["reason"].as_str().unwrap().contains("CSRF"), "{v}");
    let r = c
        .post(&logout)
        .header("x-csrf-token", "0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The form field works too (the sign-out button of every page).
    let r = c
        .post(format!("{}/logout", kit.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf_token=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        c.get(format!("{}/api/v1/me", kit.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .post(&logout)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(format!("{}/api/v1/me", kit.base))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let actions = kit::audit_actions(&kit.store).await;
    assert!(actions.contains(&("dora.dpo".into(), "signout".into(), "dora.dpo".into())));
}

#[tokio::test]
async fn bad_input_gets_a_clear_400_and_changes_nothing() {
    let kit = kit::start().await;
    let c = kit::client();
    let login = format!("{}/api/v1/login", kit.base);
    let before = kit.store.audit().recent(1000).await.unwrap().len();
    let r = c
        .post(&login)
        .header("content-type", "application/json")
        .body("{\"username\": \"nina.netman\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_request");
    assert!(!v["reason"].as_str().unwrap().is_empty());
    let r = c
        .post(&login)
        .json(&serde_json::json!({ "username": "a", "password": "b", "extra": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("extra"));
    let big = "x".repeat(200 * 1024);
    let r = c
        .post(&login)
        .json(&serde_json::json!({ "username": big, "password": "b" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let after = kit.store.audit().recent(1000).await.unwrap().len();
    assert_eq!(before, after, "refused input wrote nothing");

    let (nm, _) = kit::signed_in(&kit, "nina.netman").await;
    for (path, needle) in [
        ("/api/v1/events?from=yesterday", "from"),
        ("/api/v1/events?page=0", "page"),
        ("/api/v1/events?ip=not-an-ip", "ip"),
        ("/api/v1/events?colour=red", "colour"),
        ("/api/v1/explain?group=nobody&target=x.com", "group"),
        ("/api/v1/explain?group=students", "target"),
        ("/api/v1/audit?limit=-1", "limit"),
    ] {
        let r = nm.get(format!("{}{path}", kit.base)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains(needle), "{path}: {text}");
    }
}

#[tokio::test]
async fn searching_a_persons_activity_is_audited_and_the_chain_verifies() {
    let kit = kit::start().await;
    let (dsl, _) = kit::signed_in(&kit, "dan.dsl").await;
    let page: serde_json::Value = dsl
        .get(format!(
            "{}/api/v1/events?person=ben.student&verdict=block",
            kit.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 9, "{page}");
    let actions = kit::audit_actions(&kit.store).await;
    assert!(actions.contains(&(
        "dan.dsl".into(),
        "activity.view".into(),
        "ben.student".into()
    )));
    let (dpo, _) = kit::signed_in(&kit, "dora.dpo").await;
    let audit: serde_json::Value = dpo
        .get(format!("{}/api/v1/audit?action=activity", kit.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["chain_ok"], true);
    assert_eq!(audit["entries"][0]["subject"], "ben.student");
    let html = dpo
        .get(format!("{}/audit", kit.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Chain verified"), "{html}");
}

#[tokio::test]
async fn pages_carry_security_headers_and_the_api_documents_itself() {
    let kit = kit::start().await;
    let c = kit::client();
    let r = c.get(format!("{}/login", kit.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script"), "no script at all");
    assert!(
        !html.contains("style="),
        "no inline style (the CSP forbids it)"
    );

    let doc: serde_json::Value = c
        .get(format!("{}/api/v1/openapi.json", kit.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/me",
        "/api/v1/dashboard",
        "/api/v1/events",
        "/api/v1/people",
        "/api/v1/people/{username}",
        "/api/v1/policy",
        "/api/v1/explain",
        "/api/v1/audit",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }

    // Explain and the policy page work in the browser without script.
    let (t, _) = kit::signed_in(&kit, "mr.teacher").await;
    let html = t
        .get(format!(
            "{}/policy?group=students&target=www.roblox.com&at=2026-12-01+10:00",
            kit.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"explained\""), "{html}");
    assert!(html.contains("BLOCK"), "{html}");
    assert!(html.contains("school-services"), "rules are listed");
}
