//! hyper's own HTTP/1 server on one thread, as nginx runs with one worker.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use stack_floor::{arguments, backend_client, forward};

fn main() -> std::io::Result<()> {
    let (bind, backend) = arguments().map_err(std::io::Error::other)?;
    let backend: Arc<str> = backend.into();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let client = backend_client();
            let listener = tokio::net::TcpListener::bind(bind).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let (client, backend) = (client.clone(), backend.clone());
                let relay = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (client, backend) = (client.clone(), backend.clone());
                    async move {
                        let answer = match request.into_body().collect().await {
                            Ok(body) => forward(&client, &backend, body.to_bytes()).await,
                            Err(_) => None,
                        };
                        let response = match answer {
                            Some(answer) => hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(answer)),
                            None => hyper::Response::builder()
                                .status(502)
                                .body(Full::new(Bytes::new())),
                        };
                        Ok::<_, Infallible>(response.unwrap_or_default())
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), relay)
                        .await;
                });
            }
        })
}
