//! Addresses as operators type them (`host:port` or a URL), for clients of both binaries.

/// `host:port` becomes `http://host:port`, or `https://` with TLS; explicit schemes are kept.
pub fn endpoint_uri(address: &str, tls: bool) -> String {
    if address.contains("://") {
        address.to_owned()
    } else if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    }
}

/// The host part of `scheme://host:port/...` (IPv6 brackets removed): the name the server's
/// certificate must carry.
pub fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    }
}

/// Whether two attester addresses name the same endpoint: the scheme, a trailing `/` and the
/// case of the host do not count (`node:7443`, `https://NODE:7443/`).
pub fn same_endpoint(a: &str, b: &str) -> bool {
    fn authority(address: &str) -> String {
        let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
        rest.trim_end_matches('/').to_ascii_lowercase()
    }
    authority(a) == authority(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_uris() {
        assert_eq!(host_of("https://localhost:7444"), "localhost");
        assert_eq!(host_of("https://127.0.0.1:1/x"), "127.0.0.1");
        assert_eq!(host_of("https://[::1]:7444"), "::1");
        assert_eq!(host_of("node-7:7443"), "node-7");
        assert_eq!(endpoint_uri("a:1", true), "https://a:1");
        assert_eq!(endpoint_uri("a:1", false), "http://a:1");
        assert_eq!(endpoint_uri("http://a:1", true), "http://a:1");
    }

    #[test]
    fn endpoints_compare_without_scheme_case_or_trailing_slash() {
        assert!(same_endpoint("node-7:7443", "https://NODE-7:7443/"));
        assert!(same_endpoint("http://[::1]:1", "[::1]:1"));
        assert!(!same_endpoint("node-7:7443", "node-8:7443"));
        assert!(!same_endpoint("node-7:7443", "node-7:7444"));
    }
}
