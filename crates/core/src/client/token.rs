//! The LaunchDarkly access token as a secret: redacted in `Debug` and `Display`, never serialisable, read from
//! `LD_ACCESS_TOKEN`.

use std::fmt;

use crate::Error;

/// The environment variable the token is read from.
pub const TOKEN_ENV: &str = "LD_ACCESS_TOKEN";

/// What `Debug` and `Display` print instead of the token.
pub const REDACTED: &str = "<redacted>";

/// An API access token. It deliberately implements neither `Serialize` nor `Clone`-to-string conversions, and its
/// formatting never shows the value, so it cannot leak through logs, errors or plan files by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps `token`, rejecting values that cannot be an HTTP header (the error never quotes the value).
    pub fn new(token: impl Into<String>) -> Result<Self, Error> {
        let token = token.into();
        let trimmed = token.trim();
        if trimmed.is_empty() {
            return Err(Error::config(
                format!("{TOKEN_ENV} is empty"),
                Some("create an API access token in LaunchDarkly (Account settings → Authorization)".to_owned()),
            ));
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(Error::config(
                "the access token contains characters that cannot be sent in an HTTP header",
                Some(format!("check {TOKEN_ENV} for stray quotes, newlines or non-ASCII characters")),
            ));
        }
        Ok(AccessToken(trimmed.to_owned()))
    }

    /// Reads [`TOKEN_ENV`].
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(TOKEN_ENV) {
            Ok(v) => Self::new(v),
            Err(std::env::VarError::NotPresent) => Err(Error::config(
                format!("{TOKEN_ENV} is not set"),
                Some(format!("export {TOKEN_ENV}=<an API access token with write access to the projects>")),
            )),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::config(format!("{TOKEN_ENV} is not valid UTF-8"), None))
            }
        }
    }

    /// The raw value, for the `Authorization` header, and to scrub it from error text a server echoes.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken({REDACTED})")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_redacted() {
        let t = AccessToken::new("canary-5f1d").unwrap();
        assert_eq!(format!("{t:?}"), "AccessToken(<redacted>)");
        assert_eq!(format!("{t:#?}"), "AccessToken(<redacted>)");
        assert_eq!(t.to_string(), "<redacted>");
        assert_eq!(t.expose(), "canary-5f1d");
    }

    #[test]
    fn surrounding_whitespace_is_dropped() {
        assert_eq!(AccessToken::new("  api-1234\n").unwrap().expose(), "api-1234");
    }

    #[test]
    fn rejects_empty_and_unsendable_values_without_quoting_them() {
        let e = AccessToken::new("   ").unwrap_err();
        assert_eq!(e.to_string(), "LD_ACCESS_TOKEN is empty");
        let e = AccessToken::new("canary-a\nb").unwrap_err();
        assert_eq!(e.to_string(), "the access token contains characters that cannot be sent in an HTTP header");
        assert!(!format!("{e:?}").contains("canary"));
    }
}
