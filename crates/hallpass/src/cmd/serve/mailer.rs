//! The `mailer` follower: sends the notification emails waiting in the store's outbox
//! (an access request's outcome today; alerts to the DSL next) through the school's SMTP
//! relay, `[notify] relay`. A message leaves the outbox only when the relay accepted it;
//! a refusal or an unreachable relay is retried with a growing delay, so nothing is lost
//! while the relay is down. Off (and nothing queued) unless a relay is configured.

use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// `[notify]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySection {
    /// The school's SMTP relay, `HOST:PORT` (e.g. `mail.school.example:25`). Without it no
    /// notification email is queued or sent.
    pub relay: Option<String>,
    /// The sender address of notifications (default `hallpass@` and the host name).
    pub from: Option<String>,
    /// Use STARTTLS with the relay (required, verified against the system's roots).
    pub starttls: Option<bool>,
}

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Messages sent per look.
const BATCH: i64 = 20;

impl NotifySection {
    /// Whether notifications are on (a relay is named).
    pub fn enabled(&self) -> bool {
        self.relay.as_deref().is_some_and(|r| !r.trim().is_empty())
    }
}

/// The relay's host and port from `HOST:PORT` (port 25 when absent).
pub fn parse_relay(text: &str) -> anyhow::Result<(String, u16)> {
    let text = text.trim();
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
            let port = port.parse::<u16>().with_context(|| {
                format!("[notify] relay {text:?}: the port {port:?} is not a number 1-65535")
            })?;
            (host.trim_start_matches('[').trim_end_matches(']'), port)
        }
        _ => (text, 25),
    };
    anyhow::ensure!(
        !host.is_empty() && port != 0,
        "[notify] relay {text:?}: give HOST:PORT, e.g. mail.school.example:25"
    );
    Ok((host.to_string(), port))
}

pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let section = settings.config.notify.clone();
    let shared = shared.clone();
    Box::pin(async move {
        let Some(relay) = section.relay.as_deref().filter(|_| section.enabled()) else {
            return Ok(None);
        };
        let (host, port) = parse_relay(relay)?;
        let from: Mailbox = section
            .from
            .clone()
            .unwrap_or_else(|| "hallpass@localhost".to_string())
            .parse()
            .with_context(|| format!("[notify] from {:?} is not an email address", section.from))?;
        let tls = if section.starttls.unwrap_or(false) {
            Tls::Required(TlsParameters::new(host.clone()).context("[notify] starttls")?)
        } else {
            Tls::None
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let mut service = Service::follower("mailer", async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shared.stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                if let Err(error) = send_due(&shared, &transport, &from).await {
                    tracing::warn!("could not read the outbox (tried again shortly): {error:#}");
                }
            }
        });
        service
            .banner
            .push(format!("notification mail: via {host}:{port}"));
        Ok(Some(service))
    })
}

/// Sends what is due; each message is marked sent only after the relay accepted it.
async fn send_due(
    shared: &Shared,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> anyhow::Result<()> {
    let outbox = shared.store.outbox();
    for message in outbox.due(shared.clock.now(), BATCH).await? {
        let email = build(
            from,
            &message.recipient,
            &message.subject,
            &message.body,
            shared.clock.now(),
        );
        let sent = match email {
            Ok(email) => transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        let now = shared.clock.now();
        match sent {
            Ok(()) => {
                outbox.sent(message.id, now).await?;
                tracing::info!(
                    id = message.id,
                    to = message.recipient,
                    "notification email sent"
                );
            }
            Err(error) => {
                // 30 s, 1, 2, 4 ... minutes, at most an hour apart.
                let delay = 30u64 << message.attempts.clamp(0, 7);
                let retry = now + Duration::from_secs(delay.min(3600));
                tracing::warn!(
                    id = message.id,
                    to = message.recipient,
                    "notification email not sent (retried in {delay} s): {error}"
                );
                outbox.failed(message.id, &error, retry).await?;
            }
        }
    }
    Ok(())
}

fn build(
    from: &Mailbox,
    to: &str,
    subject: &str,
    body: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Message> {
    let to: Mailbox = to
        .parse()
        .with_context(|| format!("the recipient {to:?} is not an email address"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        // The server's clock, so a test's manual time is the message's date too.
        .date(std::time::SystemTime::from(now))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .context("building the email")
}

#[cfg(test)]
mod tests {
    use super::parse_relay;

    #[test]
    fn relays_parse_with_or_without_a_port() {
        assert_eq!(
            parse_relay("mail.school.example:587").unwrap(),
            ("mail.school.example".to_string(), 587)
        );
        assert_eq!(
            parse_relay("10.0.0.25").unwrap(),
            ("10.0.0.25".to_string(), 25)
        );
        assert_eq!(
            parse_relay("[::1]:2525").unwrap(),
            ("::1".to_string(), 2525)
        );
        assert!(parse_relay("mail:notaport").is_err());
        assert!(parse_relay(":25").is_err());
    }
}
