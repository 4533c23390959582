//! The RADIUS packet (RFC 2865 §3, §5) as far as accounting needs it: an
//! Accounting-Request (RFC 2866 §4.1) read and its Request Authenticator checked, and the
//! Accounting-Response (§4.2) with its Response Authenticator.

use std::net::Ipv4Addr;

use md5::{Digest, Md5};

/// The header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 §3 allows; anything longer is refused.
pub const MAX_PACKET_LEN: usize = 4096;

pub const CODE_ACCOUNTING_REQUEST: u8 = 4;
pub const CODE_ACCOUNTING_RESPONSE: u8 = 5;

/// Attribute types this crate reads.
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_SESSION_ID: u8 = 44;
}

/// Acct-Status-Type (RFC 2866 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusType {
    Start,
    Stop,
    InterimUpdate,
    /// The NAS (re)started accounting: its earlier sessions are over.
    AccountingOn,
    /// The NAS is stopping accounting.
    AccountingOff,
    Other(u32),
}

impl StatusType {
    fn from_u32(value: u32) -> StatusType {
        match value {
            1 => StatusType::Start,
            2 => StatusType::Stop,
            3 => StatusType::InterimUpdate,
            7 => StatusType::AccountingOn,
            8 => StatusType::AccountingOff,
            other => StatusType::Other(other),
        }
    }

    /// For logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusType::Start => "start",
            StatusType::Stop => "stop",
            StatusType::InterimUpdate => "interim-update",
            StatusType::AccountingOn => "accounting-on",
            StatusType::AccountingOff => "accounting-off",
            StatusType::Other(_) => "other",
        }
    }
}

/// What is wrong with a datagram. None of these is answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("not an Accounting-Request (code {0})")]
    NotAccountingRequest(u8),
    /// The Request Authenticator does not match: a wrong shared secret, or a forgery.
    #[error("request authenticator does not match the shared secret")]
    BadAuthenticator,
}

fn malformed(why: impl Into<String>) -> PacketError {
    PacketError::Malformed(why.into())
}

/// A verified Accounting-Request: the attributes accounting uses. Text attributes are
/// kept only when they are UTF-8 (a User-Name that is not is refused as malformed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRequest {
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// Acct-Status-Type: required, a request without one is malformed.
    pub status: StatusType,
    pub user_name: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    pub session_id: Option<String>,
    pub calling_station_id: Option<String>,
    pub nas_identifier: Option<String>,
    pub nas_ip: Option<Ipv4Addr>,
}

/// The header of a datagram, read before the client's secret is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub code: u8,
    pub identifier: u8,
    /// The Length field: octets beyond it in the datagram are padding (RFC 2865 §3).
    pub length: usize,
    pub authenticator: [u8; 16],
}

/// Reads and checks the header: at least 20 and at most 4096 octets, Length within the
/// datagram.
pub fn parse_header(datagram: &[u8]) -> Result<Header, PacketError> {
    if datagram.len() < HEADER_LEN {
        return Err(malformed(format!(
            "{} octets, shorter than the 20-octet header",
            datagram.len()
        )));
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
        return Err(malformed(format!(
            "Length field {length} is outside 20..=4096"
        )));
    }
    if length > datagram.len() {
        return Err(malformed(format!(
            "Length field {length} is longer than the {} octets received",
            datagram.len()
        )));
    }
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&datagram[4..HEADER_LEN]);
    Ok(Header {
        code: datagram[0],
        identifier: datagram[1],
        length,
        authenticator,
    })
}

/// Parses `datagram` as an Accounting-Request and verifies its Request Authenticator with
/// `secret`. The authenticator is checked before any attribute is believed; attributes
/// are checked for their lengths (each at least 2 octets and within the packet).
pub fn parse_accounting_request(
    datagram: &[u8],
    secret: &[u8],
) -> Result<AccountingRequest, PacketError> {
    let header = parse_header(datagram)?;
    if header.code != CODE_ACCOUNTING_REQUEST {
        return Err(PacketError::NotAccountingRequest(header.code));
    }
    let packet = &datagram[..header.length];
    if request_authenticator(packet, secret) != header.authenticator {
        return Err(PacketError::BadAuthenticator);
    }
    let mut request = AccountingRequest {
        identifier: header.identifier,
        authenticator: header.authenticator,
        status: StatusType::Other(0),
        user_name: None,
        framed_ip: None,
        session_id: None,
        calling_station_id: None,
        nas_identifier: None,
        nas_ip: None,
    };
    let mut status = None;
    for attribute in Attributes::new(&packet[HEADER_LEN..]) {
        let (kind, value) = attribute?;
        match kind {
            attr::USER_NAME => request.user_name = Some(text(kind, value)?.to_string()),
            attr::FRAMED_IP_ADDRESS => request.framed_ip = Some(ipv4(kind, value)?),
            attr::NAS_IP_ADDRESS => request.nas_ip = Some(ipv4(kind, value)?),
            attr::ACCT_STATUS_TYPE => {
                let bytes: [u8; 4] = value.try_into().map_err(|_| {
                    malformed(format!(
                        "Acct-Status-Type has {} octets, not 4",
                        value.len()
                    ))
                })?;
                status = Some(StatusType::from_u32(u32::from_be_bytes(bytes)));
            }
            attr::ACCT_SESSION_ID => request.session_id = text(kind, value).ok().map(str::to_owned),
            attr::CALLING_STATION_ID => {
                request.calling_station_id = text(kind, value).ok().map(str::to_owned)
            }
            attr::NAS_IDENTIFIER => {
                request.nas_identifier = text(kind, value).ok().map(str::to_owned)
            }
            // Vendor-Specific and everything else: not needed, skipped.
            _ => {}
        }
    }
    request.status = status.ok_or_else(|| malformed("no Acct-Status-Type attribute"))?;
    if request.user_name.as_deref() == Some("") {
        return Err(malformed("User-Name is empty"));
    }
    Ok(request)
}

fn text(kind: u8, value: &[u8]) -> Result<&str, PacketError> {
    std::str::from_utf8(value).map_err(|_| malformed(format!("attribute {kind} is not UTF-8 text")))
}

fn ipv4(kind: u8, value: &[u8]) -> Result<Ipv4Addr, PacketError> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| {
        malformed(format!(
            "attribute {kind} (an IPv4 address) has {} octets, not 4",
            value.len()
        ))
    })?;
    Ok(Ipv4Addr::from(bytes))
}

/// The attributes of a packet body, each `(type, value)`, or the first length error.
pub struct Attributes<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Attributes<'a> {
    pub fn new(body: &'a [u8]) -> Attributes<'a> {
        Attributes {
            rest: body,
            failed: false,
        }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(u8, &'a [u8]), PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let fail = |this: &mut Self, why: String| {
            this.failed = true;
            Some(Err(malformed(why)))
        };
        let [kind, len, ..] = *self.rest else {
            return fail(self, "an attribute is cut off after its type octet".into());
        };
        let len = usize::from(len);
        if len < 2 {
            return fail(
                self,
                format!("attribute {kind} has length {len}, less than 2"),
            );
        }
        if len > self.rest.len() {
            return fail(
                self,
                format!(
                    "attribute {kind} has length {len}, more than the {} octets left",
                    self.rest.len()
                ),
            );
        }
        let (attribute, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok((kind, &attribute[2..])))
    }
}

/// RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)
/// over `packet` (exactly Length octets).
pub fn request_authenticator(packet: &[u8], secret: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(&packet[..4.min(packet.len())]);
    md5.update([0u8; 16]);
    if packet.len() > HEADER_LEN {
        md5.update(&packet[HEADER_LEN..]);
    }
    md5.update(secret);
    md5.finalize().into()
}

/// The Accounting-Response to `request` (no attributes): RFC 2866 §3, Response
/// Authenticator = MD5(Code + Identifier + Length + Request Authenticator + Secret).
pub fn accounting_response(
    identifier: u8,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> [u8; 20] {
    let mut packet = [0u8; HEADER_LEN];
    packet[0] = CODE_ACCOUNTING_RESPONSE;
    packet[1] = identifier;
    packet[2..4].copy_from_slice(&(HEADER_LEN as u16).to_be_bytes());
    let mut md5 = Md5::new();
    md5.update(&packet[..4]);
    md5.update(request_authenticator);
    md5.update(secret);
    let digest: [u8; 16] = md5.finalize().into();
    packet[4..].copy_from_slice(&digest);
    packet
}

/// Builds a signed Accounting-Request (for tests and tools): `attributes` as
/// `(type, value)`, each value at most 253 octets.
pub fn build_accounting_request(
    identifier: u8,
    attributes: &[(u8, &[u8])],
    secret: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let mut packet = vec![CODE_ACCOUNTING_REQUEST, identifier, 0, 0];
    packet.extend_from_slice(&[0u8; 16]);
    for (kind, value) in attributes {
        let len = u8::try_from(value.len() + 2)
            .map_err(|_| malformed(format!("attribute {kind} value longer than 253 octets")))?;
        packet.push(*kind);
        packet.push(len);
        packet.extend_from_slice(value);
    }
    if packet.len() > MAX_PACKET_LEN {
        return Err(malformed("packet longer than 4096 octets"));
    }
    let length = packet.len() as u16; // at most 4096, checked above
    packet[2..4].copy_from_slice(&length.to_be_bytes());
    let authenticator = request_authenticator(&packet, secret);
    packet[4..HEADER_LEN].copy_from_slice(&authenticator);
    Ok(packet)
}
