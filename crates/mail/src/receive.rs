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
        let (take, done) = match memchr::memchr(b'\n', buf) {
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

/// A message being read: its lines so far, why it is refused (then the rest is read
/// and dropped), and how much of it went to the next hop.
struct Reading {
    message: Vec<u8>,
    refused: Option<Reply>,
    passed_on: usize,
}

impl Reading {
    /// Takes one line (its ending included); `true` at the lone dot.
    fn line(&mut self, line: &[u8], config: &RelayConfig) -> bool {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content == b"." {
            return true;
        }
        if self.refused.is_some() {
            return false;
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if self.message.len() + content.len() + 2 > config.max_message_bytes {
            self.refused = Some(Reply::new(
                552,
                format!(
                    "5.3.4 Message too big (at most {} bytes)",
                    config.max_message_bytes
                ),
            ));
            self.message = Vec::new();
            self.passed_on = 0;
            return false;
        }
        self.message.extend_from_slice(content);
        self.message.extend_from_slice(b"\r\n");
        false
    }

    fn too_long(&mut self, config: &RelayConfig) {
        self.refused.get_or_insert_with(|| {
            Reply::new(
                554,
                format!("5.6.0 Line longer than {} bytes", config.max_line_bytes),
            )
        });
    }

    /// Whole lines not yet passed on, once there are enough of them (or `all`).
    fn next_piece(&mut self, all: bool) -> Option<Vec<u8>> {
        let waiting = self.message.len() - self.passed_on;
        if self.refused.is_some() || waiting == 0 || (!all && waiting < STREAM_PIECE) {
            return None;
        }
        let piece = self.message[self.passed_on..].to_vec();
        self.passed_on = self.message.len();
        Some(piece)
    }
}

/// Reads the message after `354` to the lone dot: dot-unstuffed, every line ending CRLF
/// (a bare LF is taken as a line end). Too big or too long a line is read to the end
/// and refused. With `streaming`, whole lines go to the next hop every
/// [`STREAM_PIECE`] bytes and at the end (never the dot: that is the relay's to send).
/// The lines already in the read buffer are taken from it in one pass; only a line that
/// spans two reads goes through [`read_line`].
pub(crate) async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    config: &RelayConfig,
    streaming: Option<&Streaming>,
) -> std::io::Result<Data> {
    let mut reading = Reading {
        message: Vec::new(),
        refused: None,
        passed_on: 0,
    };
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Data::Eof);
        }
        let mut used = 0;
        let mut ended = false;
        while let Some(at) = memchr::memchr(b'\n', &buf[used..]) {
            let whole = &buf[used..used + at + 1];
            used += at + 1;
            if whole.len() > config.max_line_bytes {
                reading.too_long(config);
            } else if reading.line(whole, config) {
                ended = true;
                break;
            }
        }
        if used == 0 {
            // No whole line buffered: read one across refills.
            match read_line(r, config.max_line_bytes, &mut line).await? {
                Line::Eof => return Ok(Data::Eof),
                Line::TooLong => reading.too_long(config),
                Line::Complete => ended = reading.line(&line, config),
            }
        } else {
            r.consume(used);
        }
        if let Some(streaming) = streaming
            && let Some(piece) = reading.next_piece(ended)
        {
            streaming.send(piece).await;
        }
        if ended {
            return Ok(match reading.refused {
                Some(reply) => Data::Refused(reply),
                None => Data::Message(reading.message),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, BufReader};

    fn config() -> RelayConfig {
        let mut c = RelayConfig::new("127.0.0.1:25".parse().unwrap());
        c.max_line_bytes = 100;
        c.max_message_bytes = 1000;
        c
    }

    /// The message, and what is left unread after it, with a read buffer of `capacity`
    /// (small ones put lines across two reads).
    async fn read(input: &[u8], capacity: usize) -> (Result<Vec<u8>, String>, Vec<u8>) {
        let mut r = BufReader::with_capacity(capacity, input);
        let data = read_data(&mut r, &config(), None).await.unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        let data = match data {
            Data::Message(m) => Ok(m),
            Data::Refused(reply) => Err(reply.lines.join(" ")),
            Data::Eof => Err("eof".into()),
        };
        (data, rest)
    }

    #[tokio::test]
    async fn lines_in_the_buffer_or_across_reads_read_alike() {
        let input = b"Subject: x\r\n\r\n..leading dot\nbare LF\r\n.\r\nQUIT\r\n";
        for capacity in [4, 7, 16, 64 << 10] {
            let (message, rest) = read(input, capacity).await;
            assert_eq!(
                message.unwrap(),
                b"Subject: x\r\n\r\n.leading dot\r\nbare LF\r\n",
                "capacity {capacity}"
            );
            assert_eq!(rest, b"QUIT\r\n", "the next command stays unread");
        }
    }

    #[tokio::test]
    async fn too_long_lines_and_too_big_messages_are_read_to_the_end_and_refused() {
        let long = [b"a".repeat(150).as_slice(), b"\r\nok\r\n.\r\nNOOP\r\n"].concat();
        for capacity in [16, 64 << 10] {
            let (refused, rest) = read(&long, capacity).await;
            assert_eq!(refused.unwrap_err(), "5.6.0 Line longer than 100 bytes");
            assert_eq!(rest, b"NOOP\r\n");
        }
        let big = [b"0123456789\r\n".repeat(100).as_slice(), b".\r\n"].concat();
        let (refused, _) = read(&big, 64).await;
        assert_eq!(
            refused.unwrap_err(),
            "5.3.4 Message too big (at most 1000 bytes)"
        );
        let (eof, _) = read(b"Subject: cut short\r\n", 64).await;
        assert_eq!(eof.unwrap_err(), "eof");
    }
}
