//! The staleness check of `apply --plan FILE`: a saved plan may run only if, for every object, a fresh plan
//! still sends the same requests and no managed field of the object moved, or the fresh requests are exactly the
//! tail of the saved ones (an earlier apply got part way, and moved the object itself).

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Address, Change, Plan, PlannedRequest};

/// The verdict on one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The fresh requests equal the saved ones.
    Unchanged,
    /// The fresh requests are the last `remaining` of the saved ones: the first `done` were applied before.
    PartiallyApplied { done: usize, remaining: usize },
    /// The saved requests no longer fit the remote or the specs, or a managed field moved under them.
    Stale { reasons: Vec<String> },
}

/// One object's comparison, with what moved.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectStaleness {
    pub address: Address,
    pub verdict: Verdict,
    pub saved_fingerprint: Option<String>,
    pub fresh_fingerprint: Option<String>,
    /// `METHOD path` of each request, saved then fresh, for the report.
    pub saved_requests: Vec<String>,
    pub fresh_requests: Vec<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Staleness {
    /// Problems not tied to one object (the specs changed, a different `--prune`).
    pub plan_reasons: Vec<String>,
    /// Whether the specs themselves moved since the plan was made (not only LaunchDarkly).
    pub specs_changed: bool,
    /// Every object with requests in either plan, by address.
    pub objects: Vec<ObjectStaleness>,
}

impl Staleness {
    /// True when the saved plan must not run.
    pub fn is_stale(&self) -> bool {
        !self.plan_reasons.is_empty() || self.objects.iter().any(|o| matches!(o.verdict, Verdict::Stale { .. }))
    }

    /// Objects an earlier apply got part way (or all the way) through.
    pub fn partially_applied(&self) -> impl Iterator<Item = &ObjectStaleness> {
        self.objects.iter().filter(|o| matches!(o.verdict, Verdict::PartiallyApplied { .. }))
    }
}

struct Side<'a> {
    requests: Vec<&'a PlannedRequest>,
    fingerprint: Option<String>,
}

fn by_address(plan: &Plan) -> BTreeMap<&Address, Side<'_>> {
    let mut m: BTreeMap<&Address, Side<'_>> = BTreeMap::new();
    for c in &plan.changes {
        let side = m.entry(&c.address).or_insert(Side { requests: Vec::new(), fingerprint: None });
        side.requests.extend(c.requests.iter());
        side.fingerprint = side.fingerprint.take().or_else(|| fingerprint(c));
    }
    m
}

fn fingerprint(c: &Change) -> Option<String> {
    c.remote_fingerprint.clone()
}

fn describe(r: &PlannedRequest) -> String {
    format!("{} {}", r.method, r.path)
}

/// Compares a saved plan with a fresh plan of the same specs against the current remote.
pub fn compare(saved: &Plan, fresh: &Plan) -> Staleness {
    let mut out = Staleness::default();
    if saved.specs_digest != fresh.specs_digest {
        out.specs_changed = true;
        out.plan_reasons.push(format!(
            "the specs changed since the plan was made (digest {} then, {} now)",
            saved.specs_digest, fresh.specs_digest
        ));
    }
    if saved.prune != fresh.prune {
        out.plan_reasons.push(format!(
            "the plan was made {} --prune and this apply runs {} it",
            if saved.prune { "with" } else { "without" },
            if fresh.prune { "with" } else { "without" }
        ));
    }
    let s = by_address(saved);
    let f = by_address(fresh);
    let addresses: BTreeSet<&Address> = s.keys().chain(f.keys()).copied().collect();
    let empty = Side { requests: Vec::new(), fingerprint: None };
    for address in addresses {
        let sv = s.get(address).unwrap_or(&empty);
        let fr = f.get(address).unwrap_or(&empty);
        if sv.requests.is_empty() && fr.requests.is_empty() {
            continue;
        }
        let verdict = judge(sv, fr);
        out.objects.push(ObjectStaleness {
            address: address.clone(),
            verdict,
            saved_fingerprint: sv.fingerprint.clone(),
            fresh_fingerprint: fr.fingerprint.clone(),
            saved_requests: sv.requests.iter().map(|r| describe(r)).collect(),
            fresh_requests: fr.requests.iter().map(|r| describe(r)).collect(),
        });
    }
    out
}

fn same(a: &[&PlannedRequest], b: &[&PlannedRequest]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.sends_the_same_as(y))
}

fn judge(saved: &Side<'_>, fresh: &Side<'_>) -> Verdict {
    let (sr, fr) = (&saved.requests, &fresh.requests);
    if same(sr, fr) {
        if saved.fingerprint == fresh.fingerprint {
            return Verdict::Unchanged;
        }
        // The same requests against a moved object would overwrite a change no reviewer saw.
        return Verdict::Stale {
            reasons: vec![format!(
                "a field the specs own changed in LaunchDarkly since the plan was made ({} when planned, {} now), \
                 though the requests are the same",
                saved.fingerprint.as_deref().unwrap_or("absent"),
                fresh.fingerprint.as_deref().unwrap_or("absent")
            )],
        };
    }
    if fr.len() < sr.len() && same(&sr[sr.len() - fr.len()..], fr) {
        return Verdict::PartiallyApplied { done: sr.len() - fr.len(), remaining: fr.len() };
    }
    let mut reasons = Vec::new();
    if saved.fingerprint != fresh.fingerprint {
        reasons.push(format!(
            "the remote object moved ({} when planned, {} now)",
            saved.fingerprint.as_deref().unwrap_or("absent"),
            fresh.fingerprint.as_deref().unwrap_or("absent")
        ));
    }
    if sr.is_empty() {
        reasons.push(format!("a fresh plan sends {} request(s) the saved plan does not have", fr.len()));
    } else if let Some(i) = sr.iter().zip(fr.iter()).position(|(a, b)| !a.sends_the_same_as(b)) {
        reasons.push(format!(
            "request {} differs: saved `{}`, fresh `{}`{}",
            i + 1,
            describe(sr[i]),
            describe(fr[i]),
            if describe(sr[i]) == describe(fr[i]) { " (body or postconditions changed)" } else { "" }
        ));
    } else {
        reasons.push(format!(
            "the saved plan has {} request(s), a fresh plan {}, and neither is the tail of the other",
            sr.len(),
            fr.len()
        ));
    }
    Verdict::Stale { reasons }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::plan::{Action, Change, Method};

    fn req(method: Method, path: &str, body: serde_json::Value) -> PlannedRequest {
        PlannedRequest {
            method,
            path: path.into(),
            query: BTreeMap::new(),
            content_type: None,
            body: Some(body),
            expect: Vec::new(),
            bind: Vec::new(),
            object: None,
        }
    }

    fn change(key: &str, fp: Option<&str>, requests: Vec<PlannedRequest>) -> Change {
        Change {
            address: Address::Experiment { project: "p".into(), environment: "prod".into(), key: key.into() },
            action: Action::Create,
            risks: Vec::new(),
            remote_fingerprint: fp.map(str::to_owned),
            before: None,
            after: None,
            fields: Vec::new(),
            requests,
            notes: Vec::new(),
            flags: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::of("sha256:s".into(), changes)
    }

    fn create_start() -> Vec<PlannedRequest> {
        vec![
            req(Method::Post, "/x/experiments", json!({"key": "a"})),
            req(Method::Patch, "/x/experiments/a", json!({"instructions": [{"kind": "startIteration"}]})),
        ]
    }

    #[test]
    fn equal_plans_are_fresh() {
        let p = plan(vec![change("a", None, create_start())]);
        let s = compare(&p, &p.clone());
        assert!(!s.is_stale());
        assert_eq!(s.objects.len(), 1);
        assert_eq!(s.objects[0].verdict, Verdict::Unchanged);
    }

    #[test]
    fn an_exact_suffix_is_a_partial_earlier_apply() {
        let saved = plan(vec![change("a", None, create_start())]);
        let fresh = plan(vec![change("a", Some("sha256:now"), create_start()[1..].to_vec())]);
        let s = compare(&saved, &fresh);
        assert!(!s.is_stale());
        assert_eq!(s.objects[0].verdict, Verdict::PartiallyApplied { done: 1, remaining: 1 });
        assert_eq!(s.partially_applied().count(), 1);
        // Everything applied before: an empty fresh plan is the empty suffix.
        let s = compare(&saved, &plan(vec![]));
        assert_eq!(s.objects[0].verdict, Verdict::PartiallyApplied { done: 2, remaining: 0 });
        assert!(!s.is_stale());
    }

    #[test]
    fn a_changed_body_is_stale_and_says_what_moved() {
        let saved = plan(vec![change("a", Some("sha256:then"), create_start())]);
        let mut moved = create_start();
        moved[0].body = Some(json!({"key": "a", "flagConfigVersion": 4}));
        let fresh = plan(vec![change("a", Some("sha256:now"), moved)]);
        let s = compare(&saved, &fresh);
        assert!(s.is_stale());
        assert_eq!(
            s.objects[0].verdict,
            Verdict::Stale {
                reasons: vec![
                    "the remote object moved (sha256:then when planned, sha256:now now)".into(),
                    "request 1 differs: saved `POST /x/experiments`, fresh `POST /x/experiments` (body or \
                     postconditions changed)"
                        .into(),
                ]
            }
        );
    }

    #[test]
    fn the_same_requests_against_a_moved_object_are_stale() {
        let saved = plan(vec![change("a", Some("blake3:then"), create_start())]);
        let fresh = plan(vec![change("a", Some("blake3:now"), create_start())]);
        let s = compare(&saved, &fresh);
        assert!(s.is_stale());
        let Verdict::Stale { reasons } = &s.objects[0].verdict else { panic!("{s:?}") };
        assert!(reasons[0].starts_with("a field the specs own changed in LaunchDarkly"), "{reasons:?}");
    }

    #[test]
    fn a_bound_field_is_equal_whatever_it_held_at_plan_time() {
        use crate::plan::{Binding, BoundValue};
        let bound = |version: u64| {
            let mut r = req(
                Method::Post,
                "/x/experiments/a/iterations",
                json!({"flags": {"f": {"flagConfigVersion": version}}}),
            );
            r.bind = vec![Binding {
                pointer: "/flags/f/flagConfigVersion".into(),
                value: BoundValue::FlagVersion { project: "p".into(), flag: "f".into(), environment: "prod".into() },
            }];
            r
        };
        let saved = plan(vec![change("a", Some("blake3:x"), vec![bound(3), create_start()[1].clone()])]);
        // Resuming after the first request: the fresh plan sees the version it moved to, and binds nothing.
        let mut unbound = bound(5);
        unbound.bind.clear();
        let fresh = plan(vec![change("a", Some("blake3:x"), vec![unbound, create_start()[1].clone()])]);
        assert_eq!(compare(&saved, &fresh).objects[0].verdict, Verdict::Unchanged);
        // Anything else in the body still counts.
        let mut other = bound(5);
        other.body = Some(json!({"flags": {"g": {"flagConfigVersion": 5}}}));
        let fresh = plan(vec![change("a", Some("blake3:x"), vec![other, create_start()[1].clone()])]);
        assert!(compare(&saved, &fresh).is_stale());
    }

    #[test]
    fn a_prefix_or_a_new_object_is_stale() {
        let saved = plan(vec![change("a", None, create_start()[..1].to_vec())]);
        let fresh = plan(vec![change("a", None, create_start())]);
        let s = compare(&saved, &fresh);
        assert_eq!(
            s.objects[0].verdict,
            Verdict::Stale {
                reasons: vec![
                    "the saved plan has 1 request(s), a fresh plan 2, and neither is the tail of the other".into()
                ]
            }
        );
        let s = compare(&plan(vec![]), &fresh);
        assert_eq!(
            s.objects[0].verdict,
            Verdict::Stale { reasons: vec!["a fresh plan sends 2 request(s) the saved plan does not have".into()] }
        );
    }

    #[test]
    fn changed_specs_or_prune_make_the_whole_plan_stale() {
        let saved = plan(vec![]);
        let mut fresh = plan(vec![]);
        fresh.specs_digest = "sha256:t".into();
        fresh.prune = true;
        let s = compare(&saved, &fresh);
        assert!(s.is_stale());
        assert_eq!(
            s.plan_reasons,
            vec![
                "the specs changed since the plan was made (digest sha256:s then, sha256:t now)".to_owned(),
                "the plan was made without --prune and this apply runs with it".to_owned(),
            ]
        );
    }
}
