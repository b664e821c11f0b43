//! [`ResponseFuture`]: the future of [`super::RateLimitService`], an enum so that a local
//! store's decision costs no allocation.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{BoxFuture, Decision, Policy, append_headers};
use crate::body::ResponseBody;

pin_project! {
    /// Future of [`super::RateLimitService`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        /// Refused at once: the 429 is ready.
        Refused { response: Option<Response<ResponseBody<B>>> },
        /// Admitted at once (or not limited): the inner call, then the rate-limit fields.
        Admitted {
            #[pin]
            inner: F,
            fields: Option<(Policy, Decision)>,
        },
        /// The store answers asynchronously (Redis): the whole decision and call, boxed.
        Waiting { future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(super) fn refused(response: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }

    pub(super) fn admitted(inner: F, fields: Option<(Policy, Decision)>) -> Self {
        Self {
            kind: Kind::Admitted { inner, fields },
        }
    }

    pub(super) fn waiting(
        future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>>,
    ) -> Self {
        Self {
            kind: Kind::Waiting { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            // Polled again after completion: stay pending, as a finished future may.
            KindProj::Refused { response } => response
                .take()
                .map_or(Poll::Pending, |r| Poll::Ready(Ok(r))),
            KindProj::Admitted { inner, fields } => {
                let mut response = ready!(inner.poll(cx))?;
                if let Some((policy, decision)) = fields.take() {
                    append_headers(response.headers_mut(), &policy, &decision);
                }
                Poll::Ready(Ok(response.map(ResponseBody::new)))
            }
            KindProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}
