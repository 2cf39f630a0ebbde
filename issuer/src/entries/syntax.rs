//! What a well-formed SPIFFE ID, selector, DNS name and hint look like in a
//! registration entry. Each check returns a sentence saying what is wrong.

/// SPIFFE-ID §2.3: URIs longer than this are refused by many implementations.
pub const MAX_SPIFFE_ID_LEN: usize = 2048;
/// Longest selector in an entry (a `unix:path` or cgroup path can be long).
pub const MAX_SELECTOR_LEN: usize = 4096;
/// Longest hint.
pub const MAX_HINT_LEN: usize = 256;
/// Paths the issuer names its own identities under (node SVIDs); no entry
/// may mint them, or a workload could pass for a node.
pub const RESERVED_PATH: &str = "/attestd";

/// Checks `id` is a SPIFFE ID (SPIFFE-ID §2) with a non-empty path, and
/// returns its trust domain.
pub fn spiffe_id_trust_domain(id: &str) -> Result<&str, String> {
    if id.len() > MAX_SPIFFE_ID_LEN {
        return Err(format!(
            "is {} bytes; a SPIFFE ID has at most {MAX_SPIFFE_ID_LEN}",
            id.len()
        ));
    }
    let rest = id
        .strip_prefix("spiffe://")
        .ok_or_else(|| format!("{id:?} does not start with \"spiffe://\""))?;
    let (trust_domain, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if !crate::config::is_trust_domain(trust_domain) {
        return Err(format!(
            "{id:?}: trust domain {trust_domain:?} may hold only lowercase letters, digits, '.', '-' and '_' (no port, no user)"
        ));
    }
    if path.is_empty() {
        return Err(format!(
            "{id:?} names the trust domain itself; a workload's ID has a path"
        ));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(format!(
                "{id:?} has an empty path segment (\"//\" or a trailing '/')"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!("{id:?} has a {segment:?} path segment"));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._".contains(*c)))
        {
            return Err(format!(
                "{id:?}: path segments may hold only letters, digits, '.', '-' and '_', not {bad:?}"
            ));
        }
    }
    Ok(trust_domain)
}

/// True if `id`'s path is [`RESERVED_PATH`] or below it.
pub fn is_reserved(id: &str, trust_domain: &str) -> bool {
    let path = id
        .strip_prefix("spiffe://")
        .and_then(|rest| rest.strip_prefix(trust_domain))
        .unwrap_or("");
    path == RESERVED_PATH
        || path
            .strip_prefix(RESERVED_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A workload selector, `kind:key:value` as the daemon writes them
/// (docs/selectors.md): lowercase words, a non-empty value, no control
/// characters (the daemon escapes them). `tpm:` selectors describe the node
/// and belong in `node_selectors`.
pub fn workload_selector(selector: &str) -> Result<(), String> {
    let (kind, _key, value) = split_selector(selector)?;
    if kind == "tpm" {
        return Err(format!(
            "{selector:?} describes the node: put it in node_selectors"
        ));
    }
    if value.is_empty() {
        return Err(format!("{selector:?} has an empty value"));
    }
    Ok(())
}

/// A node selector: one of the `tpm:` selectors node attestation writes into
/// node SVIDs (docs/selectors.md), exactly as written there.
pub fn node_selector(selector: &str) -> Result<(), String> {
    let (kind, key, value) = split_selector(selector)?;
    let wrong = |what: &str| Err(format!("{selector:?}: {what}"));
    if kind != "tpm" {
        return wrong(
            "node selectors are tpm:ek, tpm:pcr, tpm:secure_boot or tpm:kernel_digest; \
             workload selectors go in selectors",
        );
    }
    match key {
        "ek" | "kernel_digest" if is_lower_hex(value, 32) => Ok(()),
        "ek" | "kernel_digest" => wrong("the value is a SHA-256: 64 lowercase hex digits"),
        "secure_boot" if value == "true" || value == "false" => Ok(()),
        "secure_boot" => wrong("the value is true or false"),
        "pcr" => pcr_selector(value).or_else(|reason| wrong(&reason)),
        _ => wrong(
            "unknown tpm selector; known: tpm:ek, tpm:pcr, tpm:secure_boot, tpm:kernel_digest",
        ),
    }
}

/// `<bank>:<index>:<hex>`, as node attestation writes it.
fn pcr_selector(value: &str) -> Result<(), String> {
    let mut parts = value.splitn(3, ':');
    let (Some(bank), Some(index), Some(digest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("tpm:pcr is tpm:pcr:<bank>:<index>:<hex>".into());
    };
    let digest_len = match bank {
        "sha1" => 20,
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => {
            return Err(format!(
                "bank {bank:?} is not sha1, sha256, sha384 or sha512"
            ))
        }
    };
    let index_ok = matches!(index.parse::<u8>(), Ok(i) if i < 24 && i.to_string() == index);
    if !index_ok {
        return Err(format!(
            "PCR index {index:?} is not 0 to 23 in decimal without leading zeros"
        ));
    }
    if !is_lower_hex(digest, digest_len) {
        return Err(format!(
            "a {bank} PCR value is {} lowercase hex digits",
            digest_len * 2
        ));
    }
    Ok(())
}

fn split_selector(selector: &str) -> Result<(&str, &str, &str), String> {
    if selector.len() > MAX_SELECTOR_LEN {
        return Err(format!(
            "a selector of {} bytes; at most {MAX_SELECTOR_LEN}",
            selector.len()
        ));
    }
    if let Some(control) = selector.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{selector:?} holds the control character {control:?}; selectors are escaped (docs/selectors.md)"
        ));
    }
    let mut parts = selector.splitn(3, ':');
    let (Some(kind), Some(key), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{selector:?} is not kind:key:value"));
    };
    let word = |word: &str| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if !word(kind) || !word(key) {
        return Err(format!(
            "{selector:?}: kind and key are lowercase words (a-z, 0-9, '-', '_')"
        ));
    }
    Ok((kind, key, value))
}

fn is_lower_hex(text: &str, bytes: usize) -> bool {
    text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A DNS name for a certificate's subjectAltName: a syntactically valid,
/// non-wildcard host name, not an IP address, without a trailing dot.
pub fn dns_name(name: &str) -> Result<(), String> {
    if name.ends_with('.') {
        return Err(format!("{name:?} ends with '.'"));
    }
    rustls_pki_types::DnsName::try_from(name)
        .map(|_| ())
        .map_err(|_| format!("{name:?} is not a DNS name (letters, digits, '-', '_' in dot-separated labels of at most 63, no wildcard, not an IP address)"))
}

/// A hint: short, printable.
pub fn hint(hint: &str) -> Result<(), String> {
    if hint.len() > MAX_HINT_LEN {
        return Err(format!("is {} bytes; at most {MAX_HINT_LEN}", hint.len()));
    }
    if hint.chars().any(char::is_control) {
        return Err(format!("{hint:?} holds a control character"));
    }
    Ok(())
}
