//! A server on a free port and a bare HTTP/1.1 client: one request per connection, or raw bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use raftwood_kv::http::{HttpConfig, serve_on};
use raftwood_kv::service::KvService;
use raftwood_kv::service::memory::MemoryService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Bound on every wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A server on an OS-assigned port; stops when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) async fn start<S: KvService>(service: Arc<S>, config: HttpConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_on(listener, &config, service, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) async fn memory() -> Self {
        Self::start(
            Arc::new(MemoryService::new(1, "http://127.0.0.1:12379")),
            HttpConfig::default(),
        )
        .await
    }

    pub(crate) async fn send(&self, method: Method, path: &str, body: impl Into<Bytes>) -> Answer {
        self.send_with(method, path, &[], body).await
    }

    pub(crate) async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        tokio::time::timeout(WAIT, send(self.addr, method, path, headers, body.into()))
            .await
            .expect("request did not finish in time")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The `error` field of a JSON error body, checking the body's shape on the way.
    pub(crate) fn error(&self) -> String {
        assert_eq!(
            self.headers["content-type"], "application/json",
            "error bodies are JSON: {self:?}"
        );
        let json: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 1, "{json}");
        let message = object["error"].as_str().unwrap().to_owned();
        assert!(!message.is_empty());
        message
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn etag(&self) -> &str {
        self.headers["etag"].to_str().unwrap()
    }
}

/// One request on a fresh connection.
pub(crate) async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// Writes raw bytes and reads until the server closes or answers one response.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = vec![0; 64 * 1024];
    let n = tokio::time::timeout(WAIT, stream.read(&mut out))
        .await
        .expect("no answer")
        .unwrap_or(0);
    String::from_utf8_lossy(&out[..n]).into_owned()
}
