#!/usr/bin/python3
"""An independent SLMP client and server, written from PROTOCOLS.md section 3
with Debian's python3-cryptography, for msglab's cross-checks.

Run with /usr/bin/python3 (the interpreter that sees the Debian package).
Like the original, each unit is one send() and is read with one recv(1024).

  slmp_peer.py check
      exit 0 when the cryptography module loads; prints its version
  slmp_peer.py client HOST PORT USER MESSAGE [SECRET]
      one exchange; prints "keylog: SLMP_FERNET_KEY <sid> <K>" and
      "reply: <text>"; exit 1 on any failure
  slmp_peer.py server COUNT [SECRET]
      listens on 127.0.0.1 with a port chosen by the system, prints
      "listening on 127.0.0.1:PORT", serves COUNT connections one after
      another and prints for each "client pem: <n> bytes, lines <a>,<b>,...",
      "keylog: ..." and "request: user=<u> message=<m>"; exit 1 when a
      client's unit breaks the protocol
"""

import base64
import hashlib
import socket
import sys

HKDF_INFO = b"handshake data"
DEFAULT_SECRET = "my_secret"
PEM_BYTES = 178


def fail(why):
    print("error: " + why, flush=True)
    sys.exit(1)


def new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def pem_of(private_key):
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def der_of(public_key):
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_peer(pem):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        fail("not a PEM public key: %s" % e)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        fail("not a P-256 key: %r" % (key,))
    return key


def fernet_of(private_key, peer):
    """The session's Fernet and its raw key K."""
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    shared = private_key.exchange(ec.ECDH(), peer)
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(shared)
    return Fernet(base64.urlsafe_b64encode(k)), k


def keylog_line(client_der, server_der, k):
    sid = hashlib.sha256(client_der + server_der).digest()[:8]
    return "SLMP_FERNET_KEY %s %s" % (sid.hex(), k.hex())


def auth_token(user, secret):
    return hashlib.sha256((user + secret).encode("utf-8")).hexdigest()


def cmd_check(_args):
    import cryptography

    print(cryptography.__version__)
    return 0


def cmd_client(args):
    if len(args) not in (4, 5):
        fail("usage: client HOST PORT USER MESSAGE [SECRET]")
    host, port, user, message = args[0], int(args[1]), args[2], args[3]
    secret = args[4] if len(args) == 5 else DEFAULT_SECRET
    own = new_key()
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(pem_of(own))
        server_pem = s.recv(1024)
        if not server_pem:
            fail("the server closed before sending its key")
        if len(server_pem) != PEM_BYTES:
            fail("the server's key is %d bytes, not %d" % (len(server_pem), PEM_BYTES))
        peer = load_peer(server_pem)
        f, k = fernet_of(own, peer)
        print("keylog: " + keylog_line(der_of(own.public_key()), der_of(peer), k), flush=True)
        plaintext = "%s;%s;%s" % (auth_token(user, secret), user, message)
        s.sendall(f.encrypt(plaintext.encode("utf-8")))
        token = s.recv(1024)
        if not token:
            fail("the server closed without a reply")
    reply = f.decrypt(token).decode("utf-8")
    print("reply: " + reply, flush=True)
    if reply != "Message received: " + message:
        fail("unexpected reply %r" % reply)
    return 0


def pem_lines(pem):
    return [len(line) for line in pem.split(b"\n")]


def serve_one(conn, own, own_pem, secret):
    client_pem = conn.recv(1024)
    lines = pem_lines(client_pem)
    print("client pem: %d bytes, lines %s" % (len(client_pem), ",".join(map(str, lines))), flush=True)
    # -----BEGIN PUBLIC KEY-----, 64 and 60 base64 characters, -----END PUBLIC KEY-----, then the final newline.
    if len(client_pem) != PEM_BYTES or lines != [26, 64, 60, 24, 0]:
        fail("the client's key is not in the 178-byte layout of 64-character lines")
    peer = load_peer(client_pem)
    f, k = fernet_of(own, peer)
    print("keylog: " + keylog_line(der_of(peer), der_of(own.public_key()), k), flush=True)
    conn.sendall(own_pem)
    token = conn.recv(1024)
    plaintext = f.decrypt(token).decode("utf-8")  # no TTL, as the original
    fields = plaintext.split(";")
    if len(fields) != 3:
        fail("%d fields in the request, not 3" % len(fields))
    tok, user, message = fields
    if tok != auth_token(user, secret):
        fail("bad authentication token for %r" % user)
    print("request: user=%s message=%s" % (user, message), flush=True)
    conn.sendall(f.encrypt(("Message received: " + message).encode("utf-8")))


def cmd_server(args):
    if len(args) not in (1, 2):
        fail("usage: server COUNT [SECRET]")
    count = int(args[0])
    secret = args[1] if len(args) == 2 else DEFAULT_SECRET
    own = new_key()  # one key for the process, as the original
    own_pem = pem_of(own)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(5)
        srv.settimeout(60)
        print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
        for _ in range(count):
            conn, _addr = srv.accept()
            with conn:
                conn.settimeout(30)
                serve_one(conn, own, own_pem, secret)
    print("served %d" % count, flush=True)
    return 0


def main(argv):
    cmds = {"check": cmd_check, "client": cmd_client, "server": cmd_server}
    if len(argv) < 2 or argv[1] not in cmds:
        fail("usage: slmp_peer.py check | client ... | server ...")
    return cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
