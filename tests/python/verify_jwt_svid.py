#!/usr/bin/env python3
"""Verify a JWT-SVID with PyJWT against a JWT bundle: a second opinion that
shares no code with attestd.

Usage: verify_jwt_svid.py TOKEN_FILE JWKS_FILE AUDIENCE TRUST_DOMAIN

The key is chosen by the token's `kid` from the JWK Set (RFC 7517) in
JWKS_FILE; the signature must be ES256, `aud` must contain AUDIENCE, `exp`
must lie in the future, and `sub` must be a SPIFFE ID in TRUST_DOMAIN
(SPIFFE JWT-SVID §3). Prints {"sub": ..., "aud": ..., "exp": ...} and exits
0, or prints the reason to stderr and exits 1.
"""

import json
import sys

import jwt


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    token_file, jwks_file, audience, trust_domain = argv
    token = open(token_file).read().strip()
    try:
        keys = jwt.PyJWKSet.from_json(open(jwks_file).read())
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise ValueError(f"kid {kid!r} is not in the JWT bundle")
        claims = jwt.decode(token, key=key, algorithms=["ES256"], audience=audience,
                            options={"require": ["exp", "sub", "aud"]})
        if not claims["sub"].startswith(f"spiffe://{trust_domain}/"):
            raise ValueError(f"sub {claims['sub']!r} is not in {trust_domain}")
    except Exception as error:  # noqa: BLE001 - any failure is a rejection
        print(f"verify_jwt_svid: rejected: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"sub": claims["sub"], "aud": claims["aud"], "exp": claims["exp"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
