//! Holdouts and layers: the eight operations of issue #16, served by the emulator, so their normal answers (200,
//! 201) and their declared error statuses go through Prism like the client's own operations.

use super::*;

/// The operations this part exercises, in name order.
pub(super) const OPERATIONS: [&str; 8] = [
    "createLayer",
    "getAllHoldouts",
    "getHoldout",
    "getHoldoutById",
    "getLayers",
    "patchHoldout",
    "postHoldout",
    "updateLayer",
];

/// The error answers this part asks for through Prism, by status; each is declared for its operation.
pub(super) const DELIBERATE: [(u16, usize); 2] = [(400, 7), (404, 6)];

const SEMANTIC: &str = "application/json; domain-model=launchdarkly.semanticpatch";

fn planned(method: &str, path: String, content_type: &str, body: Option<Value>) -> PlannedRequest {
    let mut v = json!({"method": method, "path": path});
    if let Some(b) = body {
        v["contentType"] = json!(content_type);
        v["body"] = b;
    }
    from(v)
}

fn get(path: String) -> PlannedRequest {
    planned("GET", path, "", None)
}

fn get_with(path: String, name: &str, value: &str) -> PlannedRequest {
    let mut r = get(path);
    r.query.insert(name.to_owned(), value.to_owned());
    r
}

async fn refused(c: &HttpClient, request: &PlannedRequest) -> u16 {
    status_of(&c.send(request, "holdout or layer").await.unwrap_err())
}

async fn sent(c: &HttpClient, request: &PlannedRequest) -> Value {
    c.send(request, "holdout or layer").await.unwrap().unwrap()
}

/// A holdout with an experiment in it, ended; a layer with two reservations. Runs after the scenario, whose
/// `ldexp-contract-run` experiment exists in `k.env`.
pub(super) async fn run(c: &HttpClient, k: &Keys) {
    let (p, e) = (k.project.as_str(), k.env.as_str());
    let holdouts = format!("/api/v2/projects/{p}/environments/{e}/holdouts");
    let layers = format!("/api/v2/projects/{p}/layers");

    // postHoldout (201), with every field of `HoldoutPostRequest`; a taken key (400).
    let body = json!({
        "key": "ldexp-contract-holdout", "name": "Contract holdout", "description": "created by the conformance test",
        "randomizationunit": k.unit, "attributes": ["country"], "holdoutamount": "5",
        "primarymetrickey": k.metric, "metrics": [{"key": k.metric, "isGroup": false}],
        "prerequisiteflagkey": k.flag, "maintainerId": "569f183514f4432160000007"
    });
    let created = sent(c, &planned("POST", holdouts.clone(), "application/json", Some(body.clone()))).await;
    assert_eq!(created["status"], "created");
    let id = created["_id"].as_str().unwrap().to_owned();
    assert_eq!(refused(c, &planned("POST", holdouts.clone(), "application/json", Some(body))).await, 400);

    // An experiment joins it with `holdoutId` (201); an unknown `holdoutId` is a 400.
    let flag = c.get_flag(p, &k.flag).await.unwrap().unwrap();
    let mut post = requests::create_experiment(p, e, &post_body(k, "ldexp-contract-held", &flag));
    post.body.as_mut().unwrap()["holdoutId"] = json!(id);
    assert_eq!(sent(c, &post).await["holdoutId"], id.as_str());
    let mut ghost = requests::create_experiment(p, e, &post_body(k, "ldexp-contract-ghost", &flag));
    ghost.body.as_mut().unwrap()["holdoutId"] = json!("no-such-holdout");
    assert_eq!(refused(c, &ghost).await, 400);

    // getAllHoldouts (200; an unknown environment is a 400, the operation declares no 404), getHoldout with the
    // related experiments expanded (200, 404), getHoldoutById (200, 404).
    let list = sent(c, &get_with(holdouts.clone(), "limit", "5")).await;
    assert_eq!(list["items"][0]["experiments"][0]["key"], "ldexp-contract-held");
    let elsewhere = format!("/api/v2/projects/{p}/environments/no-such-environment/holdouts");
    assert_eq!(refused(c, &get(elsewhere)).await, 400);
    let detail =
        sent(c, &get_with(format!("{holdouts}/ldexp-contract-holdout"), "expand", "rel-treatments,rel-draftIteration"))
            .await;
    assert_eq!((detail["status"].as_str(), detail["isDirty"].as_bool()), (Some("enabled"), Some(false)));
    assert_eq!(detail["relatedExperiments"][0]["key"], "ldexp-contract-held");
    assert_eq!(refused(c, &get(format!("{holdouts}/no-such-holdout"))).await, 404);
    assert_eq!(sent(c, &get(format!("{holdouts}/id/{id}"))).await["_id"], id.as_str());
    assert_eq!(refused(c, &get(format!("{holdouts}/id/no-such-id"))).await, 404);

    // patchHoldout: rename, take the experiment out, end (200); then any change is a 400; an unknown key is a 404.
    let patch_holdout = |key: &str, instructions: Value| {
        let body = json!({"comment": "ldexp contract test", "instructions": instructions});
        planned("PATCH", format!("{holdouts}/{key}"), SEMANTIC, Some(body))
    };
    let renamed = sent(
        c,
        &patch_holdout(
            "ldexp-contract-holdout",
            json!([{"kind": "updateName", "value": "Contract holdout, renamed"},
                   {"kind": "updateDescription", "value": "still the conformance test"},
                   {"kind": "removeExperiment", "value": "ldexp-contract-held"}]),
        ),
    )
    .await;
    assert_eq!(renamed["experiments"], json!([]));
    let ended = sent(c, &patch_holdout("ldexp-contract-holdout", json!([{"kind": "endHoldout"}]))).await;
    assert_eq!(ended["status"], "ended");
    assert_eq!(refused(c, &patch_holdout("ldexp-contract-holdout", json!([{"kind": "endHoldout"}]))).await, 400);
    assert_eq!(refused(c, &patch_holdout("no-such-holdout", json!([{"kind": "endHoldout"}]))).await, 404);

    // createLayer (201; a taken key 400; an unknown project 404).
    let layer = json!({"key": "ldexp-contract-layer", "name": "Contract layer", "description": "conformance"});
    let l = sent(c, &planned("POST", layers.clone(), "application/json", Some(layer.clone()))).await;
    assert_eq!(l["environments"][e]["reservations"], json!([]));
    assert_eq!(refused(c, &planned("POST", layers.clone(), "application/json", Some(layer.clone()))).await, 400);
    let nowhere = planned("POST", "/api/v2/projects/no-such-project/layers".into(), "application/json", Some(layer));
    assert_eq!(refused(c, &nowhere).await, 404);

    // updateLayer: a zero reservation on a draft, then 60 and 40 (200); one percent more is a 400; an unknown
    // layer a 404.
    let update = |key: &str, instructions: Value| {
        let body = json!({"comment": "ldexp contract test", "environmentKey": e, "instructions": instructions});
        planned("PATCH", format!("{layers}/{key}"), SEMANTIC, Some(body))
    };
    let reserve = |exp: &str, percent: i64| json!([{"kind": "updateExperimentReservation", "experimentKey": exp, "reservationPercent": percent}]);
    sent(c, &update("ldexp-contract-layer", reserve("ldexp-contract-held", 0))).await;
    sent(c, &update("ldexp-contract-layer", reserve("ldexp-contract-held", 60))).await;
    let l = sent(c, &update("ldexp-contract-layer", reserve("ldexp-contract-run", 40))).await;
    assert_eq!(l["environments"][e]["reservations"][1]["reservationPercent"], 40);
    assert_eq!(refused(c, &update("ldexp-contract-layer", reserve("ldexp-contract-run", 41))).await, 400);
    let rename = json!([{"kind": "updateName", "name": "Contract layer, renamed"},
                        {"kind": "updateDescription", "description": "renamed"},
                        {"kind": "removeExperiment", "experimentKey": "ldexp-contract-held"}]);
    let l = sent(c, &update("ldexp-contract-layer", rename)).await;
    assert_eq!(l["name"], "Contract layer, renamed");
    assert_eq!(refused(c, &update("no-such-layer", json!([{"kind": "updateName", "name": "x"}]))).await, 404);

    // getLayers (200, filtered by experiment; another filter 400; an unknown project 404).
    let filtered =
        sent(c, &get_with(layers.clone(), "filter", "reservations.experimentKey contains ldexp-contract-run")).await;
    assert_eq!(filtered["totalCount"], 1);
    assert_eq!(refused(c, &get_with(layers.clone(), "filter", "name:x")).await, 400);
    assert_eq!(refused(c, &get("/api/v2/projects/no-such-project/layers".into())).await, 404);
}
