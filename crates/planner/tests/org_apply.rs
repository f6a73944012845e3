//! Layers applied against the in-memory emulator: random reservation sets, applied one after another, converge
//! (the next plan is empty) and plan deterministically, whatever joins, moves or leaves in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod common;

use common::block_on;
use ldexp_core::apply::{ApplyOptions, apply};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::Plan;
use ldexp_core::remote::Requirements;
use ldexp_core::spec::{SpecSet, load_str};
use ldexp_emulator::{InMemory, Seed, State};
use proptest::prelude::*;

fn emulator() -> InMemory {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed = Seed::from_path(&root.join("examples/remote.yaml")).unwrap();
    InMemory::new(State::from_seed(&seed).unwrap())
}

fn plan(mem: &InMemory, specs: &SpecSet) -> Plan {
    let remote = block_on(fetch_remote(mem, &Requirements::of(specs))).unwrap();
    ldexp_planner::plan(specs, &remote).unwrap()
}

const LAYER: &str = "kind: Layer\nproject: demo\nkey: checkout-surface\nname: Checkout surface\n";

/// Three draft experiments (drafts share a rule freely), each in the layer at some share, or in no layer.
fn specs_text(shares: &[Option<u8>]) -> String {
    let mut docs = vec![LAYER.to_owned()];
    for (i, share) in shares.iter().enumerate() {
        let mut doc = format!(
            "kind: Experiment\nproject: demo\nenvironment: production\nkey: exp-{i}\nname: Exp {i}\nstate: draft\n\
             iteration:\n  hypothesis: h\n  primaryMetric: checkout-conversion\n  metrics: [checkout-conversion]\n  \
             flags:\n    checkout-button: {{rule: fallthrough}}\n  treatments:\n    - {{name: Control, baseline: true, \
             allocationPercent: 50, variations: {{checkout-button: control}}}}\n    - {{name: Above, \
             allocationPercent: 50, variations: {{checkout-button: above-fold}}}}\n"
        );
        if let Some(p) = share {
            doc.push_str(&format!("layer: {{key: checkout-surface, reservationPercent: {p}}}\n"));
        }
        docs.push(doc);
    }
    docs.join("---\n")
}

fn shares() -> impl Strategy<Value = Vec<Option<u8>>> {
    proptest::collection::vec(proptest::option::of(prop_oneof![Just(0u8), Just(10), Just(25), Just(33)]), 3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Apply, then plan again: empty; and planning twice gives the same plan.
    #[test]
    fn reservation_sets_converge(steps in proptest::collection::vec(shares(), 1..4)) {
        let mem = emulator();
        let options = ApplyOptions { retry_delay: std::time::Duration::ZERO, ..ApplyOptions::default() };
        for step in steps {
            let specs = load_str("l.yaml", &specs_text(&step)).unwrap();
            let p = plan(&mem, &specs);
            prop_assert_eq!(&p, &plan(&mem, &specs), "planning is deterministic");
            let report = block_on(apply(&p, &mem, &options));
            prop_assert!(report.succeeded(), "{:#?}", report);
            let again = plan(&mem, &specs);
            prop_assert!(again.is_empty(), "{:#?}", again.changes);
        }
    }
}
