//! The decision both front ends share, the SMTP relay and the milter: who sent a
//! message, whether a sanction, a console block or a policy rule stops it, and what
//! happens after it is settled (the journal copy, the send count, the event). Each
//! front end only carries the verdict out its own way: the relay forwards to the next
//! hop and answers, the milter answers the MTA, which delivers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hallpass_policy::{Direction, MailAction, Policy};
use jiff::Timestamp;

use crate::rate::SendRate;
use crate::relay::{MailContext, MessageRecord, Outcome, Sender};
use crate::scan::{Checked, check_at_rate};
use crate::session::{Envelope, Reply};

/// A message as decided, before it is acted on.
pub(crate) struct Judged {
    /// The policy in force when it was judged: what acts on the verdict uses it too.
    pub policy: Arc<Policy>,
    pub sender: Sender,
    pub now: Timestamp,
    /// The roster username whose hourly count this message took, if it was counted.
    pub counted: Option<String>,
    pub message: Arc<Vec<u8>>,
    /// `None` when the message was stopped before it was read (sanction, block) or the
    /// check failed; always `Some` for [`Verdict::Hold`] and [`Verdict::Deliver`].
    pub checked: Option<Checked>,
    pub verdict: Verdict,
}

impl Judged {
    /// The external-sender banner the message gets on its way: the policy's, when the
    /// message came from outside the school.
    pub fn banner(&self) -> Option<&str> {
        let inbound = self
            .checked
            .as_ref()
            .is_some_and(|c| c.decision.direction == Direction::Inbound);
        self.policy.mail().external_banner().filter(|_| inbound)
    }
}

pub(crate) enum Verdict {
    /// Refused, with the reply that says why (5xx).
    Refuse(Reply),
    /// Not decided now: the sender retries (4xx).
    Defer(Reply),
    /// Held in the quarantine for review.
    Hold,
    Deliver,
}

/// Decides `message` from `envelope`'s sender (`login`: the MTA's SASL login, when it
/// passed one) as the policy in force says.
pub(crate) async fn judge<C: MailContext>(
    ctx: &C,
    rate: &Mutex<SendRate>,
    max_parts: usize,
    envelope: &Envelope,
    client: SocketAddr,
    login: Option<&str>,
    message: Vec<u8>,
) -> Judged {
    let policy = ctx.policy();
    let sender = ctx.identify(&envelope.sender, login, &policy);
    let now = ctx.now();
    let message = Arc::new(message);
    let early = |sender, verdict| Judged {
        policy: policy.clone(),
        sender,
        now,
        counted: None,
        message: message.clone(),
        checked: None,
        verdict,
    };
    if let Some((document, clause, why)) = &sender.suspended {
        let reply = Reply::new(550, format!("5.7.1 {why} [{document} {clause}, sanction]"));
        return early(sender, Verdict::Refuse(reply));
    }
    // Only people on the roster are counted (a bounded set); the key is their username,
    // so a student's several addresses share one count.
    let counted = policy
        .mail()
        .needs_rate()
        .then(|| sender.person.clone())
        .flatten();
    let sent_last_hour = counted.as_deref().map_or(0, |person| {
        // A poisoned lock only means another task panicked mid-count: the counts are
        // still usable.
        let mut rate = rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.attempt(person, now)
    });
    if let Some(why) = ctx.blocked_sender(&envelope.sender) {
        let mut judged = early(
            sender,
            Verdict::Refuse(Reply::new(550, format!("5.7.1 {why}"))),
        );
        judged.counted = counted;
        return judged;
    }
    // Parsing a big message is CPU work: off the connection's task, and a panic in the
    // parser becomes a temporary failure, not a dead server.
    let checked = {
        let (policy, message) = (policy.clone(), message.clone());
        let (from, to, groups) = (
            envelope.sender.clone(),
            envelope.recipients.clone(),
            sender.groups,
        );
        tokio::task::spawn_blocking(move || {
            check_at_rate(&policy, &from, &to, groups, sent_last_hour, &message, now)
        })
        .await
    };
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%client, error = %e, "mail: message check failed");
            let reply = Reply::new(451, "4.3.0 Message could not be checked, try again later");
            let mut judged = early(sender, Verdict::Defer(reply));
            judged.counted = counted;
            return judged;
        }
    };
    let d = &checked.decision;
    let verdict = if checked.scan.parts > max_parts {
        Verdict::Refuse(Reply::new(
            554,
            format!("5.6.0 Too many MIME parts (at most {max_parts})"),
        ))
    } else {
        match d.action {
            MailAction::Reject => Verdict::Refuse(Reply::new(
                550,
                format!(
                    "5.7.1 {} [{} {}, rule {}]",
                    d.message,
                    d.document.as_deref().unwrap_or("-"),
                    d.clause.as_deref().unwrap_or("-"),
                    d.rule.as_deref().unwrap_or("-"),
                ),
            )),
            MailAction::Quarantine => Verdict::Hold,
            MailAction::Deliver => Verdict::Deliver,
        }
    };
    Judged {
        policy,
        sender,
        now,
        counted,
        message,
        checked: Some(checked),
        verdict,
    }
}

/// Keeps a held message in the quarantine: the outcome and the reply.
pub(crate) async fn hold<C: MailContext>(
    ctx: &C,
    client: SocketAddr,
    envelope: &Envelope,
    judged: &Judged,
) -> (Outcome, Reply) {
    // A hold is only ever judged after the check.
    let Some(checked) = &judged.checked else {
        return (
            Outcome::Deferred,
            Reply::new(451, "4.3.0 Message could not be held, try again later"),
        );
    };
    match ctx
        .quarantine(envelope, &judged.sender, checked, &judged.message)
        .await
    {
        Ok(()) => (
            Outcome::Quarantined,
            Reply::new(
                250,
                format!("2.6.0 Held for review: {}", checked.decision.message),
            ),
        ),
        Err(why) => {
            tracing::error!(%client, error = %why, "mail: quarantine failed");
            (
                Outcome::Deferred,
                Reply::new(451, "4.3.0 Message could not be held, try again later"),
            )
        }
    }
}

/// What follows a message's outcome, whichever front end carried it out: a delivered
/// message's journal copy, a deferred one's send count given back (it will be tried
/// again), and the event.
pub(crate) async fn settle<C: MailContext>(
    ctx: &C,
    rate: &Mutex<SendRate>,
    client: SocketAddr,
    envelope: &Envelope,
    judged: &Judged,
    outcome: Outcome,
    reply: &Reply,
) {
    if outcome == Outcome::Delivered
        && let Some(checked) = &judged.checked
    {
        ctx.journal(
            envelope,
            &judged.sender,
            checked.decision.direction,
            &judged.message,
        )
        .await;
    }
    if outcome == Outcome::Deferred
        && let Some(person) = &judged.counted
    {
        let mut rate = rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.take_back(person, judged.now);
    }
    ctx.record(&MessageRecord {
        at: judged.now,
        client,
        envelope,
        sender: &judged.sender,
        size: judged.message.len(),
        outcome,
        reply,
        checked: judged.checked.as_ref(),
    });
}

/// Records a message refused before it was read whole (too big, a line too long).
pub(crate) fn record_unread<C: MailContext>(
    ctx: &C,
    client: SocketAddr,
    envelope: &Envelope,
    reply: &Reply,
) {
    let sender = ctx.identify(&envelope.sender, None, &ctx.policy());
    ctx.record(&MessageRecord {
        at: ctx.now(),
        client,
        envelope,
        sender: &sender,
        size: 0,
        outcome: Outcome::Rejected,
        reply,
        checked: None,
    });
}
