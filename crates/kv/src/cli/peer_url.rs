//! `--cluster`'s peer URLs: `http://host:port` each (the raft transport is plain TCP, so no
//! `https://`), normalised, with no duplicates; and the address to listen on for this node's own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::ConfigError;

/// Splits `--cluster` into ids 1..=n and normalised URLs, refusing duplicates.
pub(super) fn parse_cluster(cluster: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut peers = BTreeMap::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (id, raw) in (1u64..).zip(cluster.split(',')) {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::EmptyUrl {
                position: peers.len() + 1,
                cluster: cluster.to_string(),
            });
        }
        let (host, port) = parse_peer_url(raw)?;
        let url = format!("http://{host}:{port}");
        if let Some(&first) = seen.get(&url) {
            return Err(ConfigError::DuplicateUrl {
                url,
                first,
                second: id,
            });
        }
        seen.insert(url.clone(), id);
        peers.insert(id, url);
    }
    Ok(peers)
}

/// Parses `http://host:port` (optional trailing `/`) into host and port, the host a name, an
/// IPv4 address or a bracketed IPv6 address. Anything more (path, user, query) is refused
/// rather than silently ignored.
fn parse_peer_url(url: &str) -> Result<(&str, u16), ConfigError> {
    let bad = |reason| ConfigError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("the scheme must be http://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("no path, query or user allowed"));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| bad("missing :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number in 1..=65535"))?;
    if port == 0 {
        return Err(bad("the port must be a number in 1..=65535"));
    }
    let bracketed = host.starts_with('[') || host.ends_with(']');
    let valid_host = if bracketed {
        host.len() > 2
            && host.starts_with('[')
            && host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
    } else {
        !host.is_empty() && !host.contains(':')
    };
    if !valid_host {
        return Err(bad("bad host (IPv6 addresses go in brackets)"));
    }
    Ok((host, port))
}

/// The address to bind for this node's own URL: an IP literal as is, a name resolved now.
pub(super) fn listen_address(url: &str) -> Result<SocketAddr, ConfigError> {
    // The URL was normalised by parse_cluster, so it parses again.
    let (host, port) = parse_peer_url(url)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let unresolvable = |reason: String| ConfigError::Unresolvable {
        url: url.to_string(),
        reason,
    };
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| unresolvable(e.to_string()))?
        .next()
        .ok_or_else(|| unresolvable("the host resolves to no address".into()))
}
