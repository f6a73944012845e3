//! The plan's reads of layers and holdouts: which are made, and where their answers are filed.

use std::collections::BTreeMap;

use futures::future::{BoxFuture, FutureExt, try_join_all};

use super::Fetched;
use crate::Error;
use crate::api::{Holdout, Layer};
use crate::client::OrgReads;
use crate::remote::{ProjectState, Requirements};

/// The first-round reads: each project's layers, each environment's holdouts, each declared holdout's detail.
pub(super) fn jobs<'a, R: OrgReads>(
    reader: &'a R,
    req: &'a Requirements,
    jobs: &mut Vec<(&'a str, BoxFuture<'a, Result<Fetched, Error>>)>,
) {
    for p in &req.layers {
        jobs.push((p, async move { Ok(Fetched::Layers(p.clone(), reader.list_layers(p).await?)) }.boxed()));
    }
    for (p, e) in &req.holdouts {
        jobs.push((
            p,
            async move { Ok(Fetched::Holdouts(p.clone(), e.clone(), reader.list_holdouts(p, e).await?)) }.boxed(),
        ));
    }
    for (p, e, k) in &req.holdout_details {
        jobs.push((
            p,
            async move { Ok(Fetched::HoldoutDetail(p.clone(), e.clone(), reader.get_holdout(p, e, k).await?)) }.boxed(),
        ));
    }
}

/// A project that does not exist has no layers; the missing project is reported from its other reads.
pub(super) fn file_layers(state: &mut ProjectState, layers: Option<Vec<Layer>>) {
    state.layers = Some(layers.unwrap_or_default().into_iter().map(|l| (l.key.clone(), l)).collect());
}

/// An environment that does not exist has no holdouts; the missing environment is reported from its experiments.
pub(super) fn file_holdouts(state: &mut ProjectState, env: String, list: Option<Vec<Holdout>>) {
    let by_key = state.holdouts.entry(env).or_default();
    for h in list.unwrap_or_default() {
        let key = h.key().to_owned();
        let merged = match by_key.remove(&key) {
            // The detail came first: it keeps what it shows, and the list item adds the rest.
            Some(detail) => detail.merged(h),
            None => h,
        };
        by_key.insert(key, merged);
    }
}

/// A declared holdout's detail, merged with its list item (which has its key and name at the top level).
pub(super) fn file_detail(state: &mut ProjectState, env: String, detail: Holdout) {
    let by_key = state.holdouts.entry(env).or_default();
    let key = detail.key().to_owned();
    let merged = match by_key.remove(&key) {
        Some(item) => detail.merged(item),
        None => detail,
    };
    by_key.insert(key, merged);
}

/// The holdouts of every environment where a fetched experiment has a `holdoutId` and the holdouts were not read:
/// the experiment may have to leave its holdout, which takes the holdout's key.
pub(super) async fn holdouts_of_members<R: OrgReads>(
    reader: &R,
    projects: &mut BTreeMap<String, ProjectState>,
    forbidden: &BTreeMap<String, Box<crate::ApiError>>,
) -> Result<(), Error> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (p, state) in projects.iter() {
        if forbidden.contains_key(p) {
            continue;
        }
        for (env, experiments) in &state.environments {
            let member = experiments.iter().flat_map(|m| m.values()).any(|x| x.holdout_id.is_some());
            if member && !state.holdouts.contains_key(env) {
                wanted.push((p.clone(), env.clone()));
            }
        }
    }
    let lists = try_join_all(wanted.iter().map(|(p, e)| reader.list_holdouts(p, e))).await?;
    for ((p, e), list) in wanted.into_iter().zip(lists) {
        file_holdouts(projects.entry(p).or_default(), e, list);
    }
    Ok(())
}
