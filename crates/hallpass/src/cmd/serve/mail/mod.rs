//! The email filter as one of `serve`'s services: the `hallpass_mail` relay on its
//! listener, deciding with the snapshot's policy, knowing senders by the roster's email
//! addresses, recording every message as a `mail` event, and keeping held messages in
//! the store's quarantine, from where it delivers the ones the console releases (once
//! each). Off unless `[mail] listen` or `--smtp-listen` is given; then it needs a next hop.
//! The same decisions are offered to the MTA as a milter (`[mail] milter_listen`,
//! `--milter-listen`; Postfix `smtpd_milters`), where the MTA keeps the delivery and the
//! next hop only takes released messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use hallpass_clock::Clock;
use hallpass_engine::Engine;
use hallpass_mail::{
    Checked, Envelope, ForwardError, MailContext, MessageRecord, NextHop, Outcome, RelayConfig,
    Sender,
};
use hallpass_policy::Policy;
use hallpass_store::quarantine::ReleaseOutcome;
use hallpass_store::{Event, EventKind, EventWriter, Store};
use serde::Deserialize;
use tokio::net::TcpListener;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

mod journal;
pub(crate) mod roster;
use journal::Journal;
use roster::Roster;

/// How often the roster's email addresses are read again.
const ROSTER_REFRESH: Duration = Duration::from_secs(60);
/// How long the journal keeps a message unless `[mail] journal_days` says otherwise.
const DEFAULT_JOURNAL_DAYS: u32 = 365;
/// How often journal copies past their retention are dropped.
const JOURNAL_PURGE: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
/// How often released messages are looked for.
const RELEASE_POLL: Duration = Duration::from_secs(1);

/// `[mail]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    /// Where the school's MTA hands mail to Hallpass (SMTP; e.g. 127.0.0.1:10025).
    pub listen: Option<SocketAddr>,
    /// Where the school's MTA asks Hallpass about each message over the milter protocol
    /// (Postfix `smtpd_milters = inet:127.0.0.1:10027`). With or instead of `listen`.
    pub milter_listen: Option<SocketAddr>,
    /// Where accepted mail goes on (Postfix's re-injection listener, or a smarthost);
    /// with the milter only, where released messages go (a listener without milters).
    pub next_hop: Option<SocketAddr>,
    /// The name in the SMTP greeting. Default `hallpass`.
    pub hostname: Option<String>,
    /// Largest message accepted, in bytes. Default 25 MiB.
    pub max_message_bytes: Option<usize>,
    /// Most recipients of one message. Default 100.
    pub max_recipients: Option<usize>,
    /// Longest line, in bytes with its line ending. Default 1000 (RFC 5321).
    pub max_line_bytes: Option<usize>,
    /// Days a copy of every delivered message is kept in the store's mail journal
    /// (000 §3.3.1). Default 365; 0 keeps no journal.
    pub journal_days: Option<u32>,
    /// The certificate (PEM, server certificate first) STARTTLS offers; with `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// The MTA on this host writes the SASL login into the first `Received:` header
    /// (Postfix: `smtpd_sasl_authenticated_header = yes`): the person who logged in is
    /// the sender. Default false (the envelope sender's address names the person).
    pub authenticated_header: bool,
}

/// The mail service's resolved settings.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The SMTP relay's listener, if it runs.
    pub listen: Option<SocketAddr>,
    /// The milter's listener, if it runs.
    pub milter: Option<SocketAddr>,
    pub relay: RelayConfig,
    /// 0: no journal.
    pub journal_days: u32,
}

/// The command line's mail flags, each over its `[mail]` key.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailFlags {
    pub smtp_listen: Option<SocketAddr>,
    pub milter_listen: Option<SocketAddr>,
    pub next_hop: Option<SocketAddr>,
}

/// `--smtp-listen` over `[mail] listen`, `--milter-listen` over `[mail] milter_listen`,
/// `--smtp-next-hop` over `[mail] next_hop`: `None` when no listener is asked for; an
/// error when there is one but no next hop.
pub fn resolve(flags: MailFlags, section: &MailSection) -> anyhow::Result<Option<MailSettings>> {
    let listen = flags.smtp_listen.or(section.listen);
    let milter = flags.milter_listen.or(section.milter_listen);
    let Some(first) = listen.or(milter) else {
        return Ok(None);
    };
    let next_hop = flags.next_hop.or(section.next_hop).with_context(|| {
        if listen.is_some() {
            format!(
                "the mail filter on {first} needs a next hop to pass accepted mail to: give \
                 --smtp-next-hop ADDR:PORT or [mail] next_hop (e.g. Postfix's re-injection \
                 listener, 127.0.0.1:10026)"
            )
        } else {
            format!(
                "the mail milter on {first} needs a next hop for the messages the console \
                 releases from quarantine: give --smtp-next-hop ADDR:PORT or [mail] next_hop \
                 (a Postfix listener without milters, e.g. 127.0.0.1:10026)"
            )
        }
    })?;
    for own in [listen, milter].into_iter().flatten() {
        anyhow::ensure!(
            next_hop != own,
            "the mail filter's next hop {next_hop} is its own listener: mail would loop"
        );
    }
    // Port 0 asks the system for a free port each time: two of those never collide.
    anyhow::ensure!(
        listen.is_none() || listen != milter || first.port() == 0,
        "[mail] listen and milter_listen are both {first}: give each its own port"
    );
    let mut relay = RelayConfig::new(next_hop);
    relay.authenticated_header = section.authenticated_header;
    if let Some(h) = &section.hostname {
        relay.hostname = h.clone();
    }
    for (value, field, name) in [
        (
            section.max_message_bytes,
            &mut relay.max_message_bytes,
            "max_message_bytes",
        ),
        (
            section.max_recipients,
            &mut relay.max_recipients,
            "max_recipients",
        ),
        (
            section.max_line_bytes,
            &mut relay.max_line_bytes,
            "max_line_bytes",
        ),
    ] {
        if let Some(v) = value {
            anyhow::ensure!(v > 0, "[mail] {name} must be more than 0");
            *field = v;
        }
    }
    anyhow::ensure!(
        relay.max_line_bytes >= 80,
        "[mail] max_line_bytes must be at least 80 (RFC 5321 allows 1000)"
    );
    relay.tls = match (&section.tls_cert, &section.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path, what: &str| {
                std::fs::read(p).with_context(|| format!("[mail] {what}: reading {}", p.display()))
            };
            let tls =
                hallpass_mail::Tls::from_pem(&read(cert, "tls_cert")?, &read(key, "tls_key")?)
                    .with_context(|| {
                        format!(
                            "[mail] tls_cert {} and tls_key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
            Some(tls)
        }
        _ => anyhow::bail!(
            "[mail] tls_cert and tls_key go together: give both (PEM files) for STARTTLS, or neither"
        ),
    };
    Ok(Some(MailSettings {
        listen,
        milter,
        relay,
        journal_days: section.journal_days.unwrap_or(DEFAULT_JOURNAL_DAYS),
    }))
}

struct Context {
    engine: Arc<Engine>,
    roster: ArcSwap<Roster>,
    clock: Clock,
    writer: EventWriter,
    store: Store,
    /// Where delivered messages' copies go; `None` when `journal_days` is 0.
    journal: Option<Journal>,
    journal_days: u32,
    /// The console's sender blocks, read again every second.
    blocks: ArcSwap<Vec<hallpass_store::quarantine::SenderBlock>>,
}

impl MailContext for Context {
    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.engine.snapshot().policy)
    }

    fn identify(&self, sender: &str, login: Option<&str>, policy: &Policy) -> Sender {
        let roster = self.roster.load();
        let login = login.map(str::to_owned);
        let Some(entry) = roster.find(login.as_deref(), sender, policy) else {
            return Sender {
                login,
                ..Sender::default()
            };
        };
        let snapshot = self.engine.snapshot();
        let suspended = snapshot
            .live
            .email_sanction(&entry.username, self.clock.now())
            .map(|s| (s.document.clone(), s.clause.clone(), s.message.clone()));
        Sender {
            suspended,
            person: Some(entry.username.clone()),
            login,
            groups: entry.groups(policy),
        }
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    fn blocked_sender(&self, sender: &str) -> Option<String> {
        let sender = sender.trim().to_ascii_lowercase();
        let domain = hallpass_policy::address_domain(&sender).unwrap_or_default();
        let blocks = self.blocks.load();
        let block = blocks.iter().find(|b| {
            if b.sender.contains('@') {
                b.sender == sender
            } else {
                domain == b.sender || domain.ends_with(&format!(".{}", b.sender))
            }
        })?;
        Some(format!(
            "Sender blocked by ICT support: {} [sender block {}]",
            block.reason, block.id
        ))
    }

    fn record(&self, record: &MessageRecord<'_>) {
        self.writer.record(mail_event(record));
    }

    async fn quarantine(
        &self,
        envelope: &Envelope,
        sender: &Sender,
        checked: &Checked,
        message: &[u8],
    ) -> Result<(), String> {
        let d = &checked.decision;
        let detectors = checked.scan.detectors();
        let held = hallpass_store::quarantine::NewHeld {
            sender: &envelope.sender,
            recipients: &envelope.recipients,
            person: sender.person.as_deref(),
            rule: d.rule.as_deref(),
            document: d.document.as_deref(),
            clause: d.clause.as_deref(),
            reason: &d.message,
            detectors: &detectors,
            message,
        };
        self.store
            .quarantine()
            .hold(&held, self.clock.now())
            .await
            .map(|id| tracing::info!(id, sender = %envelope.sender, "mail: message held"))
            .map_err(|e| e.to_string())
    }

    async fn journal(
        &self,
        envelope: &Envelope,
        sender: &Sender,
        direction: hallpass_policy::Direction,
        message: &[u8],
    ) {
        self.keep_in_journal(envelope, sender.person.as_deref(), direction, message)
            .await;
    }
}

impl Context {
    async fn keep_in_journal(
        &self,
        envelope: &Envelope,
        person: Option<&str>,
        direction: hallpass_policy::Direction,
        message: &[u8],
    ) {
        let Some(journal) = &self.journal else { return };
        journal
            .keep(hallpass_store::quarantine::NewJournal {
                at: self.clock.now(),
                direction: direction.as_str(),
                sender: &envelope.sender,
                recipients: &envelope.recipients,
                person,
                message,
            })
            .await;
    }

    /// Drops journal copies past `[mail] journal_days`.
    async fn purge_journal(&self) -> anyhow::Result<()> {
        if self.journal_days == 0 {
            return Ok(());
        }
        let before =
            self.clock.now() - jiff::SignedDuration::from_hours(24 * i64::from(self.journal_days));
        let n = self.store.quarantine().purge_journal(before).await?;
        if n > 0 {
            tracing::info!(
                dropped = n,
                "mail: journal copies past their retention dropped"
            );
        }
        Ok(())
    }
}

/// Delivers what the console released, each message once: claimed (`releasing`) before
/// it is sent, marked `released` after the next hop took it, put back when it did not.
async fn deliver_releases(ctx: &Context, next_hop: &NextHop) -> anyhow::Result<()> {
    let quarantine = ctx.store.quarantine();
    for release in quarantine.claim_releases(20).await? {
        let envelope = Envelope {
            sender: release.sender,
            recipients: release.recipients,
        };
        let outcome = match next_hop.forward(&envelope, &release.message).await {
            Ok(()) => {
                tracing::info!(id = release.id, "mail: released message delivered");
                let policy = ctx.policy();
                let direction = policy
                    .mail()
                    .direction(&envelope.sender, &envelope.recipients);
                let person = ctx.identify(&envelope.sender, None, &policy).person;
                ctx.keep_in_journal(&envelope, person.as_deref(), direction, &release.message)
                    .await;
                ReleaseOutcome::Delivered
            }
            Err(ForwardError::Temporary(why)) => {
                tracing::warn!(id = release.id, error = %why, "mail: a released message was not delivered; trying again");
                ReleaseOutcome::Retry
            }
            Err(ForwardError::Permanent(code, why)) => {
                tracing::warn!(id = release.id, code, error = %why, "mail: the next hop refused a released message");
                ReleaseOutcome::Refused(format!("{code} {why}"))
            }
        };
        quarantine
            .finish_release(release.id, &outcome, ctx.clock.now())
            .await?;
    }
    Ok(())
}

/// The event for one message: metadata in the row, subject and body start as content.
fn mail_event(record: &MessageRecord<'_>) -> Event {
    let env = record.envelope;
    let first = env.recipients.first().map(String::as_str).unwrap_or("");
    let more = match env.recipients.len() {
        0 | 1 => String::new(),
        n => format!(" (+{})", n - 1),
    };
    let sender = if env.sender.is_empty() {
        "<>"
    } else {
        &env.sender
    };
    let mut event = Event::new(
        EventKind::Mail,
        record.at,
        format!("{sender} -> {first}{more}"),
    );
    event.person = record.sender.person.clone();
    event.client_ip = Some(record.client.ip());
    event.verdict = std::borrow::Cow::Borrowed(match record.outcome {
        Outcome::Delivered => "allow",
        Outcome::Rejected => hallpass_store::VERDICT_BLOCK,
        Outcome::Quarantined => "quarantine",
        Outcome::Deferred => "deferred",
    });
    event.bytes = i64::try_from(record.size).ok();
    let mut detail = serde_json::json!({
        "recipients": env.recipients.len(),
        "outcome": record.outcome.as_str(),
        "reply": record.reply.code,
    });
    if let Some(login) = &record.sender.login {
        detail["login"] = login.as_str().into();
    }
    if let Some(checked) = record.checked {
        let d = &checked.decision;
        event.rule = d.rule.clone();
        event.document = d.document.clone();
        event.clause = d.clause.clone();
        detail["direction"] = d.direction.as_str().into();
        detail["action"] = d.action.as_str().into();
        detail["detectors"] = checked.scan.detectors().into();
        detail["attachments"] = checked.scan.attachments.len().into();
        let subject = checked.scan.subject.as_deref().unwrap_or("");
        event.content = Some(format!(
            "Subject: {subject}\n\n{}",
            checked.scan.body_preview
        ));
    } else {
        detail["refused"] = record.reply.lines.join(" ").into();
    }
    event.set_detail(&detail);
    event
}

/// The mail relay's entry in `serve`'s table: `Ok(None)` unless configured.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let Some(mail) = settings.mail.clone() else {
            return Ok(None);
        };
        let listener = bind(mail.listen, "mail filter").await?;
        let milter_listener = bind(mail.milter, "mail milter").await?;
        let bound = listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let milter_bound = milter_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let (journal, journal_writer) = if mail.journal_days > 0 {
            let (journal, metrics, writer) = Journal::start(shared.store.clone());
            shared.metrics.register(metrics);
            (Some(journal), Some(writer))
        } else {
            (None, None)
        };
        let ctx = Arc::new(Context {
            engine: Arc::clone(&shared.engine),
            roster: ArcSwap::from_pointee(Roster::load(&shared.store).await?),
            clock: shared.clock.clone(),
            writer: shared.writer.clone(),
            store: shared.store.clone(),
            journal,
            journal_days: mail.journal_days,
            blocks: ArcSwap::from_pointee(
                shared
                    .store
                    .quarantine()
                    .sender_blocks()
                    .await
                    .context("reading the mail sender blocks")?,
            ),
        });
        let next_hop = mail.relay.next_hop;
        let tls = mail.relay.tls.is_some();
        let (store, stop) = (shared.store.clone(), shared.stop.clone());
        let run = async move {
            let refresher = {
                let (ctx, stop) = (Arc::clone(&ctx), stop.clone());
                async move {
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(ROSTER_REFRESH) => {}
                        }
                        match Roster::load(&store).await {
                            Ok(roster) => ctx.roster.store(Arc::new(roster)),
                            Err(error) => {
                                tracing::warn!(%error, "mail filter: roster not refreshed");
                            }
                        }
                    }
                }
            };
            let next_hop = Arc::new(NextHop::new(&mail.relay));
            let releaser = {
                let (ctx, next_hop, stop) = (Arc::clone(&ctx), Arc::clone(&next_hop), stop.clone());
                async move {
                    let mut purged: Option<jiff::Timestamp> = None;
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(RELEASE_POLL) => {}
                        }
                        if let Err(error) = deliver_releases(&ctx, &next_hop).await {
                            tracing::warn!(%error, "mail filter: releases not delivered");
                        }
                        match ctx.store.quarantine().sender_blocks().await {
                            Ok(blocks) => ctx.blocks.store(Arc::new(blocks)),
                            Err(error) => {
                                tracing::warn!(%error, "mail filter: sender blocks not refreshed");
                            }
                        }
                        let now = ctx.clock.now();
                        if purged.is_none_or(|at| now.duration_since(at) >= JOURNAL_PURGE) {
                            purged = Some(now);
                            if let Err(error) = ctx.purge_journal().await {
                                tracing::warn!(%error, "mail filter: journal not purged");
                            }
                        }
                    }
                }
            };
            let config = Arc::new(mail.relay);
            let rate = Arc::new(std::sync::Mutex::new(hallpass_mail::SendRate::new()));
            let relay = async {
                let Some(listener) = listener else {
                    return Ok(());
                };
                let (config, rate) = (config.clone(), rate.clone());
                hallpass_mail::serve(listener, config, next_hop, rate, ctx.clone(), stop.clone())
                    .await
                    .context("mail filter")
            };
            let milter = async {
                let Some(listener) = milter_listener else {
                    return Ok(());
                };
                hallpass_mail::serve_milter(
                    listener,
                    config.clone(),
                    rate.clone(),
                    ctx.clone(),
                    stop.clone(),
                )
                .await
                .context("mail milter")
            };
            let delivering = async {
                let (relayed, miltered, ()) = tokio::join!(relay, milter, releaser);
                let served = relayed.and(miltered);
                // Nothing more is delivered: the journal writes what it holds, then ends.
                if let Some(journal) = &ctx.journal {
                    journal.close();
                }
                served
            };
            let journal_writer = async move {
                if let Some(writer) = journal_writer {
                    writer.await;
                }
            };
            let (served, (), ()) = tokio::join!(delivering, refresher, journal_writer);
            served
        };
        let mut banner = Vec::new();
        if let Some(bound) = bound {
            banner.push(format!(
                "mail       smtp://{bound} (next hop {next_hop}{})",
                if tls { ", STARTTLS" } else { "" }
            ));
        }
        if let Some(bound) = milter_bound {
            banner.push(format!("milter     inet:{bound} (releases to {next_hop})"));
        }
        Ok(Some(Service {
            name: "mail",
            // The relay's first, then the milter's.
            addrs: bound.into_iter().chain(milter_bound).collect(),
            banner,
            run: Box::pin(run),
        }))
    })
}

async fn bind(addr: Option<SocketAddr>, what: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| anyhow::anyhow!("{what}: cannot listen on {addr}: {error}"))?;
    Ok(Some(listener))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn off_unless_a_listener_is_asked_for() {
        let section = MailSection {
            next_hop: Some(addr("127.0.0.1:10026")),
            ..MailSection::default()
        };
        assert!(resolve(MailFlags::default(), &section).unwrap().is_none());
    }

    #[test]
    fn flags_override_the_section_and_limits_apply() {
        let section = MailSection {
            listen: Some(addr("127.0.0.1:10025")),
            next_hop: Some(addr("127.0.0.1:10026")),
            max_recipients: Some(50),
            ..MailSection::default()
        };
        let flags = MailFlags {
            smtp_listen: Some(addr("127.0.0.1:2525")),
            ..MailFlags::default()
        };
        let m = resolve(flags, &section).unwrap().unwrap();
        assert_eq!(m.listen, Some(addr("127.0.0.1:2525")));
        assert_eq!(m.milter, None);
        assert_eq!(m.relay.next_hop, addr("127.0.0.1:10026"));
        assert_eq!(m.relay.max_recipients, 50);
        assert_eq!(m.relay.max_message_bytes, 25 << 20);
    }

    #[test]
    fn a_listener_needs_a_next_hop_that_is_not_itself() {
        let smtp = |listen: &str, next_hop: Option<&str>| MailFlags {
            smtp_listen: Some(addr(listen)),
            next_hop: next_hop.map(addr),
            ..MailFlags::default()
        };
        let err = resolve(smtp("127.0.0.1:10025", None), &MailSection::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs a next hop") && err.contains("--smtp-next-hop"),
            "{err}"
        );
        let err = resolve(
            smtp("127.0.0.1:10025", Some("127.0.0.1:10025")),
            &MailSection::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("would loop"), "{err}");
        let section = MailSection {
            max_line_bytes: Some(10),
            ..MailSection::default()
        };
        let err = resolve(smtp("127.0.0.1:1", Some("127.0.0.1:2")), &section)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_line_bytes must be at least 80"), "{err}");
    }

    #[test]
    fn the_milter_runs_alone_or_beside_the_relay_and_needs_a_next_hop_for_releases() {
        let section = MailSection {
            milter_listen: Some(addr("127.0.0.1:10027")),
            ..MailSection::default()
        };
        let err = resolve(MailFlags::default(), &section)
            .unwrap_err()
            .to_string();
        assert!(err.contains("releases from quarantine"), "{err}");
        let flags = MailFlags {
            next_hop: Some(addr("127.0.0.1:10026")),
            ..MailFlags::default()
        };
        let m = resolve(flags, &section).unwrap().unwrap();
        assert_eq!((m.listen, m.milter), (None, Some(addr("127.0.0.1:10027"))));
        let both = MailFlags {
            smtp_listen: Some(addr("127.0.0.1:10027")),
            ..flags
        };
        let err = resolve(both, &section).unwrap_err().to_string();
        assert!(err.contains("give each its own port"), "{err}");
        let looping = MailFlags {
            next_hop: Some(addr("127.0.0.1:10027")),
            ..MailFlags::default()
        };
        let err = resolve(looping, &section).unwrap_err().to_string();
        assert!(err.contains("would loop"), "{err}");
    }
}
