//! Property tests: evaluation is deterministic and total on random policies and
//! requests; shadowed rules are reported, and a rule reported as shadowed never decides.

use std::fmt::Write as _;

use hallpass_policy::{
    CategoryMask, CategoryVocab, FileType, GroupId, GroupSet, Identity, Live, Override,
    OverrideTarget, PolicyDoc, Request, Severity,
};
use jiff::Timestamp;
use proptest::prelude::*;

const GROUPS: [&str; 4] = ["students", "staff", "guests", "unidentified"];
const PERIODS: [&str; 3] = ["p0", "p1", "p2"];
const CATS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
const DOMAINS: [&str; 4] = ["a.example", "b.example", "x.a.example", "c.test"];
const EXTS: [&str; 3] = ["exe", "msi", "pdf"];
const ACTIONS: [&str; 3] = ["allow", "block", "warn"];

#[derive(Debug, Clone)]
struct RuleSpec {
    action: usize,
    cats: u8,
    domains: u8,
    prefix: bool,
    exts: u8,
    groups: Option<u8>,
    except: u8,
    during: Option<u8>,
    outside: u8,
    teacher_override: bool,
    alert: Option<(bool, u8)>,
}

#[derive(Debug, Clone)]
struct PeriodSpec {
    days: u8,
    ranges: Vec<(u16, u16)>,
}

fn pick<'a>(mask: u8, from: &[&'a str]) -> Vec<&'a str> {
    from.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect()
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn rule_strategy() -> impl Strategy<Value = RuleSpec> {
    (
        (
            0..3usize,
            any::<u8>(),
            any::<u8>(),
            any::<bool>(),
            any::<u8>(),
        ),
        (
            proptest::option::of(1..16u8),
            0..16u8,
            proptest::option::of(1..8u8),
            0..8u8,
        ),
        (
            any::<bool>(),
            proptest::option::of((any::<bool>(), 1..=5u8)),
        ),
    )
        .prop_map(
            |(
                (action, cats, domains, prefix, exts),
                (groups, except, during, outside),
                (teacher_override, alert),
            )| {
                RuleSpec {
                    action,
                    cats: cats & 0b11_1111,
                    domains: domains & 0b1111,
                    prefix,
                    // File-type conditions are rarer, as in real policies.
                    exts: if exts % 4 == 0 { exts & 0b111 } else { 0 },
                    groups,
                    except,
                    during,
                    outside: outside & 0b011,
                    teacher_override,
                    alert,
                }
            },
        )
}

fn period_strategy() -> impl Strategy<Value = PeriodSpec> {
    (
        1..128u8,
        proptest::collection::vec((0..1440u16, 1..1441u16), 1..3),
    )
        .prop_map(|(days, ranges)| PeriodSpec {
            days,
            ranges: ranges.into_iter().filter(|(a, b)| a != b).collect(),
        })
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn render(periods: &[PeriodSpec], defaults: &[usize; 4], rules: &[RuleSpec]) -> String {
    let mut t = String::from(
        "version = 1\n[school]\nname = \"Random\"\ntimezone = \"Europe/London\"\n\
         [[documents]]\nid = \"d\"\ntitle = \"Doc\"\n\
         [calendars.term]\ndates = [\"2026-01-05..2026-07-22\", \"2026-09-03..2027-07-21\"]\nexcept = [\"2026-10-26..2026-10-30\"]\n",
    );
    for (i, p) in periods.iter().enumerate() {
        let ranges: Vec<String> = p
            .ranges
            .iter()
            .map(|(a, b)| format!("{}-{}", hhmm(*a), hhmm(*b)))
            .collect();
        let days = pick(p.days, &["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
        let times = if ranges.is_empty() {
            vec!["00:00-24:00".to_string()]
        } else {
            ranges
        };
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        let cal = if i == 0 { "calendar = \"term\"\n" } else { "" };
        let _ = write!(
            t,
            "[periods.p{i}]\ndays = {}\ntimes = {}\n{cal}",
            list(&days),
            list(&times)
        );
    }
    let extra = [
        "roles = [\"student\"]",
        "roles = [\"staff\"]",
        "networks = [\"10.50.0.0/16\"]",
        "unidentified = true",
    ];
    for (i, g) in GROUPS.iter().enumerate() {
        let _ = write!(
            t,
            "[groups.{g}]\n{}\ndefault = \"{}\"\n",
            extra[i], ACTIONS[defaults[i]]
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let _ = write!(
            t,
            "[[rules]]\nid = \"r{i}\"\naction = \"{}\"\ndocument = \"d\"\nclause = \"{i}\"\n",
            ACTIONS[r.action]
        );
        if r.cats != 0 {
            let _ = writeln!(t, "categories = {}", list(&pick(r.cats, &CATS)));
        }
        if r.domains != 0 {
            let _ = writeln!(t, "domains = {}", list(&pick(r.domains, &DOMAINS)));
        }
        if r.prefix {
            let _ = writeln!(t, "url_prefixes = [\"c.test/games/\"]");
        }
        if r.exts != 0 {
            let _ = writeln!(
                t,
                "file_types = {{ extensions = {} }}",
                list(&pick(r.exts, &EXTS))
            );
        }
        if let Some(g) = r.groups {
            let _ = writeln!(t, "groups = {}", list(&pick(g, &GROUPS)));
        }
        if r.except != 0 {
            let _ = writeln!(t, "except_groups = {}", list(&pick(r.except, &GROUPS)));
        }
        // Period masks may name periods this policy does not have; keep only real ones
        // (an empty list is an error in the policy language).
        let during = r.during.map(|d| pick(d, &PERIODS[..periods.len().min(3)]));
        if let Some(d) = during.filter(|d| !d.is_empty()) {
            let _ = writeln!(t, "during = {}", list(&d));
        }
        let outside = pick(r.outside, &PERIODS[..periods.len().min(3)]);
        if !outside.is_empty() {
            let _ = writeln!(t, "outside = {}", list(&outside));
        }
        if r.teacher_override {
            t.push_str("teacher_override = true\n");
        }
        if let Some((safeguarding, severity)) = r.alert {
            let kind = if safeguarding {
                "safeguarding"
            } else {
                "conduct"
            };
            let _ = writeln!(t, "alert = {{ kind = \"{kind}\", severity = {severity} }}");
        }
    }
    t
}

#[derive(Debug, Clone)]
struct ReqSpec {
    groups: u8,
    ip: Option<u8>,
    host: usize,
    sub: bool,
    path: Option<usize>,
    cats: u8,
    ext: Option<usize>,
    at: i64,
    overrides: Vec<(u8, u8, i64)>,
}

fn req_strategy() -> impl Strategy<Value = ReqSpec> {
    (
        (
            any::<u8>(),
            proptest::option::of(any::<u8>()),
            0..6usize,
            any::<bool>(),
            proptest::option::of(0..3usize),
        ),
        (
            any::<u8>(),
            proptest::option::of(0..3usize),
            1_767_225_600i64..1_830_297_600i64,
        ),
        proptest::collection::vec((0..4u8, 0..6u8, -7200i64..7200), 0..3),
    )
        .prop_map(
            |((groups, ip, host, sub, path), (cats, ext, at), overrides)| ReqSpec {
                groups: groups & 0b1111,
                ip,
                host,
                sub,
                path,
                cats,
                ext,
                at,
                overrides,
            },
        )
}

const HOSTS: [&str; 6] = [
    "a.example",
    "b.example",
    "x.a.example",
    "c.test",
    "other.org",
    "A.EXAMPLE.",
];
const PATHS: [&str; 3] = ["/", "/games/chess", "/work"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Decisions are deterministic, total, identical in explain mode, and a rule
    /// reported as shadowed never decides.
    #[test]
    fn evaluation_is_deterministic_total_and_sound(
        periods in proptest::collection::vec(period_strategy(), 1..4),
        defaults in [0..3usize, 0..3usize, 0..3usize, 0..3usize],
        rules in proptest::collection::vec(rule_strategy(), 0..10),
        requests in proptest::collection::vec(req_strategy(), 1..24),
    ) {
        let text = render(&periods, &defaults, &rules);
        let doc = PolicyDoc::parse("random.toml", &text);
        prop_assert!(doc.is_ok(), "{text}\n{:?}", doc.err());
        let Ok(doc) = doc else { return Ok(()) };
        let compiled = doc.compile(&CategoryVocab::open());
        prop_assert!(compiled.is_ok(), "{text}\n{:?}", compiled.err());
        let Ok((policy, warnings)) = compiled else { return Ok(()) };
        let shadowed: Vec<String> = warnings
            .iter()
            .filter(|w| w.severity == Severity::Warning)
            .filter_map(|w| w.message.split('`').nth(1).map(str::to_owned))
            .collect();
        for r in &requests {
            let mut host = String::new();
            if r.sub { host.push_str("www."); }
            host.push_str(HOSTS[r.host]);
            let identity = match r.ip {
                Some(x) if x % 2 == 0 => Identity::Ip(std::net::IpAddr::from([10, 50, x, 1])),
                Some(x) => Identity::Ip(std::net::IpAddr::from([192, 168, 0, x])),
                None => Identity::Groups(GroupSet::from_bits(u128::from(r.groups))),
            };
            let mut categories = CategoryMask::EMPTY;
            for (i, c) in CATS.iter().enumerate() {
                if r.cats & (1 << i) != 0 && let Some(id) = policy.category_id(c) {
                    categories.insert(id);
                }
            }
            // Random bits beyond the policy's categories must not matter or panic.
            categories.insert(200);
            let now = Timestamp::from_second(r.at).unwrap_or(Timestamp::UNIX_EPOCH);
            let mut live = Live::none();
            for (g, c, dt) in &r.overrides {
                live.overrides.push(Override {
                    group: GroupId(*g),
                    target: if c % 2 == 0 {
                        OverrideTarget::Category(policy.category_id(CATS[usize::from(*c)]).unwrap_or(0))
                    } else {
                        OverrideTarget::Domain(DOMAINS[usize::from(*c) % 4].into())
                    },
                    until: Timestamp::from_second(r.at + dt).unwrap_or(Timestamp::UNIX_EPOCH),
                });
            }
            let request = Request {
                identity,
                person: None,
                host: &host,
                path: r.path.map(|p| PATHS[p]),
                categories,
                file_type: r.ext.map(|e| FileType { extension: Some(EXTS[e]), mime: None }),
            };
            let a = policy.decide(&request, &live, now);
            let b = policy.decide(&request, &live, now);
            prop_assert_eq!(a, b);
            let (c, trace) = policy.explain(&request, &live, now);
            prop_assert_eq!(a, c);
            prop_assert!(!trace.is_empty());
            if let Some(rule) = a.rule {
                let id = format!("rules[{}]", rule.index);
                prop_assert!(!shadowed.contains(&id), "{} decided but was reported shadowed\n{}", id, text);
            }
        }
    }

    /// A rule after one whose conditions are a superset of its own is reported.
    #[test]
    fn shadowed_rule_is_reported(
        later in rule_strategy(),
        widen in any::<(bool, bool, bool, bool)>(),
        prefix_rules in proptest::collection::vec(rule_strategy(), 0..3),
    ) {
        // Make the later rule's conditions non-trivial, then build an earlier rule that
        // drops or widens some of them. The earlier rule is `allow`, so nothing can lift it.
        let mut earlier = later.clone();
        earlier.action = 0;
        earlier.teacher_override = false;
        earlier.alert = None;
        if widen.0 { earlier.groups = None; earlier.except = 0; }
        if widen.1 && earlier.cats != 0 { earlier.cats = 0b11_1111; }
        if widen.2 { earlier.during = None; earlier.outside = 0; }
        if widen.3 { earlier.exts = 0; }
        // Unrelated rules before both must not stop the warning.
        let mut rules: Vec<RuleSpec> = prefix_rules
            .into_iter()
            .map(|mut r| { r.groups = Some(0b0100); r.except = 0b0001; r })
            .collect();
        let i = rules.len();
        rules.push(earlier);
        rules.push(later);
        let periods = vec![PeriodSpec { days: 0b1_1111, ranges: vec![(540, 600)] }; 3];
        let text = render(&periods, &[0, 0, 0, 2], &rules);
        let doc = PolicyDoc::parse("shadow.toml", &text);
        prop_assert!(doc.is_ok(), "{:?}", doc.err());
        let Ok(doc) = doc else { return Ok(()) };
        let compiled = doc.compile(&CategoryVocab::open());
        prop_assert!(compiled.is_ok());
        let Ok((_, warnings)) = compiled else { return Ok(()) };
        let want = format!("`rules[{}]` (`r{}`) can never match", i + 1, i + 1);
        prop_assert!(
            warnings.iter().any(|w| w.severity == Severity::Warning && w.message.starts_with(&want)),
            "no warning for rules[{}]:\n{}\n{:#?}", i + 1, text, warnings
        );
    }

    /// Arbitrary text never panics the parser.
    #[test]
    fn parser_is_total_on_junk(text in "[a-z_\\[\\]=\"{}., 0-9:\\n-]{0,300}") {
        if let Ok(doc) = PolicyDoc::parse("junk.toml", &text) {
            let _ = doc.compile(&CategoryVocab::open());
        }
    }

    /// Damaging the real example anywhere gives errors or a policy, never a panic, and
    /// every error has a position inside the file.
    #[test]
    fn damaged_example_never_panics(at in 0usize..20_000, len in 0usize..40, junk in "[a-z0-9\"=\\[\\]. \\n-]{0,12}") {
        let src = super::WCS;
        let at = at % src.len();
        let (a, b) = (floor(src, at), floor(src, (at + len).min(src.len())));
        let text = format!("{}{}{}", &src[..a], junk, &src[b..]);
        let lines = text.lines().count().max(1);
        match PolicyDoc::parse("damaged.toml", &text) {
            Ok(doc) => { let _ = doc.compile(&super::ut1_vocab()); }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(e.line >= 1 && e.line <= lines + 1 && e.col >= 1, "{e}");
                }
            }
        }
    }
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
