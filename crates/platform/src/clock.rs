//! Timestamps as the contract stores them.
//!
//! Every `TIMESTAMP(3)` column holds UTC wall time without a zone at
//! millisecond precision. Truncating here, before values reach SQL, means a
//! value read back equals the value written, and the Prisma side sees the
//! same instant.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// The current UTC time truncated to whole milliseconds, ready for a
/// `TIMESTAMP(3)` column.
pub fn now_millis() -> NaiveDateTime {
    to_db_timestamp(Utc::now())
}

/// Converts an instant to the contract's `TIMESTAMP(3)` representation.
pub fn to_db_timestamp(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.naive_utc().trunc_subsecs(3)
}

/// Reads a `TIMESTAMP(3)` value back as a UTC instant.
pub fn from_db_timestamp(value: NaiveDateTime) -> DateTime<Utc> {
    value.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    #[test]
    fn truncates_to_whole_milliseconds() {
        let instant = Utc
            .with_ymd_and_hms(2025, 11, 11, 11, 31, 17)
            .single()
            .and_then(|t| t.with_nanosecond(123_456_789))
            .expect("valid instant");
        assert_eq!(to_db_timestamp(instant).nanosecond(), 123_000_000);
    }

    #[test]
    fn round_trips_through_the_database_representation() {
        let stored = now_millis();
        assert_eq!(to_db_timestamp(from_db_timestamp(stored)), stored);
    }
}
