//! Reading a request body under an explicit size limit and within a time
//! limit, with our own errors: a body that never finishes must not hold its
//! connection (and a file descriptor) forever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::{HttpRequest, HttpResponse, dev, web};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// How long a client may take to send a whole request body, like nginx's
/// `client_body_timeout`, but for the whole body: a trickle of one byte at
/// a time cannot hold a connection either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Duration);

impl Default for BodyTimeout {
    fn default() -> Self {
        BodyTimeout(Duration::from_secs(10))
    }
}

/// Reads the whole body, refusing more than `limit` bytes or a body that
/// takes longer than the gateway's [`BodyTimeout`].
pub async fn read_limited<E>(
    request: &HttpRequest,
    payload: &mut (impl Stream<Item = Result<Bytes, E>> + Unpin),
    limit: usize,
) -> Result<web::BytesMut, BodyError> {
    let BodyTimeout(timeout) = request
        .app_data::<web::Data<BodyTimeout>>()
        .map(|timeout| *timeout.get_ref())
        .unwrap_or_default();
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut { timeout }))
}

/// A refusal sent while the request body is still unread: the connection
/// closes after it. Actix would otherwise drain an unread chunked body
/// before reading the next request, and a body that never ends would hold
/// the connection forever; holding the payload until the refusal is sent
/// makes it close instead.
pub fn refuse_unread(response: HttpResponse, unread: dev::Payload) -> HttpResponse {
    let mut response = response.map_body(|_, body| {
        let bytes = body.try_into_bytes().unwrap_or_default();
        ClosingBody {
            bytes: Some(bytes),
            _unread: unread,
        }
    });
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response.map_into_boxed_body()
}

/// A whole body that holds the request's unread payload while it is sent.
struct ClosingBody {
    bytes: Option<Bytes>,
    _unread: dev::Payload,
}

impl MessageBody for ClosingBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.get_mut().bytes.take().map(Ok))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body could not be read")]
    Broken,
    #[error("the request body did not arrive within {} s", timeout.as_secs_f64())]
    TimedOut { timeout: Duration },
}
