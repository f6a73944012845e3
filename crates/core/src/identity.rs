//! Who the token is: `caller-identity`, asked once and only when a plan creates an experiment without
//! `maintainerId`, because LaunchDarkly refuses such a create from a service token (contract §9.7) but lets a
//! member's token default to its member.

use crate::client::IdentityReads;
use crate::plan::{Address, Method, Plan, Warning};

/// The experiment and metric creates of `plan` whose body names no `maintainerId`.
pub fn creates_without_maintainer(plan: &Plan) -> Vec<&Address> {
    plan.changes
        .iter()
        .filter(|c| {
            c.requests.iter().any(|r| {
                // Experiments and metrics default their maintainer to the token's member, which a service token does
                // not have (contract §9.7; for metrics an assumption the emulator shares).
                r.method == Method::Post
                    && (r.path.ends_with("/experiments") || r.path.starts_with("/api/v2/metrics/"))
                    && r.body.as_ref().is_some_and(|b| b.get("maintainerId").is_none_or(serde_json::Value::is_null))
            })
        })
        .map(|c| &c.address)
        .collect()
}

/// Adds a warning to each create of `plan` that names no maintainer when the token is a service token; asks
/// LaunchDarkly only when there is such a create. A failed question is a warning too: it must not stop a plan.
pub async fn warn_service_token<R: IdentityReads>(reader: &R, plan: &mut Plan) {
    let creates: Vec<Address> = creates_without_maintainer(plan).into_iter().cloned().collect();
    if creates.is_empty() {
        return;
    }
    let warnings: Vec<Warning> = match reader.caller_identity().await {
        Ok(Some(who)) if who.service_token => creates
            .into_iter()
            .map(|address| Warning {
                message: "created without `maintainerId`, and the access token is a service token: LaunchDarkly \
                          refuses that create; add `maintainerId` (a member id) to the spec"
                    .to_owned(),
                address: Some(address),
            })
            .collect(),
        Ok(_) => Vec::new(),
        Err(e) => vec![Warning {
            address: None,
            message: format!(
                "could not ask LaunchDarkly which kind of token this is ({e}); a create without `maintainerId` \
                 fails if it is a service token"
            ),
        }],
    };
    plan.warnings.extend(warnings);
    plan.warnings.sort_by(|a, b| (&a.address, &a.message).cmp(&(&b.address, &b.message)));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::Error;
    use crate::api::CallerIdentity;
    use crate::plan::{Action, Change, PlannedRequest};

    struct Who(Result<CallerIdentity, ()>, AtomicUsize);

    impl IdentityReads for Who {
        async fn caller_identity(&self) -> Result<Option<CallerIdentity>, Error> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.clone().map(Some).map_err(|()| Error::NotFound { message: "no answer".into() })
        }
    }

    fn create(key: &str, maintainer: Option<&str>) -> Change {
        let mut body = serde_json::json!({"key": key, "name": key, "iteration": {}});
        if let Some(m) = maintainer {
            body["maintainerId"] = m.into();
        }
        Change {
            address: Address::Experiment { project: "p".into(), environment: "e".into(), key: key.into() },
            action: Action::Create,
            risks: Vec::new(),
            remote_fingerprint: None,
            before: None,
            after: None,
            fields: Vec::new(),
            requests: vec![PlannedRequest {
                method: Method::Post,
                path: "/api/v2/projects/p/environments/e/experiments".into(),
                query: Default::default(),
                content_type: None,
                body: Some(body),
                expect: Vec::new(),
                bind: Vec::new(),
                object: None,
            }],
            notes: Vec::new(),
            flags: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::of("".into(), changes)
    }

    fn run(who: &Who, p: &mut Plan) {
        futures::executor::block_on(warn_service_token(who, p));
    }

    #[test]
    fn a_service_token_warns_on_each_create_without_a_maintainer_and_is_asked_once() {
        let service = CallerIdentity { token_kind: Some("service".into()), service_token: true, member_id: None };
        let who = Who(Ok(service), AtomicUsize::new(0));
        let mut p = plan(vec![create("a", None), create("b", Some("m1")), create("c", None)]);
        run(&who, &mut p);
        assert_eq!(who.1.load(Ordering::SeqCst), 1);
        let warned: Vec<String> = p.warnings.iter().filter_map(|w| w.address.as_ref().map(|a| a.to_string())).collect();
        assert_eq!(warned, ["experiment/p/e/a", "experiment/p/e/c"]);
        assert!(p.warnings[0].message.contains("service token"), "{:?}", p.warnings);
    }

    #[test]
    fn nothing_is_asked_without_such_a_create_and_a_member_token_is_fine() {
        let member =
            CallerIdentity { token_kind: Some("personal".into()), service_token: false, member_id: Some("m".into()) };
        let who = Who(Ok(member), AtomicUsize::new(0));
        let mut p = plan(vec![create("b", Some("m1"))]);
        run(&who, &mut p);
        assert_eq!(who.1.load(Ordering::SeqCst), 0);
        let mut p = plan(vec![create("a", None)]);
        run(&who, &mut p);
        assert_eq!(who.1.load(Ordering::SeqCst), 1);
        assert!(p.warnings.is_empty());
        // A question that fails is said, not fatal.
        let who = Who(Err(()), AtomicUsize::new(0));
        run(&who, &mut p);
        assert!(
            p.warnings[0].message.starts_with("could not ask LaunchDarkly which kind of token"),
            "{:?}",
            p.warnings
        );
    }
}
