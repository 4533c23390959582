//! `hallpass people|session|audit|retention ...`: the commands that work on the store.
//! (Owned by the store work.) [`StoreArgs`] is the `--database`/`--data-dir` pair every
//! command that touches the store takes; other commands can flatten it in.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hallpass_clock::Clock;
use hallpass_store::{Retention, Store, people::parse_roster};

/// Where the Hallpass database is. Flatten into any command that touches the store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Database to use: `sqlite://PATH` (a file, created if missing; the audit key goes
    /// beside it) or `postgres://USER:PASSWORD@HOST/DATABASE` (a trust's shared server;
    /// the audit key stays in --data-dir). With SQLite, give this or --data-dir, not both.
    #[arg(long, value_name = "URL", env = "HALLPASS_DATABASE")]
    pub database: Option<String>,

    /// Data directory (default ./hallpass-data): the SQLite database DIR/hallpass.db and
    /// the audit key DIR/audit.key, created on first use, private to this user (0700,
    /// files 0600). Refused if other users can write it.
    #[arg(long, value_name = "DIR", env = "HALLPASS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The audit key file (default DIR/audit.key, created on first use). `audit verify`
    /// takes the copy kept off the machine here.
    #[arg(long, value_name = "FILE", env = "HALLPASS_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
}

/// Where a store's files are, after `--database`, `--data-dir` (or the configuration's
/// `database` and `data_dir`) are put together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// `None`: the SQLite database in `dir`.
    pub database: Option<String>,
    /// The data directory: the SQLite database (when `database` is none), the spill file
    /// and the audit key. For a `sqlite://` database, the database file's directory.
    pub dir: PathBuf,
    pub audit_key: PathBuf,
}

impl StoreLocation {
    /// Refuses a SQLite `database` together with a `data_dir` (two places for one store).
    pub fn resolve(
        database: Option<String>,
        data_dir: Option<PathBuf>,
        audit_key: Option<PathBuf>,
    ) -> anyhow::Result<StoreLocation> {
        let sqlite_file = database
            .as_deref()
            .and_then(hallpass_store::sqlite_path_of_url);
        let dir = match (&sqlite_file, data_dir) {
            (Some(_), Some(dir)) => anyhow::bail!(
                "both a SQLite database ({}) and a data directory ({}) were given: give one. \
                 The data directory alone keeps the database in DIR/hallpass.db; a \
                 sqlite:// database keeps its spill file and audit key beside it",
                hallpass_store::redact_url(database.as_deref().unwrap_or_default()),
                dir.display()
            ),
            (Some(file), None) => match file.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            },
            (None, Some(dir)) => dir,
            (None, None) => hallpass_store::default_data_dir(),
        };
        let audit_key =
            audit_key.unwrap_or_else(|| dir.join(hallpass_store::audit_key::DEFAULT_KEY_FILE));
        Ok(StoreLocation {
            database,
            dir,
            audit_key,
        })
    }

    /// The database URL.
    pub fn url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => hallpass_store::sqlite_url_for(&self.dir.join(hallpass_store::DEFAULT_DB_FILE)),
        }
    }

    /// Secures the data directory ([`hallpass_store::data_dir::secure`]), connects
    /// (running migrations) and anchors the audit log with the key file. Call it inside
    /// the tokio runtime that will use the store: the pool belongs to that runtime.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        let is_postgres = self
            .database
            .as_deref()
            .is_some_and(|url| hallpass_store::sqlite_path_of_url(url).is_none());
        // With PostgreSQL the directory holds only the audit key (and serve's spill
        // file): checked when it exists, and created 0700 with the key when first needed.
        if !is_postgres || self.dir.exists() {
            hallpass_store::data_dir::secure(&self.dir)?;
        }
        let store = match &self.database {
            Some(url) => Store::connect(url)
                .await
                .map_err(|error| explain_open_error(error.into(), &self.dir))?,
            None => Store::connect_data_dir(&self.dir).await.map_err(|error| {
                explain_open_error(
                    anyhow::Error::from(error).context(format!(
                        "opening the database in the data directory {}",
                        self.dir.display()
                    )),
                    &self.dir,
                )
            })?,
        };
        store.use_audit_key_file(self.audit_key.clone()).await;
        Ok(store)
    }
}

/// Adds what to fix to SQLite's "unable to open database file" and "readonly database".
pub fn explain_open_error(error: anyhow::Error, dir: &std::path::Path) -> anyhow::Error {
    let text = format!("{error:#}");
    if text.contains("unable to open database file")
        || text.contains("readonly database")
        || text.contains("Permission denied")
    {
        error.context(format!(
            "Hallpass (uid {}) cannot write the database: the data directory {} and every \
             file in it must belong to the user Hallpass runs as and be writable by it \
             (ls -ln {}; fix with chown -R and chmod 700)",
            hallpass_store::data_dir::current_uid(),
            dir.display(),
            dir.display()
        ))
    } else {
        error
    }
}

impl StoreArgs {
    pub fn location(&self) -> anyhow::Result<StoreLocation> {
        StoreLocation::resolve(
            self.database.clone(),
            self.data_dir.clone(),
            self.audit_key.clone(),
        )
    }

    /// The database URL these arguments select.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(self.location()?.url())
    }

    /// Connect (see [`StoreLocation::connect`]).
    pub async fn connect(&self) -> anyhow::Result<Store> {
        self.location()?.connect().await
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn default_actor() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".to_string())
}

#[derive(Debug, clap::Subcommand)]
pub enum PeopleCommand {
    /// Import or update people from a CSV export of the school's MIS.
    ///
    /// The first row is a header; columns may come in any order and extra columns are
    /// ignored. Required columns: username, display_name, role (e.g. student, staff),
    /// year_group, form, email, mis_id. Every person needs a username (no spaces, commas
    /// or control characters), display_name, role, email and a unique mis_id; a student
    /// needs a year_group (1 to 13, R or N); form may be empty. Optional: site (a school
    /// code, for trusts) and groups (group names separated by `;`, replacing the person's
    /// memberships).
    ///
    /// People are matched on username: new ones are added, changed ones updated, the rest
    /// left alone; nobody is deleted. Importing the same file twice changes nothing. The
    /// whole file is checked first: if any line is wrong, every problem is listed (line
    /// and column) and nothing is imported. Each import is recorded in the audit log.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Show what would be added and changed without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Who is importing, for the audit log.
        #[arg(long, default_value_t = default_actor())]
        actor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List everyone in the store with their role, year group, form and groups; people
    /// who have left (disabled by `hallpass directory sync`) end with `left TIME`.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Record that a person has logged on at an IP address (e.g. from a logon script).
    ///
    /// Filtering then applies that person's policy to traffic from the address. Any
    /// session already open at the address is ended. The username must have been imported
    /// with `hallpass people import`. Recorded in the audit log (who, for whom, where).
    Start {
        /// Username, as in the MIS import.
        #[arg(long = "user", value_name = "NAME")]
        user: String,
        /// The workstation's IP address.
        #[arg(long, value_name = "ADDR")]
        ip: IpAddr,
        /// The workstation's name, for reports.
        #[arg(long, value_name = "NAME")]
        workstation: Option<String>,
        /// Who is recording the logon, for the audit log.
        #[arg(long, default_value_t = default_actor())]
        actor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record a logoff: end the session at an IP address, or every session of a person.
    End {
        /// End the session open at this IP address.
        #[arg(
            long,
            value_name = "ADDR",
            conflicts_with = "user",
            required_unless_present = "user"
        )]
        ip: Option<IpAddr>,
        /// End every session this person has open (an unknown name is an error).
        #[arg(long = "user", value_name = "NAME")]
        user: Option<String>,
        /// Who is recording the logoff, for the audit log.
        #[arg(long, default_value_t = default_actor())]
        actor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List open sessions: IP address, person, role, year group, form and groups.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check that the audit log has not been tampered with.
    ///
    /// Every entry holds the hash of the one before it, so changing, deleting or
    /// reordering entries directly in the database breaks the chain; entries since the
    /// audit key was put in use are keyed with it (HMAC), so the chain cannot be
    /// recomputed without the key. Exits 0 when the log is intact, 1 naming the first bad
    /// entry and what happened (altered, removed, reordered, truncated), 2 on a malformed
    /// --head. With --head (`SEQ:HASH` printed earlier by `hallpass audit head`, or from
    /// the log or /metrics of `serve`, kept somewhere safe) it also proves the log still
    /// holds that entry unchanged: nothing was cut off the end or rewritten since. Give
    /// --audit-key the copy of the key kept off this machine to check against it.
    Verify {
        /// A head recorded earlier (`SEQ:HASH`, or a bare 64-digit HASH).
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the newest audit entry's number and hash, `SEQ:HASH`. Keep it elsewhere
    /// (e.g. email it to the DPO weekly) and use `audit verify --head SEQ:HASH` to prove
    /// nothing was cut off or rewritten.
    Head {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show the most recent audit entries.
    List {
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        last: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Delete what is older than its retention period, one data class at a time.
    ///
    /// Classes: decisions (blocks, warns and non-DNS events) per kind, allowed DNS
    /// queries (visits), content, ended logon sessions, the per-person hourly activity
    /// roll-up (what investigations read after the raw events are gone), the per-person
    /// daily traffic
    /// counts (anonymised into the school's totals when the events they count expire)
    /// and the writer's replay records. Deletes in batches so filtering keeps recording
    /// meanwhile, skips the data of anyone under a hold, prints what was deleted per
    /// class, and writes one audit entry. `hallpass serve` runs this daily. Content
    /// (search terms, message bodies, file names) is never kept longer than its event.
    Run {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Days to keep blocked and warned DNS queries.
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        dns_days: u64,
        /// Days to keep allowed DNS queries (visits).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        visits_days: u64,
        /// Days to keep the per-person hourly activity roll-up (counts per site and hour,
        /// no content).
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        activity_days: u64,
        /// Days to keep web events.
        #[arg(long, value_name = "DAYS", default_value_t = 180)]
        web_days: u64,
        /// Days to keep mail events.
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        mail_days: u64,
        /// Days to keep file-scan events.
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        file_days: u64,
        /// Days to keep logon events and ended logon sessions.
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        logon_days: u64,
        /// Days to keep content (search terms, message bodies, file names).
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        content_days: u64,
        /// Days to keep per-person daily traffic counts (default: as long as the events
        /// they count).
        #[arg(long, value_name = "DAYS")]
        traffic_person_days: Option<u64>,
        /// Days to keep the anonymous daily traffic totals (default: kept).
        #[arg(long, value_name = "DAYS")]
        traffic_totals_days: Option<u64>,
        /// Days to keep the event writer's replay records (default: the longest period).
        #[arg(long, value_name = "DAYS")]
        batches_days: Option<u64>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run_people(c: PeopleCommand, clock: &Clock) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match c {
            PeopleCommand::Import {
                file,
                dry_run,
                actor,
                store,
            } => {
                if file.is_dir() {
                    anyhow::bail!("{} is a directory, not a roster CSV file", file.display());
                }
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                let records = match parse_roster(std::io::BufReader::new(f)) {
                    Ok(r) => r,
                    Err(errors) => {
                        for e in &errors {
                            tell!("{}:{e}", file.display());
                        }
                        tell!(
                            "{} problem(s) in {}: nothing was imported",
                            errors.len(),
                            file.display()
                        );
                        return Ok(ExitCode::from(1));
                    }
                };
                let store = store.connect().await?;
                let source = file.display().to_string();
                let report = store
                    .people()
                    .import(&records, dry_run, &actor, &source, clock.now())
                    .await?;
                let verb = if dry_run { "would add" } else { "added" };
                for u in &report.added {
                    say!("{verb} {u}");
                }
                let verb = if dry_run { "would change" } else { "changed" };
                for (u, fields) in &report.changed {
                    say!("{verb} {u}: {}", fields.join(", "));
                }
                say!(
                    "{}{} added, {} changed, {} unchanged",
                    if dry_run { "dry run: " } else { "" },
                    report.added.len(),
                    report.changed.len(),
                    report.unchanged
                );
                Ok(ExitCode::SUCCESS)
            }
            PeopleCommand::List { store } => {
                let store = store.connect().await?;
                for p in store.people().list().await? {
                    // A leaver (disabled by `directory sync`) gets one more column.
                    let left = p.left_at.map(|t| format!("\tleft {t}")).unwrap_or_default();
                    say!(
                        "{}\t{}\t{}\t{}\t{}\t{}{left}",
                        p.username,
                        p.display_name,
                        p.role,
                        p.year_group.as_deref().unwrap_or("-"),
                        p.form.as_deref().unwrap_or("-"),
                        p.groups.join(";")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

pub fn run_session(c: SessionCommand, clock: &Clock) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let now = clock.now();
        match c {
            SessionCommand::Start {
                user,
                ip,
                workstation,
                actor,
                store,
            } => {
                let store = store.connect().await?;
                store
                    .sessions()
                    .start(&actor, &user, ip, workstation.as_deref(), now)
                    .await?;
                say!("session started: {user} at {ip}");
            }
            SessionCommand::End {
                ip,
                user,
                actor,
                store,
            } => {
                let store = store.connect().await?;
                let (n, who) = match (ip, user) {
                    (Some(ip), _) => (
                        store.sessions().end_by_ip(&actor, ip, now).await?,
                        ip.to_string(),
                    ),
                    (None, Some(u)) => (store.sessions().end(&actor, &u, now).await?, u),
                    (None, None) => anyhow::bail!("give --ip ADDR or --user NAME"),
                };
                say!("{n} session(s) ended for {who}");
            }
            SessionCommand::List { store } => {
                let store = store.connect().await?;
                let active = store.sessions().active().await?;
                for s in &active {
                    say!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        s.ip,
                        s.username,
                        s.role,
                        s.year_group.as_deref().unwrap_or("-"),
                        s.form.as_deref().unwrap_or("-"),
                        s.groups.join(";"),
                        s.workstation.as_deref().unwrap_or("-"),
                    );
                }
                tell!("{} open session(s)", active.len());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_audit(c: AuditCommand, _clock: &Clock) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match c {
            AuditCommand::Verify { head, store } => {
                // A malformed head is the caller's mistake: say so before opening anything.
                if let Some(head) = &head {
                    hallpass_store::AuditHead::parse(head)?;
                }
                let store = store.connect().await?;
                let report = store.audit().verify(head.as_deref()).await?;
                match &report.problem {
                    None => {
                        say!(
                            "audit log intact: {} entries, head {}:{}",
                            report.entries,
                            report.entries,
                            report.head
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Some(problem) => {
                        tell!("audit log FAILED verification: {problem}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            AuditCommand::Head { store } => {
                let store = store.connect().await?;
                match store.audit().head_entry().await? {
                    Some(head) => say!("{head}"),
                    None => {
                        tell!("the audit log is empty: there is no head yet");
                        return Ok(ExitCode::from(1));
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::List { last, store } => {
                let store = store.connect().await?;
                for e in store.audit().recent(last).await? {
                    say!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        e.seq,
                        e.at,
                        e.actor,
                        e.action,
                        e.subject,
                        e.details
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

pub fn run_retention(c: RetentionCommand, clock: &Clock) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Run {
        dry_run,
        dns_days,
        visits_days,
        activity_days,
        web_days,
        mail_days,
        file_days,
        logon_days,
        content_days,
        traffic_person_days,
        traffic_totals_days,
        batches_days,
        store,
    } = c;
    let days = |d: u64| Duration::from_secs(d.saturating_mul(86_400));
    let cfg = Retention {
        dns: days(dns_days),
        visits: days(visits_days),
        activity: days(activity_days),
        web: days(web_days),
        mail: days(mail_days),
        file: days(file_days),
        logon: days(logon_days),
        content: days(content_days),
        traffic_person: traffic_person_days.map(days),
        traffic_totals: traffic_totals_days.map(days),
        batches: batches_days.map(days),
    };
    runtime()?.block_on(async {
        let store = store.connect().await?;
        let now = clock.now();
        let counts = if dry_run {
            store.retention_dry_run(&cfg, now).await?
        } else {
            store.retention_run(&cfg, now).await?
        };
        let verb = if dry_run { "would delete" } else { "deleted" };
        for (kind, n) in &counts.events {
            say!("{verb} {n} {kind} event(s)");
        }
        say!(
            "{verb} {} dns visit(s) ({} allowed queries)",
            counts.visits,
            counts.visit_queries
        );
        say!("{verb} {} content record(s)", counts.content);
        say!("{verb} {} ended logon session(s)", counts.sessions);
        say!("{verb} {} hourly activity row(s)", counts.activity);
        let anonymise = if dry_run {
            "would anonymise"
        } else {
            "anonymised"
        };
        say!(
            "{anonymise} {} per-person daily traffic row(s)",
            counts.traffic_anonymised
        );
        say!("{verb} {} daily traffic row(s)", counts.traffic_deleted);
        say!("{verb} {} replay record(s)", counts.batches);
        for person in &counts.held {
            say!("kept the data of {person}: under a hold");
        }
        if let Some(seq) = counts.audit_seq {
            say!("audit entry {seq}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
