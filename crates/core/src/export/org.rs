//! Export of the organising kinds: each layer of a project and each holdout of an environment as the spec that
//! plans empty against it, and an experiment's place in them (`layer:`, `holdout:`).
//!
//! The planner compares a layer's name and description (absent reads as `""`), and a holdout's name, description,
//! `holdoutAmount` and state; so those are written, an empty description left out. A holdout's creation-only fields
//! that its representations do not show (`randomizationUnit`, `primaryMetric`, `metrics`, `attributes`,
//! `prerequisiteFlag`, `maintainerId`) are left out: the planner never compares them on an existing holdout.

use crate::Error;
use crate::api::{Holdout, Layer};
use crate::spec::{ExperimentSpec, HoldoutSpec, HoldoutState, LayerRef, LayerSpec};

/// The spec of layer `l` of `project`.
pub fn export_layer(l: &Layer, project: &str) -> LayerSpec {
    LayerSpec {
        project: project.to_owned(),
        key: l.key.clone(),
        name: l.name.clone(),
        description: l.description.clone().filter(|d| !d.is_empty()),
    }
}

/// The spec of holdout `h` of `project`, in environment `env`. `h` must carry its detail (`holdoutAmount`): a
/// list item alone does not show it.
pub fn export_holdout(h: &Holdout, project: &str, env: &str) -> Result<HoldoutSpec, Error> {
    let amount = h.holdout_amount.as_ref().ok_or_else(|| Error::Export {
        resource: format!("holdout {project}/{env}/{}", h.key()),
        message: "LaunchDarkly did not show its holdoutAmount".to_owned(),
    })?;
    let description = h.description();
    Ok(HoldoutSpec {
        project: project.to_owned(),
        environment: Some(env.to_owned()),
        environments: None,
        key: h.key().to_owned(),
        name: h.name().to_owned(),
        description: Some(description.to_owned()).filter(|d| !d.is_empty()),
        randomization_unit: None,
        attributes: None,
        holdout_amount: amount.canonical(),
        primary_metric: None,
        metrics: None,
        prerequisite_flag: None,
        maintainer_id: None,
        state: if h.is_ended() { HoldoutState::Ended } else { HoldoutState::Active },
    })
}

/// Writes `spec`'s place among `layers` (of its project) and `holdouts` (of its environment): `layer:` when a
/// layer holds a reservation for it, and `holdout: <key>` in place of a `holdoutId` that names one of `holdouts`
/// (an id no listed holdout has stays as it is, which the planner compares as written).
pub fn place(spec: &mut ExperimentSpec, layers: &[Layer], holdouts: &[Holdout]) -> Result<(), Error> {
    let env = spec.environment.clone().unwrap_or_default();
    let fail = |message: String| Error::Export {
        resource: format!("experiment {}/{env}/{}", spec.project, spec.key),
        message,
    };
    let held: Vec<(&str, i64)> = layers
        .iter()
        .filter_map(|l| l.reservation(&env, &spec.key).map(|r| (l.key.as_str(), r.reservation_percent)))
        .collect();
    let layer = match held.as_slice() {
        [] => None,
        [(key, percent)] => {
            let reservation_percent = u8::try_from(*percent)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| fail(format!("its reservation in layer `{key}` is {percent}%, outside 0 to 100")))?;
            Some(LayerRef { key: (*key).to_owned(), reservation_percent })
        }
        // A spec names one layer; the planner would take the experiment out of the others.
        more => {
            let keys: Vec<&str> = more.iter().map(|(k, _)| *k).collect();
            return Err(fail(format!(
                "it holds reservations in several layers ({}), a spec names one",
                keys.join(", ")
            )));
        }
    };
    spec.layer = layer;
    if let Some(h) = spec.holdout_id.as_deref().and_then(|id| holdouts.iter().find(|h| h.id == id)) {
        spec.holdout = Some(h.key().to_owned());
        spec.holdout_id = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn layer() -> Layer {
        serde_json::from_value(json!({"key": "checkout", "name": "Checkout", "description": "",
            "environments": {"production": {"reservations": [
                {"experimentKey": "a", "flagKey": "f", "reservationPercent": 40}]}}}))
        .unwrap()
    }

    fn holdout(status: &str) -> Holdout {
        serde_json::from_value(json!({"_id": "h-1", "status": status, "holdoutAmount": "10.0",
            "baseExperiment": {"key": "hold", "name": "Hold", "description": "Ten percent"}}))
        .unwrap()
    }

    fn experiment(key: &str, holdout_id: Option<&str>) -> ExperimentSpec {
        let yaml = format!(
            "project: demo\nenvironment: production\nkey: {key}\nname: {key}\nstate: draft\niteration:\n  hypothesis: h\n  \
             primaryMetric: m\n  metrics: [m]\n  flags: {{f: {{rule: fallthrough}}}}\n  treatments:\n  - name: a\n    \
             baseline: true\n    allocationPercent: 100\n    variations: {{f: x}}\n"
        );
        let mut e: ExperimentSpec = serde_yaml::from_str(&yaml).unwrap();
        e.holdout_id = holdout_id.map(str::to_owned);
        e
    }

    #[test]
    fn a_layer_leaves_an_empty_description_out() {
        let s = export_layer(&layer(), "demo");
        assert_eq!((s.key.as_str(), s.name.as_str(), s.description), ("checkout", "Checkout", None));
    }

    #[test]
    fn a_holdout_reads_its_key_name_and_description_off_its_base_experiment() {
        let s = export_holdout(&holdout("running"), "demo", "production").unwrap();
        assert_eq!((s.key.as_str(), s.name.as_str(), s.description.as_deref()), ("hold", "Hold", Some("Ten percent")));
        assert_eq!((s.holdout_amount.to_string().as_str(), s.state), ("10", HoldoutState::Active));
        assert_eq!(export_holdout(&holdout("ended"), "demo", "production").unwrap().state, HoldoutState::Ended);
        let bare = Holdout { holdout_amount: None, ..holdout("running") };
        assert!(export_holdout(&bare, "demo", "production").is_err());
    }

    #[test]
    fn an_experiment_is_placed_in_its_layer_and_holdout() {
        let mut a = experiment("a", Some("h-1"));
        place(&mut a, &[layer()], &[holdout("running")]).unwrap();
        assert_eq!(a.layer, Some(LayerRef { key: "checkout".into(), reservation_percent: 40 }));
        assert_eq!((a.holdout.as_deref(), a.holdout_id), (Some("hold"), None));

        let mut b = experiment("b", Some("unknown"));
        place(&mut b, &[layer()], &[holdout("running")]).unwrap();
        assert_eq!((b.layer, b.holdout, b.holdout_id.as_deref()), (None, None, Some("unknown")));

        let mut twice = layer();
        twice.key = "other".into();
        assert!(place(&mut experiment("a", None), &[layer(), twice], &[]).is_err());
    }
}
