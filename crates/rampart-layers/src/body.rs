//! [`ResponseBody`]: the body of a layer that either passes the inner service's response
//! on or answers itself with a problem, so layers stay generic over response bodies (as
//! tower-http's are) instead of fixing one framework's body type.
//!
//! ```
//! use bytes::Bytes;
//! use http_body::Body as _;
//! use rampart_layers::body::ResponseBody;
//! let own: ResponseBody<http_body_util::Empty<Bytes>> = ResponseBody::full(Bytes::from_static(b"{}"));
//! assert_eq!(own.size_hint().exact(), Some(2));
//! ```

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

pin_project! {
    /// The inner service's body, or one this kit wrote (a problem).
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's body, passed on untouched.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body of these bytes.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                body: Full::new(bytes),
            },
        }
    }

    /// The inner service's body when the layer passed it on, or the bytes the layer
    /// wrote. A framework that boxes bodies (axum's `Body::new`) can take the inner body
    /// back as it is and box only the layer's own answer, instead of boxing once more
    /// around every response that passed through.
    pub fn into_inner(self) -> Result<B, Full<Bytes>> {
        match self.kind {
            Kind::Inner { body } => Ok(body),
            Kind::Full { body } => Err(body),
        }
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Inner { .. } => "ResponseBody::Inner",
            Kind::Full { .. } => "ResponseBody::Full",
        })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { body } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn both_kinds_yield_their_bytes() {
        let inner = ResponseBody::new(Full::new(Bytes::from_static(b"inner")));
        assert_eq!(&inner.collect().await.unwrap().to_bytes()[..], b"inner");
        let own: ResponseBody<Full<Bytes>> = ResponseBody::full(Bytes::from_static(b"own"));
        assert_eq!(own.size_hint().exact(), Some(3));
        assert_eq!(&own.collect().await.unwrap().to_bytes()[..], b"own");
    }

    #[tokio::test]
    async fn into_inner_gives_back_the_inner_body_or_the_layers_own_bytes() {
        let inner = ResponseBody::new(Full::new(Bytes::from_static(b"inner")));
        let body = inner.into_inner().expect("the inner body, as it was");
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"inner");
        let own: ResponseBody<Full<Bytes>> = ResponseBody::full(Bytes::from_static(b"own"));
        let bytes = own.into_inner().expect_err("the layer's own bytes");
        assert_eq!(&bytes.collect().await.unwrap().to_bytes()[..], b"own");
    }
}
