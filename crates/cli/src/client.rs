//! Builds the LaunchDarkly client from the global options and `LD_ACCESS_TOKEN` (the token goes nowhere else), and
//! the async runtime the network commands run on.

use anyhow::{Context as _, Result};
use ldexp_core::client::{AccessToken, BaseUrl, ClientConfig, HttpClient};

use crate::cmd::Globals;

/// The client for the global options, with the token read from `LD_ACCESS_TOKEN`.
pub fn client(g: &Globals) -> Result<HttpClient> {
    client_with(g, AccessToken::from_env()?)
}

/// The client for the global options with an explicit token (the demo uses its emulator's).
pub fn client_with(g: &Globals, token: AccessToken) -> Result<HttpClient> {
    let base_url = BaseUrl::resolve(g.base_url.as_deref())?;
    let mut config = ClientConfig::new(base_url, token);
    config.concurrency = g.concurrency.max(1);
    config.api_version.clone_from(&g.api_version);
    config.api_version_beta.clone_from(&g.api_version_beta);
    Ok(HttpClient::new(config)?)
}

/// The runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
