#!/usr/bin/env python3
"""Fetch SPIFFE identities from a Workload API socket with py-spiffe.

A client that shares no code with attestd: py-spiffe (PyPI `spiffe`) speaks
the standard SPIFFE Workload API over grpcio, unchanged (grpcio sends the
socket path as :authority; the daemon copes, see daemon/src/api/authority.rs).

Usage:
  spiffe_client.py SOCKET x509 OUT_DIR
      Fetches the X.509-SVID and the X.509 bundles. Writes OUT_DIR/svid.pem
      (the chain, leaf first), OUT_DIR/key.pem (mode 0600) and
      OUT_DIR/bundle.pem. Prints {"spiffe_id": ...}.
  spiffe_client.py SOCKET jwt AUDIENCE
      Fetches a JWT-SVID for AUDIENCE and the JWT bundles, and verifies the
      token with PyJWT using the key py-spiffe parsed from the bundle for the
      token's kid. Prints {"spiffe_id": ..., "sub": ..., "aud": ...}.

Exit status: 0 on success, 1 when the Workload API refuses or a check fails
(the reason goes to stderr), 2 on a usage error.
"""

import json
import os
import pathlib
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from spiffe import TrustDomain, WorkloadApiClient

TIMEOUT_S = 30


def x509(client, out_dir):
    svid = client.fetch_x509_svid()
    trust_domain = TrustDomain(str(svid.spiffe_id.trust_domain))
    bundle = client.fetch_x509_bundles().get_bundle_for_trust_domain(trust_domain)
    if bundle is None:
        raise RuntimeError(f"no X.509 bundle for {trust_domain}")
    out = pathlib.Path(out_dir)
    pem = serialization.Encoding.PEM
    (out / "svid.pem").write_bytes(b"".join(cert.public_bytes(pem) for cert in svid.cert_chain))
    key = svid.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    fd = os.open(out / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key)
    (out / "bundle.pem").write_bytes(b"".join(cert.public_bytes(pem) for cert in bundle.x509_authorities))
    return {"spiffe_id": str(svid.spiffe_id)}


def jwt_svid(client, audience):
    svid = client.fetch_jwt_svid(audience={audience})
    trust_domain = TrustDomain(str(svid.spiffe_id.trust_domain))
    bundle = client.fetch_jwt_bundles().get_bundle_for_trust_domain(trust_domain)
    if bundle is None:
        raise RuntimeError(f"no JWT bundle for {trust_domain}")
    kid = jwt.get_unverified_header(svid.token).get("kid")
    key = bundle.get_jwt_authority(kid)
    if key is None:
        raise RuntimeError(f"the JWT bundle has no key {kid!r}")
    claims = jwt.decode(svid.token, key=key, algorithms=["ES256"], audience=audience,
                        options={"require": ["exp", "sub", "aud"]})
    if claims["sub"] != str(svid.spiffe_id):
        raise RuntimeError(f"sub {claims['sub']!r} is not the SVID's {svid.spiffe_id}")
    return {"spiffe_id": str(svid.spiffe_id), "sub": claims["sub"], "aud": claims["aud"]}


def main(argv):
    if len(argv) != 3 or argv[1] not in ("x509", "jwt"):
        print(__doc__, file=sys.stderr)
        return 2
    socket, command, argument = argv
    try:
        with WorkloadApiClient(socket_path=f"unix:{os.path.abspath(socket)}",
                               default_timeout=TIMEOUT_S) as client:
            result = x509(client, argument) if command == "x509" else jwt_svid(client, argument)
    except Exception as error:  # noqa: BLE001 - report any refusal with its type
        print(f"spiffe_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
