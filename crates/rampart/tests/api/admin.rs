//! API.md §4: roles and the admin API.

use serde_json::{Value, json};

use crate::harness::{TestApp, problem};

#[tokio::test]
async fn a_non_admin_is_forbidden_on_every_admin_route_and_the_event_is_logged() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let target = user.user_id();
    let attempts = [
        app.get_bearer("/api/v1/admin/users", &user.access).await,
        app.get_bearer("/api/v1/admin/security-events", &user.access)
            .await,
        app.client
            .patch(app.url(&format!("/api/v1/admin/users/{target}")))
            .bearer_auth(&user.access)
            .json(&json!({"role": "admin"}))
            .send()
            .await
            .unwrap(),
    ];
    for response in attempts {
        assert_eq!(response.status(), 403);
        assert_eq!(problem(response).await["code"], "forbidden");
    }
    let admin = app.signed_in_admin().await;
    let response = app
        .get_bearer(
            &format!("/api/v1/admin/security-events?type=forbidden&user_id={target}"),
            &admin.access,
        )
        .await;
    assert_eq!(response.headers()["x-total-count"], "3");
    let events: Value = response.json().await.unwrap();
    let event = &events["items"][0];
    for key in [
        "id",
        "type",
        "occurred_at",
        "request_id",
        "ip",
        "user_agent",
        "user_id",
        "route",
        "details",
    ] {
        assert!(event.get(key).is_some(), "{key}");
    }
    assert_eq!(event["user_id"], target.to_string());
    app.stop().await;
}

#[tokio::test]
async fn admins_list_users_page_by_page_and_change_roles() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let (email, _, user) = app.signed_in_user().await;
    let response = app
        .get_bearer("/api/v1/admin/users?limit=1&page=1", &admin.access)
        .await;
    assert_eq!(response.headers()["x-total-count"], "2");
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let found: Value = app
        .get_bearer(
            &format!("/api/v1/admin/users?q={}", &email[..12]),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1);
    assert_eq!(
        app.get_bearer("/api/v1/admin/users?limit=101", &admin.access)
            .await
            .status(),
        400
    );

    let promote = app
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{}", user.user_id())))
        .bearer_auth(&admin.access)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(promote.status(), 200);
    // The new role applies to the very next request of the old token.
    assert_eq!(
        app.get_bearer("/api/v1/admin/users", &user.access)
            .await
            .status(),
        200
    );
    let bad = app
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{}", user.user_id())))
        .bearer_auth(&admin.access)
        .json(&json!({"role": "root", "is_admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let events: Value = app
        .get_bearer(
            "/api/v1/admin/security-events?type=role_changed",
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["total"], 1);
    app.stop().await;
}

#[tokio::test]
async fn every_list_takes_pages_up_to_100000_and_refuses_deeper_ones() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    app.product("Tea", 100).await;
    for list in [
        "/api/v1/products",
        "/api/v1/orders",
        "/api/v1/admin/users",
        "/api/v1/admin/security-events",
    ] {
        let deepest = app
            .get_bearer(&format!("{list}?page=100000&limit=100"), &admin.access)
            .await;
        assert_eq!(deepest.status(), 200, "{list}");
        let total = deepest.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = deepest.json().await.unwrap();
        assert_eq!(body["items"], json!([]), "{list}");
        assert_eq!(
            (body["page"].clone(), body["limit"].clone()),
            (json!(100000), json!(100))
        );
        assert_eq!(body["total"].to_string(), total, "{list}");
        for bad in ["page=100001", "page=4294967296", "page=0", "limit=0"] {
            let response = app
                .get_bearer(&format!("{list}?{bad}"), &admin.access)
                .await;
            assert_eq!(response.status(), 400, "{list}?{bad}");
            let body = problem(response).await;
            assert_eq!(body["code"], "validation_failed");
            assert_eq!(body["errors"][0]["field"], bad.split('=').next().unwrap());
        }
    }
    app.stop().await;
}
