//! The client side: one SMTP transaction to the next hop per accepted message, plain
//! SMTP on the school's own network (`mail-send`'s client, without its TLS builder).

use mail_send::SmtpClient;
use mail_send::smtp::AssertReply;
use mail_send::smtp::message::Message;

use crate::relay::RelayConfig;
use crate::session::Envelope;

/// Why the next hop did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// Down, timed out, or a 4xx: the client should retry later.
    Temporary(String),
    /// A 5xx from the next hop (its code and text): the message will never go.
    Permanent(u16, String),
}

fn classify(e: mail_send::Error) -> ForwardError {
    match e {
        mail_send::Error::UnexpectedReply(r) if (500..600).contains(&r.code) => {
            ForwardError::Permanent(r.code, r.message)
        }
        other => ForwardError::Temporary(other.to_string()),
    }
}

/// Sends `message` (as received after DATA, CRLF line endings) with its envelope.
pub async fn forward(
    config: &RelayConfig,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), ForwardError> {
    let run = async {
        let mut client = SmtpClient::connect(config.next_hop, config.next_hop_timeout).await?;
        client.read().await?.assert_positive_completion()?;
        client.ehlo(&config.hostname).await?;
        // The client adds the final CRLF before the dot itself.
        let body = message.strip_suffix(b"\r\n").unwrap_or(message);
        let to: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
        client
            .send(Message::new(envelope.sender.as_str(), to, body))
            .await?;
        // The message is accepted once DATA's reply was positive; QUIT's fate is moot.
        let _ = client.quit().await;
        Ok::<(), mail_send::Error>(())
    };
    match tokio::time::timeout(config.next_hop_timeout, run).await {
        Ok(result) => result.map_err(classify),
        Err(_) => Err(ForwardError::Temporary(format!(
            "no answer within {:?}",
            config.next_hop_timeout
        ))),
    }
}
