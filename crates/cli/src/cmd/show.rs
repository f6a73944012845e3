//! `ldexp show ADDRESS`: one object's remote state as the spec YAML export would write for it, then, for an
//! experiment, its status as YAML comments (so the output still reads as that spec); or both as JSON. What to read
//! is `ldexp_core::views::show`'s.

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use ldexp_core::display::escape;
use ldexp_core::export::to_yaml;
use ldexp_core::plan::Address;
use ldexp_core::views::{ExperimentStatus, SHOWABLE_FORMS, Shown, show, status_str};
use serde_json::json;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;

/// The `$schema` of the modeline, as `ldexp export` writes it by default.
const SCHEMA: &str = "https://raw.githubusercontent.com/ldexp/ldexp/main/schema/ldexp.schema.json";

/// `ldexp show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// What to show: experiment/<project>/<environment>/<key>, metric/<project>/<key>,
    /// metric-group/<project>/<key>, experimentation-settings/<project>, legacy/<project>/<flag>,
    /// layer/<project>/<key> or holdout/<project>/<environment>/<key>.
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Output format: the spec YAML with the status as comments, or `{"address", "spec", "status"}`.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: ShowFormat,
    #[command(flatten)]
    pub connection: Connection,
}

/// Output format of `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    Yaml,
    Json,
}

/// Runs `show`.
pub(crate) fn run(args: &ShowArgs, g: &Globals) -> Result<ExitStatus> {
    // Before the client: a mistyped address needs no token to be told so.
    let address = parse(&args.address)?;
    crate::client::runtime()?.block_on(run_async(args, &address, g))
}

async fn run_async(args: &ShowArgs, address: &Address, _g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let Some(shown) = show(&client, address).await? else {
        let message = format!("{address} does not exist in LaunchDarkly (it answered 404)");
        let hint = not_found_hint(address);
        if args.format == ShowFormat::Json {
            let error = json!({"error": {"message": message, "hint": hint}});
            super::write_stdout(&crate::render::to_pretty_json(&error))?;
        }
        eprintln!("error: {message}");
        eprintln!("hint: {hint}");
        return Ok(ExitStatus::Failure);
    };
    for w in &shown.warnings {
        eprintln!("warning: {w}");
    }
    let text = match args.format {
        ShowFormat::Yaml => yaml(&shown),
        ShowFormat::Json => crate::render::to_pretty_json(&json!({
            "address": address.to_string(),
            "spec": shown.document,
            "status": shown.status,
        })),
    };
    super::write_stdout(&text)?;
    Ok(ExitStatus::Success)
}

/// An address `show` reads, or an error that lists the ones it does.
fn parse(text: &str) -> Result<Address> {
    let showable = |a: &Address| {
        matches!(
            a,
            Address::Experiment { .. }
                | Address::Metric { .. }
                | Address::MetricGroup { .. }
                | Address::Settings { .. }
                | Address::Legacy { .. }
                | Address::Layer { .. }
                | Address::Holdout { .. }
        )
    };
    match Address::try_from(text.to_owned()) {
        Ok(a) if showable(&a) && !text.split('/').any(str::is_empty) => Ok(a),
        _ => bail!("`{}` is not an address show can read; it reads {SHOWABLE_FORMS}", escape(text)),
    }
}

/// What to check when nothing is at `address`.
fn not_found_hint(address: &Address) -> String {
    match address {
        Address::Experiment { project, environment, .. } => format!(
            "check the project, environment and key; `ldexp list experiments --project {project} --environment \
             {environment}` lists the active experiments there, and with --archived the archived ones"
        ),
        Address::Metric { project, .. } => {
            format!("check the project and key; `ldexp export --project {project} --kinds metrics` writes every metric")
        }
        Address::MetricGroup { project, .. } => format!(
            "check the project and key; `ldexp export --project {project} --kinds metricGroups` writes every metric \
             group"
        ),
        Address::Legacy { .. } => {
            "check the project and flag keys; a flag without legacy experiments has nothing to show".to_owned()
        }
        _ => "check the project key".to_owned(),
    }
}

/// The spec export would write, then the status as comments.
pub(crate) fn yaml(shown: &Shown) -> String {
    let mut out = to_yaml(&shown.document, SCHEMA);
    if let Some(status) = &shown.status {
        out.push_str(&status_comments(status));
    }
    out
}

/// One line of text from LaunchDarkly, safe inside a comment and on a terminal.
fn one_line(s: &str) -> String {
    escape(s).replace('\n', "\\n")
}

/// The status block: YAML comments, so that the output is still the spec.
fn status_comments(s: &ExperimentStatus) -> String {
    let mut out = String::from("# Status (read from LaunchDarkly; not part of the spec):\n");
    if let Some(at) = &s.archived_at {
        out.push_str(&format!("#   archived since {at}\n"));
    }
    let Some(it) = &s.iteration else {
        out.push_str("#   no iteration\n");
        return out;
    };
    let when = |what: &str, at: &Option<String>| at.as_ref().map(|t| format!(" {what} {t}")).unwrap_or_default();
    let state = match it.status {
        ldexp_core::api::IterationStatus::NotStarted => match &it.created_at {
            Some(at) => format!("not started (draft), created {at}"),
            None => "not started (draft)".to_owned(),
        },
        _ => {
            let mut s = format!("{}{}", status_str(it.status), when("since", &it.since));
            if it.ended_at.is_some() {
                s.push_str(&format!(" (started {})", it.started_at.as_deref().unwrap_or("at an unknown time")));
            }
            s
        }
    };
    out.push_str(&format!("#   iteration {} of {}: {state}\n", it.number, s.iterations));
    if s.draft_pending {
        out.push_str(
            "#   a new iteration (draft) waits to be started; the spec above describes this one, as export does\n",
        );
    }
    if it.treatments.is_empty() {
        return out;
    }
    out.push_str("#   treatments:\n");
    let names: Vec<String> = it.treatments.iter().map(|t| one_line(&t.name)).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let pct_width = it.treatments.iter().map(|t| t.allocation_percent.chars().count() + 1).max().unwrap_or(0);
    for (t, name) in it.treatments.iter().zip(&names) {
        let pct = format!("{}%", one_line(&t.allocation_percent));
        let mut marks = Vec::new();
        if t.baseline {
            marks.push("baseline");
        }
        if t.winner {
            marks.push("winner");
        }
        let line = format!("#     {name:<width$}  {pct:>pct_width$}  {}", marks.join(", "));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use ldexp_core::api::IterationStatus;
    use ldexp_core::views::{IterationView, TreatmentView};

    use super::*;

    #[test]
    fn only_the_addresses_of_spec_documents_parse_and_the_error_lists_them() {
        assert_eq!(
            parse("experiment/shop/production/checkout").unwrap(),
            Address::Experiment { project: "shop".into(), environment: "production".into(), key: "checkout".into() }
        );
        for ok in [
            "metric/shop/clicks",
            "metric-group/shop/funnel",
            "experimentation-settings/shop",
            "legacy/shop/b",
            "layer/shop/checkout",
            "holdout/shop/production/q4",
        ] {
            assert_eq!(parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "experiment/shop/checkout",
            "legacy-results/shop/banner/production/clicks",
            "flag/shop/banner",
            "metric/shop/",
            "experiment//production/x",
            "",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.contains(
                    "is not an address show can read; it reads experiment/<project>/<environment>/<key>, \
                                metric/<project>/<key>, metric-group/<project>/<key>, \
                                experimentation-settings/<project>, legacy/<project>/<flag>, layer/<project>/<key>, \
                                holdout/<project>/<environment>/<key>"
                ),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_schema_is_the_one_export_writes_by_default() {
        let cli = <crate::Cli as clap::CommandFactory>::command();
        let export = cli.find_subcommand("export").unwrap();
        let schema = export.get_arguments().find(|a| a.get_id() == "schema").unwrap();
        let defaults: Vec<Option<&str>> = schema.get_default_values().iter().map(|v| v.to_str()).collect();
        assert_eq!(defaults, [Some(SCHEMA)]);
    }

    fn treatment(name: &str, pct: &str, baseline: bool, winner: bool) -> TreatmentView {
        TreatmentView { name: name.into(), allocation_percent: pct.into(), baseline, winner }
    }

    #[test]
    fn the_status_block_is_comments() {
        let running = ExperimentStatus {
            archived_at: None,
            iterations: 3,
            iteration: Some(IterationView {
                id: Some("it-2".into()),
                number: 2,
                status: IterationStatus::Running,
                since: Some("2024-05-01T09:33:20Z".into()),
                created_at: Some("2024-05-01T09:30:00Z".into()),
                started_at: Some("2024-05-01T09:33:20Z".into()),
                ended_at: None,
                treatments: vec![treatment("Control", "60", true, false), treatment("Green\nlong", "40", false, false)],
            }),
            draft_pending: true,
        };
        insta::assert_snapshot!("running", status_comments(&running));

        let mut stopped = running.clone();
        stopped.archived_at = Some("2024-06-01T00:00:00Z".into());
        stopped.draft_pending = false;
        if let Some(it) = stopped.iteration.as_mut() {
            it.status = IterationStatus::Stopped;
            it.since = Some("2024-05-20T12:00:00Z".into());
            it.ended_at = it.since.clone();
            it.treatments = vec![treatment("Control", "33.3", true, false), treatment("Blue", "66.7", false, true)];
        }
        insta::assert_snapshot!("stopped_and_archived", status_comments(&stopped));

        let mut draft = running;
        draft.draft_pending = false;
        draft.iterations = 1;
        if let Some(it) = draft.iteration.as_mut() {
            (it.number, it.status, it.started_at, it.since) = (1, IterationStatus::NotStarted, None, None);
        }
        insta::assert_snapshot!("not_started", status_comments(&draft));
    }
}
