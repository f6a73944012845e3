//! Builds the LaunchDarkly client from the connection options and `LD_ACCESS_TOKEN` (the token goes nowhere else),
//! and the async runtime the network commands run on.

use anyhow::{Context as _, Result};
use ldexp_core::client::{AccessToken, BaseUrl, ClientConfig, HttpClient};

use crate::cmd::Connection;

/// The client for the connection options, with the token read from `LD_ACCESS_TOKEN`.
pub(crate) fn client(c: &Connection) -> Result<HttpClient> {
    client_with(c, AccessToken::from_env()?)
}

/// The client for the connection options with an explicit token (the demo uses its emulator's).
pub(crate) fn client_with(c: &Connection, token: AccessToken) -> Result<HttpClient> {
    let base_url = BaseUrl::resolve(c.base_url.as_deref())?;
    let mut config = ClientConfig::new(base_url, token);
    config.concurrency = c.concurrency.max(1);
    config.timeout = c.timeout;
    config.connect_timeout = c.connect_timeout;
    config.api_version.clone_from(&c.api_version);
    config.api_version_beta.clone_from(&c.api_version_beta);
    Ok(HttpClient::new(config)?)
}

/// The runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
