//! A real backend killed in the middle of a call and started again on the
//! same port: the call ends at once with an error naming the backend, and
//! the next one goes through on a new backend session.

use std::net::SocketAddr;

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::timeouts::{SlowServer, work};

/// A TCP front for a backend that dies like a process: aborting it closes
/// the port and cuts every open connection at once.
struct Killable {
    task: tokio::task::JoinHandle<()>,
}

impl Killable {
    async fn start(port: u16, backend: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("port free");
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(backend).await {
                        let _ = client.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Killable { task }
    }

    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A new slow backend (no sessions yet) behind a killable front on `port`.
async fn start_backend(port: u16) -> (RmcpBackend, Killable) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let backend = serve_rmcp_service(listener, SlowServer::new, None);
    (backend, Killable::start(port, address).await)
}

#[tokio::test]
async fn a_backend_killed_mid_call_fails_the_call_at_once_and_serves_again_after_a_restart() {
    let port = unused_port();
    let (first, front) = start_backend(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let app = spawn_app(&registry_yaml(&[("slow", &url, "timeout_ms: 60000")])).await;
    let session = app.create_session(json!({ "servers": ["slow"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&work(&mut mcp, 1, 1, false).await),
        "1 steps done"
    );

    let (call_url, call_session) = (mcp.url.clone(), mcp.session_id.clone());
    let stuck = tokio::spawn(async move {
        let mut client = RawMcp::new(call_url);
        client.session_id = call_session;
        // Ten minutes of work: only the kill can end it within the test.
        work(&mut client, 1, 600_000, false).await
    });
    let in_progress =
        || async { app.shown_session(&session).await["servers"][0]["calls_in_progress"].clone() };
    assert!(eventually(|| async { in_progress().await == 1 }).await);
    front.kill().await;
    drop(first);

    let failed = stuck.await.expect("the call ends");
    let message = failed["error"]["message"].as_str().expect("an error");
    assert!(message.starts_with("backend \"slow\" "), "{message}");
    assert_eq!(failed["error"]["data"], json!({ "server": "slow" }));
    assert_eq!(in_progress().await, 0);

    // The same port, a new process: the old backend session is unknown
    // there, so the gateway opens a new one without the client noticing.
    let (_second, _front) = start_backend(port).await;
    assert_eq!(
        first_text(&work(&mut mcp, 2, 1, false).await),
        "2 steps done"
    );
}
