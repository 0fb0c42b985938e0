//! What PostgreSQL's `jsonb` will make of a JSON text the intake keeps as
//! sent (`eventData`), decided before the text reaches the database.
//!
//! JSON allows more than `jsonb` stores, and a text that serde accepted can
//! still fail the INSERT or the COPY, which would be the client's fault
//! answered as a 500:
//! - numbers are `numeric`: at most 131,072 digits before the decimal point
//!   and 16,383 after it, the exponent applied (`1e200000`, `1e-200000`
//!   and `0e-99999` are refused with SQLSTATE 22003);
//! - strings cannot hold U+0000 or a lone UTF-16 surrogate (22P05);
//! - nesting is limited by the server's stack (`max_stack_depth`; 54001
//!   somewhere past 10,000 levels with the default 2 MB).
//!
//! The stored value is also not the text sent: `jsonb` prints numbers
//! without exponents (`1e5000` comes back as 5,001 digits) and puts a space
//! after every `:` and `,`. [`Footprint::stored_text_bytes`] bounds from
//! above the length of `"eventData"::text`, which is what every reader
//! (dashboards, exports) gets back, so that a size limit can hold for what
//! is stored rather than for what was sent.
//!
//! One pass over the bytes: strings are skipped with `memchr`, and only the
//! few bytes between them (punctuation, numbers) are looked at one by one.
//! The text must already be valid JSON syntax (serde checked it).

/// `numeric`'s limits (PostgreSQL `src/backend/utils/adt/numeric.c`:
/// `NUMERIC_WEIGHT_MAX` base-10000 digits, `NUMERIC_DSCALE_MAX`).
const MAX_INTEGER_DIGITS: i64 = 131_072;
const MAX_FRACTION_DIGITS: i64 = 16_383;
/// `numeric_in` refuses exponents from `INT_MAX / 2` on, even for zero.
const MAX_EXPONENT: i64 = (i32::MAX / 2) as i64;

/// Why a JSON text cannot be stored as `jsonb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unstorable {
    /// A number outside `numeric`'s range; holds the number as sent
    /// (cut to 40 characters).
    Number(String),
    /// `\u0000`, in a string or a key.
    Nul,
    /// A `\u` escape of half a surrogate pair.
    LoneSurrogate,
    /// Nested deeper than the caller allows.
    TooDeep { limit: usize },
}

/// What storing the text costs, when it can be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// At least the length of the stored value's text form.
    pub stored_text_bytes: usize,
    pub depth: usize,
}

/// Checks that `json` (valid JSON syntax) can be stored as `jsonb` and
/// nests at most `max_depth` levels.
pub fn check(json: &str, max_depth: usize) -> Result<Footprint, Unstorable> {
    let bytes = json.as_bytes();
    // Signed: whitespace removed and numbers shortened count against what
    // separators and expanded numbers add.
    let mut stored = isize::try_from(bytes.len()).unwrap_or(isize::MAX);
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        let next_quote = memchr::memchr(b'"', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let mut i = at;
        while i < next_quote {
            match bytes[i] {
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                    if depth > max_depth {
                        return Err(Unstorable::TooDeep { limit: max_depth });
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                b':' | b',' => stored += 1,
                b' ' | b'\t' | b'\n' | b'\r' => stored -= 1,
                b'-' | b'0'..=b'9' => {
                    let end = bytes[i..next_quote]
                        .iter()
                        .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                        .map_or(next_quote, |n| i + n);
                    let number = &json[i..end];
                    stored += number_growth(number)?;
                    i = end;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        if next_quote == bytes.len() {
            break;
        }
        at = skip_string(bytes, next_quote + 1)?;
    }
    Ok(Footprint {
        stored_text_bytes: usize::try_from(stored).unwrap_or(0),
        depth: deepest,
    })
}

/// Past the string whose contents start at `from`; refuses the escapes
/// `jsonb` cannot hold.
fn skip_string(bytes: &[u8], mut from: usize) -> Result<usize, Unstorable> {
    loop {
        let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[from..]) else {
            return Ok(bytes.len());
        };
        let at = from + offset;
        if bytes[at] == b'"' {
            return Ok(at + 1);
        }
        if bytes.get(at + 1) != Some(&b'u') {
            from = at + 2;
            continue;
        }
        let unit = code_unit(bytes, at + 2);
        match unit {
            Some(0) => return Err(Unstorable::Nul),
            Some(0xD800..=0xDBFF) => {
                let low = (bytes.get(at + 6..at + 8) == Some(b"\\u"))
                    .then(|| code_unit(bytes, at + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(Unstorable::LoneSurrogate);
                }
                from = at + 12;
            }
            Some(0xDC00..=0xDFFF) => return Err(Unstorable::LoneSurrogate),
            _ => from = at + 6,
        }
    }
}

/// The four hex digits of a `\u` escape at `at`.
fn code_unit(bytes: &[u8], at: usize) -> Option<u16> {
    let hex = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// How much longer `jsonb`'s text form of `number` is than `number`
/// (negative when shorter); an error if `numeric` cannot hold it.
fn number_growth(number: &str) -> Result<isize, Unstorable> {
    let unstorable = || Unstorable::Number(number.chars().take(40).collect());
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(e) => (&number[..e], number[e + 1..].parse::<i64>().ok()),
        None => return Ok(0),
    };
    let exponent = exponent
        .filter(|e| e.abs() < MAX_EXPONENT)
        .ok_or_else(unstorable)?;
    let negative = mantissa.starts_with('-');
    let digits = mantissa.trim_start_matches('-');
    let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction_digits = i64::try_from(fraction.len()).map_err(|_| unstorable())?;
    let scale = (fraction_digits - exponent).max(0);
    if scale > MAX_FRACTION_DIGITS {
        return Err(unstorable());
    }
    // The decimal position of the first significant digit (0 for the units).
    let significant = integer
        .bytes()
        .chain(fraction.bytes())
        .position(|d| d != b'0');
    let integer_digits = i64::try_from(integer.len()).map_err(|_| unstorable())?;
    let stored_integer_digits = match significant {
        None => 1,
        Some(first) => {
            let weight =
                integer_digits - 1 - i64::try_from(first).map_err(|_| unstorable())? + exponent;
            if weight >= MAX_INTEGER_DIGITS {
                return Err(unstorable());
            }
            weight.max(0) + 1
        }
    };
    let sign = i64::from(negative && significant.is_some());
    let stored = sign + stored_integer_digits + if scale > 0 { 1 + scale } else { 0 };
    let sent = i64::try_from(number.len()).map_err(|_| unstorable())?;
    isize::try_from(stored - sent).map_err(|_| unstorable())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(json: &str) -> usize {
        check(json, 64).expect("storable").stored_text_bytes
    }

    #[test]
    fn numbers_without_an_exponent_are_stored_as_sent() {
        assert_eq!(stored(r#"{"n": 1.50}"#), r#"{"n": 1.50}"#.len());
    }

    #[test]
    fn compact_text_gains_a_space_after_each_separator() {
        // jsonb prints {"a": 1, "b": [1, 2]}
        assert_eq!(
            stored(r#"{"a":1,"b":[1,2]}"#),
            r#"{"a": 1, "b": [1, 2]}"#.len()
        );
    }

    #[test]
    fn exponents_are_expanded_as_numeric_prints_them() {
        // Each expected length is PostgreSQL 15's `'{"n":X}'::jsonb::text`.
        for (number, printed) in [
            ("1e3", "1000"),
            ("1.50e1", "15.0"),
            ("0.0e-2", "0.000"),
            ("1.5E+2", "150"),
            ("-1.25e-1", "-0.125"),
            ("0.001e2", "0.1"),
            ("-0e5", "0"),
        ] {
            let json = format!(r#"{{"n":{number}}}"#);
            assert_eq!(
                stored(&json),
                format!(r#"{{"n": {printed}}}"#).len(),
                "{number}"
            );
        }
    }

    #[test]
    fn a_number_with_5001_digits_stored_is_counted_at_its_stored_length() {
        assert_eq!(stored(r#"[1e5000]"#), 5001 + 2);
    }

    #[test]
    fn numbers_beyond_numeric_are_refused() {
        for number in [
            "1e200000",
            "1e-200000",
            "1e131072",
            "1e-16384",
            "0e-99999",
            "1.5e-16383",
            "1e99999999999",
        ] {
            assert!(
                matches!(
                    check(&format!("[{number}]"), 64),
                    Err(Unstorable::Number(_))
                ),
                "{number}"
            );
        }
    }

    #[test]
    fn numbers_at_numerics_limits_are_storable() {
        for number in ["1e131071", "12e131070", "1e-16383", "0e999999999"] {
            assert!(check(&format!("[{number}]"), 64).is_ok(), "{number}");
        }
    }

    #[test]
    fn true_and_false_are_not_exponents() {
        assert_eq!(stored("[true,false,null]"), "[true, false, null]".len());
    }

    #[test]
    fn nul_escapes_are_refused_in_strings_and_keys_but_an_escaped_backslash_is_text() {
        assert_eq!(check(r#"{"a": "x\u0000"}"#, 64), Err(Unstorable::Nul));
        assert_eq!(check(r#"{"\u0000": 1}"#, 64), Err(Unstorable::Nul));
        assert!(check(r#"{"a": "\\u0000"}"#, 64).is_ok());
    }

    #[test]
    fn surrogates_must_come_in_pairs() {
        assert!(check(r#"["\ud83d\ude00"]"#, 64).is_ok());
        assert_eq!(check(r#"["\ud83d"]"#, 64), Err(Unstorable::LoneSurrogate));
        assert_eq!(check(r#"["\ude00"]"#, 64), Err(Unstorable::LoneSurrogate));
        assert_eq!(
            check(r#"["\ud83d\u0041"]"#, 64),
            Err(Unstorable::LoneSurrogate)
        );
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_and_brackets_in_strings_do_not_count() {
        assert_eq!(check("[[[]]]", 3).map(|f| f.depth), Ok(3));
        assert_eq!(check("[[[[]]]]", 3), Err(Unstorable::TooDeep { limit: 3 }));
        assert_eq!(
            check(r#"["[[[[", {"a": "{{{{"}]"#, 3).map(|f| f.depth),
            Ok(2)
        );
    }
}
