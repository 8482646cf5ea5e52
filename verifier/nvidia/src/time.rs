//! Verification time as Unix seconds, and the RFC 3339 form shown to people. Certificate
//! validity is always checked at a time the caller passes in, never only the system clock.
//! Calendar math, formatting and parsing are the `time` crate's.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, UTC). Years past 9999 get
/// more digits (a certificate "valid until" check at year 10000 must say so); times beyond
/// the `time` crate's ±999,999 years are shown as Unix seconds.
pub fn format_rfc3339(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{secs} s since 1970-01-01T00:00:00Z"),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` or a bare `YYYY-MM-DD` (midnight UTC).
/// `t` or a space may separate date and time; fractions are dropped; a leap second (`:60`)
/// counts as `:59`.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time (e.g. 2026-05-01T00:00:00Z)");
    let trimmed = text.trim();
    let mut full = if trimmed.len() == 10 {
        format!("{trimmed}T00:00:00Z")
    } else {
        trimmed.to_owned()
    };
    if !full.is_ascii() {
        return Err(bad());
    }
    if full.get(10..11) == Some(" ") {
        full.replace_range(10..11, "T");
    }
    if full.get(16..19) == Some(":60") {
        full.replace_range(17..19, "59");
    }
    OffsetDateTime::parse(&full, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in [0i64, 951_782_400, 1_777_593_600, 253_402_300_799, -86_400] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t, "{t}");
        }
        assert_eq!(format_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(i64::MAX),
            format!("{} s since 1970-01-01T00:00:00Z", i64::MAX)
        );
    }

    #[test]
    fn parses_forms() {
        let may = parse_rfc3339("2026-05-01T00:00:00Z").unwrap();
        assert_eq!(may, 1_777_593_600);
        assert_eq!(parse_rfc3339("2026-05-01").unwrap(), may);
        assert_eq!(parse_rfc3339(" 2026-05-01 00:00:00z ").unwrap(), may);
        assert_eq!(parse_rfc3339("2026-05-01T02:00:00+02:00").unwrap(), may);
        assert_eq!(parse_rfc3339("2026-04-30T23:00:00.5-01:00").unwrap(), may);
        assert_eq!(parse_rfc3339("2026-04-30T23:59:60Z").unwrap(), may - 1);
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z").unwrap(),
            1_709_164_800
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-05-01T25:00:00Z",
            "2026-05-01T00:00:00",
            "2026-05-01T00:00:00+0200",
            "x026-05-01",
            "2026-05-01T00:00:00.Z",
            "2026-05-01T00:00:00Zjunk",
            "2026-05-0é",
        ] {
            let err = parse_rfc3339(s).unwrap_err();
            assert!(err.contains("is not an RFC 3339 time"), "{s}: {err}");
        }
    }
}
