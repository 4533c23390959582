use super::*;

#[test]
fn reads_a_full_file() {
    let text = r#"
version = 1
policy = "/etc/hallpass/policy.toml"
[dns]
listen = ["127.0.0.1:5300"]
upstreams = ["127.0.0.1:53", "[::1]:53"]
rate_limit_per_client = 200
[admin]
listen = "127.0.0.1:9153"
[events]
queue = 1000
queue_mib = 8
linger_ms = 5
[retention]
dns_days = 30
"#;
    let config = Config::parse("hallpass.toml", text).unwrap();
    assert_eq!(
        (
            config.events.queue,
            config.events.queue_mib,
            config.events.linger_ms
        ),
        (Some(1000), Some(8), Some(5))
    );
    assert_eq!(
        config.dns.listen,
        vec!["127.0.0.1:5300".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.dns.upstreams.len(), 2);
    assert_eq!(config.dns.rate_limit_per_client, Some(200));
    assert_eq!(config.retention.dns_days, Some(30));
    assert_eq!(
        config.policy.as_deref(),
        Some(Path::new("/etc/hallpass/policy.toml"))
    );
}

#[test]
fn sections_are_the_config_fields() {
    let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, field_names::<Config>());
    // A table's keys are its struct's fields, whatever they are called in Rust.
    let (_, mail) = SECTIONS.iter().find(|(n, _)| *n == "mail").unwrap();
    assert!(mail().contains(&"milter_listen"), "{:?}", mail());
    let (_, version) = SECTIONS.iter().find(|(n, _)| *n == "version").unwrap();
    assert!(version().is_empty());
}

#[test]
fn every_service_section_is_a_known_key() {
    let text = "version = 1\n[web]\nenabled = true\nlisten = \"127.0.0.1:8443\"\n\
                [portal]\nlisten = \"127.0.0.1:8081\"\n\
                [shared_credentials]\ngrace_seconds = 300\nclause = \"2.2\"\n\
                [notify]\nrelay = \"mail.school.example:25\"\nfrom = \"ict@school.example\"\n";
    let config = Config::parse("h.toml", text).unwrap();
    assert_eq!(config.web.enabled, Some(true));
    assert_eq!(config.shared_credentials.grace_seconds, Some(300));
    assert_eq!(
        config.notify.relay.as_deref(),
        Some("mail.school.example:25")
    );
    let errors = Config::parse("h.toml", "version = 1\n[notify]\nrelai = \"x\"\n")
        .unwrap_err()
        .0;
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("h.toml:3:1: unknown key `notify.relai`")),
        "{errors:?}"
    );
}

#[test]
fn reports_every_problem_with_its_position() {
    let text = "version = 1\ncolour = \"red\"\n[dns]\nlisten = [\"not an address\"]\nupstream = []\n[admin]\nlisten = 5\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("h.toml:2:1: unknown key `colour`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("h.toml:5:1: unknown key `dns.upstream`")),
        "{errors:?}"
    );
    assert_eq!(
        errors.len(),
        2,
        "value errors come after key errors: {errors:?}"
    );

    let text = "version = 1\n[dns]\nlisten = [\"not an address\"]\n[admin]\nlisten = 5\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        "h.toml:3:10: dns.listen: invalid socket address syntax"
    );
    assert!(
        errors[1].starts_with("h.toml:5:10: admin.listen: invalid type: integer `5`"),
        "{errors:?}"
    );
}

#[test]
fn the_proxy_section_is_read_and_checked() {
    let text = "version = 1\n[proxy]\nlisten = \"0.0.0.0:3128\"\nparent = \"filter.example:8080\"\n\
                connect_ports = [443, 8443]\nauth = true\nidle_timeout_s = 20\n";
    let config = Config::parse("h.toml", text).unwrap();
    assert_eq!(config.proxy.listen, Some("0.0.0.0:3128".parse().unwrap()));
    assert_eq!(config.proxy.parent.as_deref(), Some("filter.example:8080"));
    assert_eq!(config.proxy.connect_ports, Some(vec![443, 8443]));
    assert_eq!(
        (config.proxy.auth, config.proxy.idle_timeout_s),
        (Some(true), Some(20))
    );
    let text = "version = 1\n[proxy]\nconnect_ports = []\nmax_header_kib = 2\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("h.toml:3:17: proxy.connect_ports: is empty"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("h.toml:4:18: proxy.max_header_kib: 2 is out of range"),
        "{errors:?}"
    );
    let unknown = "version = 1\n[proxy]\nsecure = true\n";
    let errors = Config::parse("h.toml", unknown).unwrap_err().0;
    assert!(
        errors[0].starts_with("h.toml:3:1: unknown key `proxy.secure`"),
        "{errors:?}"
    );
}

#[test]
fn requires_the_version() {
    let errors = Config::parse("h.toml", "[dns]\n").unwrap_err().0;
    assert_eq!(
        errors,
        vec!["h.toml:1:1: missing `version = 1`".to_string()]
    );
    let errors = Config::parse("h.toml", "version = 7\n").unwrap_err().0;
    assert!(
        errors[0].starts_with("h.toml:1:11: version: this build reads"),
        "{errors:?}"
    );
}

#[test]
fn absurd_numbers_empty_lists_and_two_stores_are_refused_with_their_place() {
    let text = "version = 1\n[dns]\nlisten = []\nupstreams = []\n[events]\nqueue = 99999999999999\n\
                queue_mib = 0\nlinger_ms = 5000\n[retention]\ndns_days = 0\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(
        errors,
        vec![
            "h.toml:3:10: dns.listen: is empty: give at least one ADDR:PORT, or leave the key \
             out for 127.0.0.1:5300",
            "h.toml:4:13: dns.upstreams: is empty: give at least one resolver, or leave the \
             key out to use /etc/resolv.conf",
            "h.toml:6:9: events.queue: 99999999999999 is out of range: expected 1 to 4194304 \
             events",
            "h.toml:7:13: events.queue_mib: 0 is out of range: expected 1 to 4096 MiB",
            "h.toml:8:13: events.linger_ms: 5000 is out of range: expected 0 to 1000 \
             milliseconds",
            "h.toml:10:12: retention.dns_days: 0 is out of range: expected 1 to 36500 days",
        ]
    );
    let errors = Config::parse(
        "h.toml",
        "version = 1\ndata_dir = \"/var/lib/hallpass\"\ndatabase = \"sqlite:///srv/h.db\"\n",
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("h.toml:3:12: database: a sqlite:// database and data_dir are both given"),
        "{errors:?}"
    );
    // PostgreSQL with a data directory (for the spill file and the key) is fine.
    let config = Config::parse(
        "h.toml",
        "version = 1\ndata_dir = \"/var/lib/hallpass\"\ndatabase = \"postgres://h@db/h\"\n\
         [events]\nqueue = 4194304\nlinger_ms = 0\n",
    )
    .unwrap();
    assert_eq!(config.events.queue, Some(4_194_304));
}

#[test]
fn mail_section_is_read_and_checked() {
    let text = "version = 1\n[mail]\nlisten = \"127.0.0.1:10025\"\nmilter_listen = \"127.0.0.1:10027\"\nnext_hop = \"127.0.0.1:10026\"\n\
                max_recipients = 50\n";
    let config = Config::parse("h.toml", text).unwrap();
    assert_eq!(config.mail.listen, Some("127.0.0.1:10025".parse().unwrap()));
    assert_eq!(
        config.mail.milter_listen,
        Some("127.0.0.1:10027".parse().unwrap())
    );
    assert_eq!(config.mail.max_recipients, Some(50));
    let text = "version = 1\n[mail]\nrelay = \"x\"\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "h.toml:3:1: unknown key `mail.relay` (known: listen, milter_listen, next_hop"
        ),
        "{errors:?}"
    );
    let text = "version = 1\n[mail]\nlisten = \"localhost\"\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0],
        "h.toml:3:10: mail.listen: invalid socket address syntax"
    );
}

#[test]
fn radius_clients_need_secrets_and_a_listener_needs_a_client() {
    let text = "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n\
                [[radius.clients]]\nnetwork = \"10.20.0.0/16\"\nsecret = \"s3cret\"\n";
    let config = Config::parse("h.toml", text).unwrap();
    assert_eq!(config.radius.clients.len(), 1);
    assert_eq!(config.radius.clients[0].network.to_string(), "10.20.0.0/16");
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "the secret is not printed"
    );

    let text = "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n\
                [[radius.clients]]\nnetwork = \"10.20.0.0/16\"\nsecret = \"\"\n\
                [[radius.clients]]\nnetwork = \"10.300.0.0/16\"\nsecret = \"x\"\n";
    let errors = Config::parse("h.toml", text).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("h.toml:4:1: radius.clients: invalid"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("h.toml:6:10: radius.clients.secret: is empty"),
        "{errors:?}"
    );

    let errors = Config::parse(
        "h.toml",
        "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n",
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("h.toml:3:10: radius.listen: no [[radius.clients]]"),
        "{errors:?}"
    );
    let errors = Config::parse(
        "h.toml",
        "version = 1\n[[radius.clients]]\nnetwork = \"10.0.0.0/8\"\n",
    )
    .unwrap_err()
    .0;
    assert!(errors[0].contains("missing field `secret`"), "{errors:?}");
}

#[test]
fn syntax_errors_have_a_position() {
    let errors = Config::parse("h.toml", "version = 1\n[dns\n")
        .unwrap_err()
        .0;
    assert!(errors[0].starts_with("h.toml:2:"), "{errors:?}");
}
