//! The `safeguarding` follower: turns what was recorded into alerts, off the enforcement
//! points' hot path. Every second it reads, after its cursors:
//!
//! - decisions made by a rule that carries `alert = { kind, severity }` (a block or warn
//!   about an identified person): one occurrence each, keyed by the decision;
//! - recorded content of the configured kinds (search terms), run through the risk-phrase
//!   matcher (`hallpass_detect`): a match is an occurrence keyed by the content's event,
//!   with the theme, severity and phrase list line as evidence (never the text itself).
//!
//! Routing (issue 20): a member of staff's alert goes to the headteacher; a pupil's at
//! severity 4-5 to the DSL at once (the console, and email to each DSL through the
//! outbox when `[notify]` has a relay), below that to the pupil's head of year.
//! Occurrences of one person and theme within a day fold into one alert.

use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use hallpass_detect::{Lists, Matcher, Scratch};
use hallpass_store::alerts::{NewAlert, Raised};
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// `[safeguarding]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SafeguardingSection {
    /// Raise alerts from rules and detection (default true).
    pub enabled: Option<bool>,
    /// A directory of the school's own phrase lists (`*.txt`, as `hallpass detect
    /// --lists`), added to the built-in ones.
    pub lists: Option<std::path::PathBuf>,
    /// Which recorded content is run through detection, by event kind (default `["web",
    /// "mail"]`: search terms and full URLs the web proxy records, and the subject and
    /// start of each message the mail filter records, as content).
    pub content_kinds: Option<Vec<String>>,
    /// When each head of year is emailed the day's lower-severity alerts about their
    /// years, school time `HH:MM` (default 16:00; needs `[notify] relay`).
    pub digest_at: Option<String>,
    /// Who else is emailed a severity-5 alert raised out of school hours (a DSL's
    /// on-call address), e.g. `dsl-on-call@school.example`.
    pub out_of_hours_email: Option<String>,
    /// School hours on weekdays, `HH:MM-HH:MM` school time (default 08:00-17:00);
    /// outside them, and at weekends, a severity-5 alert also goes out of hours.
    pub school_hours: Option<String>,
}

/// `HH:MM` to a civil time.
fn parse_hhmm(field: &str, text: &str) -> anyhow::Result<jiff::civil::Time> {
    let bad = || format!("[safeguarding] {field}: {text:?} is not a time of day HH:MM");
    let (h, m) = text.trim().split_once(':').with_context(bad)?;
    let (h, m): (i8, i8) = (h.parse().with_context(bad)?, m.parse().with_context(bad)?);
    jiff::civil::Time::new(h, m, 0, 0).with_context(bad)
}

/// The times of the digest and of school hours.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    digest_at: jiff::civil::Time,
    hours: (jiff::civil::Time, jiff::civil::Time),
}

impl Schedule {
    fn from_section(section: &SafeguardingSection) -> anyhow::Result<Schedule> {
        let digest_at = parse_hhmm("digest_at", section.digest_at.as_deref().unwrap_or("16:00"))?;
        let hours = section.school_hours.as_deref().unwrap_or("08:00-17:00");
        let (open, close) = hours.split_once('-').with_context(|| {
            format!("[safeguarding] school_hours: {hours:?} is not HH:MM-HH:MM")
        })?;
        let hours = (
            parse_hhmm("school_hours", open)?,
            parse_hhmm("school_hours", close)?,
        );
        anyhow::ensure!(
            hours.0 < hours.1,
            "[safeguarding] school_hours: {open} is not before {close}"
        );
        Ok(Schedule { digest_at, hours })
    }

    /// Whether `local` is out of school hours (weekends, or outside the hours).
    fn out_of_hours(&self, local: &jiff::Zoned) -> bool {
        use jiff::civil::Weekday::{Saturday, Sunday};
        let t = local.time();
        matches!(local.weekday(), Saturday | Sunday) || t < self.hours.0 || t >= self.hours.1
    }
}

const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 500;
const FOLD: Duration = Duration::from_secs(24 * 3600);
/// How far back a restart looks again (keys make a second look harmless).
const LOOK_BACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let section = settings.config.safeguarding.clone();
    let notify = settings.config.notify.enabled();
    let shared = shared.clone();
    Box::pin(async move {
        if section.enabled == Some(false) {
            return Ok(None);
        }
        let mut lists = Lists::builtin().context("a built-in phrase list")?;
        if let Some(dir) = &section.lists {
            crate::cmd::detect::add_dir(&mut lists, dir)
                .context("[safeguarding] lists: the school's phrase lists")?;
        }
        let matcher = lists.matcher().context("compiling the phrase lists")?;
        let kinds = section
            .content_kinds
            .clone()
            .unwrap_or_else(|| vec!["web".to_string(), "mail".to_string()]);
        let schedule = Schedule::from_section(&section)?;
        let out_of_hours_email = section.out_of_hours_email.clone();
        Ok(Some(Service::follower("safeguarding", async move {
            let mut follower = Follower {
                shared,
                matcher,
                scratch: Scratch::new(),
                kinds,
                notify,
                cursors: None,
                schedule,
                out_of_hours_email,
                digest_done: None,
            };
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = follower.shared.stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                // The stop never waits for a pass held up by a busy database, and never
                // drops one half-way either (a write it had begun would keep the database
                // locked for the event writer's last batches): the pass is a task of its
                // own, left to finish.
                let stop = follower.shared.stop.clone();
                let mut pass = tokio::spawn(async move {
                    let passed = follower.pass().await;
                    (follower, passed)
                });
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    joined = &mut pass => {
                        let (back, passed) = joined.map_err(|e| anyhow::anyhow!("safeguarding pass: {e}"))?;
                        follower = back;
                        if let Err(error) = passed {
                            tracing::warn!("safeguarding check failed (tried again shortly): {error:#}");
                        }
                    }
                }
            }
        })))
    })
}

struct Follower {
    shared: Shared,
    matcher: Matcher,
    scratch: Scratch,
    kinds: Vec<String>,
    notify: bool,
    /// (decisions, content) read up to; `None` until the first pass.
    cursors: Option<(i64, i64)>,
    schedule: Schedule,
    out_of_hours_email: Option<String>,
    /// The school day whose digest went out.
    digest_done: Option<jiff::civil::Date>,
}

/// What one occurrence raises.
struct Occurrence<'a> {
    person: &'a str,
    year_group: Option<&'a str>,
    kind: &'a str,
    theme: &'a str,
    severity: u8,
    document: Option<&'a str>,
    clause: Option<&'a str>,
    summary: String,
    key: String,
    evidence: serde_json::Value,
}

impl Follower {
    async fn pass(&mut self) -> anyhow::Result<()> {
        let sources = self.shared.store.alert_sources();
        let (mut decisions, mut content) = match self.cursors {
            Some(c) => c,
            None => {
                sources
                    .cursors_since(self.shared.clock.now() - LOOK_BACK)
                    .await?
            }
        };
        let snapshot = self.shared.engine.current();
        let alert_rules: Vec<&str> = snapshot
            .policy
            .alert_rules()
            .map(|r| r.id)
            .chain(snapshot.policy.mail().alert_rules().map(|r| r.id))
            .collect();
        // Read up to the newest decision now, so the cursor can move past the decisions
        // no alert rule made without reading them one by one.
        let upto = sources.last_decision().await?;
        let found = sources
            .rule_decisions(decisions, upto, &alert_rules, BATCH)
            .await?;
        let caught_up = found.len() < BATCH as usize;
        for d in found {
            decisions = d.id;
            let Some((alert, document, clause)) = snapshot
                .policy
                .rule_info(&d.rule)
                .and_then(|i| Some((i.alert?, i.document, i.clause)))
                .or_else(|| {
                    let m = snapshot.policy.mail().alert_rule(&d.rule)?;
                    Some((m.alert, m.document, m.clause))
                })
            else {
                continue;
            };
            let kind = match alert.kind {
                hallpass_policy::AlertKind::Conduct => "conduct",
                hallpass_policy::AlertKind::Safeguarding => "safeguarding",
            };
            self.raise(Occurrence {
                person: &d.person,
                year_group: d.year_group.as_deref(),
                kind,
                theme: &d.rule,
                severity: alert.severity,
                document: Some(document),
                clause: Some(clause),
                summary: decision_summary(&d, document, clause),
                key: format!("decision:{}", d.id),
                evidence: serde_json::json!({
                    "decision": d.id, "at": d.at.to_string(), "target": d.target,
                    "verdict": d.verdict, "client_ip": d.client_ip, "rule": d.rule,
                }),
            })
            .await?;
        }
        if caught_up {
            decisions = decisions.max(upto);
        }
        let kinds: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        for c in sources.content_after(content, &kinds, BATCH).await? {
            content = c.event_id;
            let Some(person) = c.person.as_deref() else {
                continue;
            };
            let mut hits: Vec<(hallpass_detect::Theme, u8, String)> = self
                .matcher
                .find(&c.content, &mut self.scratch)
                .map(|p| (p.theme, p.severity, format!("{}:{}", p.list, p.line)))
                .collect();
            hits.sort_by_key(|h| std::cmp::Reverse(h.1));
            let Some((theme, severity, _)) = hits.first().cloned() else {
                continue;
            };
            self.raise(Occurrence {
                person,
                year_group: c.year_group.as_deref(),
                kind: "safeguarding",
                theme: theme.name(),
                severity,
                document: None,
                clause: None,
                summary: format!(
                    "{person}'s {} on {} matched {} phrases (severity {severity})",
                    c.kind,
                    c.target,
                    theme.description()
                ),
                key: format!("content:{}", c.event_id),
                // The content itself stays in the content table, behind an investigation.
                evidence: serde_json::json!({
                    "content_ref": c.event_id, "content_kind": c.kind, "at": c.at.to_string(),
                    "site": c.target,
                    "matches": hits.iter().map(|(t, s, at)| serde_json::json!({
                        "theme": t.name(), "severity": s, "list": at,
                    })).collect::<Vec<_>>(),
                }),
            })
            .await?;
        }
        self.cursors = Some((decisions, content));
        if self.notify {
            self.digest_if_due().await?;
        }
        Ok(())
    }

    /// Once a day at `digest_at`: each head of year gets the open head-of-year alerts of
    /// the last day about their years (none: no email). The outbox is checked first, so
    /// a restart on the same day sends nothing twice.
    async fn digest_if_due(&mut self) -> anyhow::Result<()> {
        let now = self.shared.clock.now();
        let snapshot = self.shared.engine.current();
        let local = now.to_zoned(snapshot.policy.timezone().clone());
        let today = local.date();
        if local.time() < self.schedule.digest_at || self.digest_done == Some(today) {
            return Ok(());
        }
        let store = &self.shared.store;
        let since = now - jiff::SignedDuration::from_hours(24);
        for account in store.accounts().list().await? {
            if account.role != "head_of_year" || account.disabled.is_some() {
                continue;
            }
            let alerts: Vec<_> = store
                .alerts()
                .list(&hallpass_store::alerts::AlertFilter {
                    routes: &["head_of_year"],
                    open_only: true,
                    person: None,
                    year_groups: Some(&account.years),
                    limit: 1000,
                })
                .await?
                .into_iter()
                .filter(|a| a.last >= since)
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let Some(email) = store.people().email_of(&account.username).await? else {
                tracing::warn!(
                    head_of_year = account.username,
                    "no email address in the roster for the digest"
                );
                continue;
            };
            let subject = format!(
                "Hallpass daily digest for {today}: {} alert(s)",
                alerts.len()
            );
            if store.outbox().exists(&email, &subject).await? {
                continue;
            }
            let mut body = format!(
                "Alerts about Year {} raised or repeated in the last day, still open:\n\n",
                account.years.join(", Year ")
            );
            for a in &alerts {
                body.push_str(&format!(
                    "#{} {} (severity {}, x{}): {}\n",
                    a.id, a.theme, a.severity, a.count, a.summary
                ));
            }
            body.push_str("\nOpen them on the console's Alerts page.");
            store
                .outbox()
                .enqueue(&email, &subject, &body, Some(&account.username), now)
                .await?;
        }
        self.digest_done = Some(today);
        Ok(())
    }

    async fn raise(&self, o: Occurrence<'_>) -> anyhow::Result<()> {
        let (staff, roster_year) = match self.shared.store.people().role_and_year(o.person).await? {
            Some((role, year)) => (
                !matches!(role.as_str(), "student" | "guest" | "visitor"),
                year,
            ),
            None => (false, None),
        };
        // The event's year group, else the roster's (an event recorded before the
        // writer knew the person's year has none), so the head of year sees it.
        let year_group = o.year_group.map(str::to_string).or(roster_year);
        let route = if staff {
            "headteacher"
        } else if o.severity >= 4 {
            "dsl"
        } else {
            "head_of_year"
        };
        let now = self.shared.clock.now();
        let raised = self
            .shared
            .store
            .alerts()
            .raise(
                &NewAlert {
                    person: o.person,
                    year_group: year_group.as_deref(),
                    kind: o.kind,
                    theme: o.theme,
                    severity: i64::from(o.severity),
                    route,
                    document: o.document,
                    clause: o.clause,
                    summary: &o.summary,
                    key: &o.key,
                    evidence: &o.evidence,
                },
                FOLD,
                now,
            )
            .await?;
        if let Raised::New(id) = raised {
            tracing::warn!(
                alert = id,
                route,
                severity = o.severity,
                "alert: {}",
                o.summary
            );
            if route == "dsl" && self.notify {
                self.email_dsl(id, &o, now).await?;
                let local = now.to_zoned(self.shared.engine.current().policy.timezone().clone());
                if o.severity >= 5
                    && self.schedule.out_of_hours(&local)
                    && let Some(on_call) = &self.out_of_hours_email
                {
                    let (subject, body) = dsl_email(id, &o, now);
                    let subject = format!("OUT OF HOURS: {subject}");
                    self.shared
                        .store
                        .outbox()
                        .enqueue(on_call, &subject, &body, None, now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Each DSL account's roster address gets the alert's number, theme and severity,
    /// never the content: they open it in the console.
    async fn email_dsl(
        &self,
        id: i64,
        o: &Occurrence<'_>,
        now: jiff::Timestamp,
    ) -> anyhow::Result<()> {
        let store = &self.shared.store;
        for account in store.accounts().list().await? {
            if account.role != "dsl" || account.disabled.is_some() {
                continue;
            }
            let Some(email) = store.people().email_of(&account.username).await? else {
                tracing::warn!(
                    dsl = account.username,
                    "no email address for this DSL in the roster"
                );
                continue;
            };
            let (subject, body) = dsl_email(id, o, now);
            store
                .outbox()
                .enqueue(&email, &subject, &body, Some(&account.username), now)
                .await?;
        }
        Ok(())
    }
}

/// One line on what a person did that a rule alerts on: a web block or warning, or a
/// message the mail filter decided (the verdict says what happened to it).
fn decision_summary(
    d: &hallpass_store::alert_sources::RuleDecision,
    document: &str,
    clause: &str,
) -> String {
    let what = match d.verdict.as_str() {
        "warn" => format!("{} was warned from {}", d.person, d.target),
        "quarantine" => format!("{}'s email ({}) was held", d.person, d.target),
        "allow" => format!("{}'s email ({}) was delivered", d.person, d.target),
        _ if d.kind == "mail" => format!("{}'s email ({}) was rejected", d.person, d.target),
        _ => format!("{} was blocked from {}", d.person, d.target),
    };
    format!("{what} by rule {} ({document} {clause})", d.rule)
}

/// The email about a DSL alert: its number, theme, severity and pupil, never the content.
fn dsl_email(id: i64, o: &Occurrence<'_>, now: jiff::Timestamp) -> (String, String) {
    let subject = format!(
        "Safeguarding alert #{id}: {} (severity {}) about {}",
        o.theme, o.severity, o.person
    );
    let body = format!(
        "A severity {} safeguarding alert was raised about {}{} at {}.\n\n\
         Theme: {}.\n\nOpen alert #{id} in the Hallpass console (Alerts) to see the \
         evidence and act on it. What was searched is not in this email: it is \
         visible only inside an authorised investigation.",
        o.severity,
        o.person,
        o.year_group
            .map(|y| format!(" (Year {y})"))
            .unwrap_or_default(),
        now,
        o.theme,
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn school_hours_and_weekends() {
        let section = SafeguardingSection {
            school_hours: Some("08:00-17:00".into()),
            ..SafeguardingSection::default()
        };
        let s = Schedule::from_section(&section).unwrap();
        let at = |t: &str| {
            t.parse::<jiff::civil::DateTime>()
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
        };
        assert!(!s.out_of_hours(&at("2026-11-23T10:00")), "Monday morning");
        assert!(s.out_of_hours(&at("2026-11-23T17:00")), "Monday at five");
        assert!(s.out_of_hours(&at("2026-11-23T07:59")), "before eight");
        assert!(s.out_of_hours(&at("2026-11-28T10:00")), "Saturday");
        for bad in ["8-17", "17:00-08:00", "08:00", "25:00-26:00"] {
            let section = SafeguardingSection {
                school_hours: Some(bad.into()),
                ..SafeguardingSection::default()
            };
            assert!(Schedule::from_section(&section).is_err(), "{bad}");
        }
    }
}
