"""Prints a NextAuth v4 session token (JWE, dir + A256GCM) for a user id,
made the way next-auth's `encode` makes it: the key is HKDF-SHA256 of the
site's secret (salt "", info "NextAuth.js Generated Encryption Key"), the
protected header is the additional data. For local API tests only: the
admin API's own tests prove the format against tokens minted by the real
next-auth and @auth/core packages (tests/data/auth/).

usage: session_token.py SECRET USER_ID
"""

import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str, user_id: str) -> str:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"",
               info=b"NextAuth.js Generated Encryption Key").derive(secret.encode())
    now = int(time.time())
    claims = {"sub": user_id, "email": f"{user_id}@example.com", "name": user_id,
              "iat": now, "exp": now + 3600, "jti": b64(os.urandom(12))}
    header = b64(json.dumps({"alg": "dir", "enc": "A256GCM"}, separators=(",", ":")).encode())
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, json.dumps(claims).encode(), header.encode())
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return f"{header}..{b64(iv)}.{b64(ciphertext)}.{b64(tag)}"


if __name__ == "__main__":
    print(token(sys.argv[1], sys.argv[2]))
