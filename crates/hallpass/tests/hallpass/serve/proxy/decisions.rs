//! What the proxy decides, through the real `curl -x`: categories, URL entries, groups,
//! time, file types by content, unidentified clients and proxy sign-in; what it records.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn allowed_and_blocked_by_category_recorded_with_the_clause() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();

    let allowed = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/news?id=7"),
    )
    .await;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, HELLO),
        "{}",
        allowed.stderr
    );
    // The origin sees the URL's host and an origin-form request.
    let echoed = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/echo"),
    )
    .await;
    assert_eq!(echoed.body, format!("uri=/echo host=www.bbc.co.uk:{port}"));

    // A request body goes through (keep-alive, chunked upload), HEAD has no body.
    let upload = curl(
        proxy,
        STUDENT,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &"x".repeat(100_000),
        ],
        &format!("http://www.bbc.co.uk:{port}/upload"),
    )
    .await;
    assert_eq!(
        (upload.status, upload.body.as_str()),
        (200, "received 100000 bytes")
    );
    let head = curl(
        proxy,
        STUDENT,
        &["-I"],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!(head.status, 200, "{}", head.stderr);
    assert!(
        head.body
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}", HELLO.len())),
        "{}",
        head.body
    );

    let blocked = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://mail.gmail.com:{port}/inbox"),
    )
    .await;
    assert_eq!(blocked.status, 403);
    assert!(
        blocked.body.contains("<dd id=\"clause\">wcs 4.5.1</dd>"),
        "{}",
        blocked.body
    );
    assert!(blocked.body.contains("<dd id=\"categories\">webmail</dd>"));
    assert!(blocked.body.contains("<dd id=\"person\">ava.student</dd>"));
    assert!(!blocked.body.contains(HELLO));

    let row = recorded(&server, |r| r.target.ends_with("/news")).await;
    assert_eq!(
        row.target,
        format!("www.bbc.co.uk:{port}/news"),
        "no query in metadata"
    );
    assert_eq!(row.person.as_deref(), Some("ava.student"));
    assert_eq!(row.client_ip.as_deref(), Some(STUDENT));
    assert_eq!(row.verdict, "allow");
    assert_eq!(row.bytes, Some(HELLO.len() as i64));
    assert!(row.detail.contains("\"method\":\"GET\"") && row.detail.contains("\"status\":200"));
    assert_eq!(
        row.content.as_deref(),
        Some(format!("http://www.bbc.co.uk:{port}/news?id=7").as_str()),
        "the full URL is content"
    );
    let row = recorded(&server, |r| r.target.ends_with("/inbox")).await;
    assert_eq!(
        (
            row.verdict.as_str(),
            row.rule.as_deref(),
            row.clause.as_deref()
        ),
        ("block", Some("webmail"), Some("4.5.1"))
    );
    assert_eq!(row.categories, "webmail");
    assert!(row.detail.contains("\"status\":403"));
    assert_eq!(row.content, None, "no query: the target says it all");

    let (status, metrics) = server.admin_get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"allow\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("hallpass_proxy_requests_total{verdict=\"block\"} 1"));
    assert!(metrics.contains("hallpass_proxy_open_connections "));
    assert!(
        metrics.contains("hallpass_proxy_refused_total{category=\"webmail\"} 1"),
        "{metrics}"
    );
    // The DNS filter's per-category counts are the DNS filter's alone.
    assert!(
        !metrics.contains("hallpass_dns_blocked_total{category=\"webmail\"} 1"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn per_group_unidentified_and_renamed_executables() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();

    // Social media (wcs 8.1.1) for a student, not for marketing.
    let facebook = format!("http://www.facebook.com:{port}/");
    let student = curl(proxy, STUDENT, &[], &facebook).await;
    assert_eq!(student.status, 403);
    assert!(student.body.contains("wcs 8.1.1"));
    let marketing = curl(proxy, MARKETING, &[], &facebook).await;
    assert_eq!((marketing.status, marketing.body.as_str()), (200, HELLO));

    // Nobody logged on: the unidentified group's default (wcs 2.1).
    let nobody = curl(proxy, NOBODY, &[], &format!("http://www.bbc.co.uk:{port}/")).await;
    assert_eq!(nobody.status, 403);
    assert!(nobody.body.contains("not signed in"), "{}", nobody.body);
    assert!(nobody.body.contains("wcs 2.1"), "{}", nobody.body);
    let row = recorded(&server, |r| r.client_ip.as_deref() == Some(NOBODY)).await;
    assert_eq!((row.person, row.verdict.as_str()), (None, "block"));

    // An executable named .jpg and sent as image/jpeg: its first bytes give it away.
    let cat = format!("http://www.bbc.co.uk:{port}/cat.jpg");
    let student = curl(proxy, STUDENT, &[], &cat).await;
    assert_eq!(student.status, 403);
    assert!(
        student.body.contains("This download is blocked"),
        "{}",
        student.body
    );
    assert!(student.body.contains("wcs 4.3.4"));
    assert!(student.body.contains("<dd id=\"file-type\">exe"));
    let row = recorded(&server, |r| r.target.ends_with("/cat.jpg")).await;
    assert_eq!(row.rule.as_deref(), Some("software-downloads"));
    assert!(row.detail.contains("\"file_type\":\"exe"), "{}", row.detail);
    let teacher = curl(proxy, TEACHER, &[], &cat).await;
    assert_eq!(teacher.status, 200);
    assert_eq!(teacher.body_bytes, executable().len());
    assert!(teacher.body.starts_with("MZ"));
    // A real picture is a picture, and a student's .exe link is refused before fetching.
    let photo = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/photo.jpg"),
    )
    .await;
    assert_eq!(photo.status, 200);
    let setup = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/setup.exe"),
    )
    .await;
    assert_eq!(setup.status, 403);
    assert!(
        setup.body.contains("<dd id=\"file-type\">.exe</dd>"),
        "{}",
        setup.body
    );

    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_file_type_refused_total 2"),
        "{metrics}"
    );
    // Marketing's Facebook, the teacher's program, the photo; the download refused on its
    // first bytes counts as a block only.
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"allow\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"block\"} 4"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn url_entries_block_a_path_and_not_its_sibling() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            catalog: Some(catalog_with_a_url_entry(dir.path())),
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let listed = curl(
        proxy,
        TEACHER,
        &[],
        &format!("http://files.example.org:{port}/warez/game.zip"),
    )
    .await;
    assert_eq!(listed.status, 403);
    assert!(
        listed.body.contains("<dd id=\"categories\">warez</dd>"),
        "{}",
        listed.body
    );
    // The same after the origin's own normalisation: %77 is w, dot segments resolve.
    let disguised = curl(
        proxy,
        TEACHER,
        &["--path-as-is"],
        &format!("http://files.example.org:{port}/docs/../%77arez/game.zip"),
    )
    .await;
    assert_eq!(disguised.status, 403, "{}", disguised.body);
    let sibling = curl(
        proxy,
        TEACHER,
        &[],
        &format!("http://files.example.org:{port}/docs/manual.pdf"),
    )
    .await;
    assert_eq!((sibling.status, sibling.body.as_str()), (200, HELLO));
    let row = recorded(&server, |r| r.target.ends_with("/warez/game.zip")).await;
    assert_eq!(row.rule.as_deref(), Some("piracy"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_time_decides_as_for_dns() {
    if !have_curl() {
        return;
    }
    // Monday 23 November 2026, in term: 10:00 is a lesson, 12:50 lunchtime.
    let monday_at = |hh: i8, mm: i8| {
        jiff::civil::date(2026, 11, 23)
            .at(hh, mm, 0, 0)
            .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
            .unwrap()
            .timestamp()
    };
    let clock = hallpass_clock::Clock::manual_at(monday_at(10, 0));
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            clock: clock.clone(),
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let streaming = format!("http://www.deezer.com:{}/", origin.port());
    let lesson = curl(proxy, STUDENT, &[], &streaming).await;
    assert_eq!(lesson.status, 403);
    assert!(lesson.body.contains("wcs 4.3.7"), "{}", lesson.body);
    clock.set(monday_at(12, 50));
    let lunch = curl(proxy, STUDENT, &[], &streaming).await;
    assert_eq!((lunch.status, lunch.body.as_str()), (200, HELLO));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_carrying_a_program_is_a_program() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let tools = format!("http://www.bbc.co.uk:{port}/tools.zip");
    let student = curl(proxy, STUDENT, &[], &tools).await;
    assert_eq!(student.status, 403);
    assert!(
        student
            .body
            .contains("<dd id=\"file-type\">zip holding bin/setup.exe</dd>"),
        "{}",
        student.body
    );
    assert!(student.body.contains("wcs 4.3.4"));
    let teacher = curl(proxy, TEACHER, &[], &tools).await;
    assert_eq!(teacher.status, 200);
    let notes = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/notes.zip"),
    )
    .await;
    assert_eq!(notes.status, 200, "an archive of notes is not a program");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_authentication_identifies_people_on_shared_machines() {
    use hallpass_web::Role;
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            proxy_auth: true,
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let teacher = server.account_for(Role::Teacher).unwrap().clone();
    let student = server.account_for(Role::Student).unwrap().clone();
    let as_user = |account: &hallpass::testkit::TestAccount| {
        format!("{}:{}", account.username, account.password)
    };
    let cat = format!("http://www.bbc.co.uk:{port}/cat.jpg");

    // No session at this address and no credentials: the challenge.
    let asked = curl(proxy, NOBODY, &["-v"], &cat).await;
    assert_eq!(asked.status, 407);
    assert!(
        asked
            .stderr
            .to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"westminster city school web proxy\""),
        "{}",
        asked.stderr
    );
    // Wrong password: asked again.
    let wrong = format!("{}:not-the-password", teacher.username);
    let refused = curl(proxy, NOBODY, &["--proxy-user", &wrong], &cat).await;
    assert_eq!(refused.status, 407);

    // The teacher signs in on the shared machine: staff may download the program.
    let signed_in = curl(proxy, NOBODY, &["--proxy-user", &as_user(&teacher)], &cat).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    // The student on the same machine may not, and the record names her.
    let blocked = curl(proxy, NOBODY, &["--proxy-user", &as_user(&student)], &cat).await;
    assert_eq!(blocked.status, 403);
    assert!(
        blocked
            .body
            .contains(&format!("<dd id=\"person\">{}</dd>", student.username))
    );
    let row = recorded(&server, |r| {
        r.client_ip.as_deref() == Some(NOBODY) && r.verdict == "block"
    })
    .await;
    assert_eq!(row.person.as_deref(), Some(student.username.as_str()));
    // Tunnels ask too.
    let tunnel = curl(
        proxy,
        NOBODY,
        &["-p", "--proxy-user", &as_user(&teacher)],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!(
        (tunnel.status, tunnel.body.as_str()),
        (200, HELLO),
        "{}",
        tunnel.stderr
    );

    // A logged-on address needs no sign-in.
    let session = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!((session.status, session.body.as_str()), (200, HELLO));
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_auth_challenges_total 2"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}
