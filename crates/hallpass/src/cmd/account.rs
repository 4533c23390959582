//! `hallpass account ...` and `hallpass token create`: console accounts and API tokens.
//! Passwords follow policy 000 §10.4 (see `hallpass_web::password`); tokens are printed
//! once, alone on the last line of stdout, and stored hashed.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use hallpass_web::password;
use hallpass_web::{Op, Role};

use crate::cmd::store::StoreArgs;

#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Give a person of the roster a console account with one role.
    ///
    /// Roles: network_manager, dsl, head_of_year (needs --year), headteacher, dpo,
    /// teacher, governor, student. Without --password-stdin a password is generated and
    /// printed once. Passwords need 10+ characters (or a PIN of 6+ digits without
    /// consecutive or repeated digits, policy 000 §10.4); common passwords are refused.
    #[command(
        after_help = "Examples:\n  hallpass account add --user mr.teacher --role teacher\n  \
printf '%s' \"$PW\" | hallpass account add --user ms.hoy --role head_of_year --year 9 --year 10 --password-stdin"
    )]
    Add {
        /// The person's username in the roster (`hallpass people import` first).
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The console role.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// A year group the head of year is responsible for (repeatable; head_of_year only).
        #[arg(long, value_name = "N")]
        year: Vec<String>,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (read from standard input); ends the account's sessions.
    Passwd {
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line, where other users can see them).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List console accounts: username, role, years, state.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: it can no longer sign in, and its sessions end.
    Disable {
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
    /// Scopes are operation names: dashboard.view, events.search, events.own,
    /// people.view, policy.view, policy.explain, audit.view. Send it as
    /// `Authorization: Bearer TOKEN`.
    #[command(
        after_help = "Example:\n  hallpass token create --name reports --scope dashboard.view --scope audit.view"
    )]
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
        let ok = y == "R" || y.parse::<u8>().is_ok_and(|n| (1..=13).contains(&n));
        anyhow::ensure!(ok, "--year {y:?} is not a year group (1 to 13, or R)");
        if !out.contains(y) {
            out.push(y.clone());
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
