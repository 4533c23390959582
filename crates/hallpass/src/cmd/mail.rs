//! `hallpass mail check`: decide one message file as the mail filter would, without SMTP.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hallpass_mail::Checked;
use hallpass_policy::{CategoryVocab, GroupSet, Policy, PolicyDoc};

use crate::cmd::serve::mail::roster::Roster;

#[derive(Debug, clap::Subcommand)]
pub enum MailCommand {
    /// Decide one message (.eml) as the email filter would, and say why.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The message is parsed and checked as the relay does after DATA: every \
attachment by its real type (magic bytes), double extensions, ZIP archives opened one level \
(programs inside, password-protected entries), and personal data (National Insurance, NHS and \
unique pupil numbers, dates of birth beside names) in the subject and in what is readable in \
transit. The answer names the verdict (deliver, reject or quarantine), the mail rule, the \
document and clause it cites, its message, and the detectors that fired.\n\n\
The envelope sender is --from, else the message's From address; the recipients are --to, \
else its To and Cc addresses. The school's mail domains in the policy's [mail] table tell \
inbound from outbound. The sender's groups are --group; without it, the roster in the store \
(--database/--data-dir, when given) is searched for --login (a SASL login, as the filter reads \
it with [mail] authenticated_header: a username, an address, or username@ a school domain), \
then for the sender's email address.\n\n\
Examples:\n  \
hallpass mail check --policy examples/policies/wcs.toml message.eml\n  \
hallpass mail check --policy wcs.toml --group students --to friend@gmail.com --json message.eml"
)]
pub struct CheckArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A group the sender belongs to (repeat for several).
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
    /// Envelope sender (MAIL FROM). Default: the message's From address.
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// The SASL login the MTA passed on (with `[mail] authenticated_header`): the roster
    /// person it names is the sender.
    #[arg(long, value_name = "USER")]
    login: Option<String>,
    /// Envelope recipient (RCPT TO; repeat for several). Default: To and Cc.
    #[arg(long = "to", value_name = "ADDR")]
    to: Vec<String>,
    /// When: RFC 3339 or "YYYY-MM-DD HH:MM" in the school's time zone (for mail rules
    /// limited to periods). Default: now.
    #[arg(long, value_name = "DATETIME")]
    at: Option<String>,
    /// Print one JSON object instead of the explanation.
    #[arg(long)]
    json: bool,
    /// Where the roster is, when --group is not given.
    #[command(flatten)]
    store: crate::cmd::store::StoreArgs,
    /// The message file (RFC 5322, as saved by a mail client: .eml).
    #[arg(value_name = "MESSAGE.eml")]
    message: PathBuf,
}

pub fn run(command: MailCommand, clock: &hallpass_clock::Clock) -> anyhow::Result<ExitCode> {
    match command {
        MailCommand::Check(args) => check(args, clock),
    }
}

fn load_policy(args: &CheckArgs) -> anyhow::Result<Result<Policy, ExitCode>> {
    let text = std::fs::read_to_string(&args.policy)
        .with_context(|| format!("cannot read {}", args.policy.display()))?;
    let name = args.policy.display().to_string();
    match PolicyDoc::parse(&name, &text).and_then(|doc| doc.compile(&CategoryVocab::open())) {
        Ok((policy, _)) => Ok(Ok(policy)),
        Err(errors) => {
            for d in errors {
                tell!("{d}");
            }
            Ok(Err(ExitCode::from(1)))
        }
    }
}

/// The sender's person and groups: `--group`, else the roster (`--login`, then the
/// sender's address), as the relay finds them.
fn sender_groups(
    args: &CheckArgs,
    policy: &Policy,
    sender: &str,
) -> anyhow::Result<(Option<String>, GroupSet)> {
    if !args.groups.is_empty() {
        let mut set = GroupSet::EMPTY;
        for name in &args.groups {
            let id = policy.group_id(name).with_context(|| {
                format!(
                    "unknown group `{name}` (groups: {})",
                    policy.all_groups().collect::<Vec<_>>().join(", ")
                )
            })?;
            set.insert(id);
        }
        return Ok((None, set));
    }
    if args.store.database.is_none() && args.store.data_dir.is_none() {
        return Ok((None, GroupSet::EMPTY));
    }
    let location = args.store.location()?;
    let roster = crate::cmd::store::runtime()?.block_on(async {
        let store = location.connect().await?;
        Roster::load(&store).await
    })?;
    Ok(match roster.find(args.login.as_deref(), sender, policy) {
        Some(person) => (Some(person.username.clone()), person.groups(policy)),
        None => (None, GroupSet::EMPTY),
    })
}

fn check(args: CheckArgs, clock: &hallpass_clock::Clock) -> anyhow::Result<ExitCode> {
    let policy = match load_policy(&args)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let message = std::fs::read(&args.message)
        .with_context(|| format!("cannot read {}", args.message.display()))?;
    let sender = match &args.from {
        Some(f) => f.trim().to_ascii_lowercase(),
        None => hallpass_mail::header_addresses(&message, &["From"])
            .into_iter()
            .next()
            .unwrap_or_default(),
    };
    let recipients: Vec<String> = if args.to.is_empty() {
        hallpass_mail::header_addresses(&message, &["To", "Cc"])
    } else {
        args.to
            .iter()
            .map(|t| t.trim().to_ascii_lowercase())
            .collect()
    };
    anyhow::ensure!(
        !recipients.is_empty(),
        "{}: no recipient: give --to ADDR (the message has no To or Cc address)",
        args.message.display()
    );
    let (person, groups) = sender_groups(&args, &policy, &sender)?;
    let now = match &args.at {
        Some(text) => policy.parse_time(text)?,
        None => clock.now(),
    };
    let checked = hallpass_mail::check(&policy, &sender, &recipients, groups, &message, now);
    let report = Report {
        policy: &policy,
        sender: &sender,
        person: person.as_deref(),
        recipients: &recipients,
        groups,
        checked: &checked,
    };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print()?;
    }
    Ok(ExitCode::SUCCESS)
}

struct Report<'a> {
    policy: &'a Policy,
    sender: &'a str,
    person: Option<&'a str>,
    recipients: &'a [String],
    groups: GroupSet,
    checked: &'a Checked,
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let d = &self.checked.decision;
        let s = &self.checked.scan;
        let p = &s.personal_readable;
        serde_json::json!({
            "verdict": d.action.as_str(),
            "rule": d.rule,
            "document": d.document,
            "clause": d.clause,
            "message": d.message,
            "matched": d.matched,
            "direction": d.direction.as_str(),
            "sender": self.sender,
            "person": self.person,
            "recipients": self.recipients,
            "groups": self.policy.group_names(self.groups),
            "detectors": s.detectors(),
            "attachments": s.attachments,
            "personal_data": {
                "in_subject": s.personal_in_subject.total(),
                "readable": p.total(),
                "ni_numbers": p.ni_numbers,
                "nhs_numbers": p.nhs_numbers,
                "upns": p.upns,
                "dates_of_birth": p.dates_of_birth,
            },
            "parts": s.parts,
        })
    }

    fn print(&self) -> std::io::Result<()> {
        let d = &self.checked.decision;
        let s = &self.checked.scan;
        say!("{}", d.action.as_str().to_uppercase());
        say!(
            "  direction: {} ({} -> {})",
            d.direction.as_str(),
            if self.sender.is_empty() {
                "<>"
            } else {
                self.sender
            },
            self.recipients.join(", ")
        );
        let groups = self.policy.group_names(self.groups);
        say!(
            "  sender:    {}; groups: {}",
            self.person.unwrap_or("not on the roster"),
            if groups.is_empty() {
                "none".into()
            } else {
                groups.join(", ")
            }
        );
        match &d.rule {
            Some(rule) => say!("  rule:      {rule}"),
            None => say!("  rule:      none matched (delivered)"),
        }
        if let (Some(doc), Some(clause)) = (&d.document, &d.clause) {
            let title = self
                .policy
                .document(doc)
                .map_or(doc.as_str(), |x| x.title.as_str());
            say!("  cites:     {title} ({doc}), clause {clause}");
        }
        if !d.message.is_empty() {
            say!("  message:   {}", d.message);
        }
        if !d.matched.is_empty() {
            say!("  matched:   {}", d.matched.join("; "));
        }
        let detectors = s.detectors();
        say!(
            "  detectors: {}",
            if detectors.is_empty() {
                "none".into()
            } else {
                detectors.join(", ")
            }
        );
        for a in &s.attachments {
            say!(
                "  attachment: {} ({} bytes, real type {}{}{})",
                if a.name.is_empty() {
                    "(no name)"
                } else {
                    &a.name
                },
                a.bytes,
                a.real_type.unwrap_or("unknown"),
                if a.flags.is_empty() {
                    String::new()
                } else {
                    format!(", {}", a.flags.join(", "))
                },
                if a.encrypted { ", encrypted" } else { "" }
            );
        }
        let p = &s.personal_readable;
        say!(
            "  personal data: {} in the subject, {} readable (NI {}, NHS {}, UPN {}, dates of birth {})",
            s.personal_in_subject.total(),
            p.total(),
            p.ni_numbers,
            p.nhs_numbers,
            p.upns,
            p.dates_of_birth
        );
        Ok(())
    }
}
