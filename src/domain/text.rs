//! Slack text helpers every layer uses: escaping user text, date tokens,
//! spans of time in words.

/// Escapes Slack's control characters `& < >` in text that did not come from
/// the bot (`slack.md`), for messages built with `format!` rather than a template.
pub fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A time as a Slack date token: each reader sees it in their own time zone.
/// The fallback (for clients that cannot render tokens) is UTC.
pub fn date_token(t: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} at {{time}}|{}>",
        t.timestamp(),
        t.format("%Y-%m-%d %H:%M UTC")
    )
}

/// A span of time in words a reader takes in at a glance: "under a minute",
/// "54 min", "2 h 10 min", "1 d 3 h". Negative spans read as their size.
pub fn duration_words(d: chrono::Duration) -> String {
    let mins = (d.num_seconds().abs() + 30) / 60;
    if mins == 0 {
        return "under a minute".into();
    }
    let (days, hours, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (days, hours, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A count and its noun, in the number the count needs: "1 job", "2 jobs",
/// "0 jobs". Every count the bot writes goes through this (or [`noun`]), so
/// no message, dialog or CLI line reads "1 job(s)".
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8> + Copy,
{
    format!("{n} {}", noun(n, one, many))
}

/// The noun alone, for a count written apart from it (`*3* jobs`).
pub fn noun<'a, N>(n: N, one: &'a str, many: &'a str) -> &'a str
where
    N: PartialEq + From<u8>,
{
    if n == N::from(1) {
        one
    } else {
        many
    }
}

/// `*` any run of characters, `?` one, anything else itself: asset globs in
/// the config (stakeholder rules, maintenance windows) and in maintenance
/// windows set from Slack.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_match("orders_*", "orders_daily"));
        assert!(glob_match("*_daily", "orders_daily"));
        assert!(glob_match("o?ders", "orders"));
        assert!(glob_match("rev?nue_*", "revenue_x"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("orders", "orders_daily"));
        assert!(!glob_match("revenue_*", "costs_daily"));
    }

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1usize, "job", "jobs"), "1 job");
        assert_eq!(count(2usize, "job", "jobs"), "2 jobs");
        assert_eq!(count(0i64, "job", "jobs"), "0 jobs");
        assert_eq!(count(1i64, "breach", "breaches"), "1 breach");
        assert_eq!(count(3u32, "breach", "breaches"), "3 breaches");
        assert_eq!(count(-1i32, "job", "jobs"), "-1 jobs");
        assert_eq!(noun(1usize, "person", "people"), "person");
        assert_eq!(noun(11usize, "person", "people"), "people");
    }
}
