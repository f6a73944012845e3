//! Metric and metric-group writes: operations ldexp does not send, but which the emulator serves, so their answers
//! (201, 200, 204 and the declared error statuses) go through Prism like the client's own operations.

use super::*;

/// The operations this part exercises, in name order.
pub(super) const OPERATIONS: [&str; 6] =
    ["createMetricGroup", "deleteMetric", "deleteMetricGroup", "patchMetric", "patchMetricGroup", "postMetric"];

/// The error answers this part asks for through Prism, by status; each is declared for its operation.
pub(super) const DELIBERATE: [(u16, usize); 3] = [(400, 5), (404, 3), (409, 1)];

fn planned(method: &str, path: String, body: Option<Value>) -> PlannedRequest {
    let mut v = json!({"method": method, "path": path});
    if let Some(b) = body {
        v["contentType"] = json!("application/json");
        v["body"] = b;
    }
    from(v)
}

async fn refused(c: &HttpClient, request: &PlannedRequest) -> u16 {
    status_of(&c.send(request, "catalog write").await.unwrap_err())
}

/// Creates, patches and deletes metrics and metric groups through `c` (behind Prism). `direct` talks to the
/// emulator without Prism: it carries the one answer the contract does not declare, a 400 from `deleteMetric` for
/// a metric in use, which Prism reports as a violation by construction.
pub(super) async fn run(c: &HttpClient, direct: &HttpClient, k: &Keys) {
    let p = k.project.as_str();
    let metrics = format!("/api/v2/metrics/{p}");
    let groups = format!("/api/v2/projects/{p}/metric-groups");
    let post = |body: Value| planned("POST", metrics.clone(), Some(body));
    let metric = |key: &str, method: &str, body: Option<Value>| planned(method, format!("{metrics}/{key}"), body);
    let group = |key: &str, method: &str, body: Option<Value>| planned(method, format!("{groups}/{key}"), body);

    // postMetric: one metric of each kind, every optional field on the numeric one (201).
    let numeric = json!({
        "key": "ldexp-contract-revenue", "name": "Revenue", "description": "created by the conformance test",
        "kind": "custom", "eventKey": "order-placed", "isNumeric": true, "unit": "USD",
        "successCriteria": "HigherThanBaseline", "unitAggregationType": "sum", "analysisType": "percentile",
        "percentileValue": 95, "eventDefault": {"disabled": false, "value": 0}, "randomizationUnits": [k.unit],
        "tags": ["contract"], "maintainerId": "569f183514f4432160000007",
        "filters": {"type": "eventProperty", "attribute": "currency", "op": "in", "values": ["USD"], "negate": false}
    });
    let created = c.send(&post(numeric), "metric").await.unwrap().unwrap();
    assert_eq!((created["_version"].as_i64(), created["percentileValue"].as_i64()), (Some(1), Some(95)));
    let page = json!({"key": "ldexp-contract-page", "kind": "pageview",
        "urls": [{"kind": "exact", "url": "https://example.com/"}, {"kind": "regex", "pattern": "^/shop"}]});
    c.send(&post(page), "metric").await.unwrap().unwrap();
    let click = json!({"key": "ldexp-contract-click", "kind": "click", "selector": ".buy",
        "urls": [{"kind": "substring", "substring": "/checkout"}, {"kind": "canonical", "url": "https://example.com/c"}]});
    c.send(&post(click), "metric").await.unwrap().unwrap();
    // A taken key (409), a rule the schema does not state (400), an unknown project (404).
    let again = json!({"key": "ldexp-contract-page", "kind": "pageview", "urls": [{"kind": "exact", "url": "u"}]});
    assert_eq!(refused(c, &post(again)).await, 409);
    assert_eq!(refused(c, &post(json!({"key": "ldexp-contract-x", "kind": "custom", "isNumeric": false}))).await, 400);
    let elsewhere =
        planned("POST", "/api/v2/metrics/no-such-project".into(), Some(json!({"key": "x", "kind": "pageview"})));
    assert_eq!(refused(c, &elsewhere).await, 404);

    // patchMetric: guarded by a test (200); a failed test (400) changes nothing; an unknown metric (404).
    let ops = json!([
        {"op": "test", "path": "/name", "value": "Revenue"},
        {"op": "replace", "path": "/name", "value": "Revenue per order"},
        {"op": "replace", "path": "/percentileValue", "value": 90}
    ]);
    let patched = c.send(&metric("ldexp-contract-revenue", "PATCH", Some(ops)), "metric").await.unwrap().unwrap();
    assert_eq!((patched["_version"].as_i64(), patched["name"].as_str()), (Some(2), Some("Revenue per order")));
    let stale = json!([{"op": "test", "path": "/name", "value": "Revenue"}, {"op": "remove", "path": "/tags/0"}]);
    assert_eq!(refused(c, &metric("ldexp-contract-revenue", "PATCH", Some(stale))).await, 400);
    assert_eq!(refused(c, &metric("no-such-metric", "PATCH", Some(json!([])))).await, 404);

    // createMetricGroup (201) and a group naming a metric that does not exist (400).
    let funnel = json!({
        "key": "ldexp-contract-funnel", "name": "Contract funnel", "kind": "funnel", "description": "d",
        "maintainerId": "569f183514f4432160000007", "tags": ["contract"],
        "metrics": [{"key": "ldexp-contract-page", "nameInGroup": "Landing"},
                    {"key": "ldexp-contract-click", "nameInGroup": "Buy"}]
    });
    let g = c.send(&planned("POST", groups.clone(), Some(funnel.clone())), "group").await.unwrap().unwrap();
    assert_eq!(g["metrics"][1]["nameInGroup"], "Buy");
    let mut ghost = funnel;
    ghost["key"] = json!("ldexp-contract-ghost");
    ghost["metrics"][0]["key"] = json!("no-such-metric");
    assert_eq!(refused(c, &planned("POST", groups.clone(), Some(ghost))).await, 400);

    // patchMetricGroup (200), then a funnel patched down to one step (400).
    let rename = json!([{"op": "replace", "path": "/metrics/0/nameInGroup", "value": "Landing page"}]);
    let g = c.send(&group("ldexp-contract-funnel", "PATCH", Some(rename)), "group").await.unwrap().unwrap();
    assert_eq!(g["_version"], 2);
    let shrink = json!([{"op": "remove", "path": "/metrics/1"}]);
    assert_eq!(refused(c, &group("ldexp-contract-funnel", "PATCH", Some(shrink))).await, 400);

    // A metric in a group cannot be deleted: the 400 the contract does not declare, so it bypasses Prism.
    assert_eq!(refused(direct, &metric("ldexp-contract-page", "DELETE", None)).await, 400);
    // The scenario's experiment measures the seed's group (400, declared); the new group goes (204), then its
    // metrics (204), and a second delete finds nothing (404).
    assert_eq!(refused(c, &group(&k.group, "DELETE", None)).await, 400);
    assert_eq!(c.send(&group("ldexp-contract-funnel", "DELETE", None), "group").await.unwrap(), None);
    for key in ["ldexp-contract-page", "ldexp-contract-click", "ldexp-contract-revenue"] {
        assert_eq!(c.send(&metric(key, "DELETE", None), "metric").await.unwrap(), None);
    }
    assert_eq!(refused(c, &metric("ldexp-contract-page", "DELETE", None)).await, 404);
}
