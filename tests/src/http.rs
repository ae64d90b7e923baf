//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`, one connection per request.
//!
//! Why not a client crate: the tests need a handful of requests with exact control over the
//! bytes (empty keys, odd methods, garbage), every wait bounded, and no async runtime in the test
//! process. `Connection: close` keeps the reading simple: the body is `Content-Length` bytes,
//! chunked, or everything up to the end of the stream.
//!
//! Non-goals: keep-alive, TLS, redirects, `Expect: 100-continue`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest body or header block this client accepts: the tests never need more, and a
/// broken server must not make the test allocate without bound.
const MAX_BODY: usize = 64 << 20;
const MAX_LINE: usize = 64 << 10;
/// Bodies larger than this are sent with `Expect: 100-continue`.
const EXPECT_ABOVE: usize = 64 << 10;
/// How long to wait for `100 Continue` before sending the body anyway.
const EXPECT_WAIT: Duration = Duration::from_secs(1);

/// A response: status, headers in the order received, body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `error` message of a contract error body (`{"error": "..."}`), if the body is one.
    pub fn error_message(&self) -> Option<String> {
        self.json()?
            .get("error")?
            .as_str()
            .map(str::to_owned)
            .filter(|m| !m.is_empty())
    }
}

/// One request: `method path` to `addr`, extra `headers`, `body` (sent with `Content-Length`
/// when non-empty or when the method usually has a body), all within `timeout`.
///
/// A server may answer and close before it has read the whole body (a 413 does): a failed write
/// is therefore followed by an attempt to read the answer, and only when there is none is the
/// write's error returned.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    // A large body is announced with `Expect: 100-continue`: a server that refuses it (413)
    // answers before the body is sent, instead of closing on unread bytes, which resets the
    // connection and can destroy its own answer before we read it.
    let expect = body.len() > EXPECT_ABOVE;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if expect {
        head.push_str("Expect: 100-continue\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    write_until(&stream, head.as_bytes(), deadline)?;
    let mut reader = BufReader::new(&stream);
    if expect {
        // Servers that ignore `Expect` stay silent: then the body goes after a short wait.
        let wait = deadline.min(Instant::now() + EXPECT_WAIT);
        match read_head(&mut reader, &stream, wait) {
            Ok(r) if r.status == 100 => {}
            Ok(mut response) => {
                read_body(&mut reader, &stream, method, &mut response, deadline)?;
                return Ok(response);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let written = write_until(&stream, body, deadline);
    match (
        written,
        read_response(&mut reader, &stream, method, deadline),
    ) {
        (_, Ok(response)) => Ok(response),
        (Err(write_error), Err(_)) => Err(write_error),
        (Ok(()), Err(read_error)) => Err(read_error),
    }
}

/// Writes raw bytes to `addr` (garbage, half requests) and returns whatever comes back before
/// the server closes or `timeout` passes. Errors after connecting are not errors here: a server
/// is free to reset a connection that sends garbage.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    set_timeouts(&stream, deadline)?;
    if write_until(&stream, bytes, deadline).is_err() {
        return Ok(Vec::new());
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline && answer.len() < MAX_BODY {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(answer)
}

/// Percent-encodes a key for a path: everything but unreserved characters and `/`.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request deadline passed",
        ))
    } else {
        Ok(left)
    }
}

fn set_timeouts(stream: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))
}

fn write_until(mut stream: &TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        set_timeouts(stream, deadline)?;
        let n = stream.write(&bytes[..bytes.len().min(64 << 10)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Reads a final response (skipping any interim 1xx one) and its body.
fn read_response(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    method: &str,
    deadline: Instant,
) -> io::Result<Response> {
    let mut response = read_head(reader, stream, deadline)?;
    while (100..200).contains(&response.status) {
        response = read_head(reader, stream, deadline)?;
    }
    read_body(reader, stream, method, &mut response, deadline)?;
    Ok(response)
}

/// Reads a status line and headers.
fn read_head(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    deadline: Instant,
) -> io::Result<Response> {
    let status_line = read_line(reader, stream, deadline)?;
    let status = parse_status(&status_line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, stream, deadline)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        if headers.len() > 1000 {
            return Err(invalid("more than 1000 headers".into()));
        }
    }
    Ok(Response {
        status,
        headers,
        body: Vec::new(),
    })
}

/// Reads the body `response`'s headers announce.
fn read_body(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    method: &str,
    response: &mut Response,
    deadline: Instant,
) -> io::Result<()> {
    let status = response.status;
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(());
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = response.header("content-length").map(str::to_owned);
    response.body = if chunked {
        read_chunked(reader, stream, deadline)?
    } else if let Some(length) = length {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
        if length > MAX_BODY {
            return Err(invalid(format!(
                "Content-Length {length} over the test limit"
            )));
        }
        let mut body = vec![0; length];
        read_exact(reader, stream, &mut body, deadline)?;
        body
    } else {
        let mut body = Vec::new();
        set_timeouts(stream, deadline)?;
        reader
            .by_ref()
            .take(MAX_BODY as u64)
            .read_to_end(&mut body)?;
        body
    };
    Ok(())
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("not an HTTP/1 status line: {line:?}")));
    }
    code.parse()
        .map_err(|_| invalid(format!("bad status code in {line:?}")))
}

fn read_line(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    deadline: Instant,
) -> io::Result<String> {
    let mut line = Vec::new();
    set_timeouts(stream, deadline)?;
    reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed (or line too long) before the end of a header line",
        ));
    }
    let text = String::from_utf8(line).map_err(|_| invalid("header line is not UTF-8".into()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_exact(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    set_timeouts(stream, deadline)?;
    reader.read_exact(buf)
}

fn read_chunked(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader, stream, deadline)?;
        let size = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(reader, stream, deadline)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body over the test limit".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        read_exact(reader, stream, &mut body[start..], deadline)?;
        if !read_line(reader, stream, deadline)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF".into()));
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Serves one connection: reads the request head and `body_len` body bytes (or less, if
    /// `answer_early`), answers `reply`, closes. Returns what it read.
    fn serve_once(
        reply: &'static [u8],
        read_body: usize,
    ) -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut seen = Vec::new();
            loop {
                let mut line = Vec::new();
                reader.read_until(b'\n', &mut line).unwrap();
                seen.extend_from_slice(&line);
                if line == b"\r\n" {
                    break;
                }
            }
            let mut body = vec![0; read_body];
            reader.read_exact(&mut body).unwrap();
            seen.extend_from_slice(&body);
            (&stream).write_all(reply).unwrap();
            seen
        });
        (addr, server)
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn sends_the_request_and_reads_a_content_length_body() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nETag: \"7\"\r\n\r\nfoo",
            3,
        );
        let response =
            request(addr, "PUT", "/my-key", &[("If-Match", "\"6\"")], b"bar", T).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"foo");
        assert_eq!(response.header("etag"), Some("\"7\""));
        let seen = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(seen.starts_with("PUT /my-key HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("Content-Length: 3\r\n"), "{seen}");
        assert!(seen.contains("If-Match: \"6\"\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\nbar"), "{seen}");
    }

    #[test]
    fn reads_chunked_bodies_and_error_messages() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"err\r\n10\r\nor\": \"no route\"}\r\n0\r\n\r\n",
            0,
        );
        let response = request(addr, "GET", "/v1/nope", &[], b"", T).unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.error_message().as_deref(), Some("no route"));
        let seen = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            !seen.contains("Content-Length"),
            "a GET without body: {seen}"
        );
    }

    #[test]
    fn an_answer_before_the_body_is_read_is_still_returned() {
        // The server answers 413 after the head and closes without reading 4 MiB.
        let (addr, server) = serve_once(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 17\r\n\r\n{\"error\": \"big\"}\n",
            0,
        );
        let response = request(addr, "PUT", "/k", &[], &vec![7u8; 4 << 20], T).unwrap();
        assert_eq!(response.status, 413);
        assert_eq!(response.error_message().as_deref(), Some("big"));
        server.join().unwrap();
    }

    /// Reads the head; answers `100 Continue` if `interim`; reads `body_len` bytes; answers 204.
    fn serve_continue(interim: bool, body_len: usize) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                reader.read_until(b'\n', &mut head).unwrap();
            }
            if interim {
                (&stream)
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .unwrap();
            }
            let mut body = vec![0; body_len];
            reader.read_exact(&mut body).unwrap();
            assert!(body.iter().all(|b| *b == 9));
            (&stream)
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, server)
    }

    #[test]
    fn a_large_body_waits_for_100_continue_or_goes_after_a_short_wait() {
        for interim in [true, false] {
            let (addr, server) = serve_continue(interim, 200 << 10);
            let start = Instant::now();
            let response = request(addr, "PUT", "/k", &[], &vec![9u8; 200 << 10], T).unwrap();
            assert_eq!(response.status, 204);
            let head = server.join().unwrap();
            assert!(head.contains("Expect: 100-continue\r\n"), "{head}");
            if interim {
                assert!(
                    start.elapsed() < EXPECT_WAIT,
                    "waited although told to continue"
                );
            } else {
                assert!(
                    start.elapsed() >= EXPECT_WAIT,
                    "sent before the wait was over"
                );
            }
        }
    }

    #[test]
    fn a_silent_server_times_out_within_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        let result = request(addr, "GET", "/", &[], b"", Duration::from_millis(300));
        assert!(result.is_err());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        drop(listener);
    }

    #[test]
    fn keys_are_percent_encoded_but_slashes_kept() {
        assert_eq!(encode_key("a/b c%é"), "a/b%20c%25%C3%A9");
    }
}
