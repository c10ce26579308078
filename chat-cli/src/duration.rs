//! Durations on the command line, one syntax for every binary: a number (a fraction allowed)
//! and a unit, `ms`, `s`, `m`, `h`, `d` or `w` — `250ms`, `1.5s`, `15m`, `24h`, `7d`, `2w`.
//! What range makes sense is the caller's rule; this only reads the text.

use std::time::Duration;

/// Reads `<number><unit>`. The error says what is wrong with `text`, for the caller to prefix
/// with the flag it came from.
///
/// # Errors
/// No number, no unit, an unknown unit, a negative or non-finite value, or one too long for a
/// `Duration`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h, d or w)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let unit_seconds = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (ms, s, m, h, d or w)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * unit_seconds).map_err(|_| format!("{text:?} is too long"))
}

/// Reads a duration as [`parse`] does, of at least a millisecond: for a flag whose zero would
/// mean something else (a rule's `expires_in_ms` 0 is "never").
///
/// # Errors
/// As [`parse`], and a duration under 1 ms.
pub fn parse_nonzero(text: &str) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration < Duration::from_millis(1) {
        return Err(format!("{:?} is shorter than 1ms", text.trim()));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_refuses_what_rounds_to_no_millisecond() {
        assert_eq!(parse_nonzero("1ms"), Ok(Duration::from_millis(1)));
        for text in ["0s", "0.5ms", "0d"] {
            assert!(parse_nonzero(text).is_err(), "{text}");
        }
    }

    #[test]
    fn every_unit_and_fractions() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("15min", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            (" 7d ", Duration::from_secs(7 * 86_400)),
            ("2w", Duration::from_secs(14 * 86_400)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_text_is_named() {
        for bad in ["5", "s", "", "5y", "1.2.3s", "-1s", "1e400h"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad}: {err}");
        }
    }
}
