//! Peer URLs, raftexample's `http://host:port`. The transport dials exactly the host and port a
//! URL names, resolving the host again at each dial, and never an address learned from a peer:
//! an operator who routes peer traffic through a proxy or a renamed host is obeyed.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use super::error::UrlError;

/// A parsed peer URL: the host (a name, an IPv4 address or a bracketed IPv6 address) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUrl {
    host: String,
    port: u16,
}

impl PeerUrl {
    /// Parses `http://host:port`, with an optional trailing `/`. No path, query, user or TLS:
    /// the transport speaks plain TCP, and anything more would be silently ignored otherwise.
    ///
    /// ```
    /// use raftwood_node::transport::PeerUrl;
    /// let url = PeerUrl::parse("http://127.0.0.1:12379").unwrap();
    /// assert_eq!(url.to_string(), "127.0.0.1:12379");
    /// assert!(PeerUrl::parse("127.0.0.1:12379").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<PeerUrl, UrlError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let shape = || UrlError::Shape(url.to_string());
        if authority.contains(['/', '?', '#', '@']) {
            return Err(shape());
        }
        let (host, port) = authority.rsplit_once(':').ok_or_else(shape)?;
        let port: u16 = port.parse().map_err(|_| shape())?;
        // An IPv6 address only in brackets (its colons would be ambiguous with the port's).
        let valid_host = if host.starts_with('[') || host.ends_with(']') {
            host.len() > 2 && host.starts_with('[') && host.ends_with(']')
        } else {
            !host.is_empty() && !host.contains(':')
        };
        if port == 0 || !valid_host {
            return Err(shape());
        }
        Ok(PeerUrl {
            host: host.to_string(),
            port,
        })
    }

    /// The addresses the host resolves to now, each with the URL's port.
    pub fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        Ok((host, self.port).to_socket_addrs()?.collect())
    }
}

impl fmt::Display for PeerUrl {
    /// `host:port`, as dialed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_raftexample_urls() {
        for (url, shown) in [
            ("http://127.0.0.1:12379", "127.0.0.1:12379"),
            ("http://localhost:22379/", "localhost:22379"),
            ("http://[::1]:9", "[::1]:9"),
        ] {
            assert_eq!(PeerUrl::parse(url).map(|u| u.to_string()), Ok(shown.into()));
        }
    }

    #[test]
    fn refuses_anything_else() {
        for url in [
            "127.0.0.1:1",
            "https://h:1",
            "http://h",
            "http://h:0",
            "http://h:70000",
            "http://:1",
            "http://h:1/path",
            "http://u@h:1",
            "http://::1:1",
            "http://[]:1",
        ] {
            assert!(PeerUrl::parse(url).is_err(), "{url} accepted");
        }
    }

    #[test]
    fn resolves_the_given_port() {
        let addrs = PeerUrl::parse("http://127.0.0.1:4321")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:4321".parse().unwrap()]);
    }
}
