//! The built-in demo school's people: a roster and a logon session per loopback address,
//! so that `hallpass serve` on its own shows how the policy treats each group.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Context;
use hallpass_store::Store;

const ROSTER: &str = include_str!("../../../../../examples/demo/roster.csv");

/// Who is "logged on" at each loopback address in the demo (127.0.0.4 and beyond are
/// unidentified, so the policy's fail-closed default shows too).
pub const SESSIONS: &[(Ipv4Addr, &str, &str)] = &[
    (
        Ipv4Addr::new(127, 0, 0, 1),
        "ava.student",
        "a Year 9 student",
    ),
    (Ipv4Addr::new(127, 0, 0, 2), "mr.teacher", "a teacher"),
    (
        Ipv4Addr::new(127, 0, 0, 3),
        "ms.marketing",
        "marketing staff (may use social media)",
    ),
];

/// Upserts the demo roster (its `groups` column puts ms.marketing in marketing) and opens
/// the demo sessions (idempotent).
pub async fn seed(store: &Store, clock: &hallpass_clock::Clock) -> anyhow::Result<()> {
    let records = hallpass_store::people::parse_roster(ROSTER.as_bytes())
        .map_err(|errors| anyhow::anyhow!("demo roster: {errors:?}"))?;
    let now = clock.now();
    store
        .people()
        .import(
            &records,
            false,
            "hallpass-demo",
            "built-in demo roster",
            now,
        )
        .await
        .context("importing the demo roster")?;
    for (ip, username, _) in SESSIONS {
        store
            .sessions()
            .start(
                "hallpass-demo",
                username,
                IpAddr::V4(*ip),
                Some("demo"),
                now,
            )
            .await
            .with_context(|| format!("demo session for {username}"))?;
    }
    Ok(())
}

/// The demo school's people have accepted the acceptable-use declarations of `policy`
/// (000 §14), so the demo shows their own policies; anyone added later is asked
/// (idempotent: an acceptance already recorded is left as it is).
pub async fn accept_declarations(
    store: &Store,
    policy: &hallpass_policy::Policy,
    clock: &hallpass_clock::Clock,
) -> anyhow::Result<()> {
    let records = hallpass_store::people::parse_roster(ROSTER.as_bytes())
        .map_err(|errors| anyhow::anyhow!("demo roster: {errors:?}"))?;
    for person in &records {
        for declaration in policy.declarations() {
            store
                .declarations()
                .accept(
                    "hallpass-demo",
                    &person.username,
                    &declaration.document,
                    &declaration.version,
                    Default::default(),
                    clock.now(),
                )
                .await
                .with_context(|| format!("demo declaration for {}", person.username))?;
        }
    }
    Ok(())
}
