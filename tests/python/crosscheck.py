#!/usr/bin/python3
"""Independent side of msglab's cross-checks, using Debian's python3-cryptography.

Run with /usr/bin/python3 (the interpreter that sees the Debian package).

  crosscheck.py check
      exit 0 when the cryptography module loads; prints its version
  crosscheck.py p256 <msglab_pub.pem> <out_dir>
      loads msglab's P-256 public key, makes a fresh key, writes
      out_dir/python_pub.pem and out_dir/shared.hex (the ECDH x-coordinate)
  crosscheck.py fernet-verify <key_b64> <token>
      writes the plaintext to standard output (no TTL)
  crosscheck.py fernet-make <key_b64> <plaintext>
      prints a token for the plaintext (UTF-8) under the key
"""

import os
import sys


def cmd_check(_args):
    import cryptography

    print(cryptography.__version__)
    return 0


def cmd_p256(args):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if len(args) != 2:
        raise SystemExit("usage: p256 <msglab_pub.pem> <out_dir>")
    pem_path, out_dir = args
    with open(pem_path, "rb") as f:
        peer = serialization.load_pem_public_key(f.read())
    if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != "secp256r1":
        raise SystemExit("not a P-256 public key: %r" % (peer,))
    own = ec.generate_private_key(ec.SECP256R1())
    shared = own.exchange(ec.ECDH(), peer)
    pem = own.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(os.path.join(out_dir, "python_pub.pem"), "wb") as f:
        f.write(pem)
    with open(os.path.join(out_dir, "shared.hex"), "w") as f:
        f.write(shared.hex())
    return 0


def cmd_fernet_verify(args):
    from cryptography.fernet import Fernet

    if len(args) != 2:
        raise SystemExit("usage: fernet-verify <key_b64> <token>")
    key, token = args
    sys.stdout.buffer.write(Fernet(key.encode()).decrypt(token.encode()))
    return 0


def cmd_fernet_make(args):
    from cryptography.fernet import Fernet

    if len(args) != 2:
        raise SystemExit("usage: fernet-make <key_b64> <plaintext>")
    key, plaintext = args
    print(Fernet(key.encode()).encrypt(plaintext.encode("utf-8")).decode())
    return 0


COMMANDS = {
    "check": cmd_check,
    "p256": cmd_p256,
    "fernet-verify": cmd_fernet_verify,
    "fernet-make": cmd_fernet_make,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    return COMMANDS[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
