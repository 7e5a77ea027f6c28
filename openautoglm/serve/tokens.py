"""Create a token: ``python -m openautoglm.serve.tokens --key private.pem --kid k1 --sub alice --role operator``.

The private key stays with whoever issues tokens; the API holds only public keys (``OPENAUTOGLM_SERVE_JWT_KEYS``
or ``OPENAUTOGLM_SERVE_JWT_KEYS_DIR``). Prints the token on standard output. ``--ttl`` is at most
``OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S`` (86400 s by default), the longest lifetime the API accepts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.auth import ROLES, _key_alg, issue_token
from openautoglm.serve.settings import ServeSettings


def _alg(key: Any) -> str:
    """The JWT algorithm of a private key: that of its public half (the same rule the API verifies with)."""
    if not hasattr(key, "public_key"):
        raise SystemExit(f"unsupported private key type {type(key).__name__}")
    try:
        return _key_alg(key.public_key())
    except ConfigurationError as error:
        raise SystemExit(str(error)) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openautoglm.serve.tokens", description=__doc__)
    parser.add_argument("--key", required=True, type=Path, help="PEM private key (RSA, EC P-256 or Ed25519)")
    parser.add_argument("--kid", required=True, help="key id the API knows the public key by")
    parser.add_argument("--sub", required=True, help="subject (user or service name)")
    parser.add_argument("--role", action="append", choices=ROLES, required=True, help="repeatable")
    parser.add_argument(
        "--ttl", type=int, default=3600, help="seconds until it expires (at most OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S)"
    )
    parser.add_argument("--audience", default="openautoglm-api")
    parser.add_argument("--issuer", default="openautoglm")
    args = parser.parse_args(argv)
    longest = ServeSettings().jwt_max_lifetime_s
    if not 0 < args.ttl <= longest:
        parser.error(
            f"--ttl {args.ttl}: the API refuses tokens that live longer than {longest} s "
            "(OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S); give 1 to that many seconds"
        )
    key = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
    token = issue_token(
        key,
        kid=args.kid,
        alg=_alg(key),
        sub=args.sub,
        roles=args.role,
        audience=args.audience,
        issuer=args.issuer,
        ttl_s=args.ttl,
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
