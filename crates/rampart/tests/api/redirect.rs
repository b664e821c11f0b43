//! `RAMPART_HTTP_REDIRECT_LISTEN`: with TLS on, plain HTTP gets a 308 to the HTTPS origin and
//! nothing else.

use crate::cli::{spawn_serve, stop_serve};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_on_the_redirect_listener_is_a_308_to_the_https_origin_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let redirect = format!("127.0.0.1:{}", free_port());
    let (cert_path, key_path) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let vars = [
        ("RAMPART_TLS_CERT", cert_path.as_str()),
        ("RAMPART_TLS_KEY", key_path.as_str()),
        ("RAMPART_PUBLIC_URL", "https://localhost:8443"),
        ("RAMPART_HTTP_REDIRECT_LISTEN", redirect.as_str()),
    ];
    let (child, addr) = tokio::task::block_in_place(|| spawn_serve(dir.path(), &vars));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Any method, path and body: the same answer, the body never read.
    for (method, path) in [
        (reqwest::Method::GET, "/anything?x=1"),
        (reqwest::Method::POST, "/api/v1/auth/login"),
        (reqwest::Method::GET, "/health"),
    ] {
        let response = client
            .request(method, format!("http://{redirect}{path}"))
            .header("host", "evil.example")
            .body("{\"password\":\"hunter2hunter2\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 308, "{path}");
        assert_eq!(
            response.headers()["location"],
            format!("https://localhost:8443{path}").as_str()
        );
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none()
        );
        assert!(response.text().await.unwrap().is_empty());
    }
    // The HTTPS listener itself is not a redirect.
    let tls = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let health = tls
        .get(format!("https://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    tokio::task::block_in_place(|| stop_serve(child));
}
