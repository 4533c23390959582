//! `hallpass account ...` and `hallpass token create`: console accounts and API tokens.
//! Passwords follow policy 000 §10.4 (see `hallpass_web::password`); tokens are printed
//! once, alone on the last line of stdout, and stored hashed.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use hallpass_web::password;
use hallpass_web::{Op, Role};

use crate::cmd::store::StoreArgs;

/// What each role sees, for `account add --help` (the matrix itself is
/// `hallpass_web::MATRIX`; "policy" includes the explain form unless noted).
const ROLES_HELP: &str = "Roles and what each sees in the console (\"own activity\": the person's \
own recorded requests):\n  \
network_manager  ICT support: dashboard, all activity, people, policy, audit log, own activity\n  \
dsl              safeguarding lead: dashboard, all activity, people, policy, own activity\n  \
head_of_year     dashboard; activity and people of their --year groups; policy, own activity\n  \
headteacher      dashboard, people, policy, audit log, own activity\n  \
dpo              data protection officer: the same as headteacher\n  \
teacher          dashboard, policy, own activity; never another person's activity\n  \
governor         aggregates only: the dashboard and the policy (no explain), never a person\n  \
student          own activity and the policy (no explain)\n\n\
Examples:\n  hallpass account add --user mr.teacher --role teacher\n  \
printf '%s\\n' \"$PW\" | hallpass account add --user ms.hoy --role head_of_year --year 9 --year 10 --password-stdin";

#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Give a person of the roster a console account with one role.
    ///
    /// The person must be in the roster first (`hallpass people import`). Without
    /// --password-stdin a password is generated and printed once, on the last line. A
    /// password needs 10 or more characters, or is a PIN of 6 or more digits without runs
    /// of consecutive or repeated digits (policy 000 §10.4); common passwords are refused
    /// with the reason. Nothing is changed when anything is refused.
    #[command(after_help = ROLES_HELP)]
    Add {
        /// The person's username in the roster (`hallpass people import` first).
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The console role: network_manager, dsl, head_of_year, headteacher, dpo,
        /// teacher, governor or student (what each sees is listed below).
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// A year group a head of year is responsible for: 1 to 13, or R (repeatable;
        /// required for head_of_year, refused for other roles).
        #[arg(long, value_name = "N")]
        year: Vec<String>,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (read from standard input); ends the account's sessions.
    ///
    /// The same password rules as `account add`. Everyone signed in as this account is
    /// signed out.
    #[command(
        after_help = "Example:\n  printf '%s\\n' \"$PW\" | hallpass account passwd --user ms.hoy --password-stdin"
    )]
    Passwd {
        /// The account's username.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line, where other users can see them).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List console accounts: username, role, a head of year's years, and whether the
    /// account is active or disabled (and since when).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: it can no longer sign in, and its sessions end.
    ///
    /// The account stays in the list (and in the audit log) as disabled; use this when
    /// someone leaves or changes job.
    #[command(after_help = "Example:\n  hallpass account disable --user ms.hoy")]
    Disable {
        /// The account's username.
        #[arg(long, value_name = "NAME")]
        user: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a machine; prints it once, alone on the last line.
    ///
    /// A script or another system sends it as `Authorization: Bearer TOKEN` to the
    /// console's REST API (/api/v1/...). Only its hash is stored: keep the printed token
    /// safe, it cannot be shown again. The token may do exactly what its scopes name.
    #[command(after_help = "Scopes (one per console operation):\n  \
dashboard.view   the dashboard: counts and charts, no person named\n  \
events.search    search everyone's recorded activity (GET /api/v1/events)\n  \
events.own       a person's own activity (for accounts: a token has none)\n  \
people.view      the roster, groups and logon sessions\n  \
policy.view      the live policy\n  \
policy.explain   what the policy decides for a person or group, and why\n  \
audit.view       the audit log and its chain check\n\n\
Example:\n  TOKEN=$(hallpass token create --name reports --scope dashboard.view | tail -n 1)\n  \
curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/v1/dashboard")]
    Create {
        /// A name for the token (unique), shown in the audit log.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// An operation the token may perform (repeatable, at least one).
        #[arg(long = "scope", value_name = "SCOPE", required = true, num_args = 1..)]
        scopes: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn actor() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".to_string())
}

fn read_password() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let line = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(!line.is_empty(), "no password on standard input");
    Ok(line)
}

/// Year groups as the roster writes them: 1 to 13, or R (reception).
fn check_years(role: Role, years: &[String]) -> anyhow::Result<Vec<String>> {
    if role != Role::HeadOfYear {
        anyhow::ensure!(
            years.is_empty(),
            "--year is only for the head_of_year role (not {role})"
        );
        return Ok(Vec::new());
    }
    anyhow::ensure!(
        !years.is_empty(),
        "the head_of_year role needs at least one --year N"
    );
    let mut out = Vec::new();
    for y in years {
        // Written as the roster writes it ("9", not "09" or " 9"), so the scope matches.
        let year = match y.as_str() {
            "R" | "r" => Some("R".to_string()),
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=13).contains(n))
                .map(|n| n.to_string()),
            _ => None,
        };
        let Some(year) = year else {
            anyhow::bail!("--year {y:?} is not a year group (1 to 13, or R)");
        };
        if !out.contains(&year) {
            out.push(year);
        }
    }
    Ok(out)
}

pub fn run_account(command: AccountCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountCommand::Add {
            user,
            role,
            year,
            password_stdin,
            store,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let years = check_years(role, &year)?;
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (password::generate_password(&user), true)
            };
            password::check_password(&password, &user)
                .map_err(|problem| anyhow::anyhow!("password refused: {problem}"))?;
            let hash = password::hash_password(&password)?;
            runtime()?.block_on(async {
                let store = store.connect().await?;
                let account = store
                    .accounts()
                    .add(&user, role.as_str(), &years, &hash, &actor(), jiff_now())
                    .await?;
                say!(
                    "added console account {} ({}) with role {}{}",
                    account.username,
                    account.display_name,
                    account.role,
                    if years.is_empty() {
                        String::new()
                    } else {
                        format!(" for years {}", years.join(", "))
                    }
                );
                if generated {
                    say!("password (shown once):");
                    say!("{password}");
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AccountCommand::Passwd {
            user,
            password_stdin: _,
            store,
        } => {
            let password = read_password()?;
            password::check_password(&password, &user)
                .map_err(|problem| anyhow::anyhow!("password refused: {problem}"))?;
            let hash = password::hash_password(&password)?;
            runtime()?.block_on(async {
                let store = store.connect().await?;
                store
                    .accounts()
                    .set_password(&user, &hash, &actor(), jiff_now())
                    .await?;
                say!("password changed for {user}; their sessions have ended");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AccountCommand::List { store } => {
            runtime()?.block_on(async {
                let store = store.connect().await?;
                let accounts = store.accounts().list().await?;
                say!(
                    "{:<20} {:<16} {:<8} {}",
                    "USERNAME",
                    "ROLE",
                    "YEARS",
                    "STATE"
                );
                for a in accounts {
                    let state = match a.disabled {
                        Some(at) => format!("disabled {at}"),
                        None => "active".to_string(),
                    };
                    say!(
                        "{:<20} {:<16} {:<8} {}",
                        a.username,
                        a.role,
                        a.years.join(","),
                        state
                    );
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AccountCommand::Disable { user, store } => {
            runtime()?.block_on(async {
                let store = store.connect().await?;
                store
                    .accounts()
                    .disable(&user, &actor(), jiff_now())
                    .await?;
                say!("disabled {user}; their sessions have ended");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            scopes,
            store,
        } => {
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 64 && !name.contains(char::is_whitespace),
                "--name {name:?}: 1 to 64 characters, no spaces"
            );
            for s in &scopes {
                anyhow::ensure!(
                    Op::from_name(s).is_some(),
                    "--scope {s:?} is not an operation (scopes: {})",
                    Op::names()
                );
            }
            let secret = password::new_secret();
            runtime()?.block_on(async {
                let store = store.connect().await?;
                store
                    .accounts()
                    .create_token(
                        &name,
                        &password::secret_hash(&secret),
                        &scopes,
                        &actor(),
                        jiff_now(),
                    )
                    .await?;
                say!(
                    "created token {name} with scopes {}; it is shown once:",
                    scopes.join(", ")
                );
                say!("{secret}");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn jiff_now() -> jiff::Timestamp {
    hallpass_clock::Clock::system().now()
}
