#!/usr/bin/env python3
"""Validate JWT-SVIDs as an OIDC relying party does, from the issuer URL
alone: PyJWT's PyJWKClient, no code shared with attestd.

Usage:
  oidc_discovery.py validate ISSUER_URL CA_FILE AUDIENCE TOKEN_FILE...
  oidc_discovery.py wait ISSUER_URL CA_FILE (--present|--absent) KID [--timeout SECS]

validate: fetches ISSUER_URL/.well-known/openid-configuration over HTTPS
(trusting CA_FILE only, host name checked), requires its `issuer` to be
ISSUER_URL exactly (OpenID Connect Discovery 1.0 §4.3), and gives its
`jwks_uri` to PyJWKClient. Each token is then checked: its `kid` picks the
key, the signature must be one of the advertised algorithms, `iss` must be
the issuer, `aud` must hold AUDIENCE, and `exp` must lie in the future.
Prints one JSON line per token ({"token", "valid", "kid", "sub", "error"}),
then {"kids": [...]} for the JWK Set PyJWKClient sees. Exit 0 if every token
is valid, 1 if one is not, 2 on bad usage.

wait: polls the JWK Set found by discovery (every 0.2 s, a fresh fetch each
time) until KID is present or absent; exit 0 when it is, 1 at the timeout
(default 60 s).
"""

import json
import ssl
import sys
import time
import urllib.request

import jwt

DISCOVERY = "/.well-known/openid-configuration"


def fetch_json(url, context):
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        if response.headers.get_content_type() != "application/json":
            raise ValueError(f"{url}: Content-Type {response.headers.get('Content-Type')!r}")
        return json.load(response)


def discover(issuer, context):
    if not issuer.startswith("https://") or issuer.endswith("/"):
        raise ValueError(f"not an issuer URL: {issuer!r}")
    metadata = fetch_json(issuer + DISCOVERY, context)
    if metadata.get("issuer") != issuer:
        raise ValueError(f"discovery names issuer {metadata.get('issuer')!r}, not {issuer!r}")
    jwks_uri = metadata.get("jwks_uri", "")
    if not jwks_uri.startswith("https://"):
        raise ValueError(f"jwks_uri {jwks_uri!r} is not https")
    return metadata


def validate(issuer, ca_file, audience, token_files):
    context = ssl.create_default_context(cafile=ca_file)
    metadata = discover(issuer, context)
    algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported", []) if a != "none"]
    client = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context)
    all_valid = True
    for token_file in token_files:
        token = open(token_file).read().strip()
        result = {"token": token_file, "valid": False}
        try:
            result["kid"] = jwt.get_unverified_header(token).get("kid")
            key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                audience=audience,
                issuer=metadata["issuer"],
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
            result.update(valid=True, sub=claims["sub"], exp=claims["exp"])
        except Exception as error:  # noqa: BLE001 - any failure is a rejection
            result["error"] = f"{type(error).__name__}: {error}"
            all_valid = False
        print(json.dumps(result), flush=True)
    kids = [key.key_id for key in client.get_signing_keys(refresh=True)]
    print(json.dumps({"kids": kids}), flush=True)
    return 0 if all_valid else 1


def wait(issuer, ca_file, want_present, kid, timeout):
    context = ssl.create_default_context(cafile=ca_file)
    jwks_uri = discover(issuer, context)["jwks_uri"]
    started = time.monotonic()
    while True:
        kids = [key.get("kid") for key in fetch_json(jwks_uri, context).get("keys", [])]
        if (kid in kids) == want_present:
            state = "present" if want_present else "absent"
            print(json.dumps({"kid": kid, state: True, "after_s": round(time.monotonic() - started, 2)}))
            return 0
        if time.monotonic() - started > timeout:
            print(f"oidc_discovery: kid {kid} still {'absent' if want_present else 'present'} "
                  f"after {timeout} s; published: {kids}", file=sys.stderr)
            return 1
        time.sleep(0.2)


def main(argv):
    try:
        if len(argv) >= 5 and argv[0] == "validate":
            return validate(argv[1], argv[2], argv[3], argv[4:])
        if len(argv) in (5, 7) and argv[0] == "wait" and argv[3] in ("--present", "--absent"):
            timeout = 60.0
            if len(argv) == 7:
                if argv[5] != "--timeout":
                    raise IndexError
                timeout = float(argv[6])
            return wait(argv[1], argv[2], argv[3] == "--present", argv[4], timeout)
    except (IndexError, ValueError) as error:
        if isinstance(error, ValueError) and str(error):
            print(f"oidc_discovery: {error}", file=sys.stderr)
            return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
