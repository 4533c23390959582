//! Periods: named weekly windows in the school's time zone (lessons, lunchtime...),
//! limited to term dates and minus holidays. Evaluated on local wall-clock time, so a
//! 09:00 lesson starts at 09:00 on both sides of a DST change.

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::model::{DateRange, TimeRange};

/// A compiled period.
#[derive(Debug, Clone)]
pub(crate) struct Period {
    pub(crate) name: String,
    /// Bit 0 = Monday .. bit 6 = Sunday.
    pub(crate) days: u8,
    pub(crate) times: Vec<TimeRange>,
    /// Every list must admit a date (empty = no restriction); no `except` may contain it.
    pub(crate) date_lists: Vec<Vec<DateRange>>,
    pub(crate) except: Vec<DateRange>,
}

impl Period {
    /// Whether a window that started on `d` may apply.
    fn day_ok(&self, d: Date) -> bool {
        let bit = 1u8 << d.weekday().to_monday_zero_offset();
        self.days & bit != 0
            && self
                .date_lists
                .iter()
                .all(|l| l.is_empty() || l.iter().any(|r| r.contains(d)))
            && !self.except.iter().any(|r| r.contains(d))
    }

    /// Is local time `dt` inside this period? A window crossing midnight (22:00-06:00)
    /// belongs to the day it starts on, so its early-morning part checks yesterday.
    pub(crate) fn contains(&self, dt: DateTime) -> bool {
        let minute = u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0);
        let today = dt.date();
        let mut today_ok: Option<bool> = None;
        let mut yesterday_ok: Option<bool> = None;
        for t in &self.times {
            let hit = if t.from < t.to {
                minute >= t.from
                    && minute < t.to
                    && *today_ok.get_or_insert_with(|| self.day_ok(today))
            } else {
                (minute >= t.from && *today_ok.get_or_insert_with(|| self.day_ok(today)))
                    || (minute < t.to
                        && *yesterday_ok
                            .get_or_insert_with(|| today.yesterday().is_ok_and(|y| self.day_ok(y))))
            };
            if hit {
                return true;
            }
        }
        false
    }
}

impl Period {
    /// The end of the window of this period that local time `dt` is in (a window crossing
    /// midnight ends the next day), as an instant in `tz`.
    pub(crate) fn window_end(&self, dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
        let minute = i32::from(dt.hour()) * 60 + i32::from(dt.minute());
        let today = dt.date();
        self.times
            .iter()
            .filter_map(|t| {
                let (from, to) = (i32::from(t.from), i32::from(t.to));
                let end_day = if from < to {
                    (minute >= from && minute < to).then_some(today)
                } else if minute >= from {
                    today.tomorrow().ok()
                } else if minute < to {
                    Some(today)
                } else {
                    None
                }?;
                let end = end_day
                    .at(
                        i8::try_from(to / 60).ok()?,
                        i8::try_from(to % 60).ok()?,
                        0,
                        0,
                    )
                    .to_zoned(tz.clone())
                    .ok()?;
                Some(end.timestamp())
            })
            .min()
    }
}

/// Error from [`parse_instant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a time: use RFC 3339 (2026-10-05T09:30:00+01:00) or \"YYYY-MM-DD HH:MM\" in the school's time zone"
)]
pub struct TimeError(pub String);

/// Parse an instant written as RFC 3339 or as `YYYY-MM-DD HH:MM` local to `tz` (for the
/// CLI and tests). A local time skipped by a DST change resolves forwards, a repeated
/// one to its first occurrence.
pub fn parse_instant(text: &str, tz: &TimeZone) -> Result<Timestamp, TimeError> {
    let text = text.trim();
    if let Ok(ts) = Timestamp::from_str(text) {
        return Ok(ts);
    }
    let local = text.replacen(' ', "T", 1);
    DateTime::from_str(&local)
        .ok()
        .and_then(|dt| tz.to_ambiguous_zoned(dt).compatible().ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| TimeError(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn period(times: &[(u16, u16)], days: u8) -> Period {
        Period {
            name: "p".into(),
            days,
            times: times
                .iter()
                .map(|&(from, to)| TimeRange { from, to })
                .collect(),
            date_lists: vec![],
            except: vec![],
        }
    }

    #[test]
    fn crossing_midnight_belongs_to_start_day() {
        // Fridays 22:00-06:00: Friday night and early Saturday, not early Friday.
        let p = period(&[(22 * 60, 6 * 60)], 1 << 4);
        let fri_late = DateTime::from_str("2026-10-09T23:30").unwrap();
        let sat_early = DateTime::from_str("2026-10-10T05:59").unwrap();
        let fri_early = DateTime::from_str("2026-10-09T05:00").unwrap();
        let sat_six = DateTime::from_str("2026-10-10T06:00").unwrap();
        assert!(p.contains(fri_late));
        assert!(p.contains(sat_early));
        assert!(!p.contains(fri_early));
        assert!(!p.contains(sat_six));
    }

    #[test]
    fn local_times_parse_in_zone() {
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get("Europe/London")
            .unwrap();
        let summer = parse_instant("2026-07-01 09:00", &tz).unwrap();
        assert_eq!(summer.to_string(), "2026-07-01T08:00:00Z");
        assert!(parse_instant("tomorrow", &tz).is_err());
    }
}
