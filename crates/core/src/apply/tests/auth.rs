//! The applier's two readings of a 401 (contract §9.8): an invalid token before anything worked, a project the
//! token's role does not reach afterwards.

use super::*;

#[test]
fn a_401_after_a_success_fails_only_its_object_and_names_its_project() {
    // A role limited to some projects gets 401 on the others (contract §9.8): once the token has worked, a 401 is
    // about the project, so the objects of other projects go on.
    struct NoRoleFor(Fake, &'static str);
    impl Transport for NoRoleFor {
        async fn execute(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
            if r.path.contains(&format!("/projects/{}/", self.1)) {
                self.0.state.lock().unwrap().sent.push(describe(r));
                return Ok(refusal(401, "unauthorized"));
            }
            self.0.execute(r, resource).await
        }
    }
    let f = NoRoleFor(fake(&[]), "secret");
    for k in ["a", "b", "c"] {
        f.0.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    let in_secret = |key: &str| {
        let mut c = rename(key, "renamed");
        c.address = Address::Experiment { project: "secret".into(), environment: "production".into(), key: key.into() };
        c.requests[0].path = format!("/api/v2/projects/secret/environments/production/experiments/{key}");
        c
    };
    let p = plan(vec![rename("a", "A1"), in_secret("b"), rename("c", "C1"), in_secret("b")]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 1, ..opts() });
    assert_eq!(report.counts(), Counts { applied: 2, failed: 1, skipped: 1, interrupted: 0 });
    assert!(matches!(report.outcomes[0].status, OutcomeStatus::Applied));
    assert!(matches!(report.outcomes[2].status, OutcomeStatus::Applied), "{:?}", report.outcomes[2].status);
    let e = failed_error(&report.outcomes[1]);
    assert!(matches!(e, Error::NoPermission { project, api } if project == "secret" && api.status == 401), "{e:?}");
    assert!(e.to_string().starts_with("no permission for project secret (or the token is invalid): "), "{e}");
    assert!(e.hint().unwrap().contains("the token's role"));
    // Its own later change is blocked as after any failure; the others were not skipped.
    assert!(
        matches!(&report.outcomes[3].status, OutcomeStatus::Skipped { reason } if reason.contains("earlier change"))
    );
    let s = f.0.state.lock().unwrap();
    assert_eq!(s.sent.iter().filter(|l| l.contains("/secret/")).count(), 1, "a 401 is not resent: {:?}", s.sent);
}

#[test]
fn a_401_on_the_first_request_skips_the_rest_even_when_a_later_object_would_pass() {
    // Nothing has worked yet, so the 401 is read as an invalid token: the rest are skipped, not sent.
    struct FirstRefused(Fake, AtomicUsize);
    impl Transport for FirstRefused {
        async fn execute(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
            if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
                self.0.state.lock().unwrap().sent.push(describe(r));
                return Ok(refusal(401, "unauthorized"));
            }
            self.0.execute(r, resource).await
        }
    }
    let f = FirstRefused(fake(&[]), AtomicUsize::new(0));
    for k in ["a", "b"] {
        f.0.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    let report = run(&plan(vec![rename("a", "A1"), rename("b", "B1")]), &f, &ApplyOptions { concurrency: 1, ..opts() });
    assert_eq!(report.counts(), Counts { applied: 0, failed: 1, skipped: 1, interrupted: 0 });
    assert!(matches!(failed_error(&report.outcomes[0]), Error::Api(api) if api.status == 401));
    match &report.outcomes[1].status {
        OutcomeStatus::Skipped { reason } => assert!(reason.contains("rejected the access token"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.0.state.lock().unwrap().sent.len(), 1);
}
