//! The OIDC issuer URL (OpenID Connect Discovery 1.0 §2, §4): what relying
//! parties are configured with, the `iss` of every JWT-SVID, and the prefix of
//! the discovery paths. Relying parties compare it byte for byte, so only one
//! spelling of each URL is accepted: lowercase host, no default port, no
//! trailing slash.

use std::net::{Ipv4Addr, Ipv6Addr};

/// AWS IAM takes provider URLs of at most 255 characters.
pub const MAX_ISSUER_URL_LEN: usize = 255;

/// A checked issuer URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerUrl {
    url: String,
    /// The host, for the TLS certificate: a DNS name or an IP address
    /// (without brackets).
    host: String,
    /// "" or "/a/b": where the discovery paths start.
    path: String,
}

impl IssuerUrl {
    /// Checks `url`; the error says what to change.
    pub fn parse(url: &str) -> Result<IssuerUrl, String> {
        if url.len() > MAX_ISSUER_URL_LEN {
            return Err(format!("{} bytes; at most {MAX_ISSUER_URL_LEN}", url.len()));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{url:?} holds a space, control or non-ASCII character (write an internationalised name in its xn-- form)"
            ));
        }
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url:?} must start with https://"))?;
        if url.contains('?') || url.contains('#') {
            return Err(format!("{url:?} must have no query or fragment"));
        }
        if url.ends_with('/') {
            return Err(format!(
                "{url:?} must not end with '/': relying parties compare the issuer byte for byte and append /.well-known/openid-configuration to it"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!("{url:?} must have no user name or password"));
        }
        let (host, port) = split_port(authority).map_err(|reason| format!("{url:?}: {reason}"))?;
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(443) => {
                    return Err(format!(
                    "{url:?}: leave out the default port :443 (the issuer must be spelled one way)"
                ))
                }
                Ok(n) if n != 0 && !port.starts_with('0') => {}
                _ => return Err(format!("{url:?}: {port:?} is not a port")),
            }
        }
        let host = check_host(host).map_err(|reason| format!("{url:?}: {reason}"))?;
        for segment in path.split('/').skip(1) {
            let plain = segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if segment.is_empty() || segment == "." || segment == ".." || !plain {
                return Err(format!(
                    "{url:?}: the path's segments must be letters, digits, '-', '.', '_' or '~', and not empty, '.' or '..'"
                ));
            }
        }
        Ok(IssuerUrl {
            url: url.to_owned(),
            host,
            path: path.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The name the TLS certificate must carry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path the discovery document is served at.
    pub fn discovery_path(&self) -> String {
        format!("{}{DISCOVERY_SUFFIX}", self.path)
    }

    /// The path the JWK Set is served at.
    pub fn jwks_path(&self) -> String {
        format!("{}{JWKS_SUFFIX}", self.path)
    }

    /// `jwks_uri` of the discovery document.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_SUFFIX}", self.url)
    }
}

pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";
pub const JWKS_SUFFIX: &str = "/keys";

/// "host", "host:port", "[v6]" or "[v6]:port".
fn split_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        return match after {
            "" => Ok((v6, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((v6, Some(port))),
                None => Err("junk after the IPv6 address".into()),
            },
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

/// A lowercase DNS name, an IPv4 address, or an IPv6 address (from brackets).
fn check_host(host: &str) -> Result<String, String> {
    if host.contains(':') {
        let address: Ipv6Addr = host
            .parse()
            .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
        if address.to_string() != host {
            return Err(format!("write the IPv6 address as {address}"));
        }
        return Ok(host.to_owned());
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(host.to_owned());
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "write the host in lowercase ({})",
            host.to_ascii_lowercase()
        ));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("{host:?} is not a DNS name"));
    }
    // All digits and dots, yet not an IPv4 address: "1.2.3" and the like.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "{host:?} is neither an IPv4 address nor a DNS name"
        ));
    }
    Ok(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_spelling_of_https_urls_with_an_optional_path_and_port() {
        let url = IssuerUrl::parse("https://oidc.example.org").unwrap();
        assert_eq!(url.host(), "oidc.example.org");
        assert_eq!(url.discovery_path(), "/.well-known/openid-configuration");
        assert_eq!(url.jwks_path(), "/keys");
        assert_eq!(url.jwks_uri(), "https://oidc.example.org/keys");

        let url = IssuerUrl::parse("https://example.org/attestd/prod").unwrap();
        assert_eq!(
            url.discovery_path(),
            "/attestd/prod/.well-known/openid-configuration"
        );
        assert_eq!(url.jwks_uri(), "https://example.org/attestd/prod/keys");

        let url = IssuerUrl::parse("https://localhost:8444").unwrap();
        assert_eq!(url.host(), "localhost");
        assert_eq!(
            IssuerUrl::parse("https://127.0.0.1:9").unwrap().host(),
            "127.0.0.1"
        );
        assert_eq!(IssuerUrl::parse("https://[::1]:9").unwrap().host(), "::1");
    }

    #[test]
    fn refuses_urls_relying_parties_would_spell_differently_or_cannot_use() {
        for bad in [
            "http://oidc.example.org",
            "HTTPS://oidc.example.org",
            "https://oidc.example.org/",
            "https://oidc.example.org/a/",
            "https://oidc.example.org?x=1",
            "https://oidc.example.org/#f",
            "https://Oidc.example.org",
            "https://oidc.example.org:443",
            "https://oidc.example.org:0",
            "https://oidc.example.org:08444",
            "https://oidc.example.org:99999",
            "https://oidc.example.org:",
            "https://user@oidc.example.org",
            "https://",
            "https://-a.example.org",
            "https://a..example.org",
            "https://1.2.3",
            "https://[::1",
            "https://[0:0::1]",
            "https://oidc.example.org//a",
            "https://oidc.example.org/a/../b",
            "https://oidc.example.org/%2e%2e",
            "https://oidc.example.org/a b",
            "https://bücher.example",
        ] {
            assert!(IssuerUrl::parse(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("https://example.org/{}", "a".repeat(MAX_ISSUER_URL_LEN));
        assert!(IssuerUrl::parse(&long).is_err());
    }

    #[test]
    fn a_trailing_slash_is_refused_with_the_reason() {
        let error = IssuerUrl::parse("https://oidc.example.org/").unwrap_err();
        assert!(error.contains("must not end with '/'"), "{error}");
    }
}
