//! Contract conformance: the whole REST client surface runs through Prism (`prism proxy --errors`) in front of the
//! emulator, so every request the client sends and every answer the emulator gives is validated against the
//! official OpenAPI cut (v2, `launchdarkly-experimentation.openapi.json`); then the client parses every response
//! `prism mock` serves from the same file.
//!
//! Needs `../shared/contract` (beside the repository) and Prism in `.tools/prism` (`.ci/prism.sh`); without
//! either it prints `skipped: …` and passes, so a fresh clone still runs `cargo test`. CI sets
//! `LDEXP_REQUIRE_CONTRACT=1`, which turns a missing prerequisite into a failure, so the check cannot vanish there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldexp_core::api::{
    ExperimentPatch, ExperimentPost, ExperimentationSettings, ExperimentationSettingsPut, FeatureFlagCollection,
    IterationInput, IterationRep, PatchWithComment,
};
use ldexp_core::client::{
    AccessToken, BaseUrl, CatalogReads, ClientConfig, ExportReads, HttpClient, PlanReads, ResultsReads, Writer,
};
use ldexp_core::plan::PlannedRequest;
use ldexp_core::remote::FlagSnapshot;
use ldexp_core::requests;
use ldexp_emulator::{Seed, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "contract/catalog_writes.rs"]
mod catalog_writes;
#[path = "contract/conformance_probes.rs"]
mod conformance_probes;
#[path = "contract/holdouts_layers.rs"]
mod holdouts_layers;

/// The files this test needs, or why it cannot run.
struct Setup {
    spec: PathBuf,
    prism: PathBuf,
    seed: PathBuf,
}

fn setup() -> Option<Setup> {
    let required = std::env::var("LDEXP_REQUIRE_CONTRACT").is_ok_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "LDEXP_REQUIRE_CONTRACT=1 but {why}");
        eprintln!("skipped: {why}");
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = repo.join("../shared/contract/launchdarkly-experimentation.openapi.json");
    let prism = repo.join(".tools/prism/node_modules/.bin/prism");
    if !spec.is_file() {
        skip(format!("contract conformance needs {} (the shared contract beside the repository)", spec.display()));
        return None;
    }
    if !prism.is_file() {
        skip(format!("contract conformance needs Prism at {}; run .ci/prism.sh", prism.display()));
        return None;
    }
    Some(Setup { spec, prism, seed: repo.join("examples/remote.yaml") })
}

/// A Prism process, killed on drop, with its output collected.
struct Prism {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl Prism {
    async fn start(setup: &Setup, args: &[&str]) -> Prism {
        let port = free_port();
        let mut child = Command::new(&setup.prism)
            .args(args)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prism");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let out = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let mut prism = Prism { child, port, output };
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = prism.child.try_wait() {
                panic!("prism exited with {status}:\n{}", prism.output());
            }
            assert!(Instant::now() < deadline, "prism did not start listening:\n{}", prism.output());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        prism
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The bytes one direction of a connection carried.
type Recording = Arc<Mutex<Vec<u8>>>;
/// `(method, path)` of a request seen on the wire.
type RequestLine = (String, String);
/// Status and `sl-violations` of a response seen on the wire.
type Answer = (u16, Vec<Violation>);

/// A byte-level tap between the client and Prism: it records both directions of every connection, so the test
/// sees the request lines, status lines and `sl-violations` headers on the wire.
#[derive(Clone, Default)]
struct Tap {
    conversations: Arc<Mutex<Vec<(Recording, Recording)>>>,
}

impl Tap {
    async fn start(upstream: u16) -> (Tap, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tap = Tap::default();
        let t = tap.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (req, resp) = (Arc::default(), Arc::default());
                t.conversations.lock().unwrap().push((Arc::clone(&req), Arc::clone(&resp)));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, req));
                tokio::spawn(pipe(sr, cw, resp));
            }
        });
        (tap, port)
    }

    /// `(method, path)` of every request, and `(status, sl-violations)` of every response.
    fn traffic(&self) -> (Vec<RequestLine>, Vec<Answer>) {
        let mut requests = Vec::new();
        let mut responses = Vec::new();
        for (req, resp) in self.conversations.lock().unwrap().iter() {
            let req = String::from_utf8_lossy(&req.lock().unwrap()).into_owned();
            // A request line follows the previous body directly (bodies end without CRLF), so match line ends.
            for line in req.split("\r\n") {
                let Some((before, target)) = line.strip_suffix(" HTTP/1.1").and_then(|l| l.rsplit_once(' ')) else {
                    continue;
                };
                if let Some(method) =
                    ["GET", "POST", "PUT", "PATCH", "DELETE"].into_iter().find(|m| before.ends_with(m))
                {
                    let path = target.split('?').next().unwrap_or_default();
                    requests.push((method.to_owned(), path.to_owned()));
                }
            }
            let resp = String::from_utf8_lossy(&resp.lock().unwrap()).into_owned();
            for message in resp.split("HTTP/1.1 ").skip(1) {
                let Some(status) = message.get(..3).and_then(|s| s.parse().ok()) else { continue };
                let head = message.split("\r\n\r\n").next().unwrap_or_default();
                let violations = head
                    .split("\r\n")
                    .filter_map(|h| h.split_once(':'))
                    .filter(|(k, _)| k.eq_ignore_ascii_case("sl-violations"))
                    .flat_map(|(_, v)| {
                        serde_json::from_str::<Vec<Violation>>(v.trim()).unwrap_or_else(|_| {
                            vec![Violation { location: vec!["unparsed".into()], message: v.trim().to_owned() }]
                        })
                    })
                    .collect();
                responses.push((status, violations));
            }
        }
        (requests, responses)
    }
}

/// One entry of Prism's `sl-violations` header.
#[derive(Debug, serde::Deserialize)]
struct Violation {
    #[serde(default)]
    location: Vec<String>,
    #[serde(default)]
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location.join("."), self.message)
    }
}

impl Violation {
    fn is_request(&self) -> bool {
        self.location.first().is_some_and(|l| l == "request")
    }
}

async fn pipe(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, record: Recording) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The operations of the contract the client calls: v1's 18 and, from v2, the flag list `export` reads and the
/// caller identity (which says whether creates need a `maintainerId`). The other v2 operations ldexp never sends;
/// of those, the metric and metric-group writes the emulator serves are exercised by `catalog_writes`, and holdouts
/// and layers by `holdouts_layers`: every operation of the contract is exercised.
const USED: [&str; 20] = [
    "createExperiment",
    "createIteration",
    "getCallerIdentity",
    "getExperiment",
    "getExperimentResults",
    "getExperimentResultsForMetricGroup",
    "getExperimentationSettings",
    "getExperiments",
    "getExperimentsAnyEnv",
    "getFeatureFlag",
    "getFeatureFlags",
    "getLegacyExperimentResults",
    "getMetric",
    "getMetricGroup",
    "getMetricGroups",
    "getMetrics",
    "patchExperiment",
    "patchFeatureFlag",
    "putExperimentationSettings",
    "resetExperiment",
];

/// The spec's operations, to name the requests seen on the wire.
struct Operations(Vec<(String, Vec<String>, String)>);

impl Operations {
    fn load(spec: &Path) -> Operations {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    let segments = path.split('/').map(str::to_owned).collect();
                    ops.push((method.to_ascii_uppercase(), segments, id.to_owned()));
                }
            }
        }
        Operations(ops)
    }

    fn name(&self, method: &str, path: &str) -> Option<&str> {
        let segs: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .find(|(m, t, _)| {
                m == method
                    && t.len() == segs.len()
                    && t.iter().zip(&segs).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
            })
            .map(|(_, _, id)| id.as_str())
    }
}

fn client(port: u16, token: &str) -> HttpClient {
    client_with_beta_version(port, token, "beta")
}

/// A client that sends `beta_version` as `LD-API-Version` on the beta routes.
fn client_with_beta_version(port: u16, token: &str, beta_version: &str) -> HttpClient {
    let mut cfg = ClientConfig::new(
        BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        AccessToken::new(token).unwrap(),
    );
    // Prism validates each exchange; keep the test quick if something is rate-limited or slow.
    cfg.retry.max_retries = 2;
    cfg.concurrency = 4;
    beta_version.clone_into(&mut cfg.api_version_beta);
    HttpClient::new(cfg).unwrap()
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Keys the scenario needs, picked from the seed.
struct Keys {
    project: String,
    env: String,
    flag: String,
    metric: String,
    group: String,
    unit: String,
}

fn pick(seed: &Seed) -> Keys {
    for p in &seed.projects {
        let Some(group) = p.metric_groups.first() else { continue };
        let Some(metric) = p.metrics.first() else { continue };
        for f in &p.flags {
            if f.variations.len() < 2 || f.archived {
                continue;
            }
            if let Some((env, _)) = f.environments.iter().find(|(_, e)| e.on && !e.archived) {
                return Keys {
                    project: p.key.clone(),
                    env: env.clone(),
                    flag: f.key.clone(),
                    metric: metric.key.clone(),
                    group: group.key.clone(),
                    unit: p.randomization_units.first().cloned().unwrap_or_else(|| "user".into()),
                };
            }
        }
    }
    panic!("examples/remote.yaml needs a project with a metric, a metric group and a flag that is on somewhere")
}

/// The experiment the scenario creates, targeting `flag` with two treatments.
fn post_body(k: &Keys, key: &str, flag: &FlagSnapshot) -> ExperimentPost {
    let v = &flag.flag.variations;
    let version = flag.flag.environments[&k.env].version;
    from(json!({
        "name": "Contract run", "key": key, "description": "created by the conformance test",
        "iteration": {
            "hypothesis": "The new variation converts better",
            "canReshuffleTraffic": true,
            "metrics": [{"key": k.metric, "isGroup": false}, {"key": k.group, "isGroup": true}],
            "primarySingleMetricKey": k.metric,
            "treatments": [
                {"name": "control", "baseline": true, "allocationPercent": "50",
                 "parameters": [{"flagKey": k.flag, "variationId": v[0].id}]},
                {"name": "treatment", "baseline": false, "allocationPercent": "50",
                 "parameters": [{"flagKey": k.flag, "variationId": v[1].id}]}
            ],
            "flags": {k.flag.clone(): {"ruleId": "fallthrough", "flagConfigVersion": version}},
            "randomizationUnit": k.unit
        }
    }))
}

fn patch(instructions: Value) -> ExperimentPatch {
    from(json!({"comment": "ldexp contract test", "instructions": instructions}))
}

/// Runs every client call at least once, against the emulator's seeded state.
async fn scenario(c: &HttpClient, k: &Keys) {
    let (p, e) = (k.project.as_str(), k.env.as_str());
    let metrics = c.list_metrics(p).await.unwrap().expect("project exists");
    assert!(metrics.iter().any(|m| m.key == k.metric));
    assert_eq!(c.get_metric(p, &k.metric).await.unwrap().unwrap().key, k.metric);
    let groups = c.list_metric_groups(p).await.unwrap().unwrap();
    assert!(groups.iter().any(|g| g.key == k.group));
    assert_eq!(c.get_metric_group(p, &k.group).await.unwrap().unwrap().key, k.group);
    let settings = c.get_settings(p).await.unwrap().unwrap();
    let units: Vec<Value> = settings
        .randomization_units
        .iter()
        .map(|u| json!({"randomizationUnit": u.randomization_unit, "default": u.default}))
        .collect();
    let put: ExperimentationSettingsPut = from(json!({"randomizationUnits": units}));
    let echoed: ExperimentationSettings =
        from(c.send(&requests::put_settings(p, &put), "settings").await.unwrap().unwrap());
    assert_eq!(echoed.randomization_units.len(), settings.randomization_units.len());

    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    assert!(c.get_flag(p, "no-such-flag-anywhere").await.unwrap().is_none(), "404 is None");
    let listed = c.list_flags(p).await.unwrap().expect("project exists");
    assert!(listed.iter().any(|f| f.key == k.flag) && listed.iter().all(|f| f.environments.is_empty()));
    // The rest of what the list offers: one page of one flag past the first, with one environment in full, and a
    // filtered page with the environment summarised. The operation's text says `summary=0`, but its schema types
    // `summary` as a boolean and Prism refuses `0`; the schema is the contract, so `false` it is.
    let mut one = requests::list_flags(p, 1);
    for (name, value) in [("limit", "1"), ("env", e), ("summary", "false")] {
        one.query.insert(name.into(), value.into());
    }
    let page: FeatureFlagCollection = from(c.send(&one, "flags").await.unwrap().unwrap());
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.total_count, Some(listed.len() as u64));
    assert!(page.links.contains_key("prev"));
    assert_eq!(page.items[0].environments.keys().collect::<Vec<_>>(), [e]);
    // The page a plan reads instead of one GET per flag: whole flags with one environment's rules.
    let planned = c.flag_page(p, e, 0).await.unwrap().expect("the project and environment exist");
    assert_eq!(planned.total, Some(listed.len() as u64));
    let mine = planned.items.iter().find(|f| f["key"] == k.flag.as_str()).expect("the flag is listed");
    assert!(mine["environments"][e]["rules"].is_array(), "rules are there: {mine}");
    assert!(c.flag_page(p, "no-such-environment", 0).await.unwrap().is_none(), "404 is None");
    let mut filtered = requests::list_flags(p, 0);
    for (name, value) in [("env", e), ("filter", "hasExperiment:true,state:live")] {
        filtered.query.insert(name.into(), value.into());
    }
    let raw = c.send(&filtered, "flags").await.unwrap().unwrap();
    assert!(
        raw["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(|f| f["environments"][e]["_summary"].is_object()))
    );
    let before = c.list_experiments(p, e).await.unwrap().unwrap().len();
    let any_env_before = c.list_experiments_any_env(p).await.unwrap().unwrap().len();

    let key = "ldexp-contract-run";
    let res = format!("experiment {p}/{e}/{key}");
    let created = c.send(&requests::create_experiment(p, e, &post_body(k, key, &flag)), &res).await.unwrap().unwrap();
    let created: ldexp_core::api::Experiment = from(created);
    assert_eq!(created.draft_iteration.as_ref().map(|i| i.treatments.len()), Some(2));
    assert!(c.get_experiment(p, e, "no-such-experiment").await.unwrap().is_none());

    let start = patch(json!([{"kind": "updateName", "value": "Contract run (started)"}, {"kind": "startIteration"}]));
    c.send(&requests::patch_experiment(p, e, key, &start), &res).await.unwrap();
    let running = c.get_experiment(p, e, key).await.unwrap().unwrap();
    let current = running.current_iteration.clone().expect("started");
    let iteration_id = current.id.clone().expect("iteration _id");
    assert_eq!(running.name, "Contract run (started)");

    c.experiment_results(p, e, key, &k.metric, Some(&iteration_id)).await.unwrap().expect("results");
    c.metric_group_results(p, e, key, &k.group, Some(&iteration_id)).await.unwrap().expect("group results");

    // Starting made the fallthrough an experiment rollout and bumped the flag's version: build from a fresh read.
    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    let mut next: IterationInput = post_body(k, key, &flag).iteration;
    next.hypothesis = "Second iteration".into();
    let it: IterationRep = from(c.send(&requests::create_iteration(p, e, key, &next), &res).await.unwrap().unwrap());
    assert_eq!(it.hypothesis, "Second iteration");
    let restart = patch(json!([{"kind": "startIteration", "changeJustification": "contract test restart"}]));
    c.send(&requests::patch_experiment(p, e, key, &restart), &res).await.unwrap();

    let now = c.get_experiment(p, e, key).await.unwrap().unwrap();
    let winner = now.current_iteration.as_ref().unwrap().treatments[0].id.clone().unwrap();
    let stop = patch(json!([
        {"kind": "stopIteration", "winningTreatmentId": winner, "winningReason": "baseline kept"},
        {"kind": "updateDescription", "value": "stopped by the contract test"}
    ]));
    c.send(&requests::patch_experiment(p, e, key, &stop), &res).await.unwrap();
    c.send(&requests::patch_experiment(p, e, key, &patch(json!([{"kind": "archiveExperiment"}]))), &res).await.unwrap();
    c.send(&requests::patch_experiment(p, e, key, &patch(json!([{"kind": "restoreExperiment"}]))), &res).await.unwrap();
    assert_eq!(c.list_experiments(p, e).await.unwrap().unwrap().len(), before + 1);
    assert_eq!(c.list_experiments_any_env(p).await.unwrap().unwrap().len(), any_env_before + 1);

    // Legacy experiments on the flag: add one recording in the environment, read and reset its results.
    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    let env_version = flag.flag.environments[e].version;
    let legacy: PatchWithComment = from(json!({
        "comment": "ldexp contract test",
        "patch": [
            {"op": "test", "path": format!("/environments/{e}/version"), "value": env_version},
            {"op": "add", "path": "/experiments/items/0", "value": {"metricKey": k.metric, "environments": [e]}}
        ]
    }));
    let mut dry = requests::patch_flag(p, &k.flag, &legacy);
    dry.query.insert("dryRun".into(), "true".into());
    let preview = FlagSnapshot::from_json(c.send(&dry, "flag").await.unwrap().unwrap()).unwrap();
    assert_eq!(preview.flag.experiments.items[0].metric_key, k.metric);
    let patched =
        FlagSnapshot::from_json(c.send(&requests::patch_flag(p, &k.flag, &legacy), "flag").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(patched.flag.experiments.items[0].environments, [e]);
    c.legacy_results(p, &k.flag, e, &k.metric).await.unwrap().expect("legacy results");
    let reset = requests::reset_legacy_results(p, &k.flag, e, &k.metric);
    assert_eq!(c.send(&reset, "legacy results").await.unwrap(), None);
}

/// Error answers are part of the contract too: each must match its `*ErrorRep` schema.
async fn error_answers(port: u16, k: &Keys) {
    let c = client(port, ldexp_emulator::DEFAULT_TOKEN);
    let (p, e) = (k.project.as_str(), k.env.as_str());
    // The run left the experiment stopped: stopping again breaks a precondition (400).
    let stop = patch(json!([{"kind": "stopIteration", "winningReason": "again"}]));
    let err = c.send(&requests::patch_experiment(p, e, "ldexp-contract-run", &stop), "x").await.unwrap_err();
    assert!(matches!(&err, ldexp_core::Error::Api(a) if a.status == 400), "{err}");
    let wrong = client(port, "not-the-token");
    let err = wrong.get_settings(p).await.unwrap_err();
    assert!(matches!(&err, ldexp_core::Error::Api(a) if a.status == 401), "{err}");
    let mut cfg = ClientConfig::new(
        BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        AccessToken::new(ldexp_emulator::DEFAULT_TOKEN).unwrap(),
    );
    cfg.api_version_beta = "20240415".into();
    let err = HttpClient::new(cfg).unwrap().get_settings(p).await.unwrap_err();
    assert!(matches!(&err, ldexp_core::Error::Api(a) if a.status == 403), "{err}");
    strict_answers(&c, &client(port, SERVICE_TOKEN), k).await;
}

/// The token the conformance run's emulator also accepts as a service token.
const SERVICE_TOKEN: &str = "ld-emulator-service-token";
/// A metric the run's seed adds that fits only the `organization` unit.
const ORG_METRIC: &str = "ldexp-contract-org-only";

fn status_of(err: &ldexp_core::Error) -> u16 {
    match err {
        ldexp_core::Error::Api(a) => a.status,
        other => panic!("expected an API error, got {other}"),
    }
}

fn caller_identity() -> PlannedRequest {
    ldexp_core::requests::caller_identity()
}

/// The answers of the service's rules beyond the schema (contract §9): each 400 and 409 must match its error
/// schema, and the caller identity its `CallerIdentityRep`.
async fn strict_answers(c: &HttpClient, service: &HttpClient, k: &Keys) {
    let (p, e) = (k.project.as_str(), k.env.as_str());
    let me = c.send(&caller_identity(), "caller").await.unwrap().unwrap();
    assert_eq!((me["serviceToken"].as_bool(), me["memberId"].is_string()), (Some(false), true), "{me}");
    let svc = service.send(&caller_identity(), "caller").await.unwrap().unwrap();
    assert_eq!(svc["serviceToken"], true, "{svc}");

    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    // A service token stands for no member: the create must name a maintainer (400).
    let create = |key: &str, flag: &FlagSnapshot| requests::create_experiment(p, e, &post_body(k, key, flag));
    let err = service.send(&create("ldexp-contract-svc", &flag), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 400, "{err}");
    // A metric that does not list the iteration's unit (400).
    let mut body = post_body(k, "ldexp-contract-unit", &flag);
    body.iteration.metrics = from(json!([{"key": ORG_METRIC}]));
    body.iteration.primary_single_metric_key = Some(ORG_METRIC.into());
    body.iteration.randomization_unit = Some("user".into());
    let err = c.send(&requests::create_experiment(p, e, &body), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 400, "{err}");

    // The holder runs on the flag's fallthrough; a rival on the same rule cannot start (409), and the rule cannot
    // be patched while the holder runs (409).
    c.send(&create("ldexp-contract-holder", &flag), "x").await.unwrap();
    let start = patch(json!([{"kind": "startIteration"}]));
    c.send(&requests::patch_experiment(p, e, "ldexp-contract-holder", &start), "x").await.unwrap();
    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    c.send(&create("ldexp-contract-rival", &flag), "x").await.unwrap();
    let err = c.send(&requests::patch_experiment(p, e, "ldexp-contract-rival", &start), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 409, "{err}");
    let edit: PatchWithComment = from(json!({"comment": "c", "patch": [
        {"op": "replace", "path": format!("/environments/{e}/fallthrough"), "value": {"variation": 0}}
    ]}));
    let err = c.send(&requests::patch_flag(p, &k.flag, &edit), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 409, "{err}");

    // An iteration naming another set of flags (400).
    let other = c.list_flags(p).await.unwrap().unwrap().into_iter().find(|f| f.key != k.flag).expect("a second flag");
    let other = c.get_flag(p, &other.key).await.unwrap().unwrap();
    let mut wider = post_body(k, "ldexp-contract-rival", &flag).iteration;
    let mut flags = serde_json::to_value(&wider.flags).unwrap();
    flags[&other.flag.key] = json!({"ruleId": "fallthrough", "flagConfigVersion": other.flag.environments[e].version});
    wider.flags = from(flags);
    let mut treatments = serde_json::to_value(&wider.treatments).unwrap();
    for t in treatments.as_array_mut().unwrap() {
        t["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"flagKey": other.flag.key, "variationId": other.flag.variations[0].id}));
    }
    wider.treatments = from(treatments);
    let err = c.send(&requests::create_iteration(p, e, "ldexp-contract-rival", &wider), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 400, "{err}");

    // Stop the holder; a restart after a stopped iteration needs a change justification (400).
    let held = c.get_experiment(p, e, "ldexp-contract-holder").await.unwrap().unwrap();
    let winner = held.current_iteration.as_ref().unwrap().treatments[0].id.clone().unwrap();
    let stop = patch(json!([{"kind": "stopIteration", "winningTreatmentId": winner, "winningReason": "done"}]));
    c.send(&requests::patch_experiment(p, e, "ldexp-contract-holder", &stop), "x").await.unwrap();
    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    let again = post_body(k, "ldexp-contract-holder", &flag).iteration;
    c.send(&requests::create_iteration(p, e, "ldexp-contract-holder", &again), "x").await.unwrap();
    let err = c.send(&requests::patch_experiment(p, e, "ldexp-contract-holder", &start), "x").await.unwrap_err();
    assert_eq!(status_of(&err), 400, "{err}");
}

/// A server answering every request with `body` (status 200), to feed Prism a response that breaks the schema.
async fn fake_upstream(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

/// Names every request seen on the wire; panics on one that is not an operation of the contract.
fn exercised<'a>(ops: &'a Operations, requests: &[RequestLine]) -> BTreeMap<&'a str, usize> {
    let mut seen = BTreeMap::new();
    for (method, path) in requests {
        let name =
            ops.name(method, path).unwrap_or_else(|| panic!("{method} {path} is not an operation of the contract"));
        *seen.entry(name).or_default() += 1;
    }
    seen
}

/// Lines of Prism's output reporting a validation problem.
fn violation_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("Violation") || l.contains('✖')).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_emulator_conform_to_the_contract_through_prism() {
    let Some(setup) = setup() else { return };
    let mut seed = Seed::from_path(&setup.seed).unwrap();
    let keys = pick(&seed);
    let project = seed.projects.iter_mut().find(|p| p.key == keys.project).unwrap();
    project.metrics.push(from(json!({"key": ORG_METRIC, "randomizationUnits": ["organization"]})));
    let config =
        ServerConfig { seed: Some(seed), service_token: Some(SERVICE_TOKEN.into()), ..ServerConfig::default() };
    let emulator = ldexp_emulator::serve(config).await.unwrap();
    let target = format!("http://127.0.0.1:{}", emulator.addr.port());
    let spec = setup.spec.to_str().unwrap().to_owned();
    let prism = Prism::start(&setup, &["proxy", &spec, &target, "--errors"]).await;
    let (tap, tap_port) = Tap::start(prism.port).await;

    let c = client(tap_port, ldexp_emulator::DEFAULT_TOKEN);
    scenario(&c, &keys).await;
    error_answers(tap_port, &keys).await;
    catalog_writes::run(&c, &client(emulator.addr.port(), ldexp_emulator::DEFAULT_TOKEN), &keys).await;
    holdouts_layers::run(&c, &keys).await;

    let ops = Operations::load(&setup.spec);
    let (requests, responses) = tap.traffic();
    let exercised = exercised(&ops, &requests);
    let all: BTreeSet<&str> = ops.0.iter().map(|(_, _, id)| id.as_str()).collect();
    let missing: Vec<&&str> = all.iter().filter(|id| !exercised.contains_key(**id)).collect();
    let violations: Vec<&Violation> = responses.iter().flat_map(|(_, v)| v).collect();
    let statuses: BTreeMap<u16, usize> = responses.iter().fold(BTreeMap::new(), |mut m, (s, _)| {
        *m.entry(*s).or_default() += 1;
        m
    });
    let log = prism.output();
    let log_violations = violation_lines(&log);
    eprintln!(
        "contract: {} of {} operations exercised over {} requests through prism proxy --errors; statuses \
         {statuses:?}; violations: {} in sl-violations headers, {} in the Prism log",
        exercised.len(),
        all.len(),
        requests.len(),
        violations.len(),
        log_violations.len()
    );
    assert!(USED.iter().all(|u| all.contains(u)), "every operation the client calls is in the contract: {all:?}");
    let called: Vec<&str> = exercised.keys().copied().collect();
    let mut expected: Vec<&str> =
        USED.iter().chain(&catalog_writes::OPERATIONS).chain(&holdouts_layers::OPERATIONS).copied().collect();
    expected.sort_unstable();
    assert_eq!(
        called, expected,
        "the client's operations and the emulator's catalog writes, each at least once; not called: {missing:?}"
    );
    assert!(missing.is_empty(), "every operation of the contract is exercised; not called: {missing:?}");
    assert_eq!(requests.len(), responses.len(), "every request got an answer");
    assert!(
        violations.is_empty() && log_violations.is_empty(),
        "Prism reported violations:\n{}\n{}",
        violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        log_violations.join("\n")
    );
    let mut deliberate: BTreeMap<u16, usize> = [(400, 5), (401, 1), (403, 1), (404, 3), (409, 2)].into();
    for (status, n) in catalog_writes::DELIBERATE.into_iter().chain(holdouts_layers::DELIBERATE) {
        *deliberate.entry(status).or_default() += n;
    }
    let errors: BTreeMap<u16, usize> = statuses.iter().filter(|(s, _)| **s >= 300).map(|(s, n)| (*s, *n)).collect();
    assert_eq!(errors, deliberate, "only the deliberate error answers: {statuses:?}");

    // Controls: the detectors above must fire when there is a violation. A request body without `key` and
    // `iteration` breaks `ExperimentPost`; Prism answers 422 and logs it.
    let flag = c.get_flag(&keys.project, &keys.flag).await.unwrap().unwrap();
    let mut bad = requests::create_experiment(&keys.project, &keys.env, &post_body(&keys, "control", &flag));
    bad.body = Some(json!({"name": "no key, no iteration"}));
    let ldexp_core::Error::Api(e) = c.send(&bad, "control").await.unwrap_err() else { panic!("Prism let it through") };
    assert_eq!(e.status, 422, "{e}");
    assert!(e.message.contains("UNPROCESSABLE_ENTITY"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(violation_lines(&prism.output()).iter().any(|l| l.contains("UNPROCESSABLE_ENTITY")));
    // A response breaking `FeatureFlag` (no required fields, `_version` a string) from a fake upstream.
    let fake = fake_upstream(r#"{"key": "f", "_version": "seven"}"#).await;
    let prism2 = Prism::start(&setup, &["proxy", &spec, &format!("http://127.0.0.1:{fake}"), "--errors"]).await;
    let (tap2, tap2_port) = Tap::start(prism2.port).await;
    let answer = client(tap2_port, "t").get_flag("demo", "f").await;
    let (_, responses2) = tap2.traffic();
    // With --errors Prism turns the violating answer into a 5xx carrying `sl-violations`; the client retries the
    // GET (twice, as configured) and reports the 5xx.
    let Err(ldexp_core::Error::Api(e)) = answer else { panic!("{answer:?}") };
    assert!(e.status >= 500, "{e}");
    assert_eq!(responses2.len(), 3);
    for (status, violations) in &responses2 {
        assert_eq!(*status, e.status);
        assert!(
            violations.iter().any(|v| !v.is_request() && v.location.contains(&"_version".to_owned())),
            "{violations:?}"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_parses_every_response_prism_mock_serves() {
    let Some(setup) = setup() else { return };
    let spec = setup.spec.to_str().unwrap().to_owned();
    let prism = Prism::start(&setup, &["mock", &spec]).await;
    let (tap, tap_port) = Tap::start(prism.port).await;
    let c = client(tap_port, "mock-token");
    let (p, e) = ("my-project", "my-environment");

    assert!(!c.list_experiments(p, e).await.unwrap().unwrap().is_empty());
    assert!(!c.list_experiments_any_env(p).await.unwrap().unwrap().is_empty());
    let x = c.get_experiment(p, e, "my-experiment").await.unwrap().unwrap();
    assert!(!x.key.is_empty());
    let flag = c.get_flag(p, "my-flag").await.unwrap().unwrap();
    assert!(!flag.flag.variations.is_empty());
    assert!(!c.list_metrics(p).await.unwrap().unwrap().is_empty());
    assert!(!c.get_metric(p, "my-metric").await.unwrap().unwrap().key.is_empty());
    assert!(!c.list_metric_groups(p).await.unwrap().unwrap().is_empty());
    assert!(!c.get_metric_group(p, "my-group").await.unwrap().unwrap().key.is_empty());
    let settings = c.get_settings(p).await.unwrap().unwrap();
    assert!(!settings.randomization_units.is_empty());
    let r = c.experiment_results(p, e, "my-experiment", "my-metric", Some("it")).await.unwrap().unwrap();
    assert!(!r.overall().is_empty());
    let g = c.metric_group_results(p, e, "my-experiment", "my-group", None).await.unwrap().unwrap();
    assert!(!g.metrics.is_empty());
    let l = c.legacy_results(p, "my-flag", e, "my-metric").await.unwrap().unwrap();
    assert!(!l.totals.is_empty());
    c.list_flags(p).await.unwrap().expect("the mock's flag list parses");
    c.send(&caller_identity(), "caller").await.unwrap().expect("the mock's caller identity parses");

    let keys = Keys {
        project: p.into(),
        env: flag.flag.environments.keys().next().cloned().unwrap(),
        flag: "my-flag".into(),
        metric: "my-metric".into(),
        group: "my-group".into(),
        unit: "user".into(),
    };
    let post = post_body(&keys, "my-experiment", &flag);
    let created = c.send(&requests::create_experiment(p, e, &post), "x").await.unwrap().unwrap();
    let _: ldexp_core::api::Experiment = from(created);
    let archive = requests::patch_experiment(p, e, "k", &patch(json!([{"kind": "archiveExperiment"}])));
    let _: ldexp_core::api::Experiment = from(c.send(&archive, "x").await.unwrap().unwrap());
    let it = c.send(&requests::create_iteration(p, e, "k", &post.iteration), "x").await.unwrap().unwrap();
    let _: IterationRep = from(it);
    let fp: PatchWithComment =
        from(json!({"comment": "c", "patch": [{"op": "replace", "path": "/description", "value": "d"}]}));
    let f = c.send(&requests::patch_flag(p, "my-flag", &fp), "x").await.unwrap().unwrap();
    FlagSnapshot::from_json(f).unwrap();
    let put: ExperimentationSettingsPut =
        from(json!({"randomizationUnits": [{"randomizationUnit": "user", "default": true}]}));
    let s: ExperimentationSettings = from(c.send(&requests::put_settings(p, &put), "x").await.unwrap().unwrap());
    assert!(!s.randomization_units.is_empty());
    assert_eq!(c.send(&requests::reset_legacy_results(p, "my-flag", e, "my-metric"), "x").await.unwrap(), None);

    let ops = Operations::load(&setup.spec);
    let (requests, responses) = tap.traffic();
    let exercised = exercised(&ops, &requests);
    let log = prism.output();
    // Prism also validates its own answers, and the spec's examples break their schemas (quirk 10: JSON-encoded
    // objects, string timestamps). Those response violations are what the client must tolerate; it just parsed
    // them. A request violation would be the client's fault.
    let (request_violations, response_violations): (Vec<&Violation>, Vec<&Violation>) =
        responses.iter().flat_map(|(_, v)| v).partition(|v| v.is_request());
    let request_log: Vec<&str> =
        violation_lines(&log).into_iter().filter(|l| l.contains("Violation: request")).collect();
    eprintln!(
        "contract: prism mock answered {} operations over {} requests and the client parsed every answer; request \
         violations: {}; violations of the spec's own examples tolerated: {}",
        exercised.len(),
        requests.len(),
        request_violations.len(),
        response_violations.len()
    );
    assert_eq!(exercised.keys().copied().collect::<Vec<_>>(), USED, "{exercised:?}");
    assert!(responses.iter().all(|(s, _)| (200..300).contains(s)), "{responses:?}");
    assert!(
        request_violations.is_empty() && request_log.is_empty(),
        "Prism mock flagged the client's requests:\n{request_violations:#?}\n{}",
        request_log.join("\n")
    );
}
