//! `ldexp conformance` through Prism: every request its probes send, the ones meant to be refused included, must be
//! one the contract allows, so that a rule the live service "differs" on is never our malformed request. Prism runs
//! without `--errors` here: the probes must see the emulator's own answers, refusals included.

use ldexp_core::conformance::{self, Rule, Target, Verdict};

use super::{Prism, Tap, Violation, client, setup};
use ldexp_emulator::{Seed, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_probes_send_only_requests_the_contract_allows() {
    let Some(setup) = setup() else { return };
    let seed = Seed::from_path(&setup.seed).unwrap();
    // Rate limits, so that the rate-limit headers the probe looks for are sent.
    let config = ServerConfig {
        seed: Some(seed),
        rate_limit: Some(1000),
        rate_limit_global: Some(10_000),
        ..ServerConfig::default()
    };
    let emulator = ldexp_emulator::serve(config).await.unwrap();
    let upstream = format!("http://127.0.0.1:{}", emulator.addr.port());
    let spec = setup.spec.to_str().unwrap().to_owned();
    let prism = Prism::start(&setup, &["proxy", &spec, &upstream]).await;
    let (tap, tap_port) = Tap::start(prism.port).await;
    let c = client(tap_port, ldexp_emulator::DEFAULT_TOKEN);
    let dated = super::client_with_beta_version(tap_port, ldexp_emulator::DEFAULT_TOKEN, "20240415");

    let target = Target::new("demo", "production", "checkout-button", 1);
    let report = conformance::run(&c, Some(&dated), &target).await.unwrap();
    for o in &report.outcomes {
        assert_eq!(o.verdict, Verdict::Holds, "{}: {o:?}", o.rule.id());
    }
    assert_eq!(report.outcomes.len(), Rule::ALL.len());
    assert!(report.cleanup.problems.is_empty() && report.cleanup.flag_verified, "{:?}", report.cleanup);

    let (requests, responses) = tap.traffic();
    let request_violations: Vec<&Violation> =
        responses.iter().flat_map(|(_, v)| v).filter(|v| v.is_request()).collect();
    eprintln!(
        "conformance through prism proxy: {} requests; request violations: {}; response violations: {}",
        requests.len(),
        request_violations.len(),
        responses.iter().flat_map(|(_, v)| v).filter(|v| !v.is_request()).count()
    );
    assert!(requests.len() > 30, "{requests:?}");
    assert!(
        request_violations.is_empty(),
        "the probes sent requests the contract does not allow:\n{}",
        request_violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    // The emulator's answers to the stale-version probe are the only ones outside the contract: it lists no 409
    // for createExperiment and createIteration, and the 409 is our assumption (contract §9.3, README).
    let response_violations: Vec<(u16, String)> = responses
        .iter()
        .flat_map(|(status, vs)| vs.iter().filter(|v| !v.is_request()).map(move |v| (*status, v.to_string())))
        .collect();
    for (status, v) in &response_violations {
        eprintln!("response violation: {status} {v}");
    }
    assert_eq!(response_violations.len(), 2, "{response_violations:?}");
    assert!(response_violations.iter().all(|(status, _)| *status == 409), "{response_violations:?}");
    emulator.shutdown().await;
}
