//! Pagination, for every transport: the one place that decides which pages of a collection are read and when
//! the reading stops.
//!
//! Two rules live here. [`list_all`] reads the first page and, given a total, fetches the pages it announces at
//! once by offset (one GET each), then follows `_links.next` while pages come back full. [`list_in_order`] (the
//! flag list) reads one page after the other. Neither stops on the total (contract §9.10): only a short page or
//! a page without `_links.next` ends a list.

use std::collections::{BTreeMap, HashSet};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Transport;
use super::rest::{decode, read};
use crate::Error;
use crate::api::{
    Experiment, ExperimentCollection, FeatureFlag, FeatureFlagCollection, Holdout, HoldoutCollection, Links, Metric,
    MetricCollection, MetricGroup, MetricGroupCollection,
};
use crate::plan::{Method, PlannedRequest};

/// Refuse totals that would need more pages than this: a malformed count must not fan out millions of GETs.
const MAX_PAGES: u64 = 10_000;

/// A paginated collection representation.
pub(crate) trait Collection: DeserializeOwned + Send {
    type Item: Send;
    /// Items, total count, and the `_links.next` href.
    fn into_parts(self) -> (Vec<Self::Item>, Option<u64>, Option<String>);
}

fn next_href(links: &Links) -> Option<String> {
    links.get("next").and_then(|n| n.get("href")).and_then(Value::as_str).map(str::to_owned)
}

macro_rules! collection {
    ($collection:ty, $item:ty) => {
        impl Collection for $collection {
            type Item = $item;
            fn into_parts(self) -> (Vec<$item>, Option<u64>, Option<String>) {
                let next = next_href(&self.links);
                (self.items, self.total_count, next)
            }
        }
    };
}

collection!(ExperimentCollection, Experiment);
collection!(MetricCollection, Metric);
collection!(MetricGroupCollection, MetricGroup);
collection!(FeatureFlagCollection, FeatureFlag);
collection!(HoldoutCollection, Holdout);

/// Every page of a collection. With a total on the first page, the pages it announces are fetched concurrently
/// from their offsets (one GET per page); without one, `_links.next` is followed.
///
/// The total only ever adds reads, it never ends one (contract §9.10: what it counts is undocumented): reading
/// stops on a short page (fewer items than the first page, which is the page size the server applies) or a page
/// without `_links.next`. So a last announced page that is full and links further is followed on.
pub(crate) async fn list_all<T: Transport + ?Sized, C: Collection>(
    t: &T,
    page: impl Fn(u64) -> PlannedRequest,
    resource: &str,
) -> Result<Option<Vec<C::Item>>, Error> {
    let Some(first) = read::<T, C>(t, &page(0), resource).await? else {
        return Ok(None);
    };
    let (mut items, total, mut next) = first.into_parts();
    let stride = items.len() as u64;
    if stride == 0 {
        return Ok(Some(items));
    }
    if let Some(total) = total.filter(|t| *t > stride) {
        if total.div_ceil(stride) > MAX_PAGES {
            return Err(Error::Decode {
                resource: resource.to_owned(),
                reason: format!("implausible total count {total} with pages of {stride}"),
            });
        }
        let offsets: Vec<u64> = (1..total.div_ceil(stride)).map(|i| i * stride).collect();
        let pages = futures::future::try_join_all(offsets.into_iter().map(|o| {
            let req = page(o);
            async move { read::<T, C>(t, &req, resource).await }
        }))
        .await?;
        // Where to go on from is decided by the last announced page alone: if it is full and links further, the
        // total undercounted.
        let mut last_full = true;
        next = None;
        for p in pages {
            let Some(p) = p else {
                // Vanished between pages: nothing after it can be trusted to follow on.
                last_full = false;
                next = None;
                continue;
            };
            let (more, _, n) = p.into_parts();
            last_full = more.len() as u64 >= stride;
            next = n;
            items.extend(more);
        }
        if !last_full {
            return Ok(Some(items));
        }
    }
    let mut seen = HashSet::new();
    while let Some(href) = next.take() {
        if !seen.insert(href.clone()) || seen.len() as u64 > MAX_PAGES {
            break;
        }
        let answer = t.follow(&href, resource).await?;
        let Some(p) = decode::<T, C>(t, Method::Get, &link_path(&href), resource, &answer)? else { break };
        let (more, _, n) = p.into_parts();
        let short = (more.len() as u64) < stride;
        items.extend(more);
        if short {
            break;
        }
        next = n;
    }
    Ok(Some(items))
}

/// Every page of a collection, read one after the other from offset 0, until a page has fewer than `page_size`
/// items or no `_links.next`. `None` when the first page, or any later one, is a 404: a collection that vanishes
/// between pages is as absent as one that never was.
pub(crate) async fn list_in_order<T: Transport + ?Sized, C: Collection>(
    t: &T,
    page: impl Fn(u64) -> PlannedRequest,
    page_size: u64,
    resource: &str,
) -> Result<Option<Vec<C::Item>>, Error> {
    let mut items = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_PAGES {
        let Some(p) = read::<T, C>(t, &page(offset), resource).await? else {
            return Ok(None);
        };
        let (more, _, next) = p.into_parts();
        let n = more.len() as u64;
        items.extend(more);
        if n < page_size || next.is_none() {
            return Ok(Some(items));
        }
        offset += n;
    }
    Err(Error::Decode {
        resource: resource.to_owned(),
        reason: format!("more than {MAX_PAGES} full pages, each with a next link; not following further"),
    })
}

/// The path of a `_links.next` href (without scheme, host, query or fragment), as errors name it.
fn link_path(href: &str) -> String {
    let rest = match href.split_once("://") {
        Some((_, after)) => after.find('/').map_or("/", |i| &after[i..]),
        None => href,
    };
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

/// The GET a relative `_links.next` href asks for: its path and decoded query. An href naming a scheme or a host
/// is refused, since a transport that does not know its own origin cannot tell whether it is the same server.
pub(crate) fn relative_link(href: &str, resource: &str) -> Result<PlannedRequest, Error> {
    if href.contains("://") || href.starts_with("//") {
        return Err(Error::Decode {
            resource: resource.to_owned(),
            reason: format!("_links.next `{href}` is not a path on this server; not following it"),
        });
    }
    let without_fragment = href.split('#').next().unwrap_or_default();
    let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
    Ok(PlannedRequest {
        method: Method::Get,
        path: link_path(path),
        query,
        content_type: None,
        body: None,
        expect: Vec::new(),
        bind: Vec::new(),
        object: None,
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a malformed escape stays as written.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|h| b == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(e) => {
                out.push(e);
                i += 3;
            }
            None => {
                out.push(if b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::client::Answer;
    use crate::requests;

    /// A metric list of `real` items whose `totalCount` says `total`, with honest `_links.next` (present exactly
    /// when items remain). Records the offset of every request.
    struct Misreporting {
        real: u64,
        total: u64,
        offsets: Mutex<Vec<u64>>,
    }

    impl Misreporting {
        fn new(real: u64, total: u64) -> Self {
            Misreporting { real, total, offsets: Mutex::new(Vec::new()) }
        }

        fn offsets(&self) -> Vec<u64> {
            let mut o = self.offsets.lock().unwrap().clone();
            o.sort_unstable();
            o
        }
    }

    impl Transport for Misreporting {
        async fn execute(&self, r: &PlannedRequest, _: &str) -> Result<Answer, Error> {
            let q = |k: &str| r.query.get(k).and_then(|v| v.parse::<u64>().ok());
            let (limit, offset) = (q("limit").unwrap_or(50), q("offset").unwrap_or(0));
            self.offsets.lock().unwrap().push(offset);
            let items: Vec<Value> =
                (offset..(offset + limit).min(self.real)).map(|i| json!({"key": format!("m{i:03}")})).collect();
            let mut links = json!({"self": {"href": r.path}});
            if offset + limit < self.real {
                links["next"] = json!({"href": format!("{}?limit={limit}&offset={}", r.path, offset + limit)});
            }
            let body = json!({"items": items, "totalCount": self.total, "_links": links});
            Ok(Answer { status: 200, body: body.to_string().into_bytes() })
        }
    }

    fn keys(items: &[crate::api::Metric]) -> Vec<String> {
        items.iter().map(|m| m.key.clone()).collect()
    }

    fn expected(n: u64) -> Vec<String> {
        (0..n).map(|i| format!("m{i:03}")).collect()
    }

    async fn list_all_metrics(t: &Misreporting) -> Vec<crate::api::Metric> {
        list_all::<_, MetricCollection>(t, |o| requests::list_metrics("demo", o), "metrics").await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_total_below_one_page_does_not_end_a_full_page_that_links_on() {
        let t = Misreporting::new(120, 10);
        assert_eq!(keys(&list_all_metrics(&t).await), expected(120));
        assert_eq!(t.offsets(), [0, 50, 100], "one GET per page, the rest by _links.next");
    }

    #[tokio::test]
    async fn a_total_that_undercounts_is_followed_on_past_its_last_announced_page() {
        let t = Misreporting::new(130, 60);
        assert_eq!(keys(&list_all_metrics(&t).await), expected(130));
        assert_eq!(t.offsets(), [0, 50, 100]);
    }

    #[tokio::test]
    async fn a_total_that_overcounts_costs_reads_but_adds_no_items() {
        let t = Misreporting::new(60, 200);
        assert_eq!(keys(&list_all_metrics(&t).await), expected(60));
        assert_eq!(t.offsets(), [0, 50, 100, 150]);
    }

    #[tokio::test]
    async fn a_list_ends_on_a_short_page_or_a_missing_next_whatever_the_total() {
        // Exactly two full pages and no next link on the second: done, though the total asks for more.
        let t = Misreporting::new(100, 100);
        assert_eq!(keys(&list_all_metrics(&t).await), expected(100));
        assert_eq!(t.offsets(), [0, 50]);
        // Read in order (the flag list's way): the total is never consulted.
        for (real, total) in [(120, 10), (120, 0), (120, 1_000_000)] {
            let t = Misreporting::new(real, total);
            let page = |o| requests::list_metrics("demo", o);
            let items = list_in_order::<_, MetricCollection>(&t, page, requests::METRIC_PAGE, "metrics").await;
            assert_eq!(keys(&items.unwrap().unwrap()), expected(real), "total {total}");
            assert_eq!(t.offsets(), [0, 50, 100], "total {total}");
        }
    }

    #[test]
    fn a_relative_next_link_becomes_a_get_of_its_path_and_decoded_query() {
        let r = relative_link("/api/v2/metrics/demo?limit=2&offset=4&expand=a%2Cb+c&bad=%zz#top", "m").unwrap();
        assert_eq!((r.method, r.path.as_str()), (Method::Get, "/api/v2/metrics/demo"));
        let q: Vec<(&str, &str)> = r.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(q, [("bad", "%zz"), ("expand", "a,b c"), ("limit", "2"), ("offset", "4")]);
        assert!(relative_link("https://evil.example/api/v2/metrics/demo", "m").is_err());
        assert!(relative_link("//evil.example/api/v2/metrics/demo", "m").is_err());
    }

    #[test]
    fn a_link_path_is_the_path_alone() {
        assert_eq!(link_path("/api/v2/x?offset=2"), "/api/v2/x");
        assert_eq!(link_path("http://127.0.0.1:8080/ld/api/v2/x?offset=2#f"), "/ld/api/v2/x");
        assert_eq!(link_path("https://host"), "/");
        assert_eq!(link_path("api/v2/x"), "/api/v2/x");
    }
}
