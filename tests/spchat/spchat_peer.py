#!/usr/bin/python3
"""An independent SP-SimpleChat peer for msglab's tests, written from
PROTOCOLS.md sections 2.2 to 2.4 on Debian's python3-pycryptodome (AES-EAX,
HKDF) and the standard library. It shares no code with msglab.

  spchat_peer.py send HOST PORT NICK TO FILE   HELLO, then FILE_START/CHUNK/END to TO
                                               ("dm:NICK" or a room, joined first)
  spchat_peer.py recv HOST PORT NICK DIR [N]   HELLO, then receive N files (default 1)
                                               into DIR; prints "ok NAME SIZE SHA256"
  spchat_peer.py chat HOST PORT NICK ROOM TEXT HELLO, JOIN, MSG; prints what comes back
Exit status 0 on success; a line on stderr says what went wrong otherwise.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
import uuid

from Cryptodome.Cipher import AES
from Cryptodome.Hash import SHA256
from Cryptodome.Protocol.KDF import HKDF

CHUNK = 32768


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hkdf(ikm, salt, info, n):
    return HKDF(ikm, n, salt, SHA256, context=info.encode())


def send(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        c = sock.recv(n - len(buf))
        if not c:
            raise ConnectionError("closed")
        buf += c
    return buf


def recv(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n > 4 * 1024 * 1024:
        raise ValueError("frame of %d bytes" % n)
    return json.loads(recv_exact(sock, n).decode())


def hello(host, port, nick):
    s = socket.create_connection((host, int(port)), timeout=30)
    send(s, {"type": "HELLO", "nick": nick})
    r = recv(s)
    if r.get("type") != "INFO":
        raise RuntimeError("HELLO answered %r" % r)
    return s


def do_send(host, port, nick, to, path):
    s = hello(host, port, nick)
    mode = "public"
    if to.startswith("dm:"):
        mode, to = "dm", to[3:]
    else:
        send(s, {"type": "JOIN", "room": to})
        r = recv(s)
        if r.get("type") != "INFO":
            raise RuntimeError("JOIN answered %r" % r)
    data = open(path, "rb").read()
    fid = str(uuid.uuid4())
    file_nonce = os.urandom(16)
    key = hkdf(bytes(32), file_nonce, "file-key", 32)

    def env(t, payload):
        return {"type": t, "from": nick, "to": to, "ts": int(time.time() * 1000), "payload": payload, "sig": ""}

    send(s, env("FILE_START", {"file_id": fid, "name": os.path.basename(path), "size": len(data),
                               "sha256": hashlib.sha256(data).hexdigest(), "mode": mode,
                               "aead": "AES-256-EAX", "kdf": "HKDF-SHA256", "file_nonce_b64": b64u(file_nonce)}))
    for i in range(0, max(1, (len(data) + CHUNK - 1) // CHUNK)):
        part = data[i * CHUNK:(i + 1) * CHUNK]
        if not part and i > 0:
            break
        nonce = hkdf(key, file_nonce, "chunk-nonce:%d" % i, 16)
        ct, tag = AES.new(key, AES.MODE_EAX, nonce=nonce).encrypt_and_digest(part)
        send(s, env("FILE_CHUNK", {"file_id": fid, "index": i, "nonce_b64": b64u(nonce),
                                   "ciphertext": b64u(ct), "tag_b64": b64u(tag)}))
    send(s, env("FILE_END", {"file_id": fid}))
    send(s, {"type": "PING"})
    while recv(s).get("type") != "PONG":
        pass
    s.close()
    print("sent", fid, len(data), hashlib.sha256(data).hexdigest())


def do_recv(host, port, nick, folder, count=1):
    s = hello(host, port, nick)
    s.settimeout(60)
    print("ready", flush=True)
    files = {}
    done = 0
    while done < count:
        m = recv(s)
        t = m.get("type")
        if t not in ("FILE_START", "FILE_CHUNK", "FILE_END"):
            continue
        p = m["payload"]
        fid = p["file_id"]
        if t == "FILE_START":
            nonce = unb64u(p["file_nonce_b64"])
            files[fid] = {"meta": p, "nonce": nonce, "key": hkdf(bytes(32), nonce, "file-key", 32),
                          "data": bytearray(), "next": 0}
        elif t == "FILE_CHUNK":
            f = files[fid]
            if p["index"] != f["next"]:
                raise RuntimeError("chunk %r out of order" % p["index"])
            nonce = unb64u(p["nonce_b64"])
            if nonce != hkdf(f["key"], f["nonce"], "chunk-nonce:%d" % p["index"], 16):
                raise RuntimeError("chunk nonce %d is not the HKDF derivation" % p["index"])
            plain = AES.new(f["key"], AES.MODE_EAX, nonce=nonce).decrypt_and_verify(
                unb64u(p["ciphertext"]), unb64u(p["tag_b64"]))
            f["data"] += plain
            f["next"] += 1
        else:
            f = files.pop(fid)
            data = bytes(f["data"])
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != f["meta"]["size"] or digest != f["meta"]["sha256"]:
                raise RuntimeError("size or hash mismatch for %s" % f["meta"]["name"])
            name = os.path.basename(f["meta"]["name"])
            open(os.path.join(folder, name), "wb").write(data)
            print("ok", name, len(data), digest, "from", m.get("from"), flush=True)
            done += 1
    s.close()


def do_chat(host, port, nick, room, text):
    s = hello(host, port, nick)
    send(s, {"type": "JOIN", "room": room})
    print(json.dumps(recv(s)))
    send(s, {"type": "MSG", "room": room, "text": text})
    send(s, {"type": "PING"})
    while True:
        m = recv(s)
        if m.get("type") == "PONG":
            break
        print(json.dumps(m))
    s.close()


def main(argv):
    try:
        if argv[1] == "send":
            do_send(*argv[2:7])
        elif argv[1] == "recv":
            do_recv(argv[2], argv[3], argv[4], argv[5], int(argv[6]) if len(argv) > 6 else 1)
        elif argv[1] == "chat":
            do_chat(*argv[2:7])
        else:
            raise SystemExit(__doc__)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        print("spchat_peer: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
