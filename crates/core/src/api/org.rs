//! The representations of layers (`LayerRep`) and holdouts (`SimpleHoldoutRep`, `HoldoutRep`,
//! `HoldoutDetailRep`), read leniently: one `Holdout` type takes all three holdout shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Links, Percent, lenient};

/// `LayerRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Environment key → the layer's configuration there.
    #[serde(default, deserialize_with = "lenient::map")]
    pub environments: BTreeMap<String, LayerConfiguration>,
}

impl Layer {
    /// The reservations in `env`; none when the environment is not shown.
    pub fn reservations(&self, env: &str) -> &[LayerReservation] {
        self.environments.get(env).map_or(&[], |c| c.reservations.as_slice())
    }

    /// The reservation of experiment `key` in `env`.
    pub fn reservation(&self, env: &str, key: &str) -> Option<&LayerReservation> {
        self.reservations(env).iter().find(|r| r.experiment_key == key)
    }
}

/// `LayerConfigurationRep`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayerConfiguration {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub reservations: Vec<LayerReservation>,
}

/// `LayerReservationRep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReservation {
    pub experiment_key: String,
    #[serde(default)]
    pub flag_key: String,
    pub reservation_percent: i64,
}

/// `LayerCollectionRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LayerCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<Layer>,
    #[serde(rename = "totalCount", alias = "total_count", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A holdout, from any of its representations: the list's `SimpleHoldoutRep` (key, name, `experiments`), and the
/// `HoldoutRep` / `HoldoutDetailRep` of a create, patch or read (description, `holdoutAmount`, and the key and
/// name only inside `baseExperiment`; `relatedExperiments` in the detail).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holdout {
    #[serde(rename = "_id", default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_amount: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_experiment: Option<BaseExperiment>,
    /// The experiments in the holdout: `experiments` in a list or `HoldoutRep`, `relatedExperiments` in a detail.
    #[serde(default, alias = "relatedExperiments", deserialize_with = "lenient::vec")]
    pub experiments: Vec<RelatedExperiment>,
}

impl Holdout {
    /// The key, wherever the representation puts it.
    pub fn key(&self) -> &str {
        self.key.as_deref().or(self.base_experiment.as_ref().map(|b| b.key.as_str())).unwrap_or_default()
    }

    /// The name, wherever the representation puts it.
    pub fn name(&self) -> &str {
        self.name.as_deref().or(self.base_experiment.as_ref().and_then(|b| b.name.as_deref())).unwrap_or_default()
    }

    /// The description (the base experiment's when the holdout's own is absent); absent reads as `""`.
    pub fn description(&self) -> &str {
        self.description
            .as_deref()
            .or(self.base_experiment.as_ref().and_then(|b| b.description.as_deref()))
            .unwrap_or_default()
    }

    pub fn is_ended(&self) -> bool {
        self.status == "ended"
    }

    /// Whether experiment `key` is in the holdout.
    pub fn holds(&self, key: &str) -> bool {
        self.experiments.iter().any(|e| e.key == key)
    }

    /// This holdout with what `more` shows and this one does not: a list item and its detail make one holdout.
    pub fn merged(mut self, more: Holdout) -> Holdout {
        self.key = self.key.or(more.key);
        self.name = self.name.or(more.name);
        self.description = self.description.or(more.description);
        self.holdout_amount = self.holdout_amount.or(more.holdout_amount);
        self.base_experiment = self.base_experiment.or(more.base_experiment);
        if !more.status.is_empty() {
            self.status = more.status;
        }
        if self.id.is_empty() {
            self.id = more.id;
        }
        self
    }
}

/// The fields of a holdout's `baseExperiment` (an `Experiment`) that say what the holdout is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseExperiment {
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `RelatedExperimentRep` (or an `Experiment` of `relatedExperiments`): only the key matters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RelatedExperiment {
    #[serde(default)]
    pub key: String,
}

/// `HoldoutsCollectionRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HoldoutCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<Holdout>,
    #[serde(rename = "total_count", alias = "totalCount", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}
