#!/usr/bin/env python3
"""Verify attestd evidence with pycose and cbor2: an independent second opinion.

Usage: verify_evidence.py EVIDENCE_FILE NONCE_HEX [--audience A]
                          [--bundle CA_PEM --trust-domain TD]

EVIDENCE_FILE holds one attestd evidence: a tagged COSE_Sign1 (CBOR tag 18),
ES256, with the session key as a COSE_Key under protected header label -65537
and an EAT claims set as payload (docs/evidence.md, docs/evidence.cddl).

The signature is checked by pycose with the key taken from the protected
header; the claims are decoded by cbor2 and held to the documented schema:
eat_nonce must equal NONCE_HEX, every known claim must have its documented
type, the payload must be in RFC 8949 deterministic encoding, and the
audience must match --audience exactly (evidence bound to an audience is
refused when no --audience is given, as attestd's own verifier does).
iat freshness is not judged here. With --bundle, the key's trust is: the
protected header must carry x5chain (33, RFC 9360), whose leaf is a node SVID
that the `cryptography` package's own X.509 path validator accepts against the
CA bundle now, that certifies exactly the session key, and whose single URI
SAN is spiffe://TD/attestd/node/<EK hash> with that hash in the ueid claim.
Without --bundle the key is not judged.

Exit status: 0 when the evidence is accepted (the claims go to stdout as one
JSON object, byte strings as hex), 1 when it is rejected (the reason goes to
stderr), 2 on a usage error or an unreadable file.

Nothing here is shared with attestd's Rust code, so a bug there cannot pass
both verifiers.
"""

import argparse
import collections.abc
import datetime
import hmac
import io
import json
import pathlib
import re
import sys

import cbor2
from pycose.keys import CoseKey
from pycose.messages import Sign1Message
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

MAX_EVIDENCE_BYTES = 64 * 1024
NONCE_MIN, NONCE_MAX = 8, 64
COSE_SIGN1_TAG = 18
ALG_ES256 = -7
SESSION_KEY_LABEL = -65537
X5CHAIN_LABEL = 33
MAX_X5CHAIN_CERTS = 8
CONTENT_TYPE = "application/eat-ucs+cbor"
PROFILE = "tag:attestd.dev,2026:evidence/v1"
# Header parameters whose meaning this checker knows: alg, content type, session
# key, x5chain.
UNDERSTOOD_CRITICAL = {1, 3, SESSION_KEY_LABEL, X5CHAIN_LABEL}
# Parameters that steer verification may never come from the unsigned bucket.
PROTECTED_ONLY = {1, 2, SESSION_KEY_LABEL, X5CHAIN_LABEL}

CLAIM_NAMES = {10: "eat_nonce", 256: "ueid", 6: "iat", 265: "eat_profile"}
HOST_MEMBERS = ("hostname", "kernel", "os", "boot_id")


class Rejected(Exception):
    """The evidence is not acceptable; the message says why."""


def require(condition, reason):
    if not condition:
        raise Rejected(reason)


def decode_one(data, what):
    """Exactly one CBOR item, nothing after it (cbor2.loads ignores trailing bytes)."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.load(stream)
    except Exception as error:  # noqa: BLE001 - any decoder failure is a rejection
        raise Rejected(f"{what} is not well-formed CBOR: {error}") from error
    require(stream.tell() == len(data), f"{what} has {len(data) - stream.tell()} trailing bytes")
    return item


def head(major, argument):
    """A CBOR initial byte and argument in preferred (shortest) form."""
    if argument < 24:
        return bytes([(major << 5) | argument])
    for info, size in ((24, 1), (25, 2), (26, 4)):
        if argument < 1 << (8 * size):
            return bytes([(major << 5) | info]) + argument.to_bytes(size, "big")
    return bytes([(major << 5) | 27]) + argument.to_bytes(8, "big")


def deterministic(item):
    """RFC 8949 §4.2.1 core deterministic encoding: map keys sorted by the
    bytewise order of their encodings. (cbor2's canonical=True sorts by length
    first, the older RFC 7049 rule, which differs for mixed key types.)"""
    if isinstance(item, collections.abc.Mapping):
        pairs = sorted((deterministic(key), deterministic(value)) for key, value in item.items())
        return head(5, len(pairs)) + b"".join(key + value for key, value in pairs)
    if isinstance(item, (list, tuple)):
        return head(4, len(item)) + b"".join(deterministic(element) for element in item)
    if isinstance(item, cbor2.CBORTag):
        return head(6, item.tag) + deterministic(item.value)
    return cbor2.dumps(item, canonical=True)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_session_key(key):
    """COSE_Key for a P-256 public key, nothing else (as attestd's verifier)."""
    require(isinstance(key, collections.abc.Mapping), "session key (-65537) is not a COSE_Key map")
    require(key.get(1) == 2, "session key kty is not EC2 (2)")
    require(key.get(-1) == 1, "session key crv is not P-256 (1)")
    require(-4 not in key, "session key carries a private key (d)")
    for name, label in (("x", -2), ("y", -3)):
        value = key.get(label)
        require(isinstance(value, bytes) and len(value) == 32, f"session key {name} is not a 32-byte bstr")
    require(key.get(3, ALG_ES256) == ALG_ES256, "session key is restricted to another algorithm")
    unexpected = set(key) - {1, 2, 3, -1, -2, -3}
    require(not unexpected, f"session key has unexpected parameters {sorted(unexpected, key=str)}")
    return CoseKey.from_dict({1: 2, -1: 1, -2: key[-2], -3: key[-3]})


def check_headers(protected, unprotected):
    require(isinstance(protected, collections.abc.Mapping), "protected header is not a map")
    require(isinstance(unprotected, collections.abc.Mapping), "unprotected header is not a map")
    require(protected.get(1) == ALG_ES256, f"alg is {protected.get(1)!r}, not ES256 (-7)")
    if 2 in protected:
        critical = protected[2]
        require(isinstance(critical, list) and critical, "crit is not a non-empty array")
        for label in critical:
            require(label in UNDERSTOOD_CRITICAL, f"critical header parameter {label!r} is not understood")
            require(label in protected, f"critical header parameter {label!r} is absent")
    if 3 in protected:
        require(protected[3] == CONTENT_TYPE, f"content type is {protected[3]!r}")
    require(not (PROTECTED_ONLY & set(unprotected)), "alg, crit or the session key is unprotected")
    require(not (set(protected) & set(unprotected)), "a header parameter is both protected and unprotected")


def check_claims(claims, nonce, audience):
    require(isinstance(claims, collections.abc.Mapping), "claims set is not a map")
    for key in claims:
        require(is_int(key) or isinstance(key, str), f"claim key {key!r} is neither int nor tstr")

    eat_nonce = claims.get(10)
    require(isinstance(eat_nonce, bytes), "eat_nonce (10) is missing or not a bstr")
    require(NONCE_MIN <= len(eat_nonce) <= NONCE_MAX, f"eat_nonce is {len(eat_nonce)} bytes")
    require(hmac.compare_digest(eat_nonce, nonce), "eat_nonce does not match the expected nonce")

    if 256 in claims:
        ueid = claims[256]
        require(isinstance(ueid, bytes) and len(ueid) == 33 and ueid[0] == 0x01,
                "ueid (256) is not 33 bytes of type 0x01 (RAND)")
    require(is_int(claims.get(6)), "iat (6) is missing or not an int")
    require(claims.get(265) == PROFILE, f"eat_profile (265) is {claims.get(265)!r}")

    selectors = claims.get("attestd.selectors")
    require(isinstance(selectors, list) and all(isinstance(s, str) for s in selectors),
            "attestd.selectors is missing or not an array of tstr")
    encoded = [selector.encode() for selector in selectors]
    require(encoded == sorted(set(encoded)), "attestd.selectors is not sorted and unique")

    if "attestd.binary" in claims:
        binary = claims["attestd.binary"]
        require(isinstance(binary, collections.abc.Mapping), "attestd.binary is not a map")
        require(isinstance(binary.get("path"), str), "attestd.binary.path is missing or not a tstr")
        sha256 = binary.get("sha256")
        require(isinstance(sha256, bytes) and len(sha256) == 32,
                "attestd.binary.sha256 is not a 32-byte bstr")

    host = claims.get("attestd.host")
    require(isinstance(host, collections.abc.Mapping), "attestd.host is missing or not a map")
    for member in HOST_MEMBERS:
        require(isinstance(host.get(member), str), f"attestd.host.{member} is missing or not a tstr")

    found_audience = claims.get("attestd.audience")
    require(found_audience is None or isinstance(found_audience, str), "attestd.audience is not a tstr")
    require(found_audience == audience, f"audience is {found_audience!r}, expected {audience!r}")


def check_node_chain(protected, session_key, claims, bundle_pem, trust_domain):
    """The node SVID chain: returns the node's SPIFFE ID, or raises Rejected."""
    chain = protected.get(X5CHAIN_LABEL)
    require(chain is not None, "no x5chain (33): the evidence is not from an attested node")
    if isinstance(chain, bytes):
        ders = [chain]
    else:
        require(isinstance(chain, (list, tuple)) and 2 <= len(chain) <= MAX_X5CHAIN_CERTS
                and all(isinstance(der, bytes) for der in chain),
                "x5chain is neither a bstr nor an array of 2 to 8 bstr")
        ders = list(chain)
    try:
        certificates = [x509.load_der_x509_certificate(der) for der in ders]
        roots = x509.load_pem_x509_certificates(bundle_pem)
    except ValueError as error:
        raise Rejected(f"x5chain or bundle is not X.509: {error}") from error
    verifier = (PolicyBuilder()
                .store(Store(roots))
                .time(datetime.datetime.now(datetime.timezone.utc))
                .build_client_verifier())
    try:
        verifier.verify(certificates[0], certificates[1:])
    except Exception as error:  # noqa: BLE001 - any validation failure rejects
        raise Rejected(f"the node SVID chain does not verify against the bundle: {error}") from error

    leaf = certificates[0]
    public = leaf.public_key()
    require(isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1),
            "the node SVID's key is not P-256")
    numbers = public.public_numbers()
    require(numbers.x.to_bytes(32, "big") == session_key[-2]
            and numbers.y.to_bytes(32, "big") == session_key[-3],
            "the node SVID certifies another key than the session key")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as error:
        raise Rejected("the node SVID has no subjectAltName") from error
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    require(len(uris) == 1, f"the node SVID has {len(uris)} URI SANs, not one")
    match = re.fullmatch(rf"spiffe://{re.escape(trust_domain)}/attestd/node/([0-9a-f]{{64}})", uris[0])
    require(match is not None, f"the node SVID names {uris[0]!r}, not a node of {trust_domain}")
    require(claims.get(256) == b"\x01" + bytes.fromhex(match.group(1)),
            "the ueid claim is not the EK hash in the node SVID")
    return uris[0]


def verify(evidence, nonce, audience, bundle_pem=None, trust_domain=None):
    """Returns (claims, node SPIFFE ID or None) of acceptable evidence; raises
    Rejected otherwise."""
    require(len(evidence) <= MAX_EVIDENCE_BYTES,
            f"evidence is {len(evidence)} bytes, over the 64 KiB limit")
    outer = decode_one(evidence, "evidence")
    require(isinstance(outer, cbor2.CBORTag) and outer.tag == COSE_SIGN1_TAG,
            "not a tagged COSE_Sign1 (tag 18)")
    # cbor2 may hand back the contents of a tag as immutable tuple/frozendict.
    require(isinstance(outer.value, (list, tuple)) and len(outer.value) == 4,
            "COSE_Sign1 is not a 4-element array")
    protected_bytes, unprotected, payload, signature = outer.value
    require(isinstance(protected_bytes, bytes), "protected header is not a bstr")
    require(isinstance(payload, bytes), "payload is not an attached bstr")
    require(isinstance(signature, bytes) and len(signature) == 64, "signature is not a 64-byte bstr")
    protected = decode_one(protected_bytes, "protected header") if protected_bytes else {}
    check_headers(protected, unprotected)
    key = check_session_key(protected.get(SESSION_KEY_LABEL))

    # pycose rebuilds the Sig_structure from the protected bytes as received.
    try:
        message = Sign1Message.decode(evidence)
        message.key = key
        signature_ok = message.verify_signature()
    except Exception as error:  # noqa: BLE001 - pycose raises various types on bad input
        raise Rejected(f"pycose could not verify the signature: {error!r}") from error
    require(signature_ok, "the signature does not verify with the embedded session key")

    claims = decode_one(payload, "claims set")
    require(deterministic(claims) == payload, "claims set is not in deterministic CBOR encoding")
    check_claims(claims, nonce, audience)
    node = None
    if bundle_pem is not None:
        node = check_node_chain(protected, protected[SESSION_KEY_LABEL], claims, bundle_pem, trust_domain)
    return claims, node


def to_json(item):
    if isinstance(item, bytes):
        return item.hex()
    if isinstance(item, collections.abc.Mapping):
        return {CLAIM_NAMES.get(key, str(key)): to_json(value) for key, value in item.items()}
    if isinstance(item, (list, tuple)):
        return [to_json(element) for element in item]
    if isinstance(item, cbor2.CBORTag):
        return {"tag": item.tag, "value": to_json(item.value)}
    return item


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("evidence", type=pathlib.Path, help="file holding the COSE_Sign1 bytes")
    parser.add_argument("nonce_hex", help=f"the expected nonce, {NONCE_MIN} to {NONCE_MAX} bytes in hex")
    parser.add_argument("--audience", help="the relying party the evidence must be bound to")
    parser.add_argument("--bundle", type=pathlib.Path,
                        help="issuer CA bundle (PEM): require a node SVID chain that verifies to it")
    parser.add_argument("--trust-domain", help="the SPIFFE trust domain of the node SVID (with --bundle)")
    args = parser.parse_args(argv)
    if (args.bundle is None) != (args.trust_domain is None):
        parser.error("--bundle and --trust-domain go together")
    try:
        args.nonce = bytes.fromhex(args.nonce_hex)
    except ValueError:
        parser.error(f"NONCE_HEX {args.nonce_hex!r} is not hex")
    if not NONCE_MIN <= len(args.nonce) <= NONCE_MAX:
        parser.error(f"the nonce is {len(args.nonce)} bytes; {NONCE_MIN} to {NONCE_MAX} are allowed")
    return args


def main(argv):
    args = parse_args(argv)  # exits with EXIT_USAGE on a bad command line
    try:
        evidence = args.evidence.read_bytes()
        bundle_pem = args.bundle.read_bytes() if args.bundle else None
    except OSError as error:
        print(f"verify_evidence: cannot read input: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        claims, node = verify(evidence, args.nonce, args.audience, bundle_pem, args.trust_domain)
    except Rejected as reason:
        print(f"verify_evidence: rejected: {reason}", file=sys.stderr)
        return EXIT_REJECTED
    except Exception as error:  # noqa: BLE001 - fail closed on anything unforeseen
        print(f"verify_evidence: rejected: unexpected {error!r}", file=sys.stderr)
        return EXIT_REJECTED
    output = to_json(claims)
    if node is not None:
        output["node"] = node
    print(json.dumps(output, sort_keys=True))
    return EXIT_ACCEPTED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
