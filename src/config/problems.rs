//! What is wrong with the configuration: every missing or invalid item with
//! its key and how to fix it, collected rather than stopping at the first.

use std::fmt;

/// One problem found while loading configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The config key (`tenants[0].channel`) or environment variable (`SLACK_BOT_TOKEN`).
    pub key: String,
    /// What is wrong and how to fix it. Never contains a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, in file order then environment order.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}
