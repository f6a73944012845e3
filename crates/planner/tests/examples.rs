//! The shipped examples plan cleanly against the shipped emulator seed, every planned request succeeds, and the
//! plan after applying is empty: the end-to-end path `load → fetch → plan → apply → plan`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use ldexp_core::fetch::fetch_remote;
use ldexp_core::remote::Requirements;
use ldexp_emulator::{InMemory, Seed, State};

#[test]
fn examples_converge_against_remote_yaml() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let specs = ldexp_core::spec::load(&[&root]).unwrap();
    let seed = Seed::from_path(&root.join("remote.yaml")).unwrap();
    let emu = InMemory::new(State::from_seed(&seed).unwrap());
    let fetch = || block_on(fetch_remote(&emu, &Requirements::of(&specs))).unwrap();
    let plan = ldexp_planner::plan(&specs, &fetch()).unwrap_or_else(|e| panic!("{:#?}", e.problems()));
    assert!(!plan.is_empty(), "the examples are meant to show changes against the seed");
    for c in &plan.changes {
        for r in &c.requests {
            let resp = emu.with_state(|s| s.handle_planned(r));
            assert!(
                (200..300).contains(&resp.status),
                "{}: {} {} → {} {:?}",
                c.address,
                r.method,
                r.path,
                resp.status,
                resp.body
            );
        }
    }
    let again = ldexp_planner::plan(&specs, &fetch()).unwrap();
    assert!(again.is_empty(), "{}", serde_json::to_string_pretty(&again.changes).unwrap());
}
