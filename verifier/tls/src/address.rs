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
}
