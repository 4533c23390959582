//! The accounts store behind the console (`store::accounts`), through the console where
//! it can be: a new password or a disabled account ends the sessions it had, refused
//! changes write nothing. Runs on SQLite here and on PostgreSQL from `tests/postgres.rs`.

use hallpass_store::StoreError;

use crate::kit;

#[tokio::test]
async fn a_new_password_or_a_disabled_account_ends_its_sessions() {
    let kit = kit::start().await;
    let accounts = kit.store.accounts();
    let listed = accounts.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|a| a.username.as_str()).collect();
    let mut sorted: Vec<&str> = kit::PEOPLE.iter().map(|p| p.0).collect();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "every account, by username");
    let hoy = listed.iter().find(|a| a.username == "hana.hoy").unwrap();
    assert_eq!(hoy.role, "head_of_year");
    assert_eq!(hoy.years, ["9"]);
    assert_eq!(hoy.display_name, "Hana Hoy");
    assert!(hoy.disabled.is_none());

    // Refused changes write nothing.
    let audit_before = kit::audit_actions(&kit.store).await.len();
    let hash = hallpass_web::password::hash_password("amber-lantern-31-flutes").unwrap();
    let now = kit.clock.now();
    let unknown = accounts
        .add("nobody", "teacher", &[], &hash, "test", now)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownUser(ref u)) if u == "nobody"),
        "{unknown:?}"
    );
    let taken = accounts
        .add("mr.teacher", "dsl", &[], &hash, "test", now)
        .await;
    assert!(matches!(taken, Err(StoreError::Invalid(_))), "{taken:?}");
    assert!(
        accounts
            .set_password("nobody", &hash, "test", now)
            .await
            .is_err()
    );
    assert!(accounts.disable("nobody", "test", now).await.is_err());
    let secret = hallpass_web::password::new_secret();
    let token_hash = hallpass_web::password::secret_hash(&secret);
    let scopes = ["audit.view".to_string()];
    accounts
        .create_token("audit", &token_hash, &scopes, "test", now)
        .await
        .unwrap();
    let again = accounts
        .create_token("audit", &token_hash, &scopes, "test", now)
        .await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    let token = accounts.token(&token_hash).await.unwrap().unwrap();
    assert_eq!(
        (token.name.as_str(), token.scopes.as_slice()),
        ("audit", &scopes[..])
    );
    assert_eq!(accounts.list().await.unwrap(), listed, "accounts unchanged");
    let audit_after = kit::audit_actions(&kit.store).await;
    assert_eq!(
        audit_after.len(),
        audit_before + 1,
        "only token.create: {audit_after:?}"
    );

    // A new password ends the open session; the old password no longer signs in.
    let (teacher, _) = kit::signed_in(&kit, "mr.teacher").await;
    let me = |c: &reqwest::Client| c.get(format!("{}/api/v1/me", kit.base)).send();
    assert_eq!(me(&teacher).await.unwrap().status(), 200);
    accounts
        .set_password("mr.teacher", &hash, "test", kit.clock.now())
        .await
        .unwrap();
    assert_eq!(me(&teacher).await.unwrap().status(), 401);
    let login = |user: &str, password: &str| {
        kit::client()
            .post(format!("{}/api/v1/login", kit.base))
            .json(&serde_json::json!({ "username": user, "password": password }))
            .send()
    };
    let old = login("mr.teacher", &kit::password_for("mr.teacher")).await;
    assert_eq!(old.unwrap().status(), 401);
    let new = login("mr.teacher", "amber-lantern-31-flutes").await;
    assert_eq!(new.unwrap().status(), 200);

    // Disabling ends the session too, and the right password is refused after it.
    let (student, _) = kit::signed_in(&kit, "ava.student").await;
    accounts
        .disable("ava.student", "test", kit.clock.now())
        .await
        .unwrap();
    assert_eq!(me(&student).await.unwrap().status(), 401);
    let r = login("ava.student", &kit::password_for("ava.student")).await;
    assert_eq!(r.unwrap().status(), 401);
    let ava = accounts.get("ava.student").await.unwrap().unwrap();
    assert!(ava.disabled.is_some());
    let actions = kit::audit_actions(&kit.store).await;
    for action in ["account.passwd", "account.disable", "token.create"] {
        assert!(
            actions.iter().any(|a| a.1 == action),
            "{action} not audited"
        );
    }
}
