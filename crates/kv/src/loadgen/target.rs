//! One node to load: its URL taken apart once, and keep-alive HTTP/1.1 connections to it
//! (hyper's low-level client, so each load-tool client owns exactly one connection and the
//! numbers measure the server, not a pool).

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::BenchError;

/// A node's HTTP API address, checked.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given, for reports and errors.
    pub(crate) url: String,
    host: String,
    port: u16,
    authority: HeaderValue,
}

impl Target {
    /// Accepts `http://host[:port][/]` (port 80 when absent); anything else is a [`BenchError`].
    pub(crate) fn parse(url: &str) -> Result<Target, BenchError> {
        let bad = |reason: &str| BenchError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// URLs are supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("give the node's base URL, without a path"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let header = HeaderValue::from_str(authority.as_str()).map_err(|e| bad(&e.to_string()))?;
        Ok(Target {
            url: url.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: header,
        })
    }

    /// Opens a connection and starts its driver task; the connection closes when the returned
    /// sender is dropped.
    pub(crate) async fn connect(&self) -> io::Result<Connection> {
        let stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
        // Requests are small and answered one at a time: Nagle would only add latency.
        stream.set_nodelay(true)?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(error) = driver.await {
                tracing::debug!(%error, "bench connection ended");
            }
        });
        Ok(Connection {
            sender,
            authority: self.authority.clone(),
        })
    }
}

/// One keep-alive connection with at most one request in flight.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: HeaderValue,
}

impl Connection {
    /// Whether the connection can take another request; `false` once the server closed it.
    pub(crate) async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends one request for `path_and_query` and reads the whole answer (so the connection can
    /// be reused); returns the status.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<StatusCode, RequestError> {
        let uri: Uri = path_and_query
            .parse()
            .map_err(|e| RequestError::Build(format!("{e}")))?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        request.headers_mut().insert(HOST, self.authority.clone());
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(RequestError::Http)?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(RequestError::Http)?;
        Ok(status)
    }
}

/// Why a request got no status.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The request could not be formed (a key prefix that makes an invalid path).
    Build(String),
    /// The connection failed mid-request.
    Http(hyper::Error),
}
