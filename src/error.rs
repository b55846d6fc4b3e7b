//! The core's one error type.

use crate::protocol::ProtocolError;

/// Everything that can go wrong in the core. Boundaries (napi, C) map it once each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An option has a value the adapter cannot use.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as the user spelled it.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis refused, failed or could not be reached. Passwords are never part of the text.
    #[error("redis: {0}")]
    Redis(String),
    /// A message could not be understood.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// A cluster request did not get every answer in time. The message is the official adapter's.
    #[error("{message}")]
    Timeout {
        /// The official text, e.g. `timeout reached while waiting for allRooms response`.
        message: String,
        /// Responses received before the deadline.
        received: usize,
        /// Responses expected.
        expected: usize,
    },
    /// More arrived than the local server could take in time; the message says what was dropped.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The adapter was closed.
    #[error("adapter closed")]
    Closed,
}

impl Error {
    /// The message without the `redis: ` prefix of [`Error::Redis`], for nesting in another
    /// Redis error's text.
    pub(crate) fn detail(&self) -> String {
        match self {
            Error::Redis(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        Error::Redis(redact(&err.to_string()))
    }
}

/// Removes anything that looks like the password part of a URL (`//user:secret@`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let user = authority[..at].split(':').next().unwrap_or("");
                out.push_str(user);
                if authority[..at].contains(':') {
                    out.push_str(":***");
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(redact("redis://user:secret@host:6379/0"), "redis://user:***@host:6379/0");
        assert_eq!(redact("failed redis://:pw@h x"), "failed redis://:***@h x");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("no url"), "no url");
    }
}
