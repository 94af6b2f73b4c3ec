//! Durations as the config file and `/backfill` write them: `"60s"`,
//! `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.

use std::time::Duration;

/// Parses `"60s"`, `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty; write a duration such as \"60s\", \"15m\" or \"1h30m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "'{s}' is not a duration; write a number and a unit (ms, s, m, h, d), e.g. \"15m\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{s}' has a number that is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let step = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            "" => {
                return Err(format!(
                    "'{s}' has no unit; add one of ms, s, m, h, d (e.g. \"{n}s\")"
                ))
            }
            other => {
                return Err(format!(
                    "'{s}' has an unknown unit '{other}'; use ms, s, m, h or d"
                ))
            }
        };
        total += step;
    }
    Ok(total)
}
