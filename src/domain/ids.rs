//! Slack identifiers, parsed once at the edge (config, payloads) so that the
//! rest of the code only handles valid values.

use std::fmt;

/// A Slack conversation id: a public/private channel (`C…`/`G…`) or a DM (`D…`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(String);

impl ChannelId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if is_slack_id(s, &['C', 'G', 'D']) {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "'{s}' is not a Slack channel id (expected something like C0123ABCD; \
                 find it under the channel's name > About > Channel ID)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Someone who can be named in config: a Slack user (`U…`/`W…`) or a user
/// group (`S…`), which is resolved to its members when it matters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    User(String),
    Group(String),
}

impl Principal {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if is_slack_id(s, &['U', 'W']) {
            Ok(Self::User(s.to_string()))
        } else if is_slack_id(s, &['S']) {
            Ok(Self::Group(s.to_string()))
        } else {
            Err(format!(
                "'{s}' is neither a Slack user id (U…/W…) nor a user group id (S…)"
            ))
        }
    }
    pub fn id(&self) -> &str {
        match self {
            Self::User(s) | Self::Group(s) => s,
        }
    }
    /// How Slack renders a mention of this principal.
    pub fn mention(&self) -> String {
        match self {
            Self::User(u) => format!("<@{u}>"),
            Self::Group(g) => format!("<!subteam^{g}>"),
        }
    }
}

/// Slack ids are an upper-case letter followed by upper-case letters and digits.
fn is_slack_id(s: &str, prefixes: &[char]) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if prefixes.contains(&c) => {}
        _ => return false,
    }
    let rest = chars.as_str();
    (2..=20).contains(&rest.len())
        && rest
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_accept_public_private_and_dm_channels() {
        for ok in ["C0ACMEALERT", "G012AB", "D0123456"] {
            assert_eq!(ChannelId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn channel_ids_reject_names_and_users() {
        for bad in ["#alerts", "alerts", "U0123456", "", "C", "c0123abc"] {
            assert!(ChannelId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn principals_tell_users_from_groups() {
        assert_eq!(
            Principal::parse("U0PLATLEAD").unwrap(),
            Principal::User("U0PLATLEAD".into())
        );
        assert_eq!(
            Principal::parse("S0ONCALL").unwrap(),
            Principal::Group("S0ONCALL".into())
        );
        assert_eq!(
            Principal::parse("S0ONCALL").unwrap().mention(),
            "<!subteam^S0ONCALL>"
        );
        assert_eq!(Principal::parse("W0ENT").unwrap().mention(), "<@W0ENT>");
        assert!(Principal::parse("C0CHANNEL").is_err());
        assert!(Principal::parse("@alice").is_err());
    }
}
