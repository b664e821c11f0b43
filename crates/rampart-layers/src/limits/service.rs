use std::{
    collections::HashSet,
    sync::Arc,
    task::{Context, Poll},
};

use axum::body::Body;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service};

use super::{BodyKind, BodyRule, RequestLimits, json_guard};
use crate::{
    body::ResponseBody,
    problem::{FieldError, Problem},
    suspicious,
};

/// Enforces [`RequestLimits`] (see the module docs): all of them, or the checks of one
/// stage ([`RequestLimitsLayer::head_only`], [`RequestLimitsLayer::body_only`]).
#[derive(Debug, Clone)]
pub struct RequestLimitsLayer {
    limits: Arc<RequestLimits>,
    stages: Stages,
}

/// Which checks a [`RequestLimitsLayer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stages {
    head: bool,
    body: bool,
}

impl Default for RequestLimitsLayer {
    fn default() -> Self {
        Self::new(RequestLimits::default())
    }
}

impl RequestLimitsLayer {
    /// A layer enforcing every limit of `limits`, head and body.
    pub fn new(limits: RequestLimits) -> Self {
        Self {
            limits: Arc::new(limits),
            stages: Stages {
                head: true,
                body: true,
            },
        }
    }

    /// Only the checks of the request head: target length (414), header size (431),
    /// duplicate query parameters (400) and the suspicious-input scan of the target. Put
    /// it before the router: nothing here depends on the route.
    pub fn head_only(self) -> Self {
        Self {
            stages: Stages {
                head: true,
                body: false,
            },
            ..self
        }
    }

    /// Only the checks of the body: content type (415), size (413, streamed), JSON
    /// shape (400) and the suspicious-input scan of a JSON body. Put it after routing
    /// (axum: `Router::route_layer`, with a `method_not_allowed_fallback` added after it)
    /// so that an unknown route or method is answered 404/405 whatever the body is.
    pub fn body_only(self) -> Self {
        Self {
            stages: Stages {
                head: false,
                body: true,
            },
            ..self
        }
    }
}

impl<S> Layer<S> for RequestLimitsLayer {
    type Service = RequestLimitsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestLimitsService {
            inner,
            limits: self.limits.clone(),
            stages: self.stages,
        }
    }
}

/// Service of [`RequestLimitsLayer`]. It hands the inner service one body type whatever it
/// received: the buffered bytes of an accepted body (or the untouched empty one) as an
/// `axum::body::Body`, which any axum `Router` takes.
#[derive(Debug, Clone)]
pub struct RequestLimitsService<S> {
    inner: S,
    limits: Arc<RequestLimits>,
    stages: Stages,
}

impl<S, B, ResB> Service<Request<B>> for RequestLimitsService<S>
where
    S: Service<Request<Body>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResB: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    // Boxed: reading the body is real asynchronous work between the checks and the call.
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limits = self.limits.clone();
        let stages = self.stages;
        let mut findings = Vec::new();
        if stages.head {
            if let Err(problem) = check_head(&limits, &req) {
                let refused = problem.into_http();
                return Box::pin(async move { Ok(refused) });
            }
            findings =
                suspicious::scan_target(req.uri().path(), req.uri().query(), &limits.secret_fields);
        }
        let (parts, body) = req.into_parts();
        if !stages.body || !has_body(&parts.headers, &body) {
            // Nothing to read first: the service polled ready takes the request now.
            let response = self.inner.call(Request::from_parts(parts, Body::new(body)));
            return Box::pin(async move { Ok(with_findings(response.await?, findings)) });
        }
        // The ready service handles this request once its body is read; a fresh clone
        // waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let rule = limits.rule_for(&parts.method, parts.uri.path());
            if let Err(problem) = check_content_type(rule, &parts.headers) {
                return Ok(problem.into_http());
            }
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > rule.limit as u64) {
                return Ok(too_large(rule));
            }
            let bytes = match Limited::new(body, rule.limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<LengthLimitError>() => return Ok(too_large(rule)),
                Err(_) => return Ok(body_failed()),
            };
            if rule.kind == BodyKind::Json {
                if let Err(problem) = check_json(&bytes, limits.max_json_depth) {
                    return Ok(problem.into_http());
                }
                findings.extend(suspicious::scan_json(&bytes, &limits.secret_fields));
            }
            let response = inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await?;
            Ok(with_findings(response, findings))
        })
    }
}

/// Hand the suspicious inputs seen in the request to outer layers (the app logs them),
/// ahead of those an inner stage already reported (the target before the body).
fn with_findings<B>(
    mut response: Response<B>,
    mut findings: Vec<suspicious::Finding>,
) -> Response<ResponseBody<B>> {
    if !findings.is_empty() {
        let extensions = response.extensions_mut();
        if let Some(suspicious::SuspiciousInput(inner)) =
            extensions.remove::<suspicious::SuspiciousInput>()
        {
            findings.extend(inner);
        }
        extensions.insert(suspicious::SuspiciousInput(findings));
    }
    response.map(ResponseBody::new)
}

fn check_head<B>(limits: &RequestLimits, req: &Request<B>) -> Result<(), Box<Problem>> {
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(Box::new(
            Problem::new(StatusCode::URI_TOO_LONG, "uri_too_long").with_detail(format!(
                "The request target exceeds {} bytes.",
                limits.max_uri_bytes
            )),
        ));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(Box::new(
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            )
            .with_detail(format!(
                "The request headers exceed {} bytes in total.",
                limits.max_header_bytes
            )),
        ));
    }
    if let Some(query) = req.uri().query() {
        let mut seen = HashSet::new();
        let mut duplicates = Vec::new();
        for (key, _) in form_urlencoded::parse(query.as_bytes()) {
            if limits.repeatable_params.contains(&key.as_ref()) {
                continue;
            }
            if !seen.insert(key.clone()) && !duplicates.contains(&key) {
                duplicates.push(key);
            }
        }
        if !duplicates.is_empty() {
            let errors = duplicates
                .iter()
                .map(|k| FieldError::new(truncate(k), "given more than once"))
                .collect();
            return Err(Box::new(
                Problem::new(StatusCode::BAD_REQUEST, "duplicate_parameter")
                    .with_title("Duplicate parameter")
                    .with_detail("A query parameter that takes one value was given more than once.")
                    .with_errors(errors),
            ));
        }
    }
    Ok(())
}

/// A parameter name is echoed as a field name, so keep it short.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Whether the request carries a body (RFC 9112 §6.3: `Transfer-Encoding` or a non-zero
/// `Content-Length`), or a body that is not known to be empty: over HTTP/2, or from an
/// in-process caller, a body needs neither header and must be checked all the same.
fn has_body<B: http_body::Body>(headers: &HeaderMap, body: &B) -> bool {
    !body.is_end_stream()
        || headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

fn check_content_type(rule: &BodyRule, headers: &HeaderMap) -> Result<(), Box<Problem>> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut params = declared.split(';');
    let essence = params
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let charset_ok = params.all(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    let accepted: Vec<&str> = match &rule.kind {
        BodyKind::Json => vec!["application/json"],
        BodyKind::Form => vec!["application/x-www-form-urlencoded"],
        BodyKind::Raw(types) => types.clone(),
    };
    if charset_ok && accepted.contains(&essence.as_str()) {
        return Ok(());
    }
    Err(Box::new(
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            .with_detail(format!("This route accepts {}.", accepted.join(", "))),
    ))
}

fn check_json(bytes: &[u8], max_depth: usize) -> Result<(), Box<Problem>> {
    let error = match json_guard::check(bytes, max_depth) {
        Ok(()) => return Ok(()),
        Err(json_guard::JsonViolation::Malformed { line, column }) => FieldError::new(
            "body",
            format!("not valid UTF-8 JSON (line {line}, column {column})"),
        ),
        Err(json_guard::JsonViolation::TooDeep { limit }) => {
            FieldError::new("body", format!("nested deeper than {limit} levels"))
        }
        Err(json_guard::JsonViolation::DangerousKey { path, key }) => {
            let field = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            FieldError::new(field, "this key is not allowed")
        }
    };
    Err(Box::new(Problem::validation(vec![error])))
}

fn too_large<B>(rule: &BodyRule) -> Response<ResponseBody<B>> {
    let mut response = Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        .with_detail(format!(
            "The request body exceeds {} bytes for this route.",
            rule.limit
        ))
        .into_http();
    // The rest of the body is not read: the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn body_failed<B>() -> Response<ResponseBody<B>> {
    let mut response = Problem::new(StatusCode::REQUEST_TIMEOUT, "request_timeout")
        .with_detail("The request body did not arrive completely in time.")
        .into_http();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use tower::{ServiceExt, service_fn};

    fn svc(
        limits: RequestLimits,
    ) -> RequestLimitsService<
        impl Service<
            Request<Body>,
            Response = Response<Body>,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static,
    > {
        RequestLimitsLayer::new(limits).layer(service_fn(|req: Request<Body>| async move {
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(body)))
        }))
    }

    async fn send(limits: RequestLimits, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = svc(limits).oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn json_req(body: impl Into<Body>) -> Request<Body> {
        let body: Body = body.into();
        Request::post("/api/x")
            .header("content-type", "application/json")
            .header("content-length", "1")
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_even_without_content_length() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024));
        let req = Request::post("/api/x")
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked")
            .body(Body::from(big))
            .unwrap();
        let (status, json) = send(RequestLimits::default(), req).await;
        assert_eq!(status, 413);
        assert_eq!(json["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn a_body_without_any_length_header_is_checked_all_the_same() {
        let poisoned = Request::post("/api/x")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"__proto__":{}}"#))
            .unwrap();
        assert_eq!(send(RequestLimits::default(), poisoned).await.0, 400);
        let untyped = Request::post("/api/x").body(Body::from("x")).unwrap();
        assert_eq!(send(RequestLimits::default(), untyped).await.0, 415);
        let big = Request::post("/api/x")
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; 11 * 1024]))
            .unwrap();
        assert_eq!(send(RequestLimits::default(), big).await.0, 413);
        let empty = Request::post("/api/x").body(Body::empty()).unwrap();
        assert_eq!(send(RequestLimits::default(), empty).await.0, 200);
    }

    #[tokio::test]
    async fn an_http2_body_with_neither_length_nor_transfer_encoding_is_limited_too() {
        // HTTP/2 forbids Transfer-Encoding: only the open stream says a body follows.
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..12)
            .map(|_| Ok(bytes::Bytes::from(vec![b' '; 1024])))
            .collect();
        let req = Request::post("/api/x")
            .header("content-type", "application/json")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
        assert_eq!(send(RequestLimits::default(), req).await.0, 413);
        // Without a content type it is judged like any body.
        let req = Request::post("/api/x")
            .body(Body::from_stream(futures_util::stream::iter(vec![Ok::<
                _,
                std::io::Error,
            >(
                bytes::Bytes::from_static(b"{}"),
            )])))
            .unwrap();
        assert_eq!(send(RequestLimits::default(), req).await.0, 415);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_before_reading() {
        let req = Request::post("/api/x")
            .header("content-type", "application/json")
            .header("content-length", "999999")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(send(RequestLimits::default(), req).await.0, 413);
    }

    #[tokio::test]
    async fn wrong_or_missing_content_type_is_415() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/json; charset=latin1"),
        ] {
            let mut req = Request::post("/api/x").header("content-length", "2");
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let (status, json) = send(
                RequestLimits::default(),
                req.body(Body::from("{}")).unwrap(),
            )
            .await;
            assert_eq!(status, 415, "{ct:?}");
            assert_eq!(json["code"], "unsupported_media_type");
        }
    }

    #[tokio::test]
    async fn deep_json_and_dangerous_keys_are_400_and_valid_json_passes() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        let (status, json) = send(RequestLimits::default(), json_req(deep)).await;
        assert_eq!(status, 400);
        assert_eq!(json["code"], "validation_failed");
        let (status, json) = send(
            RequestLimits::default(),
            json_req(r#"{"a":{"__proto__":{}}}"#),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(json["errors"][0]["field"], "a.__proto__");
        let (status, _) = send(RequestLimits::default(), json_req(r#"{"a":1}"#)).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn malformed_json_is_400_without_echoing_input() {
        let (status, json) = send(RequestLimits::default(), json_req("{\"secret\": tru")).await;
        assert_eq!(status, 400);
        assert!(!json.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn duplicate_query_parameters_are_400_even_when_encoded() {
        let req = Request::get("/api/x?page=1&pag%65=2")
            .body(Body::empty())
            .unwrap();
        let (status, json) = send(RequestLimits::default(), req).await;
        assert_eq!(status, 400);
        assert_eq!(json["code"], "duplicate_parameter");
        assert_eq!(json["errors"][0]["field"], "page");
    }

    #[tokio::test]
    async fn long_targets_are_414_and_large_headers_431() {
        let req = Request::get(format!("/api/x?q={}", "a".repeat(9000)))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(RequestLimits::default(), req).await.0, 414);
        let mut req = Request::get("/api/x").body(Body::empty()).unwrap();
        for i in 0..5 {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(format!("x-big-{i}").as_bytes()).unwrap(),
                HeaderValue::from_str(&"v".repeat(4000)).unwrap(),
            );
        }
        assert_eq!(send(RequestLimits::default(), req).await.0, 431);
    }

    #[tokio::test]
    async fn a_route_rule_overrides_the_default() {
        let limits = RequestLimits::default().route(
            Method::PUT,
            "/upload",
            BodyRule::raw(64 * 1024, &["image/png"]),
        );
        let req = Request::put("/upload")
            .header("content-type", "image/png")
            .header("content-length", "20000")
            .body(Body::from(vec![0u8; 20000]))
            .unwrap();
        let response = svc(limits).oneshot(req).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn accepted_and_refused_requests_keep_the_inner_services_readiness() {
        use crate::test_support::serves_within_one_permit;
        let layer = || RequestLimitsLayer::new(RequestLimits::default());
        let get = || Request::get("/api/x").body(Body::empty()).unwrap();
        serves_within_one_permit(layer(), get, StatusCode::OK, true).await;
        let json = || json_req(r#"{"a":1}"#);
        serves_within_one_permit(layer(), json, StatusCode::OK, true).await;
        let duplicate = || Request::get("/api/x?a=1&a=2").body(Body::empty()).unwrap();
        serves_within_one_permit(layer(), duplicate, StatusCode::BAD_REQUEST, false).await;
        let too_large = || {
            Request::post("/api/x")
                .header("content-type", "application/json")
                .header("content-length", "999999")
                .body(Body::from("{}"))
                .unwrap()
        };
        serves_within_one_permit(layer(), too_large, StatusCode::PAYLOAD_TOO_LARGE, false).await;
    }

    #[tokio::test]
    async fn the_secret_fields_of_the_application_are_never_excerpted() {
        let limits = RequestLimits {
            secret_fields: suspicious::SecretFields::new(["pin"]),
            ..RequestLimits::default()
        };
        let response = svc(limits)
            .oneshot(json_req(r#"{"pin":"' OR 1=1 --","note":"<script>"}"#))
            .await
            .unwrap();
        let findings = response
            .extensions()
            .get::<suspicious::SuspiciousInput>()
            .unwrap();
        assert_eq!(findings.0.len(), 1);
        assert_eq!(findings.0[0].field, "body.note");
    }

    #[tokio::test]
    async fn the_head_stage_leaves_the_body_alone_and_the_body_stage_the_head() {
        let head = RequestLimitsLayer::new(RequestLimits::default()).head_only();
        let body = RequestLimitsLayer::new(RequestLimits::default()).body_only();
        let wrong_type = || {
            Request::post("/api/x?a=1&a=2")
                .header("content-type", "text/plain")
                .body(Body::from("x"))
                .unwrap()
        };
        let inner = || {
            service_fn(|_: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            })
        };
        let response = head.layer(inner()).oneshot(wrong_type()).await.unwrap();
        assert_eq!(response.status(), 400, "duplicates are the head's");
        let plain = Request::post("/api/x")
            .header("content-type", "text/plain")
            .body(Body::from("x"))
            .unwrap();
        let response = head.layer(inner()).oneshot(plain).await.unwrap();
        assert_eq!(response.status(), 200, "the body is not the head's");
        let response = body.layer(inner()).oneshot(wrong_type()).await.unwrap();
        assert_eq!(response.status(), 415, "the type is the body's");
        let duplicates = Request::get("/api/x?a=1&a=2").body(Body::empty()).unwrap();
        let response = body.layer(inner()).oneshot(duplicates).await.unwrap();
        assert_eq!(response.status(), 200, "duplicates are not the body's");
    }

    #[tokio::test]
    async fn split_stages_report_the_target_and_the_body_findings_together() {
        let limits = RequestLimitsLayer::new(RequestLimits::default());
        let inner = service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        });
        let svc = limits
            .clone()
            .head_only()
            .layer(limits.body_only().layer(inner));
        let req = Request::post("/api/x?q=%3Cscript%3E")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"note":"' OR 1=1 --"}"#))
            .unwrap();
        let response = svc.oneshot(req).await.unwrap();
        let findings = &response
            .extensions()
            .get::<suspicious::SuspiciousInput>()
            .unwrap()
            .0;
        let fields: Vec<&str> = findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["query.q", "body.note"]);
    }

    /// The wiring the module docs give: the router decides 404/405 before any body check.
    fn routed() -> axum::Router {
        use axum::routing::post;
        let limits = RequestLimitsLayer::new(RequestLimits::default());
        axum::Router::new()
            .route("/items", post(|| async { StatusCode::CREATED }))
            .route_layer(limits.clone().body_only())
            .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
            .layer(limits.head_only())
    }

    async fn routed_status(method: Method, path: &str, content_type: &str, body: &str) -> u16 {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .unwrap();
        routed().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn routing_decides_before_the_body_is_judged() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024));
        for (content_type, body) in [
            ("text/plain", "x"),
            ("application/json", r#"{"__proto__":{}}"#),
            ("application/json", big.as_str()),
        ] {
            let nope = routed_status(Method::PUT, "/nope", content_type, body).await;
            assert_eq!(nope, 404, "{content_type} {}", body.len());
            let wrong = routed_status(Method::PUT, "/items", content_type, body).await;
            assert_eq!(wrong, 405, "{content_type} {}", body.len());
        }
        // On the route and its method, the body is judged as ever.
        let post = |ct, body| routed_status(Method::POST, "/items", ct, body);
        assert_eq!(post("text/plain", "x").await, 415);
        assert_eq!(post("application/json", r#"{"__proto__":{}}"#).await, 400);
        assert_eq!(post("application/json", &big).await, 413);
        assert_eq!(post("application/json", "{}").await, 201);
        // The head is judged before routing.
        let duplicate = routed_status(Method::PUT, "/nope?a=1&a=2", "text/plain", "x").await;
        assert_eq!(duplicate, 400);
    }

    #[tokio::test]
    async fn without_the_405_fallback_after_it_a_route_layer_judges_the_body_of_a_wrong_method() {
        // Why the module docs set `method_not_allowed_fallback` after the body stage: axum's
        // route layer wraps each route's default 405 fallback as well.
        use axum::routing::post;
        let limits = RequestLimitsLayer::new(RequestLimits::default());
        let app: axum::Router = axum::Router::new()
            .route("/items", post(|| async { StatusCode::CREATED }))
            .route_layer(limits.body_only());
        let req = Request::put("/items")
            .header("content-type", "text/plain")
            .body(Body::from("x"))
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), 415);
    }
}
