//! One probe per [`Rule`]: what it sends and how it judges what comes back. Every probe turns its own failures into
//! a verdict (`CouldNotRun`, or `Differs` when the failure is the finding), so one broken probe never stops the
//! others or the cleanup.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ledger::{Ledger, archive, get};
use super::{Rule, Target, Verdict};
use crate::api::{
    ErrorBody, ExperimentPost, FlagInput, IterationInput, MetricInput, TreatmentInput, TreatmentParameterInput,
};
use crate::client::{Answer, REDACTED, Transport};
use crate::percent::Percent;
use crate::requests;

/// A verdict with what the probe saw besides.
type Found = (Verdict, Option<String>);

/// At most this many experiment pages are read (5,000 experiments): enough for any real environment, and a bound
/// on a service whose `_links.next` never ends.
const MAX_PAGES: usize = 100;

/// Runs the probe of `rule`.
pub(super) async fn probe<T: Transport>(
    rule: Rule,
    t: &T,
    dated: Option<&T>,
    target: &Target,
    ledger: &mut Ledger,
) -> Found {
    match rule {
        Rule::CallerIdentity => caller_identity(t).await,
        Rule::DatedVersionOnExperiments => match dated {
            Some(d) => dated_version(d, target).await,
            None => could_not("no client with the dated LD-API-Version was given"),
        },
        Rule::SettingsUnitsOrder => settings_units_order(t, target).await,
        Rule::CreateIteration => create_iteration(t, target, ledger).await,
        Rule::TotalCount => total_count(t, target).await,
    }
}

fn could_not(why: impl Into<String>) -> Found {
    (Verdict::CouldNotRun { why: why.into() }, None)
}

fn differs(seen: impl Into<String>) -> Found {
    (Verdict::Differs { seen: seen.into() }, None)
}

/// An answer as a finding: `status N, code C: message`, with the token scrubbed in case something echoed it.
fn seen<T: Transport>(t: &T, answer: &Answer) -> String {
    let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
    let text = match body {
        Some(b) => match b.code {
            Some(code) => format!("status {}, code {code}: {}", answer.status, b.message),
            None => format!("status {}: {}", answer.status, b.message),
        },
        None => format!("status {}", answer.status),
    };
    match t.token().map(|k| k.expose()).filter(|k| !k.is_empty()) {
        Some(token) => text.replace(token, REDACTED),
        None => text,
    }
}

/// §9.7: `caller-identity` answers, and says which kind of token this is.
async fn caller_identity<T: Transport>(t: &T) -> Found {
    let req = requests::caller_identity();
    let answer = match t.execute(&req, "caller identity").await {
        Ok(a) => a,
        Err(e) => return could_not(e.to_string()),
    };
    if !(200..300).contains(&answer.status) {
        return differs(seen(t, &answer));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
        return differs(format!("status {}, a body that is not JSON", answer.status));
    };
    let kind = body.get("tokenKind").and_then(Value::as_str);
    let service = body.get("serviceToken").and_then(Value::as_bool);
    match (kind, service) {
        (None, None) => differs("neither tokenKind nor serviceToken in the answer"),
        _ => {
            let note = format!(
                "token kind: {}, serviceToken: {}",
                kind.unwrap_or("(absent)"),
                service.map_or("(absent)".to_owned(), |s| s.to_string())
            );
            (Verdict::Holds, Some(note))
        }
    }
}

/// §1: an experiment list sent with `LD-API-Version: 20240415` (by `dated`) is refused. Accepting it differs from
/// what ldexp assumes (and what the emulator does), and would let ldexp pin a dated version there.
async fn dated_version<T: Transport>(dated: &T, target: &Target) -> Found {
    let req = requests::list_experiments(&target.project, &target.environment, 0);
    let answer = match dated.execute(&req, "experiment list with the dated version").await {
        Ok(a) => a,
        Err(e) => return could_not(e.to_string()),
    };
    match answer.status {
        200..=299 => differs(format!("status {}: accepted", answer.status)),
        // Not about the version: no permission, no such environment, or a rate limit.
        401 | 404 | 429 => could_not(seen(dated, &answer)),
        400..=499 => (Verdict::Holds, Some(seen(dated, &answer))),
        _ => could_not(seen(dated, &answer)),
    }
}

/// The project's experimentation settings as JSON.
async fn settings<T: Transport>(t: &T, target: &Target) -> Result<Value, String> {
    let resource = format!("experimentation settings of project {}", target.project);
    match get(t, &requests::get_settings(&target.project), &resource).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(format!("{resource}: not found")),
        Err(e) => Err(e.to_string()),
    }
}

/// The settings' units as `(unit, default)`, in the order served.
pub(super) fn units(settings: &Value) -> Vec<(String, bool)> {
    let list = settings.get("randomizationUnits").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter_map(|u| {
            let name = u.get("randomizationUnit")?.as_str()?.to_owned();
            Some((name, u.get("default").and_then(Value::as_bool).unwrap_or(false)))
        })
        .collect()
}

/// §8: the default randomization unit comes first. Read-only: sending settings to see them reordered would change
/// the user's project.
async fn settings_units_order<T: Transport>(t: &T, target: &Target) -> Found {
    let settings = match settings(t, target).await {
        Ok(s) => s,
        Err(e) => return could_not(e),
    };
    let units = units(&settings);
    let shown = units.iter().map(|(u, d)| if *d { format!("{u} (default)") } else { u.clone() }).collect::<Vec<_>>();
    if units.len() < 2 {
        return could_not(format!(
            "the project has {} randomization unit(s), so their order cannot be seen",
            units.len()
        ));
    }
    match units.iter().position(|(_, d)| *d) {
        Some(0) => (Verdict::Holds, Some(format!("units: {}", shown.join(", ")))),
        Some(_) => differs(format!("units in this order: {}", shown.join(", "))),
        None => differs(format!("no unit is marked default: {}", shown.join(", "))),
    }
}

/// What a probe create needs from the project: the unit, a metric that fits it, the flag's variations and version.
struct Ingredients {
    unit: String,
    metric: String,
    variations: [String; 2],
    flag_version: i64,
}

async fn ingredients<T: Transport>(t: &T, target: &Target) -> Result<Ingredients, String> {
    let units = units(&settings(t, target).await?);
    let unit = units.iter().find(|(_, d)| *d).or(units.first()).map_or_else(|| "user".to_owned(), |(u, _)| u.clone());
    let resource = format!("metrics of project {}", target.project);
    let metrics = get(t, &requests::list_metrics(&target.project, 0), &resource).await.map_err(|e| e.to_string())?;
    let fits = |m: &&Value| {
        m.get("randomizationUnits")
            .and_then(Value::as_array)
            .is_none_or(|us| us.iter().any(|u| u.as_str() == Some(unit.as_str())))
    };
    let metric = metrics
        .as_ref()
        .and_then(|m| m.get("items"))
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(fits))
        .and_then(|m| m.get("key")?.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("no metric of project {} (first page) fits unit {unit}", target.project))?;
    let resource = format!("flag {}/{}", target.project, target.flag);
    let flag = get(t, &requests::get_flag(&target.project, &target.flag), &resource)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{resource}: not found"))?;
    let ids: Vec<String> = flag
        .get("variations")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(|v| Some(v.get("_id")?.as_str()?.to_owned())).collect())
        .unwrap_or_default();
    let [a, b, ..] = ids.as_slice() else { return Err(format!("{resource} has fewer than two variations")) };
    let flag_version = flag
        .get("environments")
        .and_then(|e| e.get(&target.environment))
        .and_then(|e| e.get("version"))
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{resource} has no version in {}", target.environment))?;
    Ok(Ingredients { unit, metric, variations: [a.clone(), b.clone()], flag_version })
}

/// The body of a probe create: two 50/50 treatments on the flag's fallthrough, one metric. Never started, so the
/// flag's targeting does not change.
fn probe_post(key: &str, target: &Target, i: &Ingredients, half: &Percent) -> ExperimentPost {
    let treatment = |name: &str, baseline: bool, variation: &str| TreatmentInput {
        name: name.to_owned(),
        baseline,
        allocation_percent: half.clone(),
        parameters: vec![TreatmentParameterInput { flag_key: target.flag.clone(), variation_id: variation.to_owned() }],
    };
    let flag = FlagInput {
        rule_id: "fallthrough".to_owned(),
        flag_config_version: i.flag_version,
        not_in_experiment_variation_id: None,
    };
    ExperimentPost {
        name: format!("{key} (ldexp conformance probe)"),
        key: key.to_owned(),
        description: Some("Created by `ldexp conformance`; archived when the run ends.".to_owned()),
        maintainer_id: None,
        iteration: IterationInput {
            hypothesis: "ldexp conformance probe".to_owned(),
            can_reshuffle_traffic: None,
            metrics: vec![MetricInput { key: i.metric.clone(), is_group: false }],
            primary_single_metric_key: Some(i.metric.clone()),
            primary_funnel_key: None,
            treatments: vec![treatment("control", true, &i.variations[0]), treatment("probe", false, &i.variations[1])],
            flags: BTreeMap::from([(target.flag.clone(), flag)]),
            randomization_unit: Some(i.unit.clone()),
            attributes: None,
        },
        holdout_id: None,
        tags: None,
        methodology: None,
        analysis_config: None,
        data_source: None,
    }
}

/// §9.9: the create answers its iteration not started, in `draftIteration` or in `currentIteration`. The experiment
/// is archived right after, so that the `total_count` probe has an archived experiment to count.
async fn create_iteration<T: Transport>(t: &T, target: &Target, ledger: &mut Ledger) -> Found {
    let service = match get(t, &requests::caller_identity(), "caller identity").await {
        Ok(id) => id.and_then(|v| v.get("serviceToken")?.as_bool()).unwrap_or(false),
        Err(e) => return could_not(e.to_string()),
    };
    if service {
        // §9.7: a service token needs a maintainerId, which the run has no way to choose.
        return could_not("the token is a service token, which needs a maintainerId to create; use a personal token");
    }
    let ingredients = match ingredients(t, target).await {
        Ok(i) => i,
        Err(why) => return could_not(why),
    };
    let Some(half) = Percent::new(50.0) else { return could_not("50 % is not a percentage") };
    let key = format!("{}-create", target.prefix);
    let post = probe_post(&key, target, &ingredients, &half);
    let req = requests::create_experiment(&target.project, &target.environment, &post);
    // Before sending: a create whose answer is lost may still have happened.
    ledger.created(&key);
    let resource = format!("experiment {}/{}/{key}", target.project, target.environment);
    let answer = match t.execute(&req, &resource).await {
        Ok(a) => a,
        Err(e) => return could_not(e.to_string()),
    };
    if !(200..300).contains(&answer.status) {
        // A 5xx may still have created it; anything else did not, and a key taken by someone else stays theirs.
        if answer.status < 500 {
            ledger.refused(&key);
        }
        return could_not(format!("the create was refused: {}", seen(t, &answer)));
    }
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let found = judge_created(&body);
    let archived = archive(t, target, &key).await;
    match archived {
        Ok(_) => found,
        Err(e) => {
            (found.0, Some(format!("{}; archiving now failed ({e}); cleanup tries again", found.1.unwrap_or_default())))
        }
    }
}

/// Where the create's answer put the new iteration.
pub(super) fn judge_created(body: &Value) -> Found {
    let status = |field: &str| -> Option<String> {
        let it = body.get(field).filter(|v| v.is_object())?;
        Some(it.get("status").and_then(Value::as_str).unwrap_or("(no status)").to_owned())
    };
    match (status("draftIteration"), status("currentIteration")) {
        (Some(d), _) if d == "not_started" => (Verdict::Holds, Some("answered as draftIteration".to_owned())),
        (_, Some(c)) if c == "not_started" => {
            (Verdict::Holds, Some("answered as currentIteration, status not_started".to_owned()))
        }
        (None, None) => differs("neither draftIteration nor currentIteration in the create's answer"),
        (d, c) => differs(format!(
            "draftIteration status {}, currentIteration status {}",
            d.as_deref().unwrap_or("(absent)"),
            c.as_deref().unwrap_or("(absent)")
        )),
    }
}

/// §9.10: reads every page of the experiment list with archived ones and compares `total_count` with what the
/// pages held. Paging stops on a short page or a missing `_links.next`, never on the total.
async fn total_count<T: Transport>(t: &T, target: &Target) -> Found {
    let resource = format!("experiments of {}/{}", target.project, target.environment);
    let (mut read, mut archived, mut total) = (0u64, 0u64, None);
    for page in 0.. {
        if page == MAX_PAGES {
            return could_not(format!("more than {MAX_PAGES} pages of experiments"));
        }
        let req = requests::list_experiments(&target.project, &target.environment, read);
        let body = match get(t, &req, &resource).await {
            Ok(Some(b)) => b,
            Ok(None) => return could_not(format!("{resource}: not found")),
            Err(e) => return could_not(e.to_string()),
        };
        if page == 0 {
            total = body.get("total_count").or(body.get("totalCount")).and_then(Value::as_u64);
        }
        let items = body.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        read += items.len() as u64;
        archived += items.iter().filter(|i| i.get("archivedDate").is_some_and(|d| !d.is_null())).count() as u64;
        let next =
            body.get("_links").and_then(|l| l.get("next")).and_then(|n| n.get("href")).is_some_and(Value::is_string);
        if (items.len() as u64) < requests::EXPERIMENT_PAGE || !next {
            break;
        }
    }
    if archived == 0 {
        return could_not("no archived experiment in the environment, so what total_count counts cannot be seen");
    }
    let held = format!("{read} item(s), {archived} archived");
    match total {
        Some(n) if n == read => (Verdict::Holds, Some(format!("total_count {n}: {held}"))),
        Some(n) => differs(format!("total_count {n}, but the pages held {held}")),
        None => differs(format!("no total_count in the answer; the pages held {held}")),
    }
}
