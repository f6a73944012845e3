//! One probe per [`Rule`]: what it sends and how it judges what comes back. Every probe turns its own failures into
//! a verdict (`CouldNotRun`, or `Differs` when the failure is the finding), so one broken probe never stops the
//! others or the cleanup.

use serde_json::Value;

use super::ledger::get;
use super::{Found, Target, Verdict};
use crate::api::ErrorBody;
use crate::client::{Answer, REDACTED, Transport};
use crate::requests;

/// At most this many experiment pages are read (5,000 experiments): enough for any real environment, and a bound
/// on a service whose `_links.next` never ends.
const MAX_PAGES: usize = 100;

pub(super) fn could_not(why: impl Into<String>) -> Found {
    (Verdict::CouldNotRun { why: why.into() }, None)
}

pub(super) fn differs(seen: impl Into<String>) -> Found {
    (Verdict::Differs { seen: seen.into() }, None)
}

/// An answer as a finding: `status N, code C: message`, with the token scrubbed in case something echoed it.
pub(super) fn seen<T: Transport>(t: &T, answer: &Answer) -> String {
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

/// The caller identity, read once: its probe judges it and the write probes learn the token's kind from it.
pub(super) async fn read_identity<T: Transport>(t: &T) -> Result<Answer, String> {
    t.execute(&requests::caller_identity(), "caller identity").await.map_err(|e| e.to_string())
}

/// §9.7: `caller-identity` answers, and says which kind of token this is.
pub(super) fn caller_identity<T: Transport>(t: &T, identity: &Result<Answer, String>) -> Found {
    let answer = match identity {
        Ok(a) => a,
        Err(e) => return could_not(e.clone()),
    };
    if !(200..300).contains(&answer.status) {
        return differs(seen(t, answer));
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
pub(super) async fn dated_version<T: Transport>(dated: &T, target: &Target) -> Found {
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
pub(super) async fn settings<T: Transport>(t: &T, target: &Target) -> Result<Value, String> {
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
pub(super) fn settings_units_order(settings: &Result<Value, String>) -> Found {
    let settings = match settings {
        Ok(s) => s,
        Err(e) => return could_not(e.clone()),
    };
    let units = units(settings);
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
pub(super) async fn total_count<T: Transport>(t: &T, target: &Target) -> Found {
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

/// §9.12: the answers so far carried both `X-Ratelimit-*-Remaining` headers. ldexp's client paces every route on
/// the account-wide one; without it, a global 429 comes as a surprise.
pub(super) fn rate_limit_headers<T: Transport>(t: &T) -> Found {
    let Some(seen) = t.rate_limit_seen() else {
        return could_not("this transport does not see response headers");
    };
    let counts = format!(
        "of {} answers, {} carried X-Ratelimit-Route-Remaining, {} X-Ratelimit-Global-Remaining, {} X-Ratelimit-Reset",
        seen.answers, seen.route, seen.global, seen.reset
    );
    if seen.answers == 0 {
        could_not("no answer was seen")
    } else if seen.global == 0 || seen.route == 0 {
        differs(counts)
    } else {
        (Verdict::Holds, Some(counts))
    }
}
