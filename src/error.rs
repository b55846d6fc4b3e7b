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
    /// Messages were dropped at a [`Limits`](crate::limits::Limits) bound or for being
    /// malformed (reported at most once a second per kind, with how many since the last report).
    #[error("dropped {count} {kind} message{}: {detail}", if *count == 1 { "" } else { "s" })]
    Dropped {
        /// Why.
        kind: crate::limits::DropKind,
        /// How many since the last report of this kind.
        count: u64,
        /// The last one: its size or what is wrong with it, and where it came from.
        detail: String,
    },
}

/// The stable code of every [`Error`]: the one list the shells read. The npm package sets
/// [`ErrorCode::as_str`] on `err.code` (and exports the list as `ErrorCodes`); the C library
/// maps each code to its `SioResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `ERR_SIO_OPTION`: an option or argument the adapter cannot use.
    Option,
    /// `ERR_SIO_REDIS`: Redis refused, failed or could not be reached.
    Redis,
    /// `ERR_SIO_PROTOCOL`: a message could not be understood.
    Protocol,
    /// `ERR_SIO_TIMEOUT`: a cluster request did not get every answer in time.
    Timeout,
    /// `ERR_SIO_OVERLOADED`: more arrived than could be taken in time.
    Overloaded,
    /// `ERR_SIO_CLOSED`: the adapter was closed.
    Closed,
    /// `ERR_SIO_TOO_LARGE`: over `maxMessageBytes`.
    TooLarge,
    /// `ERR_SIO_TOO_COMPLEX`: over `maxMessageValues` or `maxMessageDepth`.
    TooComplex,
    /// `ERR_SIO_MALFORMED`: not a message of the protocol.
    Malformed,
}

impl ErrorCode {
    /// Every code, in a stable order.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::Option,
        ErrorCode::Redis,
        ErrorCode::Protocol,
        ErrorCode::Timeout,
        ErrorCode::Overloaded,
        ErrorCode::Closed,
        ErrorCode::TooLarge,
        ErrorCode::TooComplex,
        ErrorCode::Malformed,
    ];

    /// The code as JS sees it on `err.code`, e.g. `ERR_SIO_TIMEOUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Option => "ERR_SIO_OPTION",
            ErrorCode::Redis => "ERR_SIO_REDIS",
            ErrorCode::Protocol => "ERR_SIO_PROTOCOL",
            ErrorCode::Timeout => "ERR_SIO_TIMEOUT",
            ErrorCode::Overloaded => "ERR_SIO_OVERLOADED",
            ErrorCode::Closed => "ERR_SIO_CLOSED",
            ErrorCode::TooLarge => "ERR_SIO_TOO_LARGE",
            ErrorCode::TooComplex => "ERR_SIO_TOO_COMPLEX",
            ErrorCode::Malformed => "ERR_SIO_MALFORMED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Error {
    /// The stable code of the error (a drop's is its kind's, [`crate::limits::DropKind::code`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidOption { .. } => ErrorCode::Option,
            Error::Redis(_) => ErrorCode::Redis,
            Error::Protocol(_) => ErrorCode::Protocol,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::Overloaded(_) => ErrorCode::Overloaded,
            Error::Closed => ErrorCode::Closed,
            Error::Dropped { kind, .. } => kind.code(),
        }
    }

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

/// What replaces a secret in a text.
const HIDDEN: &str = "***";

/// Query parameters of Redis URLs whose value is a secret (compared without case).
const SECRET_PARAMETERS: [&str; 3] = ["password", "pass", "sentinelpassword"];

/// Secrets shorter than this are not noted (hiding every `abc` in every text would garble it);
/// URL forms still hide them.
const MIN_NOTED_SECRET: usize = 4;

/// Most secrets noted per process.
const MAX_NOTED_SECRETS: usize = 256;

/// The secrets of the Redis URLs this process was given ([`note_secrets`]), hidden wherever
/// they appear: where an unencoded password with a space or a quote ends, no pattern can tell.
static NOTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Remembers the secrets of `url` (its userinfo password and `password`, `pass`,
/// `sentinelPassword` parameters, as written and percent-decoded), so that [`redact`] hides
/// them in any text, in any form. Called with every URL the library is given, before anything
/// can fail with it in the message.
pub fn note_secrets(url: &str) {
    let mut noted = NOTED.lock().unwrap_or_else(|p| p.into_inner());
    for secret in secrets_of(url) {
        if secret.len() >= MIN_NOTED_SECRET && !noted.contains(&secret) && noted.len() < MAX_NOTED_SECRETS {
            noted.push(secret);
        }
    }
    // Longest first, so that a secret holding another is hidden whole.
    noted.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The secrets of `url`, as written, percent-decoded and escaped.
fn secrets_of(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (masked, values) = mask_parameters(url);
    found.extend(values);
    if let Some((from, to)) = userinfo_password(&masked) {
        found.push(masked[from..to].to_owned());
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    // As `Debug` output and JSON write them (quotes and backslashes escaped).
    let escaped: Vec<String> = found.iter().map(|s| s.escape_debug().to_string()).collect();
    found.extend(escaped);
    found
}

/// Hides the secrets in `text`: those noted from URLs this process was given ([`note_secrets`]),
/// and, in every URL, the password of a userinfo (`user:secret@`, with any scheme, with or
/// without `//`, whatever characters the password holds, `/ @ # ?` included) and the value of a
/// `password`, `pass` or `sentinelPassword` query parameter. Every error, event, log line and
/// `Debug` text that may hold a URL goes through here, in Rust, C and JS alike.
pub fn redact(text: &str) -> String {
    let mut text = text.to_owned();
    for secret in NOTED.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), HIDDEN);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`').unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        out.push_str(&redact_token(token));
        let gap = tail.find(|c: char| !(c.is_whitespace() || c == '"' || c == '\'' || c == '`')).unwrap_or(tail.len());
        out.push_str(&tail[..gap]);
        rest = &tail[gap..];
    }
    out
}

/// [`redact`] of one URL-like token: the secret query parameters first (their values may hold
/// `@`), then the userinfo's password.
fn redact_token(token: &str) -> String {
    let (mut token, _) = mask_parameters(token);
    if let Some((from, to)) = userinfo_password(&token) {
        token.replace_range(from..to, HIDDEN);
    }
    token
}

/// `text` with the values of its secret query parameters (up to the next `&`) hidden, and the
/// values hidden.
fn mask_parameters(text: &str) -> (String, Vec<String>) {
    let mut text = text.to_owned();
    let mut values = Vec::new();
    let mut from = 0;
    while let Some(eq) = text[from..].find('=').map(|i| from + i) {
        let name_start = text[..eq].rfind(['?', '&', ';']).map_or(0, |i| i + 1);
        let value_end = text[eq + 1..].find('&').map_or(text.len(), |i| eq + 1 + i);
        if SECRET_PARAMETERS.iter().any(|p| text[name_start..eq].eq_ignore_ascii_case(p)) && value_end > eq + 1 {
            values.push(text[eq + 1..value_end].to_owned());
            text.replace_range(eq + 1..value_end, HIDDEN);
            from = eq + 1 + HIDDEN.len();
        } else {
            from = eq + 1;
        }
    }
    (text, values)
}

/// Where the password of the userinfo of `token` is (from after its `:` to the last `@`), if
/// it has one.
fn userinfo_password(token: &str) -> Option<(usize, usize)> {
    let at = token.rfind('@')?;
    let start = userinfo_start(&token[..at]);
    let from = start + token[start..at].find(':')? + 1;
    (from < at).then_some((from, at))
}

/// Where the userinfo of `before_at` (a URL up to its last `@`) starts: after `scheme://`,
/// `scheme:/` or `scheme:`, or at once without a scheme.
fn userinfo_start(before_at: &str) -> usize {
    if let Some(i) = before_at.find("://") {
        return i + 3;
    }
    let scheme = before_at
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
        .filter(|&i| i > 0 && before_at[i..].starts_with(':') && before_at.as_bytes()[0].is_ascii_alphabetic());
    match scheme {
        // `scheme:/userinfo` or `scheme:userinfo`; but `user:secret` alone has no scheme: the
        // part before the first `:` is a scheme only when a second `:` follows (the password's).
        Some(i) if before_at[i + 1..].starts_with('/') => i + 2,
        Some(i) if before_at[i + 1..].contains(':') => i + 1,
        _ => 0,
    }
}

/// `%XX` sequences decoded (lossy UTF-8).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        const SECRET: &str = "s3cr/e@t#x?y";
        let cases = [
            (format!("redis://user:{SECRET}@host:6379/0"), "redis://user:***@host:6379/0".to_owned()),
            (format!("failed redis://:{SECRET}@h x"), "failed redis://:***@h x".to_owned()),
            (format!("rediss://default:{SECRET}@h:1?x=1"), "rediss://default:***@h:1?x=1".to_owned()),
            (format!("redis:/user:{SECRET}@127.0.0.1:1"), "redis:/user:***@127.0.0.1:1".to_owned()),
            (format!("redis:user:{SECRET}@127.0.0.1:1"), "redis:user:***@127.0.0.1:1".to_owned()),
            (format!("user:{SECRET}@127.0.0.1:1"), "user:***@127.0.0.1:1".to_owned()),
            (format!("not a URL: \"redis+sentinel://:{SECRET}@h:1/m\""), "not a URL: \"redis+sentinel://:***@h:1/m\"".to_owned()),
            ("redis+sentinel://127.0.0.1:1/mymaster?sentinelPassword=abc&bogus=1".to_owned(), "redis+sentinel://127.0.0.1:1/mymaster?sentinelPassword=***&bogus=1".to_owned()),
            ("redis://h:1?PASSWORD=abc".to_owned(), "redis://h:1?PASSWORD=***".to_owned()),
            ("redis-cluster://h:1,h:2?pass=abc#f".to_owned(), "redis-cluster://h:1,h:2?pass=***".to_owned()),
            ("(redis://u:abc@h), redis://u:def@h".to_owned(), "(redis://u:***@h), redis://u:***@h".to_owned()),
            ("redis://host:6379".to_owned(), "redis://host:6379".to_owned()),
            ("redis://user@host:6379".to_owned(), "redis://user@host:6379".to_owned()),
            ("error: host:6379 refused".to_owned(), "error: host:6379 refused".to_owned()),
            ("no url, x=1 y=2".to_owned(), "no url, x=1 y=2".to_owned()),
            ("é redis://ü:ß@h ü".to_owned(), "é redis://ü:***@h ü".to_owned()),
            (format!("x redis+sentinel://127.0.0.1:1/m?sentinelPassword={SECRET}&bogus=1 y"), "x redis+sentinel://127.0.0.1:1/m?sentinelPassword=***&bogus=1 y".to_owned()),
            (format!("(redis://127.0.0.1:1/x?password={SECRET})"), "(redis://127.0.0.1:1/x?password=***".to_owned()),
        ];
        for (text, want) in cases {
            let got = redact(&text);
            assert_eq!(got, want, "{text}");
            assert!(!got.contains("abc") && !got.contains("s3cr"), "{got}");
        }
    }

    #[test]
    fn noted_secrets_are_hidden_in_any_form() {
        note_secrets("redis://u:sp4ce pa\"ss@127.0.0.1:1/x?sentinelPassword=an%20other");
        let text = redact("bad URL (redis://u:sp4ce pa\"ss@127.0.0.1:1/x) with an other and an%20other; Debug: password: Some(\"sp4ce pa\\\"ss\")");
        for secret in ["sp4ce", "an other", "an%20other"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
