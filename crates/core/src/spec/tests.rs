//! Loader tests: the examples, field locations, the digest, directory discovery, and that no input panics.
//! Every rule's exact message and position is pinned end to end in `tests/e2e/validate.rs`.

use proptest::prelude::*;

use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/checkout-button-placement.yaml");

fn problems(name: &str, text: &str) -> Vec<String> {
    match load_str(name, text) {
        Ok(_) => Vec::new(),
        Err(crate::Error::Spec { diagnostics }) => diagnostics.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn the_examples_load() {
    let set = load(&["../../examples"]).unwrap();
    let names: Vec<String> = set.files.iter().map(|f| f.display().to_string()).collect();
    // CI workflows and the emulator seed live beside the specs and are skipped.
    assert_eq!(
        names,
        [
            "../../examples/checkout-button-placement.yaml",
            "../../examples/checkout-layers.yaml",
            "../../examples/checkout-metrics.yaml",
            "../../examples/pricing-banner.yaml",
            "../../examples/search-ranking.yaml",
            "../../examples/signup-flow.yaml",
        ]
    );
    assert_eq!(set.experiments.len(), 3);
    assert_eq!(set.legacy.len(), 1);
    assert!(set.digest.starts_with("sha256:") && set.digest.len() == 71, "{}", set.digest);
    assert_eq!(set, load(&["../../examples"]).unwrap(), "loading is deterministic");
}

#[test]
fn field_locations_point_at_values() {
    let set = load_str("x.yaml", EXAMPLE).unwrap();
    let e = &set.experiments[0];
    assert_eq!(e.location.to_string(), "x.yaml:3:1");
    assert_eq!(e.location_of("key").to_string(), "x.yaml:6:6");
    assert_eq!(e.location_of("iteration.treatments[1].variations.checkout-button").to_string(), "x.yaml:36:26");
    assert_eq!(e.location_of("iteration.treatments[1].name").to_string(), "x.yaml:33:13");
    assert_eq!(e.location_of("iteration.metrics[2].group").to_string(), "x.yaml:22:14");
    assert_eq!(e.location_of("iteration.flags.checkout-button.rule").to_string(), "x.yaml:25:13");
    // Unrecorded paths fall back to the nearest parent.
    assert_eq!(e.location_of("iteration.treatments[1].nothing").to_string(), "x.yaml:33:7");
    let spec = &e.spec;
    assert_eq!(spec.iteration.treatments[0].allocation_percent.value(), Some(50.0));
    assert_eq!(
        spec.iteration.metrics[2],
        MetricRef::Detailed(MetricRefDetailed { key: "cart-funnel".into(), group: true })
    );
    assert_eq!(
        spec.analysis_config.as_ref().and_then(|a| a.bayesian_threshold.as_ref()).and_then(Percent::value),
        Some(95.0)
    );
}

#[test]
fn multi_document_files_and_the_digest() {
    let legacy = "kind: LegacyFlagExperiments\nproject: demo\nflag: f\nbaseline: 0\nmetrics: []\n";
    let two = format!("{EXAMPLE}\n---\n# comment only documents are skipped\n---\n{legacy}");
    let set = load_str("two.yaml", &two).unwrap();
    assert_eq!((set.experiments.len(), set.legacy.len()), (1, 1));
    assert_eq!(set.legacy[0].location.to_string(), "two.yaml:43:1");
    assert_eq!(set.legacy[0].spec.baseline, VariationRef::Number(0.into()));
    let other = load_str("two.yaml", &two.replace("flag: f", "flag: g")).unwrap();
    assert_ne!(set.digest, other.digest);
    // The digest is of what the documents say, not where they are (more in `digest.rs`).
    assert_eq!(set.digest, load_str("other-name.yaml", &two).unwrap().digest);
}

#[test]
fn directories_are_searched_recursively_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let legacy =
        |flag: &str| format!("kind: LegacyFlagExperiments\nproject: demo\nflag: {flag}\nbaseline: a\nmetrics: []\n");
    std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
    std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join("b/c/z.yml"), legacy("z")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), legacy("a")).unwrap();
    std::fs::write(dir.path().join("c.yaml"), legacy("c")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    std::fs::write(dir.path().join(".hidden/x.yaml"), "broken: [").unwrap();
    std::fs::write(dir.path().join("workflow.yml"), "name: ci\non: push\njobs: {}\n").unwrap();
    let set = load(&[dir.path()]).unwrap();
    let flags: Vec<&str> = set.legacy.iter().map(|l| l.spec.flag.as_str()).collect();
    assert_eq!(flags, ["a", "z", "c"]);
    // A file named explicitly is always a spec, and a file reached twice is read once.
    let err =
        load(&[dir.path().join("workflow.yml"), dir.path().join("a.yaml"), dir.path().join("a.yaml")]).unwrap_err();
    let crate::Error::Spec { diagnostics } = err else { panic!("{err}") };
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].message, "missing field `kind`");
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&[empty.path()]).unwrap_err().to_string(),
        format!("no spec files (*.yaml, *.yml with a `kind`) under {}", empty.path().display())
    );
    assert!(matches!(load(&[dir.path().join("missing")]), Err(crate::Error::Io { .. })));
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n";
const HELM: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"web.fullname\" . }}\n  labels:\n    {{- include \"web.labels\" . | nindent 4 }}\n";

#[test]
fn a_directory_walk_skips_other_tools_yaml_and_keeps_near_misses() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = "kind: LegacyFlagExperiments\nproject: demo\nflag: f\nbaseline: a\nmetrics: []\n";
    std::fs::create_dir_all(dir.path().join("deploy/templates")).unwrap();
    std::fs::write(dir.path().join("spec.yaml"), legacy).unwrap();
    std::fs::write(dir.path().join("deploy/deployment.yaml"), DEPLOYMENT).unwrap();
    std::fs::write(dir.path().join("deploy/templates/service.yaml"), HELM).unwrap();
    std::fs::write(dir.path().join("mixed.yaml"), format!("{DEPLOYMENT}---\n{}", legacy.replace("flag: f", "flag: g")))
        .unwrap();
    let set = load(&[dir.path()]).unwrap();
    // `files` are the files that held specs; a Deployment beside a spec in one file is dropped on its own.
    assert_eq!(set.files, [dir.path().join("mixed.yaml"), dir.path().join("spec.yaml")]);
    assert_eq!(set.legacy.len(), 2);
    std::fs::write(dir.path().join("typo.yaml"), "kind: Experimnet\nproject: demo\n").unwrap();
    let crate::Error::Spec { diagnostics } = load(&[dir.path()]).unwrap_err() else { panic!() };
    assert_eq!(
        diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}:1:7: unknown kind `Experimnet`, did you mean `Experiment`? (hint: `kind` is `Experiment`, \
             `LegacyFlagExperiments`, `Workspace`, `Metric`, `MetricGroup`, `ExperimentationSettings`, `Layer` or \
             `Holdout`)",
            dir.path().join("typo.yaml").display()
        )]
    );
    // Named explicitly, another tool's file is a spec, and an error.
    let crate::Error::Spec { diagnostics } = load(&[dir.path().join("deploy/deployment.yaml")]).unwrap_err() else {
        panic!()
    };
    assert_eq!(diagnostics[0].message, "unknown kind `Deployment`");
}

#[test]
fn merge_keys_share_fields_and_locations_point_into_the_anchor() {
    let text = "kind: Experiment\nproject: demo\nenvironment: production\nkey: a\nname: A\nstate: draft\n\
                iteration:\n  hypothesis: h\n  primaryMetric: m\n  metrics: [m]\n  flags: {f: {}}\n  treatments:\n    \
                - &control {name: C, baseline: true, allocationPercent: 50, variations: {f: a}}\n    \
                - <<: *control\n      name: B\n      baseline: false\n";
    let set = load_str("m.yaml", text).unwrap();
    let e = &set.experiments[0];
    let b = &e.spec.iteration.treatments[1];
    // Written keys win over merged ones; the rest comes from the anchored treatment.
    assert_eq!((b.name.as_str(), b.baseline, b.allocation_percent.value()), ("B", false, Some(50.0)));
    assert_eq!(e.location_of("iteration.treatments[1].name").to_string(), "m.yaml:15:13");
    assert_eq!(e.location_of("iteration.treatments[1].allocationPercent").to_string(), "m.yaml:13:61");
    // Rules see the merged values, and still locate problems in the file.
    let bad = text.replace("allocationPercent: 50", "allocationPercent: 60");
    assert_eq!(
        problems("m.yaml", &bad),
        ["m.yaml:13:5: treatment allocations add up to 120%, more than 100% (hint: lower the `allocationPercent` \
             values so that they total at most 100)"]
    );
    // The merged document means the same as the one written out, so the digest agrees.
    let written = text.replace(
        "- <<: *control\n      name: B\n      baseline: false\n",
        "- {name: B, allocationPercent: 50, variations: {f: a}}\n",
    );
    assert_eq!(load_str("w.yaml", &written).unwrap().digest, set.digest);
}

#[test]
fn a_large_file_without_aliases_loads() {
    // 6,000 experiments in one 2.5 MB file: far more values than an alias may expand to, all written out.
    let text: String = (0..6_000)
        .map(|i| {
            let doc = EXAMPLE.replace("key: checkout-button-placement", &format!("key: checkout-{i}"));
            format!("{}\n---\n", doc.replace("description: Does", &format!("description: {} Does", "x".repeat(250))))
        })
        .collect();
    assert!(text.len() > 2_500_000, "{}", text.len());
    let set = load_str("big.yaml", &text).unwrap();
    assert_eq!(set.experiments.len(), 6_000);
}

#[test]
fn every_problem_of_a_run_is_reported_in_file_order() {
    let text = "kind: Experiment\nproject: demo\nenvironment: production\nkey: k\nname: n\nstate: runing\n\
                iteration:\n  hypothesis: h\n  primary_metric: m\n  metrics: [m]\n  flags: {f: {rule: fallthrough}}\n  \
                treatments: []\n---\nkind: Experimnet\n";
    assert_eq!(
        problems("p.yaml", text),
        [
            "p.yaml:6:8: `state` must be one of `draft`, `running`, `stopped`, `archived`, found `runing`, did you mean \
         `running`? (hint: write `running`)",
            "p.yaml:9:3: unknown field `primary_metric` in `iteration`, did you mean `primaryMetric`? (hint: rename \
         `primary_metric` to `primaryMetric`)",
            "p.yaml:14:7: unknown kind `Experimnet`, did you mean `Experiment`? (hint: `kind` is `Experiment`, \
         `LegacyFlagExperiments`, `Workspace`, `Metric`, `MetricGroup`, `ExperimentationSettings`, `Layer` or \
             `Holdout`)",
        ]
    );
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_plain_yaml() {
    let text = "\u{feff}kind: LegacyFlagExperiments\r\nproject: demo\r\nflag: f\r\nbaseline: 0\r\nmetrics:\r\n  - {key: a, environments: []}\r\n  - {key: a, environments: []}\r\n";
    assert_eq!(
        problems("bom.yaml", text),
        [
            "bom.yaml:7:11: metric `a` is listed twice in `metrics` (hint: list each metric once, with every environment it \
         records in under its `environments`)"
        ]
    );
}

#[test]
fn invalid_utf8_is_located() {
    let mut loader = Loader::new();
    loader.add("bin.yaml".into(), b"kind: Experiment\nname: ab\xff\n", true);
    let crate::Error::Spec { diagnostics } = loader.finish().unwrap_err() else { panic!() };
    assert_eq!(
        diagnostics[0].to_string(),
        "bin.yaml:2:9: the file is not valid UTF-8 (hint: save the spec as UTF-8 text)"
    );
}

#[test]
fn schema_describes_every_kind() {
    let schema = json_schema();
    let kinds: Vec<&str> = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.pointer("/properties/kind/const").and_then(serde_json::Value::as_str))
        .collect();
    assert_eq!(
        kinds,
        [
            "Experiment",
            "LegacyFlagExperiments",
            "Workspace",
            "Metric",
            "MetricGroup",
            "ExperimentationSettings",
            "Layer",
            "Holdout"
        ]
    );
}

/// YAML-ish fragments that steer random input into mappings, lists, anchors and spec field names.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("kind: Experiment\n".to_owned()),
        Just("kind: LegacyFlagExperiments\n".to_owned()),
        Just("---\n".to_owned()),
        Just("iteration:\n  ".to_owned()),
        Just("treatments:\n  - ".to_owned()),
        Just("allocationPercent: ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a ".to_owned()),
        Just("<<: ".to_owned()),
        Just("!!str ".to_owned()),
        Just("? ".to_owned()),
        Just(".inf".to_owned()),
        "[a-z]{1,8}: ".prop_map(|s| s),
        "[ \\-:\\[\\]{},#&*!|>'\"%@`\\n\\t]{1,4}".prop_map(|s| s),
        "[0-9.eE+\\-]{1,6}".prop_map(|s| s),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut loader = Loader::new();
        loader.add("fuzz.yaml".into(), &bytes, true);
        let _ = loader.finish();
    }

    #[test]
    fn arbitrary_yaml_never_panics(text in yamlish()) {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_examples_never_panic(at in 0usize..2000, len in 0usize..40, insert in yamlish()) {
        let mut text = EXAMPLE.to_owned();
        let start = text.char_indices().map(|(i, _)| i).nth(at % EXAMPLE.chars().count()).unwrap_or(0);
        let end = text[start..].char_indices().map(|(i, _)| start + i).nth(len).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        match load_str("fuzz.yaml", &text) {
            Ok(set) => prop_assert!(set.digest.starts_with("sha256:")),
            Err(crate::Error::Spec { diagnostics }) => {
                prop_assert!(!diagnostics.is_empty());
                for d in &diagnostics {
                    prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
                    prop_assert!(d.help.is_some(), "{d}");
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
