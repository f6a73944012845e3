//! The organising kinds of spec format v1 (`Layer`, `Holdout`) and an experiment's place in them (`layer:`,
//! `holdout:`): their types, the request bodies they become, and the rules types cannot express.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::rules::{is_ld_key, key_help};
use super::{Diagnostic, ExperimentSpec, Located, MetricRef, Percent};

/// A layer: the experiments that name it get mutually exclusive traffic, each its `reservationPercent`, per
/// environment. Managed through `createLayer` and `updateLayer`; LaunchDarkly cannot delete a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayerSpec {
    /// Project key.
    pub project: String,
    /// Layer key, unique within its project.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Description; LaunchDarkly requires one at creation, so an absent description is sent as `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl LayerSpec {
    /// `LayerPost`.
    pub fn create_body(&self) -> Value {
        json!({ "key": self.key, "name": self.name, "description": self.description.as_deref().unwrap_or("") })
    }
}

/// A holdout: users held out of every experiment created in it, to measure their combined effect. Managed
/// through `postHoldout` and `patchHoldout` in one environment (or one holdout per environment listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldoutSpec {
    /// Project key.
    pub project: String,
    /// The one environment the holdout lives in. Give this or `environments`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Several environments: one holdout per environment, all alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Holdout key, unique within its project and environment.
    pub key: String,
    /// Display name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The randomization unit of the holdout's base experiment. Creation-only; needed to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_unit: Option<String>,
    /// The attributes results can be sliced by. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
    /// The share of traffic held out, in percent (above 0, at most 100); a number or numeric string.
    /// Creation-only.
    #[serde(with = "crate::percent::as_number")]
    #[schemars(with = "super::model::Decimal")]
    pub holdout_amount: Percent,
    /// The primary metric's key. Creation-only; needed to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_metric: Option<String>,
    /// The metrics measured (metric keys, or `{key, group: true}` for a group). Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricRef>>,
    /// A flag the holdout depends on. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerequisite_flag: Option<String>,
    /// Maintainer member id. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
    /// `active`, or `ended`: ending is final, a holdout never becomes active again.
    #[serde(default)]
    pub state: HoldoutState,
}

impl HoldoutSpec {
    /// The environments this spec targets, in the order written.
    pub fn target_environments(&self) -> Vec<&str> {
        match (&self.environment, &self.environments) {
            (Some(e), _) => vec![e.as_str()],
            (None, Some(es)) => es.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// `HoldoutPostRequest`: the contract spells its fields in lower case (`holdoutamount`, `randomizationunit`,
    /// `primarymetrickey`, `prerequisiteflagkey`), all but `maintainerId`.
    pub fn create_body(&self) -> Value {
        let mut o = Map::new();
        o.insert("key".into(), json!(self.key));
        o.insert("name".into(), json!(self.name));
        if let Some(d) = &self.description {
            o.insert("description".into(), json!(d));
        }
        if let Some(u) = &self.randomization_unit {
            o.insert("randomizationunit".into(), json!(u));
        }
        if let Some(a) = &self.attributes {
            o.insert("attributes".into(), json!(a));
        }
        o.insert("holdoutamount".into(), json!(self.holdout_amount.to_string()));
        if let Some(p) = &self.primary_metric {
            o.insert("primarymetrickey".into(), json!(p));
        }
        if let Some(ms) = &self.metrics {
            let items: Vec<Value> = ms
                .iter()
                .map(|m| if m.is_group() { json!({"key": m.key(), "isGroup": true}) } else { json!({"key": m.key()}) })
                .collect();
            o.insert("metrics".into(), Value::Array(items));
        }
        if let Some(f) = &self.prerequisite_flag {
            o.insert("prerequisiteflagkey".into(), json!(f));
        }
        if let Some(m) = &self.maintainer_id {
            o.insert("maintainerId".into(), json!(m));
        }
        Value::Object(o)
    }
}

/// The lifecycle of a holdout as a spec drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HoldoutState {
    /// Holding users out (LaunchDarkly's `created`, `enabled` or `running`).
    #[default]
    Active,
    /// Ended (`endHoldout`); final.
    Ended,
}

impl HoldoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }
}

/// An experiment's reservation in a layer, in each environment of its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayerRef {
    /// The layer's key.
    pub key: String,
    /// The share of the layer's traffic reserved for this experiment, a whole percent from 0 to 100; 0 only until
    /// the iteration starts.
    pub reservation_percent: u8,
}

fn push(out: &mut Vec<Diagnostic>, loc: &super::SourceLocation, message: String, help: &str) {
    out.push(Diagnostic::at(loc, message, Some(help.to_owned())));
}

fn keys<T>(doc: &Located<T>, fields: &[(&str, &str, &str)], out: &mut Vec<Diagnostic>) {
    for (field, what, value) in fields {
        if !is_ld_key(value) {
            push(
                out,
                &doc.location_of(field),
                format!("{what} `{value}` is not a valid LaunchDarkly key"),
                &key_help(value),
            );
        }
    }
}

/// The rules of a `Layer` that types cannot express.
pub(crate) fn layer(doc: &Located<LayerSpec>, out: &mut Vec<Diagnostic>) {
    let l = &doc.spec;
    keys(doc, &[("project", "project key", &l.project), ("key", "layer key", &l.key)], out);
    if l.name.trim().is_empty() {
        push(out, &doc.location_of("name"), "the layer's `name` is empty".to_owned(), "give the layer a name");
    }
}

/// The rules of a `Holdout` that types cannot express.
pub(crate) fn holdout(doc: &Located<HoldoutSpec>, out: &mut Vec<Diagnostic>) {
    let h = &doc.spec;
    keys(doc, &[("project", "project key", &h.project), ("key", "holdout key", &h.key)], out);
    match (&h.environment, &h.environments) {
        (Some(_), Some(_)) => push(
            out,
            &doc.location_of("environments"),
            "`environment` and `environments` are both given".to_owned(),
            "keep `environment: <key>` for one environment, or `environments: [<key>, ...]` for several",
        ),
        (None, None) => push(
            out,
            &doc.location,
            "missing field `environment` (or `environments`)".to_owned(),
            "add `environment: <key>`, or `environments: [<key>, ...]` for one holdout per environment",
        ),
        (None, Some(envs)) if envs.is_empty() => push(
            out,
            &doc.location_of("environments"),
            "`environments` is empty".to_owned(),
            "list at least one environment key, or use `environment: <key>`",
        ),
        _ => {}
    }
    for (i, env) in h.target_environments().iter().enumerate() {
        let field = if h.environment.is_some() { "environment".to_owned() } else { format!("environments[{i}]") };
        keys(doc, &[(&field, "environment key", env)], out);
        if h.target_environments()[..i].contains(env) {
            push(out, &doc.location_of(&field), format!("environment `{env}` is listed twice"), "list it once");
        }
    }
    let amount = h.holdout_amount.value().unwrap_or(f64::NAN);
    if !(amount > 0.0 && amount <= 100.0) {
        push(
            out,
            &doc.location_of("holdoutAmount"),
            format!("`holdoutAmount` is {amount}, outside (0, 100]"),
            "give the percentage of traffic held out, above 0 and at most 100",
        );
    }
    if let (Some(p), Some(ms)) = (&h.primary_metric, &h.metrics)
        && !ms.iter().any(|m| m.key() == p)
    {
        push(
            out,
            &doc.location_of("primaryMetric"),
            format!("`primaryMetric` `{p}` is not among `metrics`"),
            &format!("add `{p}` to `metrics`"),
        );
    }
}

/// The rules of an experiment's `layer:` and `holdout:` that types cannot express.
pub(crate) fn experiment(doc: &Located<ExperimentSpec>, out: &mut Vec<Diagnostic>) {
    let e = &doc.spec;
    if let Some(l) = &e.layer {
        keys(doc, &[("layer.key", "layer key", &l.key)], out);
        if l.reservation_percent > 100 {
            push(
                out,
                &doc.location_of("layer.reservationPercent"),
                format!("`reservationPercent` is {}, above 100", l.reservation_percent),
                "reserve a whole percentage from 0 to 100 of the layer's traffic",
            );
        }
        if l.reservation_percent == 0
            && matches!(e.state, super::ExperimentState::Running | super::ExperimentState::Stopped)
        {
            push(
                out,
                &doc.location_of("layer.reservationPercent"),
                format!(
                    "a reservation of 0 is allowed only until the iteration starts, and the state is `{}`",
                    e.state
                ),
                "reserve some of the layer's traffic for a running experiment, or keep it a draft",
            );
        }
    }
    if let Some(h) = &e.holdout {
        keys(doc, &[("holdout", "holdout key", h)], out);
        if e.holdout_id.is_some() {
            push(
                out,
                &doc.location_of("holdoutId"),
                "`holdout` and `holdoutId` are both given".to_owned(),
                "keep `holdout: <key>`; `holdoutId` is for a holdout no spec declares",
            );
        }
    }
}

/// Each layer once per project, and each holdout once per project and environment, across every file.
pub(crate) fn duplicates(set: &super::SpecSet, out: &mut Vec<Diagnostic>) {
    let mut layers: std::collections::BTreeMap<(&str, &str), super::SourceLocation> = Default::default();
    for doc in &set.layers {
        let here = doc.location_of("key");
        if let Some(first) = layers.get(&(doc.spec.project.as_str(), doc.spec.key.as_str())) {
            push(
                out,
                &here,
                format!(
                    "layer `{}` in project `{}` is defined twice: first at {first}",
                    doc.spec.key, doc.spec.project
                ),
                "remove one of the two definitions",
            );
        } else {
            layers.insert((&doc.spec.project, &doc.spec.key), here);
        }
    }
    let mut holdouts: std::collections::BTreeMap<(&str, &str, &str), super::SourceLocation> = Default::default();
    for doc in &set.holdouts {
        let h = &doc.spec;
        for env in h.target_environments() {
            let here = doc.location_of("key");
            if let Some(first) = holdouts.get(&(h.project.as_str(), env, h.key.as_str())) {
                push(
                    out,
                    &here,
                    format!(
                        "holdout `{}` in project `{}`, environment `{env}`, is defined twice: first at {first}",
                        h.key, h.project
                    ),
                    "remove one of the two definitions",
                );
            } else {
                holdouts.insert((&h.project, env, &h.key), here);
            }
        }
    }
}
