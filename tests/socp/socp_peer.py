#!/usr/bin/python3
"""An independent SOCP v1.3 user client for msglab's tests, written from
PROTOCOLS.md section 2.8 on Debian's python3-websockets and
python3-cryptography. It shares no code with msglab.

  socp_peer.py --url ws://HOST:PORT --user ID --key PEM
               [--wait-for USER]... [--tell USER TEXT]... [--all TEXT]...
               [--expect N] [--timeout S] [--linger S] [--pem-keys] [--max-salt]

Logs in with USER_HELLO, learns the directory from USER_ADVERTISE
(meta.pubkey), opens the public channel key wrapped for it in
PUBLIC_CHANNEL_UPDATED, sends each --tell as MSG_DIRECT (RSA-OAEP-SHA256 to
the recipient's key, one block of at most 446 bytes per message) and each
--all as MSG_PUBLIC_CHANNEL (AES-256-GCM under the group key, base64url of
nonce || ciphertext || tag, with "key_version"), then stays until --expect
messages arrived. Every frame it sends is an envelope with sorted keys and no
whitespace and a transport signature (RSASSA-PSS-SHA256 over the payload as
json.dumps(sort_keys=True, separators=(",",":")) writes it); content
signatures cover ciphertext + from + to + str(ts) (DM) or
ciphertext + from + str(ts) (public). PSS salts are 32 bytes, or the maximum
with --max-salt (as the Python cohort teams do); received signatures are
verified with any salt length. Keys are sent as base64url (no padding) of the
DER SubjectPublicKeyInfo, or as PEM text with --pem-keys; both, and
base64url of PEM text, are read.

Output, one line each, flushed:
  login USER                       logged in (the server's ACK or its advertisement of us)
  ready USER                       logged in, and every --wait-for user is online
  online USER                      a user entered the directory
  sent DM USER TEXT / sent PUBLIC TEXT version=N
  DM FROM TEXT sig=ok|BAD [key=MISMATCH]
  PUBLIC FROM TEXT sig=ok|BAD [key=MISMATCH]
  ERROR CODE DETAIL                an ERROR frame from the server (a failure after the login)
  FAIL WHY                         then exit 1
Exit status 0 when every send went out, no ERROR came after the login, at
least --expect messages arrived and every content signature verified (and
sender_pub matched the directory); 1 otherwise.
"""
import argparse
import asyncio
import base64
import json
import os
import sys
import time

import websockets
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

OAEP_MAX = 446  # RSA-4096: 512 - 2 * 32 - 2


def say(*words):
    print(*words, flush=True)


class Fail(Exception):
    pass


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text):
    text = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now_ms():
    return int(time.time() * 1000)


def canonical(payload):
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def oneline(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def read_key(text):
    """A public key as PEM text, or base64url of DER SPKI or of PEM text."""
    if not isinstance(text, str) or not text:
        return None
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            raw = unb64u(text)
            if raw.lstrip().startswith(b"-----BEGIN"):
                key = serialization.load_pem_public_key(raw)
            else:
                key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError, UnicodeError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def spki(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def split_utf8(text, limit):
    """Pieces of at most `limit` bytes, never cut inside a character."""
    pieces, cur, size = [], [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > limit and cur:
            pieces.append("".join(cur))
            cur, size = [], 0
        cur.append(ch)
        size += n
    if cur or not pieces:
        pieces.append("".join(cur))
    return pieces


class Peer:
    def __init__(self, args):
        self.args = args
        self.user = args.user
        with open(args.key, "rb") as f:
            self.priv = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(self.priv, rsa.RSAPrivateKey):
            raise Fail("--key is not an RSA private key")
        self.pub = self.priv.public_key()
        if args.pem_keys:
            self.pub_text = self.pub.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        else:
            self.pub_text = b64u(spki(self.pub))
        self.salt = padding.PSS.MAX_LENGTH if args.max_salt else padding.PSS.DIGEST_LENGTH
        self.ws = None
        self.directory = {}        # user -> RSA public key
        self.group_keys = []       # (version, key, frozenset of member ids), in arrival order
        self.logged_in = False
        self.login_error = None
        self.received = 0
        self.bad = 0
        self.closed = None
        self.changed = asyncio.Condition()

    # ---- crypto ----------------------------------------------------------
    def sign(self, data):
        return b64u(self.priv.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=self.salt),
                                   hashes.SHA256()))

    @staticmethod
    def verify(key, data, sig):
        try:
            key.verify(unb64u(sig), data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                       hashes.SHA256())
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False

    @staticmethod
    def oaep():
        return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

    # ---- frames ----------------------------------------------------------
    async def send(self, type_, to, payload, ts=None):
        env = {"type": type_, "from": self.user, "to": to, "ts": now_ms() if ts is None else ts,
               "payload": payload, "sig": self.sign(canonical(payload))}
        await self.ws.send(json.dumps(env, sort_keys=True, separators=(",", ":")))

    async def reader(self):
        try:
            async for message in self.ws:
                if not isinstance(message, str):
                    say("FAIL a binary WebSocket message")
                    self.bad += 1
                    continue
                try:
                    env = json.loads(message)
                except ValueError:
                    say("FAIL a message that is not JSON")
                    self.bad += 1
                    continue
                if isinstance(env, dict) and isinstance(env.get("payload"), dict):
                    try:
                        self.handle(env)
                    except Exception as e:  # a frame this peer cannot read must not stop the reader
                        say("FAIL reading a %s frame: %s: %s" % (env.get("type"), type(e).__name__, e))
                        self.bad += 1
                async with self.changed:
                    self.changed.notify_all()
        except websockets.ConnectionClosed as e:
            self.closed = "closed (code %s %s)" % (e.code, e.reason)
        finally:
            if self.closed is None:
                self.closed = "closed"
            async with self.changed:
                self.changed.notify_all()

    async def until(self, predicate, deadline, what):
        async with self.changed:
            while not predicate():
                if self.login_error:
                    raise Fail("the server refused the login: " + self.login_error)
                if self.closed:
                    raise Fail("the connection %s while waiting for %s" % (self.closed, what))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail("timed out waiting for " + what)
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

    def handle(self, env):
        t, p = env.get("type"), env["payload"]
        if t == "ACK":
            if p.get("msg_ref") == "USER_HELLO":
                self.logged_in = True
        elif t == "ERROR":
            code, detail = p.get("code"), p.get("detail")
            say("ERROR", code, oneline(str(detail)))
            if not self.logged_in:
                self.login_error = "%s %s" % (code, detail)
            else:
                self.bad += 1
        elif t == "USER_ADVERTISE":
            uid = p.get("user_id")
            meta = p.get("meta") if isinstance(p.get("meta"), dict) else {}
            if uid == self.user:
                self.logged_in = True
                return
            key = read_key(meta.get("pubkey"))
            if isinstance(uid, str) and key is not None:
                if uid not in self.directory:
                    say("online", uid)
                self.directory[uid] = key
        elif t == "USER_REMOVE":
            uid = p.get("user_id")
            if uid in self.directory and uid != self.user:
                del self.directory[uid]
                say("offline", uid)
        elif t == "PUBLIC_CHANNEL_UPDATED":
            version, wraps = p.get("version"), p.get("wraps")
            if not isinstance(version, int) or not isinstance(wraps, list):
                return
            members = frozenset(w.get("member_id") for w in wraps if isinstance(w, dict))
            for w in wraps:
                if not isinstance(w, dict) or w.get("member_id") != self.user:
                    continue
                try:
                    key = self.priv.decrypt(unb64u(w.get("wrapped_key", "")), self.oaep())
                except (ValueError, TypeError):
                    say("FAIL a group key wrap for us that does not open, version", version)
                    self.bad += 1
                    continue
                if len(key) == 32:
                    self.group_keys.append((version, key, members))
        elif t == "USER_DELIVER":
            self.on_direct(env, p)
        elif t == "MSG_PUBLIC_CHANNEL":
            if env.get("from") != self.user:
                self.on_public(env, p)

    def check_sender(self, sender, sender_pub):
        """The key to verify with (sender_pub), and whether it differs from the directory's."""
        key = read_key(sender_pub)
        known = self.directory.get(sender)
        mismatch = key is not None and known is not None and spki(key) != spki(known)
        return key, mismatch

    def report(self, kind, sender, text, sig_ok, mismatch):
        self.received += 1
        if not sig_ok or mismatch:
            self.bad += 1
        say(kind, sender, oneline(text), "sig=ok" if sig_ok else "sig=BAD", *(["key=MISMATCH"] if mismatch else []))

    def on_direct(self, env, p):
        sender, ct, ts = p.get("sender"), p.get("ciphertext"), env.get("ts")
        if not isinstance(sender, str) or not isinstance(ct, str) or not isinstance(ts, int):
            say("FAIL a USER_DELIVER without sender, ciphertext or ts")
            self.bad += 1
            return
        try:
            text = self.priv.decrypt(unb64u(ct), self.oaep()).decode("utf-8")
        except (ValueError, TypeError, UnicodeError):
            say("FAIL a direct message from", sender, "does not decrypt")
            self.bad += 1
            return
        key, mismatch = self.check_sender(sender, p.get("sender_pub"))
        sig = p.get("content_sig")
        content = (ct + sender + self.user + str(ts)).encode("utf-8")
        ok = key is not None and isinstance(sig, str) and self.verify(key, content, sig)
        self.report("DM", sender, text, ok, mismatch)

    def on_public(self, env, p):
        sender, ct, ts = env.get("from"), p.get("ciphertext"), env.get("ts")
        if not isinstance(sender, str) or not isinstance(ct, str) or not isinstance(ts, int):
            say("FAIL a MSG_PUBLIC_CHANNEL without from, ciphertext or ts")
            self.bad += 1
            return
        version = p.get("key_version")
        try:
            blob = unb64u(ct)
        except ValueError:
            blob = b""
        text = None
        # The announced version first, then any other key we hold (two servers
        # may have issued the same version number).
        for v, key, _ in sorted(self.group_keys, key=lambda g: g[0] != version):
            if len(blob) < 12 + 16:
                break
            try:
                text = AESGCM(key).decrypt(blob[:12], blob[12:], None).decode("utf-8")
                break
            except (InvalidTag, UnicodeError):
                continue
        if text is None:
            say("FAIL a public message from", sender,
                "does not open under any group key we hold (version %s)" % version)
            self.bad += 1
            return
        key, mismatch = self.check_sender(sender, p.get("sender_pub"))
        sig = p.get("content_sig")
        content = (ct + sender + str(ts)).encode("utf-8")
        ok = key is not None and isinstance(sig, str) and self.verify(key, content, sig)
        self.report("PUBLIC", sender, text, ok, mismatch)

    # ---- the session -----------------------------------------------------
    async def run(self):
        a = self.args
        deadline = time.monotonic() + a.timeout
        async with websockets.connect(a.url, open_timeout=a.timeout, max_size=8 * 1024 * 1024,
                                      ping_interval=None) as ws:
            self.ws = ws
            reader = asyncio.ensure_future(self.reader())
            try:
                await self.send("USER_HELLO", "*",
                                {"client": "socp-peer-py", "pubkey": self.pub_text, "enc_pubkey": self.pub_text})
                await self.until(lambda: self.logged_in, deadline, "the login")
                say("login", self.user)
                for u in a.wait_for:
                    await self.until(lambda: u in self.directory, deadline, "user %s to come online" % u)
                say("ready", self.user)
                for to, text in a.tell:
                    await self.until(lambda: to in self.directory, deadline, "user %s to come online" % to)
                    for piece in split_utf8(text, OAEP_MAX):
                        ts = now_ms()
                        ct = b64u(self.directory[to].encrypt(piece.encode("utf-8"), self.oaep()))
                        sig = self.sign((ct + self.user + to + str(ts)).encode("utf-8"))
                        await self.send("MSG_DIRECT", to,
                                        {"ciphertext": ct, "sender_pub": self.pub_text, "content_sig": sig}, ts)
                    say("sent DM", to, oneline(text))
                if a.all:
                    # The newest key whose wraps reach everyone we waited for.
                    want = set(a.wait_for) | {self.user}

                    def usable():
                        return [g for g in self.group_keys if want <= g[2]]

                    await self.until(usable, deadline, "a public channel key wrapped for " + " ".join(sorted(want)))
                    version, key, _ = max(usable(), key=lambda g: g[0])
                    for text in a.all:
                        ts = now_ms()
                        nonce = os.urandom(12)
                        ct = b64u(nonce + AESGCM(key).encrypt(nonce, text.encode("utf-8"), None))
                        sig = self.sign((ct + self.user + str(ts)).encode("utf-8"))
                        await self.send("MSG_PUBLIC_CHANNEL", "public",
                                        {"ciphertext": ct, "sender_pub": self.pub_text, "content_sig": sig,
                                         "key_version": version}, ts)
                        say("sent PUBLIC", oneline(text), "version=%d" % version)
                if (a.tell or a.all) and a.linger > 0:
                    # An ERROR for what we sent (USER_NOT_FOUND, INVALID_SIG) comes now or never.
                    await asyncio.sleep(a.linger)
                if a.expect:
                    try:
                        await self.until(lambda: self.received >= a.expect, deadline, "%d message(s)" % a.expect)
                    except Fail as e:
                        raise Fail("%s: %d arrived" % (e, self.received))
            finally:
                reader.cancel()
                try:
                    await reader
                except asyncio.CancelledError:
                    pass
            await ws.close()
        if self.bad:
            raise Fail("%d message(s) failed a check" % self.bad)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="ws://HOST:PORT of the user's local server")
    ap.add_argument("--user", required=True, help="the user id")
    ap.add_argument("--key", required=True, help="the user's RSA private key (PEM)")
    ap.add_argument("--wait-for", action="append", default=[], metavar="USER",
                    help="before sending, wait until USER is online (repeatable)")
    ap.add_argument("--tell", action="append", nargs=2, default=[], metavar=("USER", "TEXT"),
                    help="send TEXT to USER as a direct message (repeatable)")
    ap.add_argument("--all", action="append", default=[], metavar="TEXT", help="send TEXT to the public channel")
    ap.add_argument("--expect", type=int, default=0, help="stay until this many messages arrived")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for everything (default 10)")
    ap.add_argument("--linger", type=float, default=0.2,
                    help="seconds to stay after sending, for ERROR answers (default 0.2)")
    ap.add_argument("--pem-keys", action="store_true", help="send the public key as PEM text, not base64url DER")
    ap.add_argument("--max-salt", action="store_true", help="sign with the largest PSS salt, not 32 bytes")
    args = ap.parse_args()
    try:
        asyncio.run(Peer(args).run())
    except Fail as e:
        say("FAIL", e)
        return 1
    except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as e:
        say("FAIL", type(e).__name__, e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
