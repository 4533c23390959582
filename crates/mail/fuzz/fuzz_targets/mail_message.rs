//! Arbitrary bytes as a message after DATA: MIME parsing, every attachment through the
//! detectors (ZIP opened one level), personal data in all readable text, and the WCS
//! policy's decision. Also each byte string as one attachment and as one text.
#![no_main]

use std::sync::OnceLock;

use hallpass_policy::{CategoryVocab, GroupSet, Policy, PolicyDoc};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let text = include_str!("../../../../examples/policies/wcs.toml");
        let doc = PolicyDoc::parse("wcs.toml", text).expect("the example policy parses");
        doc.compile(&CategoryVocab::open()).expect("the example policy compiles").0
    })
}

fuzz_target!(|data: &[u8]| {
    // A fixed instant: decisions must not depend on the wall clock.
    let now = jiff::Timestamp::from_second(1_796_637_600).expect("a valid instant");
    let to = ["parent@gmail.com".to_owned()];
    let checked = hallpass_mail::check(policy(), "teacher@wcs.london", &to, GroupSet::EMPTY, data, now);
    let _ = checked.scan.detectors();
    let _ = hallpass_mail::header_addresses(data, &["From", "To", "Cc"]);
    let _ = hallpass_mail_detect::inspect_attachment("x.zip", data);
    let _ = hallpass_mail_detect::personal_data(&String::from_utf8_lossy(data));
});
