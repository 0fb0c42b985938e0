//! The time range every analytics read takes: `from` and `to` as RFC 3339
//! instants or `YYYY-MM-DD` dates (UTC midnight), widened to whole buckets
//! of the read's granularity, and capped so one answer stays small and
//! fast. Each rule breaks with a 400 naming the field.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use platform::{ApiError, ApiResult};

/// The length of one bucket (a point of a series, a retention period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    /// An ISO week, Monday to Monday (PostgreSQL's `date_trunc('week')`).
    Week,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    pub fn length(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
            Self::Week => Duration::weeks(1),
        }
    }

    /// The start of the bucket holding `instant`.
    pub fn floor(self, instant: NaiveDateTime) -> NaiveDateTime {
        let day = instant.date();
        match self {
            Self::Hour => day.and_time(
                NaiveTime::from_hms_opt(instant.hour(), 0, 0).expect("an hour of the day"),
            ),
            Self::Day => day.and_time(NaiveTime::MIN),
            Self::Week => {
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                monday.and_time(NaiveTime::MIN)
            }
        }
    }

    /// The start of the first bucket at or after `instant`.
    pub fn ceil(self, instant: NaiveDateTime) -> NaiveDateTime {
        let floor = self.floor(instant);
        if floor == instant {
            floor
        } else {
            floor + self.length()
        }
    }
}

/// `[from, to)`, both bucket starts, `from < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub bucket: Bucket,
}

impl Range {
    /// `from` and `to` as the client sent them, widened to whole buckets
    /// (`from` down to its bucket's start, `to` up to the next bucket
    /// boundary), holding at most `max_buckets` buckets.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        bucket: Bucket,
        max_buckets: i64,
    ) -> ApiResult<Self> {
        let from = instant("from", from)?;
        let to = instant("to", to)?;
        if from >= to {
            return Err(ApiError::invalid_field("to", "must be after from"));
        }
        let range = Self {
            from: bucket.floor(from),
            to: bucket.ceil(to),
            bucket,
        };
        if range.buckets() > max_buckets {
            return Err(ApiError::invalid_field(
                "to",
                format!(
                    "must be at most {max_buckets} {}s after from",
                    bucket.as_str()
                ),
            ));
        }
        Ok(range)
    }

    /// How many buckets the range holds.
    pub fn buckets(&self) -> i64 {
        let span = self.to - self.from;
        let length = self.bucket.length();
        // Whole buckets by construction; a remainder would round up.
        (span.num_milliseconds() + length.num_milliseconds() - 1) / length.num_milliseconds()
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Self {
        let span = self.to - self.from;
        Self {
            from: self.from - span,
            to: self.from,
            bucket: self.bucket,
        }
    }

    /// The start of each bucket, in order.
    pub fn starts(&self) -> impl Iterator<Item = NaiveDateTime> + '_ {
        let length = self.bucket.length();
        std::iter::successors(Some(self.from), move |t| Some(*t + length))
            .take_while(|t| *t < self.to)
    }
}

/// An instant as RFC 3339 (any offset, converted to UTC) or a `YYYY-MM-DD`
/// date (its UTC midnight), between the years 1970 and 9999.
pub fn instant(field: &str, text: Option<&str>) -> ApiResult<NaiveDateTime> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid_field(field, "is required"))?;
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| {
            ApiError::invalid_field(field, "must be an RFC 3339 instant or a YYYY-MM-DD date")
        })?;
    if !(1970..=9999).contains(&parsed.year()) {
        return Err(ApiError::invalid_field(
            field,
            "must be between 1970 and 9999",
        ));
    }
    // Stored timestamps have millisecond precision.
    let millis = parsed.and_utc().timestamp_millis();
    Ok(DateTime::from_timestamp_millis(millis)
        .map(|t| t.naive_utc())
        .unwrap_or(parsed))
}

/// A duration such as `90s`, `30m`, `1h` or `7d`, between `min` and `max`.
pub fn duration(field: &str, text: &str, min: Duration, max: Duration) -> ApiResult<Duration> {
    let invalid = || {
        ApiError::invalid_field(
            field,
            format!(
                "must be a whole number followed by s, m, h or d (as 30m or 1d), from {}s to {}d",
                min.num_seconds(),
                max.num_days()
            ),
        )
    };
    let text = text.trim();
    let split = text.len().checked_sub(1).ok_or_else(invalid)?;
    if !text.is_char_boundary(split) {
        return Err(invalid());
    }
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= 100_000)
        .ok_or_else(invalid)?;
    let length = match unit {
        "s" => Duration::seconds(number),
        "m" => Duration::minutes(number),
        "h" => Duration::hours(number),
        "d" => Duration::days(number),
        _ => return Err(invalid()),
    };
    if length < min || length > max {
        return Err(invalid());
    }
    Ok(length)
}

/// UTC, ISO 8601 with milliseconds and `Z`, as every answer writes times.
pub fn iso(instant: NaiveDateTime) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        instant("t", Some(text)).expect("an instant")
    }

    fn field_of(error: ApiError) -> Option<String> {
        match error {
            ApiError::BadRequest { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn dates_and_rfc3339_instants_are_read_as_utc() {
        assert_eq!(at("2026-12-01"), at("2026-12-01T00:00:00Z"));
        assert_eq!(at("2026-12-01T02:00:00+02:00"), at("2026-12-01T00:00:00Z"));
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-12-01T00:00:00",
            "0001-01-01",
        ] {
            assert!(instant("from", Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            field_of(instant("from", None).expect_err("missing")),
            Some("from".into())
        );
    }

    #[test]
    fn a_range_is_widened_to_whole_buckets() {
        let range = Range::parse(
            Some("2026-12-01T10:30:00Z"),
            Some("2026-12-01T12:00:01Z"),
            Bucket::Hour,
            100,
        )
        .expect("range");
        assert_eq!(range.from, at("2026-12-01T10:00:00Z"));
        assert_eq!(range.to, at("2026-12-01T13:00:00Z"));
        assert_eq!(range.buckets(), 3);
        assert_eq!(range.starts().count(), 3);
        assert_eq!(range.previous().from, at("2026-12-01T07:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(
            Bucket::Week.floor(at("2026-12-02T05:00:00Z")),
            at("2026-11-30")
        );
        assert_eq!(
            Bucket::Week.ceil(at("2026-12-02T05:00:00Z")),
            at("2026-12-07")
        );
    }

    #[test]
    fn an_empty_reversed_or_oversized_range_names_to() {
        for (from, to) in [
            ("2026-12-02", "2026-12-02"),
            ("2026-12-03", "2026-12-02"),
            ("2026-01-01", "2026-12-01"),
        ] {
            let error = Range::parse(Some(from), Some(to), Bucket::Day, 31).expect_err("refused");
            assert_eq!(field_of(error), Some("to".into()), "{from}..{to}");
        }
    }

    #[test]
    fn durations_take_a_unit_and_stay_within_bounds() {
        let (min, max) = (Duration::seconds(1), Duration::days(30));
        assert_eq!(
            duration("window", "30m", min, max).expect("30m"),
            Duration::minutes(30)
        );
        assert_eq!(
            duration("window", "1d", min, max).expect("1d"),
            Duration::days(1)
        );
        for bad in ["", "m", "0h", "-1h", "1w", "31d", "1.5h", "é"] {
            assert!(duration("window", bad, min, max).is_err(), "{bad}");
        }
    }
}
