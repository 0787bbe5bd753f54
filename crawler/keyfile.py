"""secp256k1 key files in go-ethereum's format: 64 hex characters, as crypto.SaveECDSA writes them.

``devp2p key generate`` (and geth's ``--nodekey``) files hold the 32-byte key in
hex with no newline; crypto.LoadECDSA also takes up to two newline bytes after
it ("\\n", "\\r\\n").  One reader serves ``crawl --node-key`` and ``dns sign``.
"""

from __future__ import annotations

import os
import string

from ethcrawl.wire.crypto import PrivateKey, generate_private_key

__all__ = ["KEY_HEX_CHARS", "KeyFileError", "read_key_file", "generate_key_file"]

KEY_HEX_CHARS = 64
KEY_TRAILING_NEWLINES = 2  # bytes crypto.LoadECDSA tolerates after the hex
KEY_FILE_MODE = 0o600  # crypto.SaveECDSA's: a private key is for its owner only
_HEX_DIGITS = frozenset(string.hexdigits.encode())


class KeyFileError(Exception):
    """Raised when a key file cannot be read or written, or does not hold a key; the message ends a CLI line."""


def read_key_file(path: str) -> PrivateKey:
    """The key in ``path``; KeyFileError for a file go-ethereum would refuse."""
    try:
        with open(path, "rb") as file:
            data = file.read(KEY_HEX_CHARS + KEY_TRAILING_NEWLINES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read it ({exc.strerror or exc})") from None
    hex_part, tail = data[:KEY_HEX_CHARS], data[KEY_HEX_CHARS:]
    if len(hex_part) < KEY_HEX_CHARS or not set(hex_part) <= _HEX_DIGITS:
        why = "want 64 hex characters, as 'devp2p key generate' writes"
    elif len(tail) > KEY_TRAILING_NEWLINES or tail.strip(b"\r\n"):
        why = "unexpected bytes after the 64 hex characters (only a newline may follow)"
    else:
        try:
            return PrivateKey(bytes.fromhex(hex_part.decode()))
        except ValueError:
            why = "not a valid secp256k1 private key (zero, or not below the curve order)"
    raise KeyFileError(f"not a node key file: {why}")


def generate_key_file(path: str) -> PrivateKey:
    """Write a new key to ``path`` as crypto.SaveECDSA does (no newline, mode 0600); never overwrite a file."""
    key = generate_private_key()
    try:
        # O_EXCL: a key file that already exists may be the only copy of someone's list key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        raise KeyFileError("it exists already; refusing to overwrite a key file") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create it ({exc.strerror or exc})") from None
    with os.fdopen(fd, "wb") as file:
        file.write(key.secret.hex().encode("ascii"))
    return key
