//! Real client and server programs the acceptance tests drive (curl, radclient, swaks,
//! an SMTP sink...). Under CI a missing program fails the test that needs it; on a
//! developer's machine the test says loudly that it is skipped and how to install it.

use std::process::{Command, Stdio};

/// Whether this is a CI run (`CI` set to anything but empty, `false` or `0`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `program args...` runs and exits 0. When it does not: under CI, a panic
/// naming the Debian `package`; elsewhere, a loud SKIPPING line and `false`.
pub fn require(program: &str, args: &[&str], package: &str, suite: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    assert!(
        !is_ci(),
        "{program} not usable: CI must run {suite} (apt-get install {package})"
    );
    eprintln!("SKIPPING {suite}: {program} not usable (apt-get install {package})");
    false
}

/// A real SMTP server (Debian's python3-aiosmtpd) writing what it receives to a Maildir,
/// on loopback; killed when dropped.
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    pub maildir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    /// Whether the sink can run here (see [`require`]).
    pub fn available(suite: &str) -> bool {
        require(
            "/usr/bin/python3",
            &["-c", "import aiosmtpd"],
            "python3-aiosmtpd",
            suite,
        )
    }

    /// Starts the sink on `addr` (port 0: a free port), waiting until it accepts.
    pub fn start(
        addr: std::net::SocketAddr,
        maildir: &std::path::Path,
    ) -> anyhow::Result<SmtpSink> {
        use anyhow::Context as _;
        let addr = if addr.port() == 0 {
            std::net::TcpListener::bind(addr)?.local_addr()?
        } else {
            addr
        };
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(addr.to_string())
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 -m aiosmtpd")?;
        let sink = SmtpSink {
            addr,
            maildir: maildir.to_path_buf(),
            child,
        };
        let clock = hallpass_clock::Clock::system();
        let start = clock.instant();
        while std::net::TcpStream::connect(addr).is_err() {
            anyhow::ensure!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the SMTP sink did not listen on {addr} within 10 s"
            );
            hallpass_clock::sleep_thread(std::time::Duration::from_millis(50));
        }
        Ok(sink)
    }

    /// Every message received so far (raw text), in no particular order.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
