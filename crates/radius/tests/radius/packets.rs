use std::net::Ipv4Addr;

use hallpass_radius::packet::{self, attr, build_accounting_request};
use hallpass_radius::{PacketError, StatusType, accounting_response, parse_accounting_request};
use proptest::prelude::*;

const SECRET: &[u8] = b"testing123";

/// An Accounting-Request computed outside this crate (Python's hashlib, by the RFC 2866
/// §3 formula): identifier 0x2a; Acct-Status-Type Start, User-Name "ava.student",
/// Framed-IP-Address 127.0.0.77, Acct-Session-Id "S-1"; secret "testing123".
const BY_HAND: &str = "042a003214f77f7e58c86ed5beb117a855a74b25280600000001010d6176612e7374\
                       7564656e7408067f00004d2c05532d31";
/// Its Accounting-Response authenticator, by hand the same way.
const RESPONSE_AUTHENTICATOR: &str = "5040beba24f00097d2c030daeb13edcf";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_request_computed_by_hand_verifies_and_reads() {
    let request = parse_accounting_request(&hex(BY_HAND), SECRET).unwrap();
    assert_eq!(request.identifier, 0x2a);
    assert_eq!(request.status, StatusType::Start);
    assert_eq!(request.user_name.as_deref(), Some("ava.student"));
    assert_eq!(request.framed_ip, Some(Ipv4Addr::new(127, 0, 0, 77)));
    assert_eq!(request.session_id.as_deref(), Some("S-1"));
    assert_eq!(request.calling_station_id, None);
    // The builder produces the same bytes.
    let built = build_accounting_request(
        0x2a,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::USER_NAME, b"ava.student"),
            (attr::FRAMED_IP_ADDRESS, &[127, 0, 0, 77]),
            (attr::ACCT_SESSION_ID, b"S-1"),
        ],
        SECRET,
    )
    .unwrap();
    assert_eq!(built, hex(BY_HAND));
}

#[test]
fn the_response_authenticator_matches_the_one_computed_by_hand() {
    let request = parse_accounting_request(&hex(BY_HAND), SECRET).unwrap();
    let response = accounting_response(request.identifier, &request.authenticator, SECRET);
    assert_eq!(&response[..4], &[5, 0x2a, 0, 20]);
    assert_eq!(response[4..].to_vec(), hex(RESPONSE_AUTHENTICATOR));
}

#[test]
fn a_wrong_secret_or_any_changed_octet_fails_the_authenticator() {
    let packet = hex(BY_HAND);
    assert_eq!(
        parse_accounting_request(&packet, b"wrong-secret"),
        Err(PacketError::BadAuthenticator)
    );
    // Flip each octet after the length field (code and length changes fail earlier).
    for at in [1, 4, 19, 20, 30, packet.len() - 1] {
        let mut forged = packet.clone();
        forged[at] ^= 0x01;
        assert_eq!(
            parse_accounting_request(&forged, SECRET),
            Err(PacketError::BadAuthenticator),
            "octet {at} changed"
        );
    }
}

#[test]
fn malformed_lengths_are_refused_with_the_reason() {
    let packet = hex(BY_HAND);
    let error = |bytes: &[u8]| match parse_accounting_request(bytes, SECRET) {
        Err(PacketError::Malformed(why)) => why,
        other => panic!("expected malformed, got {other:?}"),
    };
    assert!(error(&packet[..19]).contains("shorter than the 20-octet header"));
    // Length says more than was received.
    assert!(error(&packet[..packet.len() - 1]).contains("longer than the"));
    // Length below the header.
    let mut short = packet.clone();
    short[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert!(error(&short).contains("outside 20..=4096"));
    let mut long = vec![0u8; 5000];
    long[..4].copy_from_slice(&[4, 1, 0x13, 0x88]);
    assert!(error(&long).contains("outside 20..=4096"));

    // An attribute that claims more octets than the packet has (signed correctly, so
    // only the length check can refuse it).
    let oversized = signed_raw(&[40, 6, 0, 0, 0, 1, 1, 200, b'a', b'v', b'a']);
    assert!(error(&oversized).contains("attribute 1 has length 200, more than the 5 octets left"));
    let zero = signed_raw(&[40, 6, 0, 0, 0, 1, 1, 0]);
    assert!(error(&zero).contains("attribute 1 has length 0"));
    let cut = signed_raw(&[40, 6, 0, 0, 0, 1, 1]);
    assert!(error(&cut).contains("cut off"));
    let no_status = signed_raw(&[1, 5, b'a', b'v', b'a']);
    assert!(error(&no_status).contains("no Acct-Status-Type"));
    let bad_ip = signed_raw(&[40, 6, 0, 0, 0, 1, 8, 5, 127, 0, 0]);
    assert!(error(&bad_ip).contains("has 3 octets, not 4"));
    let bad_name = signed_raw(&[40, 6, 0, 0, 0, 1, 1, 4, 0xff, 0xfe]);
    assert!(error(&bad_name).contains("not UTF-8"));
}

#[test]
fn other_codes_and_vendor_attributes() {
    let mut access = signed_raw(&[40, 6, 0, 0, 0, 1]);
    access[0] = 1;
    assert_eq!(
        parse_accounting_request(&access, SECRET),
        Err(PacketError::NotAccountingRequest(1))
    );
    // Vendor-Specific is skipped; octets past Length are padding and ignored.
    let mut packet = build_accounting_request(
        7,
        &[
            (attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes()),
            (attr::VENDOR_SPECIFIC, &[0, 0, 0x37, 0x2b, 1, 4, 0xde, 0xad]),
            (attr::USER_NAME, b"mr.teacher"),
            (attr::CALLING_STATION_ID, b"AA-BB-CC-DD-EE-FF"),
        ],
        SECRET,
    )
    .unwrap();
    packet.extend_from_slice(&[0xaa; 7]);
    let request = parse_accounting_request(&packet, SECRET).unwrap();
    assert_eq!(request.status, StatusType::Stop);
    assert_eq!(request.user_name.as_deref(), Some("mr.teacher"));
    assert_eq!(
        request.calling_station_id.as_deref(),
        Some("AA-BB-CC-DD-EE-FF")
    );
    // A value too long for one attribute cannot be built.
    assert!(build_accounting_request(1, &[(attr::USER_NAME, &[b'a'; 254])], SECRET).is_err());
}

/// A request whose body is `body` as given (any lengths), with a correct authenticator.
fn signed_raw(body: &[u8]) -> Vec<u8> {
    let mut packet = vec![4, 9, 0, 0];
    packet.extend_from_slice(&[0; 16]);
    packet.extend_from_slice(body);
    let length = packet.len() as u16;
    packet[2..4].copy_from_slice(&length.to_be_bytes());
    let authenticator = packet::request_authenticator(&packet, SECRET);
    packet[4..20].copy_from_slice(&authenticator);
    packet
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No datagram makes parsing panic, signed or not.
    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_accounting_request(&bytes, SECRET);
        if bytes.len() >= 20 {
            let _ = parse_accounting_request(&signed_raw(&bytes[20..]), SECRET);
        }
    }

    /// A request built from any attributes reads back what was put in.
    #[test]
    fn built_requests_read_back(
        name in "[a-z.]{1,60}",
        ip in any::<[u8; 4]>(),
        status in prop_oneof![Just(1u32), Just(2), Just(3), Just(7), Just(8)],
        identifier in any::<u8>(),
    ) {
        let packet = build_accounting_request(identifier, &[
            (attr::ACCT_STATUS_TYPE, &status.to_be_bytes()),
            (attr::USER_NAME, name.as_bytes()),
            (attr::FRAMED_IP_ADDRESS, &ip),
        ], SECRET).unwrap();
        let request = parse_accounting_request(&packet, SECRET).unwrap();
        prop_assert_eq!(request.identifier, identifier);
        prop_assert_eq!(request.user_name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(request.framed_ip, Some(Ipv4Addr::from(ip)));
        prop_assert!(!matches!(request.status, StatusType::Other(_)));
    }
}
