//! Reading what a request names: keys and member ids from the path, the value or peer URL from
//! the body, `If-Match` and `?consistency=`. Everything here comes from the network, so every
//! failure is an [`ApiError`] (400 or 413), never a panic.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use percent_encoding::percent_decode_str;

use super::{ApiError, AppState};
use crate::service::{Consistency, KvService};

/// The request body, at most the configured limit; larger bodies are refused with a JSON `413`.
pub(super) struct Value(pub(super) Bytes);

impl<S: KvService> FromRequest<AppState<S>> for Value {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let limit = state.max_value_bytes;
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::too_large(limit));
        }
        // The DefaultBodyLimit layer caps the bytes read when no length was declared (chunked).
        match Bytes::from_request(req, state).await {
            Ok(body) => Ok(Value(body)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large(limit))
            }
            Err(rejection) => Err(ApiError::bad_request(format!(
                "could not read the request body: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Percent-decodes one key, which must be non-empty UTF-8.
fn decode_key(raw: &str) -> Result<String, ApiError> {
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| {
            ApiError::bad_request(format!(
                "key {raw:?} is not valid UTF-8 once percent-decoded; keys are UTF-8 strings"
            ))
        })?
        .into_owned();
    if key.is_empty() {
        return Err(ApiError::bad_request(
            "empty key: put the key in the path, e.g. /mykey or /v1/kv/mykey",
        ));
    }
    Ok(key)
}

/// The key of a raftexample route (`/{key}`), percent-decoded. `None` when the raw path is a
/// native one (`/v1/...`), which is then an unknown route, not a key.
pub(super) fn raftexample_key(uri: &Uri) -> Result<Option<String>, ApiError> {
    let raw = uri.path().strip_prefix('/').unwrap_or(uri.path());
    if raw.starts_with("v1/") {
        return Ok(None);
    }
    let key = decode_key(raw)?;
    // Spelled with escapes (`/v1%2Fa`, `/metric%73`) the path reached us as a key, but the
    // contract reserves these names for the native routes, where they are ordinary keys.
    if key.starts_with("v1/") || key == "metrics" {
        return Err(ApiError::bad_request(format!(
            "key {key:?} is reserved on the raftexample routes; use /v1/kv/{raw} for it"
        )));
    }
    Ok(Some(key))
}

/// The key of a native route (`/v1/kv/{key}`), percent-decoded.
pub(super) fn native_key(uri: &Uri) -> Result<String, ApiError> {
    let raw = uri.path().strip_prefix("/v1/kv/").unwrap_or_default();
    decode_key(raw)
}

/// The member id of `POST /{id}` or `DELETE /{id}`: a positive decimal integer (raft ids start
/// at 1; 0 means "none").
pub(super) fn member_id(uri: &Uri) -> Result<u64, ApiError> {
    let raw = uri.path().strip_prefix('/').unwrap_or(uri.path());
    let text = percent_decode_str(raw).decode_utf8_lossy();
    match text.parse::<u64>() {
        Ok(id) if id > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ApiError::bad_request(format!(
            "bad member id {text:?}: use the node's --id, a positive integer, as in POST /4"
        ))),
    }
}

/// The peer URL in the body of `POST /{id}`: `http://host:port`, as the new node's `--cluster`
/// entry (which takes `http://` only), without a path beyond `/` or a query. `https://` is
/// refused: the raft transport speaks plain TCP, so a member added under it could never be
/// dialled as written.
pub(super) fn peer_url(body: &[u8]) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "bad peer URL {:?}: {why}; send the new member's raft URL, e.g. http://127.0.0.1:42379",
            String::from_utf8_lossy(body)
        ))
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| bad("not UTF-8"))?
        .trim();
    let uri: Uri = text.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        _ => {
            return Err(bad(
                "the scheme must be http:// (the raft transport is plain TCP)",
            ));
        }
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.host().is_empty() {
        return Err(bad("no host"));
    }
    if authority.port_u16().is_none() {
        return Err(bad("no port"));
    }
    if authority.as_str().contains('@') {
        return Err(bad("user information is not allowed"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("a peer URL has no path or query"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// `If-Match: "<revision>"`: `None` without the header. Only one strong ETag is understood
/// (revisions are the only ETags this server hands out); anything else is a `400` rather than a
/// silent unconditional put.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "bad If-Match {:?}: send one revision as a quoted strong ETag, e.g. If-Match: \"5\", as the ETag header returned it",
            String::from_utf8_lossy(value.as_bytes())
        ))
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let digits = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse().map(Some).map_err(|_| bad())
}

/// `?consistency=linearizable|serializable` (default linearizable); other query parameters are
/// ignored.
pub(super) fn consistency(uri: &Uri) -> Result<Consistency, ApiError> {
    let mut consistency = Consistency::Linearizable;
    for pair in uri.query().unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "consistency" {
            continue;
        }
        consistency = match &*percent_decode_str(value).decode_utf8_lossy() {
            "linearizable" => Consistency::Linearizable,
            "serializable" => Consistency::Serializable,
            other => {
                return Err(ApiError::bad_request(format!(
                    "bad consistency {other:?}: use ?consistency=linearizable (the default) or ?consistency=serializable"
                )));
            }
        };
    }
    Ok(consistency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn raftexample_keys_are_percent_decoded_and_may_hold_slashes() {
        assert_eq!(
            raftexample_key(&uri("/a/b%2Fc%20d")).unwrap(),
            Some("a/b/c d".to_owned())
        );
        assert_eq!(raftexample_key(&uri("/v1/x")).unwrap(), None);
        assert_eq!(raftexample_key(&uri("/v1")).unwrap(), Some("v1".to_owned()));
    }

    #[test]
    fn reserved_and_bad_keys_are_400() {
        for path in ["/v1%2Fx", "/metric%73", "/%FF", "/"] {
            let err = raftexample_key(&uri(path)).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{path}");
        }
        assert_eq!(
            native_key(&uri("/v1/kv/")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(native_key(&uri("/v1/kv/metrics")).unwrap(), "metrics");
    }

    #[test]
    fn member_ids_are_positive_decimal_integers() {
        assert_eq!(member_id(&uri("/4")).unwrap(), 4);
        for path in ["/0", "/-1", "/+4", "/abc", "/4/5", "/18446744073709551616"] {
            assert!(member_id(&uri(path)).is_err(), "{path}");
        }
    }

    #[test]
    fn peer_urls_need_scheme_host_and_port() {
        assert_eq!(
            peer_url(b"http://127.0.0.1:42379\n").unwrap(),
            "http://127.0.0.1:42379"
        );
        assert_eq!(peer_url(b"http://node4:1/").unwrap(), "http://node4:1");
        for body in [
            // --cluster refuses it too: the transport speaks plain TCP.
            &b"https://node4:1"[..],
            b"127.0.0.1:42379",
            b"ftp://h:1",
            b"http://h",
            b"http://h:1/path",
            b"http://u@h:1",
            b"",
            b"\xff",
        ] {
            assert!(peer_url(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn if_match_takes_one_strong_etag() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"17\""));
        assert_eq!(if_match(&headers).unwrap(), Some(17));
        for bad in ["17", "W/\"17\"", "*", "\"1\", \"2\"", "\"\"", "\"-1\""] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(bad));
            assert!(if_match(&headers).is_err(), "{bad}");
        }
    }

    #[test]
    fn consistency_defaults_to_linearizable() {
        assert_eq!(
            consistency(&uri("/v1/kv/a")).unwrap(),
            Consistency::Linearizable
        );
        assert_eq!(
            consistency(&uri("/v1/kv/a?x=1&consistency=serializable")).unwrap(),
            Consistency::Serializable
        );
        assert!(consistency(&uri("/v1/kv/a?consistency=stale")).is_err());
    }
}
