//! `ldexp demo`: a narrated tour on a throwaway in-process emulator seeded from `examples/remote.yaml` — plan,
//! apply, plan again (no changes), drift (exit 0) — that needs no LaunchDarkly account and no credentials. The
//! examples are built into the binary, so it runs from any directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use ldexp_core::client::AccessToken;
use ldexp_emulator::{Seed, ServerConfig, serve};

use super::apply::{Execution, closing, execute};
use super::drift::status as drift_status;
use super::plan::fresh_plan;
use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render;
use crate::render::drift::{self, DriftReport};

/// The seed the demo's emulator starts from.
const SEED: &str = "remote.yaml";

/// `examples/` of the repository as the binary carries it: the specs and the seed they plan against. (The CI
/// workflows under `examples/ci/` are not part of the tour.)
const BUNDLED: [(&str, &str); 7] = [
    (SEED, include_str!("../../../../examples/remote.yaml")),
    ("checkout-metrics.yaml", include_str!("../../../../examples/checkout-metrics.yaml")),
    ("checkout-layers.yaml", include_str!("../../../../examples/checkout-layers.yaml")),
    ("checkout-button-placement.yaml", include_str!("../../../../examples/checkout-button-placement.yaml")),
    ("pricing-banner.yaml", include_str!("../../../../examples/pricing-banner.yaml")),
    ("search-ranking.yaml", include_str!("../../../../examples/search-ranking.yaml")),
    ("signup-flow.yaml", include_str!("../../../../examples/signup-flow.yaml")),
];

/// `ldexp demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Tour your own directory of specs instead of the bundled examples; it must hold the emulator seed
    /// `remote.yaml` they plan against (format: README, "Seed format").
    #[arg(long, value_name = "DIR")]
    pub examples: Option<PathBuf>,
}

/// Where the tour's specs and seed are: a directory given with `--examples`, or the bundled copies written to a
/// temporary directory that lives as long as this value.
struct Examples {
    dir: PathBuf,
    described: String,
    _bundled: Option<tempfile::TempDir>,
}

impl Examples {
    fn locate(given: Option<&Path>) -> Result<Examples> {
        if let Some(dir) = given {
            if !dir.join(SEED).is_file() {
                bail!(
                    "{} has no {SEED}: --examples needs a directory of specs together with the emulator seed they \
                     plan against (like examples/ in the ldexp repository); without --examples the demo uses the \
                     examples built into ldexp",
                    dir.display()
                );
            }
            return Ok(Examples { dir: dir.to_owned(), described: format!("{}/", dir.display()), _bundled: None });
        }
        let tmp = tempfile::Builder::new()
            .prefix("ldexp-demo-")
            .tempdir()
            .context("cannot create a temporary directory for the bundled examples")?;
        for (name, text) in BUNDLED {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(Examples {
            dir: tmp.path().to_owned(),
            described: format!(
                "ldexp's bundled examples (examples/ in its repository), written to {} for this run",
                tmp.path().display()
            ),
            _bundled: Some(tmp),
        })
    }
}

/// Runs the demo.
pub(crate) fn run(args: &DemoArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(tour(args, g))
}

fn say(text: &str) -> Result<()> {
    super::write_stdout(&format!("\n\u{2500}\u{2500} {text}\n"))
}

async fn tour(args: &DemoArgs, g: &Globals) -> Result<ExitStatus> {
    let examples = Examples::locate(args.examples.as_deref())?;
    let seed_path = examples.dir.join(SEED);
    let seed = Seed::from_path(&seed_path)?;
    // The loader reads only documents with a `kind`, so the seed and the CI workflows beside the specs are skipped.
    let files = vec![examples.dir.clone()];
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
        "This demo runs against an in-memory LaunchDarkly emulator at {url}, seeded with {SEED} (its flags, \
         metrics and environments). No account or token is needed.\n"
    ))?;
    super::write_stdout(&format!("The specs are the YAML files of {}.\n", examples.described))?;

    say("1. `ldexp plan`: read only what the specs need, and show the exact changes to make.")?;
    let plan = fresh_plan(&client, &files, false).await?;
    super::write_stdout(&render::human::human(&plan, color))?;
    super::write_stdout(
        "\nHow to read it: `+` creates, `±` restarts (a new iteration; the running one stops collecting data), `~` \
         patches, `-` stops, archives or deletes. Under each object: what it waits for (`after:`), the fields that \
         change, then the exact requests apply will send, in order. Save it with `ldexp plan --out plan.json` to apply exactly this later.\n",
    )?;

    say("2. `ldexp apply --auto-approve`: send those requests. Objects run concurrently, except those that share a \
         flag, which run in plan order, and those that wait for others (the metric, then the funnel, then the \
         experiment that measures them); each object's steps in order.")?;
    let report = match execute(&plan, &client, connection.concurrency, connection.timeout).await {
        Execution::Finished(report) => report,
        Execution::Abandoned => anyhow::bail!("the demo was interrupted"),
    };
    super::write_stdout(&closing(&report, &plan))?;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_spec_and_the_seed_are_bundled() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut bundled: Vec<String> = BUNDLED.iter().map(|(n, _)| (*n).to_owned()).collect();
        bundled.sort();
        assert_eq!(bundled, on_disk, "add new examples to BUNDLED so the demo tours them from anywhere");
    }

    #[test]
    fn a_directory_without_a_seed_is_refused_with_what_it_needs() {
        let empty = tempfile::tempdir().unwrap();
        let e = Examples::locate(Some(empty.path())).err().unwrap().to_string();
        assert!(e.contains("has no remote.yaml") && e.contains("without --examples"), "{e}");
        let bundled = Examples::locate(None).unwrap();
        for (name, text) in BUNDLED {
            assert_eq!(std::fs::read_to_string(bundled.dir.join(name)).unwrap(), text);
        }
    }
}
