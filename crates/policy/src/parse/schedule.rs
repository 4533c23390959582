//! Calendars and periods: dates, date ranges, days of the week, `HH:MM-HH:MM` windows.

use std::str::FromStr;

use jiff::civil::Date;
use toml_edit::Item;

use super::reader::*;
use crate::decide::Action;
use crate::diag::Reporter;
use crate::model::*;

pub(super) fn parse_dates(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Vec<DateRange> {
    let field = got.as_ref().map(|g| g.2.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (i, s) in strings(r, got).unwrap_or_default().into_iter().enumerate() {
        let (a, b) = s.value.split_once("..").unwrap_or((&s.value, &s.value));
        match (Date::from_str(a.trim()), Date::from_str(b.trim())) {
            (Ok(start), Ok(end)) if start <= end => out.push(DateRange { start, end }),
            (Ok(_), Ok(_)) => r.error(&s.span, format!("`{field}[{i}]`: range `{}` ends before it starts", s.value)),
            _ => r.error(
                &s.span,
                format!("`{field}[{i}]`: `{}` is not a date or date range (e.g. \"2026-12-25\" or \"2026-09-03..2026-10-23\")", s.value),
            ),
        }
    }
    out
}

pub(super) fn parse_calendar(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> CalendarDef {
    let dates = parse_dates(r, o.get("dates"));
    let except = parse_dates(r, o.get("except"));
    CalendarDef {
        name,
        dates,
        except,
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

pub(super) fn day_bits(s: &str) -> Option<u8> {
    let s = s.to_ascii_lowercase();
    match s.as_str() {
        "weekdays" => return Some(0b001_1111),
        "weekends" => return Some(0b110_0000),
        "daily" | "everyday" => return Some(0b111_1111),
        _ => {}
    }
    let i = DAYS
        .iter()
        .position(|d| *d == s)
        .or_else(|| LONG_DAYS.iter().position(|d| *d == s))?;
    Some(1 << i)
}

/// `HH:MM` (00:00..=24:00) as minutes after midnight.
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

pub(super) fn parse_period(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> PeriodDef {
    let path = o.path.clone();
    let mut days = 0u8;
    if let Some(list) = strings(r, o.required("days")) {
        for (i, d) in list.iter().enumerate() {
            match day_bits(&d.value) {
                Some(b) => days |= b,
                None => r.error(
                    &d.span,
                    format!("`{path}.days[{i}]`: `{}` is not a day (mon, tue, wed, thu, fri, sat, sun, weekdays, weekends, daily)", d.value),
                ),
            }
        }
        if list.is_empty() {
            r.error(
                &o.span,
                format!("`{path}.days` is empty: the period would never apply"),
            );
        }
    }
    let mut times = Vec::new();
    if let Some(list) = strings(r, o.required("times")) {
        for (i, t) in list.iter().enumerate() {
            let parsed = t
                .value
                .split_once(['-', '–'])
                .and_then(|(a, b)| Some((parse_hhmm(a)?, parse_hhmm(b)?)));
            match parsed {
                Some((from, to)) if from == to => {
                    r.error(&t.span, format!("`{path}.times[{i}]`: `{}` starts and ends at the same time", t.value))
                }
                Some((1440, _)) => {
                    r.error(&t.span, format!("`{path}.times[{i}]`: a window cannot start at 24:00"))
                }
                Some((from, to)) => times.push(TimeRange { from, to }),
                None => r.error(
                    &t.span,
                    format!("`{path}.times[{i}]`: malformed time range `{}` (expected \"HH:MM-HH:MM\", e.g. \"08:50-10:30\" or \"22:00-06:00\")", t.value),
                ),
            }
        }
        if list.is_empty() {
            r.error(
                &o.span,
                format!("`{path}.times` is empty: the period would never apply"),
            );
        }
    }
    let dates = parse_dates(r, o.get("dates"));
    let except = parse_dates(r, o.get("except"));
    let calendar = string(r, o.get("calendar"));
    PeriodDef {
        name,
        days,
        times,
        dates,
        except,
        calendar,
    }
}

pub(super) fn parse_action(r: &mut Reporter, s: &Sp<String>, field: &str) -> Option<Action> {
    match s.value.as_str() {
        "allow" => Some(Action::Allow),
        "block" => Some(Action::Block),
        "warn" => Some(Action::Warn),
        other => {
            r.error(&s.span, format!("`{field}`: unknown action `{other}` (expected \"allow\", \"block\" or \"warn\")"));
            None
        }
    }
}
