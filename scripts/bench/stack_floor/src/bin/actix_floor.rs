//! actix-web, with one worker per core as mcp-mux runs it, and a client per
//! worker thread.

use std::cell::OnceCell;

use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use stack_floor::{Backend, arguments, backend_client, forward};

thread_local! {
    static CLIENT: OnceCell<Backend> = const { OnceCell::new() };
}

async fn relay(body: Bytes, backend: web::Data<String>) -> HttpResponse {
    let client = CLIENT.with(|client| client.get_or_init(backend_client).clone());
    match forward(&client, &backend, body).await {
        Some(answer) => HttpResponse::Ok()
            .content_type("application/json")
            .body(answer),
        None => HttpResponse::BadGateway().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let (bind, backend) = arguments().map_err(std::io::Error::other)?;
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(backend.clone()))
            .default_service(web::post().to(relay))
    })
    .bind(bind)?
    .run()
    .await
}
