#!/usr/bin/env python3
"""Check a TPM quote with keylime's own verifier: an independent second opinion.

Usage: keylime_checkquote.py DIR NONCE_HEX [--hash sha256]

DIR holds the files in tpm2-tools' formats, exactly what
`tpm2_checkquote -u ak.pem -m quote.msg -s quote.sig -f quote.pcrs -g HASH -q NONCE_HEX`
reads: ak.pem (PEM SubjectPublicKeyInfo), quote.msg (marshalled TPMS_ATTEST),
quote.sig (marshalled TPMT_SIGNATURE), quote.pcrs (tpm2-tools' PCR dump:
TPML_PCR_SELECTION then the TPML_DIGEST array, host byte order, unpadded).

Exit status: 0 when keylime accepts (the quoted PCR values go to stdout, one
`HASH:INDEX HEX` line each), 1 when keylime rejects (its reason goes to
stderr), 2 on a usage error or an unreadable input file.

The verdict is keylime's alone: this script only reads files and calls
`keylime.tpm.tpm_util.checkquote`, so a bug in our own verifier cannot leak
into the cross-check.
"""

import argparse
import logging
import pathlib
import sys

# keylime reads /etc/keylime/logging.conf at import time and warns when it is
# absent (it always is here); the warning is noise on a verifier's stderr.
logging.getLogger("keylime.config").setLevel(logging.ERROR)

from keylime.tpm import tpm_util  # noqa: E402  (must follow the logger tweak)

try:
    from importlib.metadata import version as _dist_version

    KEYLIME_VERSION = _dist_version("keylime")
except Exception:  # noqa: BLE001 - the version is only used in a message
    KEYLIME_VERSION = "unknown"

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

INPUT_FILES = ("ak.pem", "quote.msg", "quote.sig", "quote.pcrs")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Verify a tpm2-tools quote with keylime.tpm.tpm_util.checkquote."
    )
    parser.add_argument("dir", type=pathlib.Path, help="directory with ak.pem, quote.msg, quote.sig, quote.pcrs")
    parser.add_argument("nonce_hex", help="the qualifying data given to tpm2_quote -q, as hex")
    parser.add_argument(
        "--hash",
        default="sha256",
        choices=("sha1", "sha256", "sha384", "sha512"),
        help="hash the quote must have been signed with (default: sha256)",
    )
    args = parser.parse_args(argv)  # argparse itself exits 2 on bad usage
    try:
        args.nonce = bytes.fromhex(args.nonce_hex)
    except ValueError:
        parser.error(f"NONCE_HEX is not hex: {args.nonce_hex!r}")
    return args


def read_inputs(directory):
    blobs = {}
    for name in INPUT_FILES:
        path = directory / name
        try:
            blobs[name] = path.read_bytes()
        except OSError as err:
            print(f"error: cannot read {path}: {err.strerror}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
    return blobs


def describe(err):
    # cryptography's InvalidSignature carries no message; the type is the reason.
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def main(argv):
    args = parse_args(argv)
    blobs = read_inputs(args.dir)
    try:
        # The nonce goes in as bytes on purpose: given a str, keylime compares
        # its UTF-8 encoding with extraData and then retries it as base64, so a
        # str would be matched in two different ways.
        pcrs = tpm_util.checkquote(
            blobs["ak.pem"],
            args.nonce,
            blobs["quote.sig"],
            blobs["quote.msg"],
            blobs["quote.pcrs"],
            args.hash,
        )
    except Exception as err:  # noqa: BLE001 - any failure inside keylime is a rejection
        print(f"rejected by keylime {KEYLIME_VERSION}: {describe(err)}", file=sys.stderr)
        return EXIT_REJECTED
    for index in sorted(pcrs):
        print(f"{args.hash}:{index} {pcrs[index]}")
    return EXIT_ACCEPTED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
