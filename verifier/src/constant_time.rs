//! Byte comparison for secrets and nonces. ring's own helper is deprecated and
//! makes no side-channel promises to callers, so the verifier keeps its own.

/// Equality whose timing does not depend on where the first difference is.
/// Lengths are public (the verifier chose its nonce's length).
pub fn eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}
