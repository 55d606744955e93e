//! The OpenAPI document: public, complete, and every `/api` route in it
//! refuses a request without a valid token.

use serde_json::Value;

use crate::support::*;

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the document needs no token");
    response.json().await.unwrap()
}

/// Every (method, path) of the document, path parameters filled in.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let filled: String = path
                .split('/')
                .map(|part| if part.starts_with('{') { "1" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            found.push((method.to_uppercase(), filled, operation.clone()));
        }
    }
    found
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_api_route_in_the_document_refuses_missing_and_wrong_tokens() {
    let app = spawn_app(Db::Sqlite).await;
    let doc = document(&app).await;
    let mut walked = 0;
    for (method, path, operation) in operations(&doc) {
        if !path.starts_with("/api/") || path == "/api/openapi.json" {
            continue;
        }
        assert_eq!(
            operation["security"][0]["bearer"],
            serde_json::json!([]),
            "{method} {path} must declare the bearer scheme"
        );
        for token in [None, Some("wrong-token-0123456789")] {
            let (status, body) = call(&app, &method, &path, token).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}");
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
        let (status, _) = call(&app, &method, &path, Some(API_TOKEN)).await;
        assert_ne!(status, 401, "{method} {path} with the right token");
        walked += 1;
    }
    assert!(
        walked >= 10,
        "only {walked} /api operations in the document"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_document_describes_every_route_and_the_bearer_scheme() {
    let app = spawn_app(Db::Sqlite).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/webhook/tiktok",
        "/webhook/health",
        "/health",
        "/metrics",
        "/api/openapi.json",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/history",
        "/api/orders/shop/{shop_id}",
        "/api/orders/queue/unprocessed",
        "/api/orders/stats/webhooks",
        "/api/orders/stats/orders",
        "/api/shops/{shop_id}",
        "/api/products/{product_id}",
        "/api/events",
        "/api/events/{event_id}",
    ] {
        assert!(paths.contains_key(path), "{path} is not in the document");
    }
    // The webhook is authenticated by its signature, not a token.
    assert!(doc["paths"]["/webhook/tiktok"]["post"]["security"].is_null());
    assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
    app.stop().await;
}
