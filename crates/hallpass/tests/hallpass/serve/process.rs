//! `hallpass serve` as a real process: a taken port fails start-up naming the service
//! and address; SIGTERM stops every service, exits 0 and closes every port.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hallpass::testkit::dns::query_a;
use hallpass_clock::Clock;

fn serve(data_dir: &std::path::Path, dns: &str, admin: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hallpass"));
    command
        .args(["serve", "--dns-listen", dns, "--admin-listen", admin])
        .args(["--web-listen", "127.0.0.1:0"])
        .args(["--upstream", "127.0.0.1:9", "--data-dir"])
        .arg(data_dir)
        .env("HALLPASS_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// Waits (at most `limit`) for the child to exit.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let clock = Clock::system();
    let deadline = clock.instant() + limit;
    while clock.instant() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        hallpass_clock::sleep_thread(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_taken_admin_port_fails_start_up_naming_the_service_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = serve(dir.path(), "127.0.0.1:0", &addr.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("admin HTTP: cannot listen on {addr}"))
            && stderr.contains("in use"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("Hallpass is filtering"),
        "no banner, nothing served: {stdout}"
    );
}

#[test]
fn a_taken_dns_port_fails_start_up_naming_the_service_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = serve(dir.path(), &addr.to_string(), "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("DNS: cannot bind DNS UDP socket on {addr}")),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_every_service_exits_zero_and_closes_every_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(dir.path(), "127.0.0.1:0", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner names the bound addresses; its last line says how to stop.
    let mut dns: Option<SocketAddr> = None;
    let mut admin: Option<SocketAddr> = None;
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(addr) = line.trim().strip_prefix("DNS        udp+tcp ") {
            dns = Some(addr.parse().unwrap());
        }
        if let Some(rest) = line.trim().strip_prefix("admin      http://") {
            admin = Some(rest.split('/').next().unwrap().parse().unwrap());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    let (dns, admin) = (
        dns.expect("DNS address in the banner"),
        admin.expect("admin"),
    );

    let answer = query_a(dns, "127.0.0.1".parse().unwrap(), "gmail.com").unwrap();
    assert!(
        answer.cites("wcs 4.5.1"),
        "the demo school answers: {answer:?}"
    );
    let (status, body) = hallpass::testkit::http_get(admin, "/healthz").unwrap();
    assert_eq!(status, 200, "{body}");

    let clock = Clock::system();
    let sent = clock.instant();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_at_most(&mut child, Duration::from_secs(10));
    let Some(status) = status else {
        let _ = child.kill();
        panic!("serve did not stop within 10 s of SIGTERM");
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    let took = clock.instant() - sent;
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");

    // Every port is closed: nothing accepts, and each can be bound again.
    assert!(TcpStream::connect_timeout(&admin, Duration::from_secs(1)).is_err());
    assert!(TcpStream::connect_timeout(&dns, Duration::from_secs(1)).is_err());
    UdpSocket::bind(dns).expect("the DNS UDP port is free again");
    TcpListener::bind(admin).expect("the admin port is free again");
}

#[test]
fn no_web_leaves_the_console_off() {
    // The console's port is taken: were the console started, start-up would fail.
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let web = taken.local_addr().unwrap().to_string();
    let start = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hallpass"));
        command
            .args([
                "serve",
                "--dns-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(["--upstream", "127.0.0.1:9", "--web-listen", &web])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::null());
        command
    };
    let mut child = start(&["--no-web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Stop with") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains("Stop with"), "serve started: {banner}");
    assert!(
        !banner.contains("console:"),
        "no console in the banner: {banner}"
    );

    // Without --no-web the same taken port fails start-up, naming the console.
    let output = start(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("console"), "{stderr}");
}
