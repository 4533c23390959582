//! `hallpass ca init`: makes the school's inspection CA, which the web proxy uses to
//! look inside HTTPS for the categories `[proxy] inspect` names. The key stays in the
//! data directory (mode 0600); the certificate is what devices are given to trust.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// The CA certificate's file name in the CA directory: install it on managed devices.
pub const CA_CERT_FILE: &str = "proxy-ca.pem";
/// The CA key's file name in the CA directory: never leaves the server.
pub const CA_KEY_FILE: &str = "proxy-ca.key";

const INIT_HELP: &str = "What happens next:\n  \
1. Install DIR/proxy-ca.pem as a trusted root certificate on the school's managed devices \
(Group Policy, Intune, Jamf, Google Admin; see the README's \"Deploying the inspection CA\").\n  \
2. Turn inspection on for chosen categories in the configuration file:\n       \
[proxy]\n       inspect = [\"search_engines\"]\n       never_inspect = [\"counselling.example.org\"]\n  \
3. Restart `hallpass serve`.\n\n\
Banking, finance, health and government sites are never inspected. Devices without the \
certificate installed get certificate errors on inspected sites only.\n\n\
Example:\n  hallpass ca init --data-dir /var/lib/hallpass --school \"Example Academy\"";

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Make the school's certificate authority for HTTPS inspection by the web proxy.
    ///
    /// Writes DIR/proxy-ca.key (the private key, readable by this user only) and
    /// DIR/proxy-ca.pem (the certificate to install on managed devices). Refuses to
    /// replace an existing CA unless --force is given: every device trusting the old one
    /// would then have to be given the new certificate.
    #[command(after_help = INIT_HELP)]
    Init {
        /// The directory for the CA: the data directory `serve` uses (its CA is read from
        /// there, or from `[proxy] ca_dir`). Default ./hallpass-data.
        #[arg(long, value_name = "DIR", env = "HALLPASS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The school's name, shown in the certificate devices trust.
        #[arg(long, value_name = "NAME", default_value = "Hallpass school")]
        school: String,
        /// Replace an existing CA (devices must then be given the new certificate).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: CaCommand, clock: &hallpass_clock::Clock) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::Init {
            data_dir,
            school,
            force,
        } => {
            let dir = data_dir.unwrap_or_else(hallpass_store::default_data_dir);
            let cert = init(&dir, &school, force, clock.now())?;
            println!("CA key:         {}", dir.join(CA_KEY_FILE).display());
            println!("CA certificate: {}", cert.display());
            println!(
                "Install the certificate on managed devices, then set [proxy] inspect (see --help)."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a new CA into `dir` (created, private to this user); the certificate's path.
fn init(dir: &Path, school: &str, force: bool, now: jiff::Timestamp) -> anyhow::Result<PathBuf> {
    let school = school.trim();
    anyhow::ensure!(!school.is_empty(), "--school must not be empty");
    anyhow::ensure!(
        !school.chars().any(char::is_control),
        "--school must be one line of text"
    );
    let key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CA_CERT_FILE);
    if !force {
        for existing in [&key_path, &cert_path] {
            anyhow::ensure!(
                !existing.exists(),
                "{} exists: the school already has an inspection CA (give --force to \
                 replace it; every device must then be given the new certificate)",
                existing.display()
            );
        }
    }
    // Created private to this user (0700), as the data directory always is.
    hallpass_store::data_dir::secure(dir)?;
    let (cert, key) =
        hallpass_proxy::inspect::ca::generate(school, now).context("making the CA certificate")?;
    write_file(&key_path, key.as_bytes(), 0o600)?;
    write_file(&cert_path, cert.as_bytes(), 0o644)?;
    Ok(cert_path)
}

/// Replaces `path` with `bytes`, created with `mode` (an existing file's mode is set too).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The CA in `dir` (as `ca init` wrote it), for the web proxy.
pub fn load(dir: &Path) -> anyhow::Result<hallpass_proxy::inspect::SchoolCa> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "[proxy] inspect needs the school's CA: cannot read {} (make it with \
                 `hallpass ca init --data-dir {}`)",
                path.display(),
                dir.display()
            )
        })
    };
    let (cert, key) = (read(CA_CERT_FILE)?, read(CA_KEY_FILE)?);
    hallpass_proxy::inspect::SchoolCa::load(&cert, &key)
        .with_context(|| format!("the inspection CA in {}", dir.display()))
}
