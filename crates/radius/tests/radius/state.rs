use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hallpass_radius::{Client, Clients, Counters, DropReason, RecentRequests};

fn client(network: &str, secret: &str) -> Client {
    Client {
        network: network.parse().unwrap(),
        secret: secret.as_bytes().to_vec(),
    }
}

#[test]
fn the_most_specific_network_gives_the_secret() {
    let clients = Clients::new(vec![
        client("10.0.0.0/8", "wide"),
        client("10.1.2.0/24", "narrow"),
        client("::1/128", "six"),
    ]);
    let secret = |ip: &str| {
        clients
            .lookup(ip.parse::<IpAddr>().unwrap())
            .map(|c| String::from_utf8(c.secret.clone()).unwrap())
    };
    assert_eq!(secret("10.1.2.3").as_deref(), Some("narrow"));
    assert_eq!(secret("10.9.9.9").as_deref(), Some("wide"));
    assert_eq!(secret("::ffff:10.1.2.3").as_deref(), Some("narrow"));
    assert_eq!(secret("::1").as_deref(), Some("six"));
    assert_eq!(secret("192.0.2.1"), None);
    assert!(
        !format!("{clients:?}").contains("narrow"),
        "secrets are not printed"
    );
}

#[test]
fn a_retransmission_within_the_window_gets_the_same_response() {
    let start = hallpass_clock::Clock::manual().instant();
    let mut recent = RecentRequests::new(Duration::from_secs(30), 2);
    let nas: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let other_port: SocketAddr = "10.0.0.1:40001".parse().unwrap();
    let auth = [7u8; 16];
    recent.insert(nas, 1, auth, vec![5, 1, 0, 20], start);
    assert_eq!(
        recent.get(nas, 1, &auth, start + Duration::from_secs(29)),
        Some(&[5, 1, 0, 20][..])
    );
    // Same identifier, another authenticator or port: a new request.
    assert_eq!(recent.get(nas, 1, &[8u8; 16], start), None);
    assert_eq!(recent.get(other_port, 1, &auth, start), None);
    // After the window it is forgotten.
    assert_eq!(
        recent.get(nas, 1, &auth, start + Duration::from_secs(30)),
        None
    );
    assert!(recent.is_empty());
    // The capacity bounds it: the oldest goes first.
    for id in 0..3u8 {
        recent.insert(nas, id, auth, vec![id], start);
    }
    assert_eq!(recent.len(), 2);
    assert_eq!(recent.get(nas, 0, &auth, start), None);
    assert_eq!(recent.get(nas, 2, &auth, start), Some(&[2][..]));
}

#[test]
fn counters_render_every_reason() {
    let counters = Counters::default();
    counters.received();
    counters.received();
    counters.accepted();
    counters.dropped(DropReason::BadAuthenticator);
    let mut out = String::new();
    counters.render_prometheus(&mut out);
    assert!(
        out.contains("\nhallpass_radius_requests_total 2\n"),
        "{out}"
    );
    assert!(
        out.contains("\nhallpass_radius_accepted_total 1\n"),
        "{out}"
    );
    assert!(
        out.contains("\nhallpass_radius_dropped_total{reason=\"bad_authenticator\"} 1\n"),
        "{out}"
    );
    for why in DropReason::ALL {
        assert!(
            out.contains(&format!("reason=\"{}\"", why.as_str())),
            "{out}"
        );
    }
}
