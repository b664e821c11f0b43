//! API.md §4: avatars. Raw image bodies up to 1 MiB whose magic bytes must match the
//! declared type, stored under random names, served so that no browser runs them.

use std::os::unix::fs::PermissionsExt as _;

use uuid::Uuid;

use crate::harness::{TestApp, problem};

/// The start of a PNG file: signature and IHDR chunk header.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
const WEBP: &[u8] =
    b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0";

impl TestApp {
    async fn put_avatar(
        &self,
        token: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .put(self.url("/api/v1/me/avatar"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    fn avatar_files(&self) -> Vec<std::path::PathBuf> {
        let dir = self.state.config.data_dir.join("avatars");
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_served_avatar_carries_its_type_nosniff_a_sandbox_csp_and_inline_disposition() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let mut image = PNG.to_vec();
    image.extend_from_slice(&[7u8; 200]);
    let stored = app
        .client
        .put(app.url("/api/v1/me/avatar"))
        .bearer_auth(&user.access)
        .header("content-type", "image/png")
        // A client-chosen name is ignored.
        .header(
            "content-disposition",
            "attachment; filename=\"../../evil.html\"",
        )
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 204);

    let served = app
        .get_bearer(
            &format!("/api/v1/users/{}/avatar", user.user_id()),
            &user.access,
        )
        .await;
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(headers["content-disposition"], "inline");
    assert_eq!(served.bytes().await.unwrap().as_ref(), image.as_slice());

    let files = app.avatar_files();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(!name.contains("evil"));
    assert!(name.ends_with(".png") && name.len() == 36, "{name}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(files[0].parent().unwrap()), 0o700);

    // A new avatar replaces the old one, file included; JPEG and WebP are accepted too.
    for (kind, bytes) in [("image/jpeg", JPEG), ("image/webp", WEBP)] {
        assert_eq!(
            app.put_avatar(&user.access, kind, bytes.to_vec())
                .await
                .status(),
            204
        );
        let served = app
            .get_bearer(
                &format!("/api/v1/users/{}/avatar", user.user_id()),
                &user.access,
            )
            .await;
        assert_eq!(served.headers()["content-type"], kind);
        assert_eq!(app.avatar_files().len(), 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_png_declared_as_jpeg_and_html_declared_as_png_are_415() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>".to_vec();
    for (declared, bytes) in [
        ("image/jpeg", PNG.to_vec()),
        ("image/png", html.clone()),
        ("image/webp", JPEG.to_vec()),
        ("image/svg+xml", b"<svg onload=alert(1)>".to_vec()),
        ("text/html", html),
        ("image/png", Vec::new()),
    ] {
        let response = app.put_avatar(&user.access, declared, bytes).await;
        assert_eq!(response.status(), 415, "{declared}");
        assert_eq!(problem(response).await["code"], "unsupported_media_type");
    }
    assert!(app.avatar_files().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_avatar_over_1_mib_is_413() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let mut big = PNG.to_vec();
    big.resize(1024 * 1024 + 100 * 1024, 0);
    let response = app.put_avatar(&user.access, "image/png", big).await;
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["code"], "payload_too_large");

    // Streamed without a length, the limit holds all the same.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(PNG.to_vec()))
        .chain((0..1100).map(|_| Ok(vec![0u8; 1024])))
        .collect();
    let streamed = app
        .client
        .put(app.url("/api/v1/me/avatar"))
        .bearer_auth(&user.access)
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);

    // Exactly 1 MiB is accepted.
    let mut limit = PNG.to_vec();
    limit.resize(1024 * 1024, 0);
    assert_eq!(
        app.put_avatar(&user.access, "image/png", limit)
            .await
            .status(),
        204
    );
    app.stop().await;
}

#[tokio::test]
async fn a_user_without_avatar_an_unknown_user_and_a_malformed_id_are_404() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    for target in [
        user.user_id().to_string(),
        Uuid::new_v4().to_string(),
        "..%2F..%2Fetc%2Fpasswd".to_owned(),
    ] {
        let response = app
            .get_bearer(&format!("/api/v1/users/{target}/avatar"), &user.access)
            .await;
        assert_eq!(response.status(), 404, "{target}");
        assert_eq!(problem(response).await["code"], "not_found");
    }
    let anonymous = app
        .get(&format!("/api/v1/users/{}/avatar", user.user_id()))
        .await;
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}
