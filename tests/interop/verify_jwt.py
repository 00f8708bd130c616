#!/usr/bin/env python3
"""Checks the crate's JWTs against PyJWT, the library of Aiuta's documented Python backend.

    verify_jwt.py [verify]   token on stdin; prints {"header": ..., "claims": ...} as JSON
                             once PyJWT has verified it (HS256, issuer, exp, iat)
    verify_jwt.py sign       claims as a JSON object on stdin; prints the HS256 JWT PyJWT signs

The JWT secret and issuer come from the environment variables JWT_SECRET and JWT_ISSUER, never
from the command line. Exit status: 0 done, 1 PyJWT rejected the token, 2 bad usage, 3 PyJWT
is not installed.
"""

import json
import os
import sys


def load_pyjwt():
    try:
        import jwt
    except ImportError:
        jwt = None
    # Another distribution also installs a module named `jwt`; PyJWT is the one with these.
    if jwt is None or not all(hasattr(jwt, name) for name in ("decode", "encode", "PyJWTError")):
        sys.stderr.write(
            "PyJWT is not installed for %s: python3 -m pip install 'pyjwt>=2,<3'\n"
            % sys.executable
        )
        sys.exit(3)
    return jwt


def main(argv):
    mode = argv[1] if len(argv) > 1 else "verify"
    if mode not in ("verify", "sign") or len(argv) > 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        secret = os.environ["JWT_SECRET"]
        issuer = os.environ["JWT_ISSUER"]
    except KeyError as missing:
        sys.stderr.write("%s is not set\n" % missing)
        return 2
    jwt = load_pyjwt()
    text = sys.stdin.read().strip()

    if mode == "sign":
        claims = json.loads(text)
        claims.setdefault("iss", issuer)
        sys.stdout.write(jwt.encode(claims, secret, algorithm="HS256"))
        return 0

    try:
        claims = jwt.decode(
            text,
            secret,
            algorithms=["HS256"],
            issuer=issuer,
            options={"require": ["exp", "iat", "iss"]},
        )
    except jwt.PyJWTError as error:
        sys.stderr.write("rejected: %s: %s\n" % (type(error).__name__, error))
        return 1
    header = jwt.get_unverified_header(text)
    json.dump({"header": header, "claims": claims}, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
