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

/// A TCP front that passes a backend's traffic both ways, but hangs up on
/// any connection that carries a `tools/call`, before its answer: counted.
async fn front_cutting_tool_calls(
    backend: SocketAddr,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let cut = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(backend).await else {
                continue;
            };
            let cut = counted.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_upstream, mut to_upstream) = upstream.into_split();
                let answers = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_upstream, &mut to_client).await;
                });
                let mut chunk = vec![0; 64 * 1024];
                // The end of the last read, for a marker cut across reads.
                let mut seen = Vec::new();
                while let Ok(read) = from_client.read(&mut chunk).await {
                    if read == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..read]);
                    if seen.windows(11).any(|w| w == b"\"tools/call") {
                        cut.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if to_upstream.write_all(&chunk[..read]).await.is_err() {
                        break;
                    }
                    seen.drain(..seen.len().saturating_sub(10));
                }
                // Both halves of the client's connection go: it is cut.
                answers.abort();
            });
        }
    });
    (url, cut)
}

#[tokio::test]
async fn a_backend_that_hangs_up_on_a_call_fails_it_once_with_the_backend_named() {
    let backend = spawn_rmcp_backend("cut", None).await;
    let address = backend
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .parse()
        .expect("an address");
    let (url, cut) = front_cutting_tool_calls(address).await;
    let app = spawn_app(&registry_yaml(&[("cut", &url, "")])).await;
    let session = app.create_session(json!({ "servers": ["cut"] })).await;
    let mut mcp = app.mcp(&session).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(names, ["cut__add", "cut__echo"]);

    let answer = mcp
        .call_tool("cut__echo", json!({ "message": "hello" }))
        .await;
    assert_eq!(
        answer["error"],
        json!({
            "code": -32603,
            "message": "backend \"cut\" connection broke before the answer was complete",
            "data": { "server": "cut" }
        })
    );
    assert_eq!(
        cut.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a call that may have run is not sent again"
    );
}
