//! Reading from the client: command lines, bounded, and a message after `354` to its
//! lone dot (dot-unstuffed, limits applied), passed on to a streamed next hop as it
//! arrives.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::next_hop::{STREAM_PIECE, Streaming};
use crate::relay::RelayConfig;
use crate::session::Reply;

pub(crate) enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line (ending `\n`) into `out`, keeping at most `max` bytes; a longer line
/// is read to its end and discarded.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<Line> {
    out.clear();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(p) => (p + 1, true),
            None => (buf.len(), false),
        };
        if out.len() + take > max {
            too_long = true;
        } else if !too_long {
            out.extend_from_slice(&buf[..take]);
        }
        r.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

pub(crate) enum Data {
    Message(Vec<u8>),
    Refused(Reply),
    Eof,
}

/// Reads the message after `354` to the lone dot: dot-unstuffed, every line ending CRLF
/// (a bare LF is taken as a line end). Too big or too long a line is read to the end
/// and refused. With `streaming`, whole lines go to the next hop every
/// [`STREAM_PIECE`] bytes and at the end (never the dot: that is the relay's to send).
pub(crate) async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    config: &RelayConfig,
    streaming: Option<&Streaming>,
) -> std::io::Result<Data> {
    let mut passed_on = 0;
    let mut message = Vec::new();
    let mut line = Vec::new();
    let mut refused: Option<Reply> = None;
    loop {
        match read_line(r, config.max_line_bytes, &mut line).await? {
            Line::Eof => return Ok(Data::Eof),
            Line::TooLong => {
                refused.get_or_insert_with(|| {
                    Reply::new(
                        554,
                        format!("5.6.0 Line longer than {} bytes", config.max_line_bytes),
                    )
                });
                continue;
            }
            Line::Complete => {}
        }
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&line);
        if content == b"." {
            return Ok(match refused {
                Some(reply) => Data::Refused(reply),
                None => {
                    if let Some(streaming) = streaming
                        && passed_on < message.len()
                    {
                        streaming.send(message[passed_on..].to_vec()).await;
                    }
                    Data::Message(message)
                }
            });
        }
        if refused.is_some() {
            continue;
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if message.len() + content.len() + 2 > config.max_message_bytes {
            refused = Some(Reply::new(
                552,
                format!(
                    "5.3.4 Message too big (at most {} bytes)",
                    config.max_message_bytes
                ),
            ));
            message = Vec::new();
            passed_on = 0;
            continue;
        }
        message.extend_from_slice(content);
        message.extend_from_slice(b"\r\n");
        if let Some(streaming) = streaming
            && message.len() - passed_on >= STREAM_PIECE
        {
            streaming.send(message[passed_on..].to_vec()).await;
            passed_on = message.len();
        }
    }
}
