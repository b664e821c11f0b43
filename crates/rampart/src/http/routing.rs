//! The API's routes and, only when asked for, their OpenAPI document.
//!
//! [`ApiRouter`] is used like `utoipa_axum`'s `OpenApiRouter` (`.routes(routes!(a, b))`,
//! `.merge(…)`, `.split_for_parts()`), with one difference: it routes at start-up but does
//! not describe. `OpenApiRouter` builds every operation, schema and component of the
//! document while the routes are added, a tree of a few MiB of maps and strings that a
//! server which never serves `/openapi.json` carries for nothing (and that kept an idle
//! server above its 20 MiB, bench/README.md "Idle memory"). Here each `routes!` keeps a
//! function that adds its operations and schemas to a document, and [`Documentation`]
//! runs them, in the order the routes were added, when the document is first asked for.
//! The document is the one `OpenApiRouter` builds: each function adds exactly what
//! `utoipa_axum::routes!` gives it, the way `OpenApiRouter::routes` adds it.

use axum::{Router, routing::MethodRouter};
use utoipa::openapi::{Components, OpenApi};

/// Adds one `routes!`'s operations and the schemas they name to a document.
pub type Describe = fn(&mut OpenApi);

/// The routes of one `routes!`: each handler's path and method router, and how to
/// describe them.
pub struct Routes<S> {
    pub handlers: Vec<(String, MethodRouter<S>)>,
    pub describe: Describe,
}

/// Routes now, the document later.
pub struct ApiRouter<S> {
    router: Router<S>,
    describe: Vec<Describe>,
}

impl<S: Clone + Send + Sync + 'static> ApiRouter<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            describe: Vec::new(),
        }
    }

    /// Routes each handler of `routes` at its documented path and methods.
    pub fn routes(mut self, routes: Routes<S>) -> Self {
        for (path, method_router) in routes.handlers {
            self.router = self.router.route(&path, method_router);
        }
        self.describe.push(routes.describe);
        self
    }

    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.describe.extend(other.describe);
        self
    }

    /// The router, and what describes it.
    pub fn split_for_parts(self) -> (Router<S>, Documentation) {
        (self.router, Documentation(self.describe))
    }
}

impl<S: Clone + Send + Sync + 'static> Default for ApiRouter<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// How to describe the routes of an [`ApiRouter`].
#[derive(Clone)]
pub struct Documentation(Vec<Describe>);

impl Documentation {
    /// `base` (the document's top: info, shared components) with every route's
    /// operations and schemas.
    pub fn build(&self, mut base: OpenApi) -> OpenApi {
        for describe in &self.0 {
            describe(&mut base);
        }
        base
    }
}

/// What `OpenApiRouter::routes` does with the document part of a `utoipa_axum::routes!`.
pub fn add_to(doc: &mut OpenApi, described: utoipa_axum::router::UtoipaMethodRouter<impl Sized>) {
    let (schemas, paths, _) = described;
    for (path, item) in paths.paths {
        match doc.paths.paths.get_mut(&path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                doc.paths.paths.insert(path, item);
            }
        }
    }
    doc.components
        .get_or_insert_with(Components::new)
        .schemas
        .extend(schemas);
}

/// `routes!(a, b, …)`: the handlers `a`, `b`, … (each annotated with `#[utoipa::path]`)
/// routed at their documented paths and methods, and described only when
/// [`Documentation::build`] runs.
macro_rules! routes {
    ($($handler:ident),+ $(,)?) => {
        $crate::http::routing::Routes {
            handlers: vec![$(
                ::pastey::paste! {{
                    use ::utoipa::Path as _;
                    use ::utoipa_axum::PathItemExt as _;
                    let method_router = [<__path_ $handler>]::methods().iter().fold(
                        ::axum::routing::MethodRouter::new(),
                        |router, method| router.on(method.to_method_filter(), $handler),
                    );
                    ([<__path_ $handler>]::path(), method_router)
                }}
            ),+],
            describe: |doc| {
                let described: ::utoipa_axum::router::UtoipaMethodRouter<$crate::state::AppState> =
                    ::utoipa_axum::routes!($($handler),+);
                $crate::http::routing::add_to(doc, described);
            },
        }
    };
}

pub(crate) use routes;

#[cfg(test)]
mod tests {
    use axum::{body::Body, extract::Path};
    use http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use serde::Serialize;
    use tower::ServiceExt as _;
    use utoipa::{OpenApi as _, ToSchema};
    use utoipa_axum::router::OpenApiRouter;

    use super::ApiRouter;

    #[derive(Serialize, ToSchema)]
    struct Thing {
        id: String,
    }

    #[utoipa::path(get, path = "/things/{id}", params(("id" = String, Path)),
        responses((status = 200, description = "The thing", body = Thing)))]
    async fn read(Path(id): Path<String>) -> String {
        format!("read {id}")
    }

    #[utoipa::path(delete, path = "/things/{id}", params(("id" = String, Path)),
        responses((status = 204, description = "Gone")))]
    async fn remove(Path(id): Path<String>) -> String {
        format!("removed {id}")
    }

    #[utoipa::path(post, path = "/things", responses((status = 201, description = "Made")))]
    async fn make() -> &'static str {
        "made"
    }

    async fn answer(router: &axum::Router, method: &str, path: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn each_handler_answers_at_its_documented_path_and_methods_only() {
        let (router, _) = ApiRouter::new()
            .routes(routes!(read, remove))
            .merge(ApiRouter::new().routes(routes!(make)))
            .split_for_parts();
        assert_eq!(
            answer(&router, "GET", "/things/7").await,
            (StatusCode::OK, "read 7".into())
        );
        assert_eq!(
            answer(&router, "DELETE", "/things/7").await,
            (StatusCode::OK, "removed 7".into())
        );
        assert_eq!(
            answer(&router, "POST", "/things").await,
            (StatusCode::OK, "made".into())
        );
        assert_eq!(
            answer(&router, "PUT", "/things/7").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            answer(&router, "GET", "/other").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_document_built_later_is_the_one_utoipa_axum_builds_while_routing() {
        let (_, later) = ApiRouter::<()>::new()
            .routes(routes!(read, remove))
            .merge(ApiRouter::new().routes(routes!(make)))
            .split_for_parts();
        #[derive(utoipa::OpenApi)]
        struct Top;
        let (_, eager) = OpenApiRouter::<()>::with_openapi(Top::openapi())
            .routes(utoipa_axum::routes!(read, remove))
            .merge(OpenApiRouter::new().routes(utoipa_axum::routes!(make)))
            .split_for_parts();
        let later = serde_json::to_value(later.build(Top::openapi())).unwrap();
        let eager = serde_json::to_value(eager).unwrap();
        assert_eq!(later, eager);
        let paths = later["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert!(later["paths"]["/things/{id}"]["delete"].is_object());
        assert!(later["components"]["schemas"]["Thing"].is_object());
    }
}
