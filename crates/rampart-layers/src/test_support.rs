//! Shared checks for the layers' unit tests.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::body::Body;
use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt, limit::ConcurrencyLimit};

/// The handler behind a layer under test: 200 `handler`, counting its calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handler {
    pub(crate) calls: Arc<AtomicUsize>,
}

impl Service<Request<Body>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Response::new(Body::from("handler"))))
    }
}

/// `layer` around a handler that admits one request at a time (tower's
/// `ConcurrencyLimit`, which panics when called without being ready) serves `request` three
/// times in a row: it is ready with the single permit (it does not reserve a second one
/// through a clone), it calls only the service it polled, and it gives the permit back.
/// `reaches_handler` says whether the request is meant to get through; while one that does
/// is in flight, the layer is not ready.
pub(crate) async fn serves_within_one_permit<L, ResB>(
    layer: L,
    request: impl Fn() -> Request<Body>,
    expected: StatusCode,
    reaches_handler: bool,
) where
    L: Layer<ConcurrencyLimit<Handler>>,
    L::Service: Service<Request<Body>, Response = Response<ResB>>,
    <L::Service as Service<Request<Body>>>::Error: std::fmt::Debug,
{
    let handler = Handler::default();
    let calls = handler.calls.clone();
    let mut svc = layer.layer(ConcurrencyLimit::new(handler, 1));
    for round in 0..3 {
        let ready = svc
            .ready()
            .now_or_never()
            .unwrap_or_else(|| panic!("round {round}: not ready with a free permit"))
            .unwrap();
        let in_flight = ready.call(request());
        if reaches_handler {
            assert!(
                svc.ready().now_or_never().is_none(),
                "round {round}: ready while the only permit is in flight"
            );
        }
        let response = in_flight.await.unwrap();
        assert_eq!(response.status(), expected, "round {round}");
    }
    let expected_calls = if reaches_handler { 3 } else { 0 };
    assert_eq!(calls.load(Ordering::SeqCst), expected_calls);
}
