//! Maintenance windows, pure: `MAINTENANCE_WINDOW` is one or more comma-separated
//! weekly ranges in UTC (`Sun 02:00-05:00`, `Sat 22:00-Sun 04:00`); a range may run
//! over the end of the week (`Sun 23:00-Mon 01:00`). Answers whether a moment is
//! inside a window and when the next window opens and closes.

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};
use std::fmt;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEK: u32 = 7 * 24 * 60;

/// One weekly range: its start in minutes since Monday 00:00 UTC, and its length in
/// minutes (it may run over the end of the week).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: u32,
    len: u32,
}

impl Range {
    /// Minutes from `minute` (of the week) to this range's start, 0 when it starts now.
    fn until_start(self, minute: u32) -> u32 {
        (self.start + WEEK - minute) % WEEK
    }

    fn contains(self, minute: u32) -> bool {
        (minute + WEEK - self.start) % WEEK < self.len
    }
}

/// The weekly windows in which the guard may move instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows(Vec<Range>);

/// One opening of a window: from `opens` (or now, when it is open) until `closes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opening {
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

impl Windows {
    /// Parses `Sun 02:00-05:00, Sat 22:00-Sun 04:00`. Names the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ranges: Vec<Range> =
            text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(range).collect::<Result<_, _>>()?;
        if ranges.is_empty() {
            return Err("names no window; expected e.g. \"Sun 02:00-05:00\" or \"Sat 22:00-Sun 04:00\"".into());
        }
        Ok(Self(ranges))
    }

    /// Whether `t` is inside a window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.0.iter().any(|r| r.contains(minute_of_week(t)))
    }

    /// The window open at `t`, else the next one to open.
    pub fn next(&self, t: DateTime<Utc>) -> Opening {
        let t = t.duration_trunc(Duration::minutes(1)).unwrap_or(t);
        let minute = minute_of_week(t);
        let at = |m: u32| t + Duration::minutes(i64::from(m));
        let open_now = self.0.iter().filter(|r| r.contains(minute));
        if let Some(closes) = open_now.map(|r| at(r.len - (minute + WEEK - r.start) % WEEK)).max() {
            return Opening { opens: t, closes };
        }
        let next = self.0.iter().min_by_key(|r| r.until_start(minute)).copied().unwrap_or(Range { start: 0, len: 0 });
        let opens = at(next.until_start(minute));
        Opening { opens, closes: opens + Duration::minutes(i64::from(next.len)) }
    }
}

impl serde::Serialize for Windows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                let (sd, st) = (r.start / 1440, r.start % 1440);
                // An end on a day boundary is that day's 24:00.
                let end = r.start + r.len - 1;
                let (ed, et) = (end / 1440 % 7, end % 1440 + 1);
                let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
                if sd == ed && r.len <= 1440 {
                    format!("{} {}-{}", DAYS[sd as usize], hm(st), hm(et))
                } else {
                    format!("{} {}-{} {}", DAYS[sd as usize], hm(st), DAYS[ed as usize], hm(et))
                }
            })
            .collect();
        write!(f, "{} UTC", shown.join(", "))
    }
}

fn minute_of_week(t: DateTime<Utc>) -> u32 {
    t.weekday().num_days_from_monday() * 1440 + t.hour() * 60 + t.minute()
}

/// `Sun 02:00-05:00` or `Sat 22:00-Sun 04:00`.
fn range(part: &str) -> Result<Range, String> {
    let bad = |why: &str| Err(format!("{part:?}: {why}; expected e.g. \"Sun 02:00-05:00\" or \"Sat 22:00-Sun 04:00\""));
    let Some((from, to)) = part.split_once('-') else { return bad("no '-' between the start and the end") };
    let Some(start) = moment(from.trim(), None).filter(|m| m % 1440 != 0 || !from.trim().ends_with("24:00")) else {
        return bad("the start is not \"<day> HH:MM\" (from 00:00 to 23:59)");
    };
    let Some(end) = moment(to.trim(), Some(start / 1440)) else { return bad("the end is not \"[<day>] HH:MM\"") };
    let end_day_named = to.trim().contains(' ');
    if !end_day_named && end <= start {
        return bad("the end is not after the start on that day (name the end's day to run past midnight)");
    }
    if end == start {
        return bad("the window is empty");
    }
    Ok(Range { start, len: if end > start { end - start } else { end + WEEK - start } })
}

/// `Sun 02:00` (or `02:00` on `day`): minutes since Monday 00:00; `24:00` is the end of the day.
fn moment(text: &str, day: Option<u32>) -> Option<u32> {
    let (day, time) = match text.split_once(' ') {
        Some((d, t)) => (DAYS.iter().position(|n| n.eq_ignore_ascii_case(d.trim()))? as u32, t.trim()),
        None => (day?, text),
    };
    let (h, m) = time.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(day * 1440 + h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-29 is a Sunday.
    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_window_on_one_day_contains_its_start_and_not_its_end() {
        let w = Windows::parse("Sun 02:00-05:00").unwrap();
        assert!(!w.contains(at("2026-11-29T01:59:59Z")));
        assert!(w.contains(at("2026-11-29T02:00:00Z")));
        assert!(w.contains(at("2026-11-29T04:59:59Z")));
        assert!(!w.contains(at("2026-11-29T05:00:00Z")));
        assert!(!w.contains(at("2026-11-22T12:00:00Z")), "another Sunday, outside the hours");
        assert_eq!(w.to_string(), "Sun 02:00-05:00 UTC");
    }

    #[test]
    fn a_window_may_run_past_midnight_and_past_the_end_of_the_week() {
        let w = Windows::parse("Sat 22:00-Sun 04:00, sun 23:00-mon 01:00").unwrap();
        assert!(w.contains(at("2026-11-28T23:00:00Z")), "Saturday night");
        assert!(w.contains(at("2026-11-29T03:00:00Z")), "Sunday morning");
        assert!(!w.contains(at("2026-11-29T12:00:00Z")));
        assert!(w.contains(at("2026-11-29T23:30:00Z")), "Sunday night");
        assert!(w.contains(at("2026-11-30T00:30:00Z")), "Monday, past the end of the week");
        assert!(!w.contains(at("2026-11-30T01:00:00Z")));
        assert_eq!(w.to_string(), "Sat 22:00-Sun 04:00, Sun 23:00-Mon 01:00 UTC");
    }

    #[test]
    fn next_is_the_open_window_or_the_first_to_open() {
        let w = Windows::parse("Sun 02:00-05:00, Wed 10:00-11:30").unwrap();
        let open = w.next(at("2026-11-29T03:10:20Z"));
        assert_eq!(open, Opening { opens: at("2026-11-29T03:10:00Z"), closes: at("2026-11-29T05:00:00Z") });
        let next = w.next(at("2026-11-29T05:00:00Z"));
        assert_eq!(next, Opening { opens: at("2026-12-02T10:00:00Z"), closes: at("2026-12-02T11:30:00Z") });
        let after = w.next(at("2026-12-02T11:30:00Z"));
        assert_eq!(after.opens, at("2026-12-06T02:00:00Z"), "a week on");
        let wraps = Windows::parse("Sun 23:00-Mon 01:00").unwrap().next(at("2026-11-30T00:15:00Z"));
        assert_eq!(wraps.closes, at("2026-11-30T01:00:00Z"));
    }

    #[test]
    fn a_whole_day_and_the_end_of_a_day_are_written_with_24_00() {
        let w = Windows::parse("Sat 00:00-24:00").unwrap();
        assert!(w.contains(at("2026-11-28T23:59:00Z")) && !w.contains(at("2026-11-29T00:00:00Z")));
        assert_eq!(w.to_string(), "Sat 00:00-24:00 UTC");
        let week = Windows::parse("Mon 00:00-Sun 24:00").unwrap();
        assert!(week.contains(at("2026-11-29T23:59:00Z")) && week.contains(at("2026-11-30T00:00:00Z")));
        assert_eq!(week.to_string(), "Mon 00:00-Sun 24:00 UTC");
        assert_eq!(Windows::parse(&week.to_string().replace(" UTC", "")).unwrap(), week, "the text parses back");
    }

    #[test]
    fn bad_windows_are_refused_with_the_part_named() {
        for (text, says) in [
            ("", "names no window"),
            ("Sunday 02:00-05:00", "the start is not"),
            ("Sun 2:00-05:00", "the start is not"),
            ("Sun 02:00", "no '-'"),
            ("Sun 02:00-25:00", "the end is not"),
            ("Sun 05:00-02:00", "the end is not after the start"),
            ("Sun 02:00-Sun 02:00", "the window is empty"),
            ("Sun 02:00-05:00, Mon 01:60-02:00", "\"Mon 01:60-02:00\""),
            ("Sun 24:00-Mon 02:00", "the start is not"),
        ] {
            let e = Windows::parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
