//! The email filter with the console: abusive mail held, alerted, released once or
//! deleted from the Held mail page and API; senders blocked and unblocked by ICT support.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_mail_from_a_student_is_held_and_alerted() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];

    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "hey",
        "you f.u.c.k.i.n.g idiot, go fuck yourself",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0 Held for review"), "{r}");
    assert!(r.contains("abusive language"), "{r}");
    // The same words from a teacher are not the students' rule's business.
    let r = send(
        relay,
        "teacher@wcs.london",
        "head@wcs.london",
        "Quote",
        "He said: fuck off",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 1, "only the teacher's arrived: {arrived:?}");
    assert!(arrived[0].contains("Subject: Quote"));

    let events = mail_events(&server).await;
    assert!(
        events[0].starts_with("s.student|quarantine|mail-student-abusive-language|3.2.3|"),
        "{events:?}"
    );
    assert!(
        events[0].contains("language:offensive-language"),
        "{events:?}"
    );

    // The safeguarding follower raises a conduct alert for the head of year.
    let mut alerts = Vec::new();
    for _ in 0..200 {
        alerts = hallpass_store::testing::query_strings(
            &server.store,
            "SELECT person || '|' || kind || '|' || theme || '|' || severity || '|' || route \
             || '|' || coalesce(clause, '-') || '|' || summary FROM alerts",
        )
        .await
        .unwrap();
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].starts_with(
            "s.student|conduct|mail-student-abusive-language|3|head_of_year|3.2.3|s.student's email"
        ),
        "{alerts:?}"
    );
    assert!(alerts[0].contains("was held"), "{alerts:?}");

    // ICT support sees it held in the console (envelope and rule, not the words); a
    // teacher may not look.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    assert_eq!(teacher.get_json("/api/v1/quarantine").await.unwrap().0, 403);
    let ict = server.client_for(Role::NetworkManager).await.unwrap();
    let (status, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    assert_eq!(status, 200, "{listed}");
    let list = listed.as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    let item = &list[0];
    assert_eq!(item["sender"], "sam.student@wcs.london");
    assert_eq!(item["person"], "s.student");
    assert_eq!(item["rule"], "mail-student-abusive-language");
    assert_eq!(item["clause"], "3.2.3");
    assert_eq!(item["status"], "held");
    assert!(!listed.to_string().contains("idiot"), "{listed}");
    let page = ict
        .get("/quarantine")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("mail-student-abusive-language") && !page.contains("idiot"));
    let id = item["id"].as_i64().unwrap();

    // A release needs a reason; then the message is delivered, once.
    let (status, _) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        " ",
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        "Spoke to Sam; a quote from a book",
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("release")),
        "{body}"
    );
    let (status, body) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        "again",
    )
    .await;
    assert_eq!(status, 400, "released once only: {body}");
    let mut arrived = Vec::new();
    for _ in 0..100 {
        arrived = sink.messages();
        if arrived.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        arrived.iter().any(|m| m.contains("Subject: hey")),
        "{arrived:?}"
    );
    // Seconds later it has still arrived only once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.messages().len(), 2);
    let released = server.store.quarantine().get(id).await.unwrap();
    assert_eq!(released.status, "released");
    // The released message is journaled like any delivered one.
    let journaled = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT direction || '|' || sender FROM mail_journal WHERE sender LIKE 'sam.%'",
    )
    .await
    .unwrap();
    assert_eq!(journaled, ["internal|sam.student@wcs.london"]);

    // A second held message is deleted, with a reason; its bytes are gone.
    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "again",
        "fuck off",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0"), "{r}");
    let (_, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    let id2 = listed[0]["id"].as_i64().unwrap();
    assert_ne!(id2, id);
    let (status, body) = decide(
        &ict,
        "DELETE",
        &format!("/api/v1/quarantine/{id2}"),
        "Dealt with by head of year",
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("deleted")),
        "{body}"
    );
    let bytes = hallpass_store::testing::query_strings(
        &server.store,
        &format!("SELECT CAST(length(message) AS TEXT) FROM mail_quarantine WHERE id = {id2}"),
    )
    .await
    .unwrap();
    assert_eq!(bytes, ["0"]);
    // A third, deleted with the page's form.
    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "third",
        "shit",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0"), "{r}");
    let (_, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    let id3 = listed[0]["id"].as_i64().unwrap();
    let r = ict
        .post(&format!("/quarantine/{id3}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("decision=delete&reason=Rude%2C+not+abusive")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("Message {id3} deleted.")), "{page}");
    assert_eq!(
        server.store.quarantine().get(id3).await.unwrap().status,
        "deleted"
    );
    let (_, waiting) = ict.get_json("/api/v1/quarantine").await.unwrap();
    assert_eq!(waiting, serde_json::json!([]));
    let audit = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT action || '|' || subject FROM audit_log WHERE action LIKE 'mail.quarantine.%' ORDER BY seq",
    )
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            format!("mail.quarantine.release|quarantine:{id}"),
            format!("mail.quarantine.delete|quarantine:{id2}"),
            format!("mail.quarantine.delete|quarantine:{id3}")
        ]
    );
    server.stop().await.unwrap();
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ict_support_blocks_and_unblocks_a_sender_from_the_console() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let ict = server.client_for(Role::NetworkManager).await.unwrap();
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let post_block = |client: &hallpass::testkit::console::ConsoleClient, sender: &str| {
        client
            .post("/api/v1/mail/blocks")
            .header("content-type", "application/json")
            .body(
                serde_json::json!({ "sender": sender, "reason": "Phishing a parent" }).to_string(),
            )
            .send()
    };
    assert_eq!(
        post_block(&teacher, "pest.example")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let r = post_block(&ict, "wcs.london").await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the school's own domain");
    let r = post_block(&ict, "Annoying.Example").await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let block: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(block["sender"], "annoying.example");
    let id = block["id"].as_i64().unwrap();
    let r = post_block(&ict, "annoying.example").await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "blocked once");

    // The relay reads the blocks every second: a subdomain's sender is refused.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(
        relay,
        "win@prizes.annoying.example",
        "office@wcs.london",
        "You won",
        "Click",
    )
    .await;
    assert!(
        r.starts_with("<** 550 5.7.1 Sender blocked by ICT support: Phishing a parent"),
        "{r}"
    );
    assert!(r.contains(&format!("[sender block {id}]")), "{r}");
    assert!(sink.messages().is_empty());

    // Lifted with a reason: delivered again.
    let (status, _) = decide(
        &ict,
        "DELETE",
        &format!("/api/v1/mail/blocks/{id}"),
        "Sorted out",
    )
    .await;
    assert_eq!(status, 204);
    let (_, blocks) = ict.get_json("/api/v1/mail/blocks").await.unwrap();
    assert_eq!(blocks, serde_json::json!([]));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(
        relay,
        "win@prizes.annoying.example",
        "office@wcs.london",
        "Sorry",
        "Hi",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    let audit = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT action || '|' || subject FROM audit_log WHERE action LIKE 'mail.block.%' ORDER BY seq",
    )
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            "mail.block.add|annoying.example",
            "mail.block.remove|annoying.example"
        ]
    );

    // The same from the console page's forms.
    let form = |path: &str, body: &str| {
        ict.post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
    };
    let r = form(
        "/quarantine/blocks",
        "sender=offers%40bulk.example&reason=Junk",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("offers@bulk.example is blocked."), "{page}");
    let (_, blocks) = ict.get_json("/api/v1/mail/blocks").await.unwrap();
    let id = blocks[0]["id"].as_i64().unwrap();
    let r = form(
        &format!("/quarantine/blocks/{id}/remove"),
        "reason=Wrong+address",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(&format!("Block {id} lifted."))
    );
    let r = form("/quarantine/blocks", "sender=wcs.london&reason=x")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    server.stop().await.unwrap();
    drop(sink);
}
