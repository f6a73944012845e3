//! `ldexp demo`: a narrated tour on a throwaway in-process emulator seeded from `examples/remote.yaml` — plan,
//! apply, plan again (no changes), drift (exit 0) — that needs no LaunchDarkly account and no credentials.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ldexp_core::client::AccessToken;
use ldexp_emulator::{Seed, ServerConfig, serve};

use super::apply::{execute, report_text};
use super::drift::status as drift_status;
use super::plan::fresh_plan;
use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render;
use crate::render::drift::{self, DriftReport};

/// `ldexp demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The directory with the example specs and the emulator seed `remote.yaml`.
    #[arg(long, default_value = "examples", value_name = "DIR")]
    pub examples: PathBuf,
}

/// Runs the demo.
pub fn run(args: &DemoArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(tour(args, g))
}

fn say(text: &str) -> Result<()> {
    super::write_stdout(&format!("\n\u{2500}\u{2500} {text}\n"))
}

async fn tour(args: &DemoArgs, g: &Globals) -> Result<ExitStatus> {
    let seed_path = args.examples.join("remote.yaml");
    let seed = Seed::from_path(&seed_path)?;
    // The loader reads only documents with a `kind`, so the seed and the CI workflows beside the specs are skipped.
    let files = vec![args.examples.clone()];
    let token = format!("demo-{}", std::process::id());
    let server = serve(ServerConfig { token: token.clone(), seed: Some(seed), ..ServerConfig::default() }).await?;
    let url = server.url();
    let connection = Connection::to(url.clone());
    let client = crate::client::client_with(&connection, AccessToken::new(token)?)?;
    let color = g.color_stdout();

    super::write_stdout(
        "ldexp keeps LaunchDarkly experiments in sync with YAML specs, like Terraform: plan, review, apply.\n",
    )?;
    super::write_stdout(&format!(
        "This demo runs against an in-memory LaunchDarkly emulator at {url}, seeded with {} (its flags, metrics \
         and environments). No account or token is needed.\n",
        seed_path.display()
    ))?;
    super::write_stdout(&format!("The specs are the YAML files in {}/.\n", args.examples.display()))?;

    say("1. `ldexp plan`: read only what the specs need, and show the exact changes to make.")?;
    let plan = fresh_plan(&client, &files, false).await?;
    super::write_stdout(&render::human::human(&plan, color))?;
    super::write_stdout(
        "\nHow to read it: `+` creates, `±` restarts (a new iteration; the running one stops collecting data), `~` \
         patches, `-` stops or archives. Under each object: the fields that change, then the exact requests apply \
         will send, in order. Save it with `ldexp plan --out plan.json` to apply exactly this later.\n",
    )?;

    say(
        "2. `ldexp apply --auto-approve`: send those requests. Objects run concurrently; each object's steps in order.",
    )?;
    let report = execute(&plan, &client, connection.concurrency).await;
    super::write_stdout(&report_text(&report))?;

    say("3. `ldexp plan` again: the remote now matches the specs, so there is nothing to do. Apply is idempotent.")?;
    let again = fresh_plan(&client, &files, false).await?;
    super::write_stdout(&render::human::human(&again, color))?;

    say("4. `ldexp drift`: the nightly check. Exit 0 means in sync, 2 means someone changed LaunchDarkly by hand.")?;
    let drift_report = DriftReport::from_plan(&again);
    super::write_stdout(&drift::human(&drift_report, color))?;
    let code = drift_status(&drift_report);
    super::write_stdout(&format!("drift exit code: {}\n", code.code()))?;

    server.shutdown().await;
    say(
        "Done; the emulator is stopped. Next: `ldexp validate`, then `ldexp plan` on your own specs with LD_ACCESS_TOKEN.",
    )?;
    let ok = report.succeeded() && again.is_empty() && code == ExitStatus::Success;
    if !ok {
        eprintln!("error: the demo did not converge; this is a bug in ldexp or in the examples");
    }
    Ok(if ok { ExitStatus::Success } else { ExitStatus::Failure })
}
