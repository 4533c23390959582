//! Decisions per second for the WCS example policy over a mix of requests: several
//! groups, times of day (lessons, lunchtime, night), categories, domains and file types.
//! Also the compile time of large generated policies (1k, 10k and 60k rules), which the
//! shadowed-rule check once made quadratic (8,000 rules took 6.4 s).
//! Run: `cargo bench -p hallpass-bench --bench policy`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hallpass_policy::{
    CategoryMask, CategoryVocab, FileType, GroupSet, Identity, Live, Override, OverrideTarget,
    PolicyDoc, Request,
};

fn bench(c: &mut Criterion) {
    let text = include_str!("../../examples/policies/wcs.toml");
    let doc = PolicyDoc::parse("wcs.toml", text).expect("wcs.toml parses");
    let (policy, _) = doc
        .compile(&CategoryVocab::open())
        .expect("wcs.toml compiles");
    let g = |n: &str| GroupSet::single(policy.group_id(n).unwrap());
    let cat = |n: &str| CategoryMask::EMPTY.with(policy.category_id(n).unwrap());
    let t = |s: &str| policy.parse_time(s).unwrap();
    let students = Identity::Groups(g("students"));
    let staff = Identity::Groups(g("staff"));
    let guest = Identity::Ip("10.50.3.4".parse::<IpAddr>().unwrap());
    let unknown = Identity::Ip("10.1.2.3".parse::<IpAddr>().unwrap());
    let exe = Some(FileType {
        extension: Some("exe"),
        mime: None,
    });

    let mut live = Live::none();
    live.overrides.push(Override {
        group: policy.group_id("students").unwrap(),
        target: OverrideTarget::Category(policy.category_id("chat").unwrap()),
        until: t("2026-10-05 10:40"),
    });

    let req = |identity, host, categories, file_type| Request {
        identity,
        person: None,
        host,
        path: Some("/index.html"),
        categories,
        file_type,
    };
    let mix = vec![
        (
            req(students, "www.bbc.co.uk", CategoryMask::EMPTY, None),
            t("2026-10-05 09:30"),
        ),
        (
            req(students, "www.youtube.com", cat("audio-video"), None),
            t("2026-10-05 09:30"),
        ),
        (
            req(students, "www.youtube.com", cat("audio-video"), None),
            t("2026-10-05 12:50"),
        ),
        (
            req(students, "discord.com", cat("chat"), None),
            t("2026-10-05 09:30"),
        ),
        (
            req(students, "discord.com", cat("chat"), None),
            t("2026-10-05 11:30"),
        ),
        (
            req(students, "adult.example", cat("adult"), None),
            t("2026-10-05 09:30"),
        ),
        (
            req(students, "downloads.example.com", CategoryMask::EMPTY, exe),
            t("2026-10-05 14:00"),
        ),
        (
            req(students, "portal.wcs.london", CategoryMask::EMPTY, None),
            t("2026-10-05 09:30"),
        ),
        (
            req(staff, "mail.google.com", cat("webmail"), None),
            t("2026-10-05 12:50"),
        ),
        (
            req(staff, "outlook.office365.com", cat("webmail"), None),
            t("2026-10-05 08:00"),
        ),
        (
            req(staff, "www.amazon.co.uk", cat("shopping"), None),
            t("2026-10-05 16:00"),
        ),
        (
            req(staff, "www.facebook.com", cat("social_networks"), None),
            t("2026-10-05 10:00"),
        ),
        (
            req(guest, "www.gov.uk", CategoryMask::EMPTY, None),
            t("2026-10-05 23:30"),
        ),
        (
            req(guest, "www.gov.uk", CategoryMask::EMPTY, None),
            t("2026-10-05 15:00"),
        ),
        (
            req(unknown, "windowsupdate.com", cat("update"), None),
            t("2026-10-05 03:00"),
        ),
        (
            req(unknown, "example.org", CategoryMask::EMPTY, None),
            t("2026-10-05 09:30"),
        ),
    ];

    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(mix.len() as u64));
    group.bench_function("wcs_decide_mix", |b| {
        b.iter(|| {
            for (r, now) in &mix {
                black_box(policy.decide(black_box(r), &live, *now));
            }
        })
    });
    group.finish();
}

/// `n` block rules in the shape of a large school's list: mostly one domain each, every
/// 10th a subdomain of an earlier rule's domain (shadowed), every 25th a category rule.
fn generated_policy(n: usize) -> String {
    use std::fmt::Write as _;
    let mut text = String::from(
        "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n\
         [[documents]]\nid = \"d\"\ntitle = \"D\"\n\
         [groups.everyone]\nunidentified = true\ndefault = \"allow\"\n",
    );
    for i in 0..n {
        let target = match i {
            _ if i % 25 == 0 => {
                format!(
                    "categories = [\"{}\"]",
                    ["games", "chat", "adult"][(i / 25) % 3]
                )
            }
            _ if i % 10 == 0 => format!("domains = [\"www.site{}.example\"]", i - 7),
            _ => format!("domains = [\"site{i}.example\"]"),
        };
        write!(
            text,
            "[[rules]]\nid = \"r{i}\"\naction = \"block\"\ndocument = \"d\"\nclause = \"{i}\"\n{target}\n"
        )
        .unwrap();
    }
    text
}

/// Compile time only (the parse is outside the measured loop).
fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_compile");
    group.sample_size(10);
    for n in [1_000, 10_000, 60_000] {
        let doc = PolicyDoc::parse("big.toml", &generated_policy(n)).expect("parses");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("{n}_rules"), |b| {
            b.iter(|| black_box(doc.compile(&CategoryVocab::open()).expect("compiles")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_compile);
criterion_main!(benches);
