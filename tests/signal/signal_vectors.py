#!/usr/bin/python3
"""Independent check of msglab's Signal-style chat vectors (docs/vectors/signal).

Written from PROTOCOLS.md section 5 alone, on python3-cryptography (the
library the original program uses), not from msglab's C++. It takes the
private keys and plaintexts the files state, recomputes every public key,
DH output, KDF output, ciphertext, MAC, header encoding, event payload and
key log id, replays the conversation through its own Double Ratchet, and
compares each value with the file.

    /usr/bin/python3 signal_vectors.py x3dh.json ratchet.json

Exit status 0 and "ok: ..." when everything matches; 1 and
"mismatch: <path>: ..." naming the first value that differs.
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAX_SKIP = 10
SPEC_SK = "747ad7a2f94eb5920297442a74ba90928c99662b85a116105c7812457af3a3bd"  # 5.5


class Mismatch(Exception):
    pass


def show(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return repr(v)


def expect(path, computed, stated):
    """stated is what the file holds; hex strings are compared with bytes."""
    if isinstance(computed, (bytes, bytearray)) and isinstance(stated, str):
        try:
            stated_b = bytes.fromhex(stated)
        except ValueError:
            raise Mismatch(f"{path}: not hex: {stated!r}")
        if stated_b != computed:
            raise Mismatch(f"{path}: computed {computed.hex()}, the file says {stated}")
        return
    if computed != stated:
        raise Mismatch(f"{path}: computed {show(computed)}, the file says {show(stated)}")


def b64(data):
    return base64.standard_b64encode(data).decode("ascii")


def raw_public(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x_priv(hexs):
    return x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(hexs))


def dh(priv_hex, pub_bytes):
    return x_priv(priv_hex).exchange(x25519.X25519PublicKey.from_public_bytes(pub_bytes))


def hkdf(ikm, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac256(key, data):
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def pad32(data):
    p = padding.PKCS7(256).padder()
    return p.update(data) + p.finalize()


def unpad32(data):
    u = padding.PKCS7(256).unpadder()
    return u.update(data) + u.finalize()


def aes_cbc(key, iv, data, encrypt):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def payload_keys(ikm, info):
    out = hkdf(ikm, b"\x00" * 80, info, 80)
    return out[:32], out[32:64], out[64:80]


def counter_bytes(v):
    return v.to_bytes(v.bit_length(), "big")


def keys_in_order(path, obj, keys):
    expect(path + " (key order)", list(keys), list(obj.keys()))


# ---- x3dh.json ----------------------------------------------------------------


def check_identity(path, ident):
    ik = x_priv(ident["ik_private"])
    expect(path + ".ik_public", raw_public(ik), ident["ik_public"])
    sik = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ident["sik_seed"]))
    expect(path + ".sik_public", raw_public(sik), ident["sik_public"])
    spk = x_priv(ident["spk_private"])
    spk_pub = raw_public(spk)
    expect(path + ".spk_public", spk_pub, ident["spk_public"])
    # Ed25519 is deterministic: the signature is recomputed, and verified.
    expect(path + ".spk_sig", sik.sign(spk_pub), ident["spk_sig"])
    try:
        sik.public_key().verify(bytes.fromhex(ident["spk_sig"]), spk_pub)
    except InvalidSignature:
        raise Mismatch(path + ".spk_sig: does not verify")


def check_x3dh(doc):
    v = doc["sk_test_vector"]
    ikm = b"\xff" * 32 + bytes.fromhex(v["dh1"]) + bytes.fromhex(v["dh2"]) + bytes.fromhex(v["dh3"])
    sk_vec = hkdf(ikm, b"\x00" * 32, b"extended_triple_diffie_hellman", 32)
    expect("sk_test_vector.sk", sk_vec, v["sk"])
    for k in ("dh1", "dh2", "dh3"):
        expect("sk_test_vector." + k, bytes([2]) * 32, v[k])
    expect("sk_test_vector.sk (PROTOCOLS.md 5.5)", sk_vec.hex(), SPEC_SK)

    alice, bob = doc["alice"], doc["bob"]
    check_identity("alice", alice)
    check_identity("bob", bob)

    for name, ident in (("alice", alice), ("bob", bob)):
        path = "register_user_" + name
        ev = doc[path]
        keys_in_order(path, ev, ["username", "ik", "sik", "spk", "spk_sig"])
        expect(path + ".username", name, ev["username"])
        for k in ("ik", "sik", "spk"):
            expect(path + "." + k, b64(bytes.fromhex(ident[k + "_public"])), ev[k])
        expect(path + ".spk_sig", b64(bytes.fromhex(ident["spk_sig"])), ev["spk_sig"])

    bundle = doc["bundle_bob"]
    keys_in_order("bundle_bob", bundle, ["ik", "sik", "spk", "spk_sign"])
    for k in ("ik", "sik", "spk"):
        expect("bundle_bob." + k, b64(bytes.fromhex(bob[k + "_public"])), bundle[k])
    expect("bundle_bob.spk_sign", b64(bytes.fromhex(bob["spk_sig"])), bundle["spk_sign"])

    x = doc["x3dh"]
    ek = x_priv(x["ek_private"])
    ek_pub = raw_public(ek)
    expect("x3dh.ek_public", ek_pub, x["ek_public"])
    ik_a_pub = bytes.fromhex(alice["ik_public"])
    ik_b_pub = bytes.fromhex(bob["ik_public"])
    spk_b_pub = bytes.fromhex(bob["spk_public"])
    # The initiator's side ...
    dh1 = dh(alice["ik_private"], spk_b_pub)
    dh2 = dh(x["ek_private"], ik_b_pub)
    dh3 = dh(x["ek_private"], spk_b_pub)
    # ... and the responder's.
    expect("x3dh.dh1 (responder)", dh(bob["spk_private"], ik_a_pub), dh1.hex())
    expect("x3dh.dh2 (responder)", dh(bob["ik_private"], ek_pub), dh2.hex())
    expect("x3dh.dh3 (responder)", dh(bob["spk_private"], ek_pub), dh3.hex())
    expect("x3dh.dh1", dh1, x["dh1"])
    expect("x3dh.dh2", dh2, x["dh2"])
    expect("x3dh.dh3", dh3, x["dh3"])
    sk = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3, b"\x00" * 32, b"extended_triple_diffie_hellman", 32)
    expect("x3dh.sk", sk, x["sk"])
    ad = (b64(ik_a_pub) + b64(ik_b_pub)).encode("ascii")
    expect("x3dh.ad", ad.decode("ascii"), x["ad"])
    expect("x3dh.ad length", 88, len(ad))
    enc, auth, iv = payload_keys(sk, b"X3DH")
    expect("x3dh.enc_key", enc, x["enc_key"])
    expect("x3dh.auth_key", auth, x["auth_key"])
    expect("x3dh.iv", iv, x["iv"])
    expect("x3dh.plaintext", "##CHAT_START##", x["plaintext"])
    padded = pad32(b"##CHAT_START##")
    expect("x3dh.padded_plaintext", padded, x["padded_plaintext"])
    expect("x3dh.padded_ad", pad32(ad), x["padded_ad"])
    expect("x3dh.padded_ad length", 96, len(pad32(ad)))
    ct = aes_cbc(enc, iv, padded, True)
    expect("x3dh.cipher", ct, x["cipher"])
    mac = hmac256(auth, pad32(ad) + ct)
    expect("x3dh.hmac", mac, x["hmac"])
    # The responder's way: verify, decrypt, un-pad.
    h = hmac.HMAC(auth, hashes.SHA256())
    h.update(pad32(ad) + bytes.fromhex(x["cipher"]))
    try:
        h.verify(bytes.fromhex(x["hmac"]))
    except InvalidSignature:
        raise Mismatch("x3dh.hmac: does not verify")
    expect("x3dh.cipher (decrypted)", b"##CHAT_START##", unpad32(aes_cbc(enc, iv, bytes.fromhex(x["cipher"]), False)))

    ev = doc["x3dh_message"]
    keys_in_order("x3dh_message", ev, ["username", "from", "ik", "epk", "cipher", "hmac"])
    expect("x3dh_message.username", "bob", ev["username"])
    expect("x3dh_message.from", "alice", ev["from"])
    expect("x3dh_message.ik", b64(ik_a_pub), ev["ik"])
    expect("x3dh_message.epk", b64(ek_pub), ev["epk"])
    expect("x3dh_message.cipher", b64(ct), ev["cipher"])
    expect("x3dh_message.hmac", b64(mac), ev["hmac"])

    kl = doc["keylog"]
    expect("keylog.label", "SIGNAL_X3DH_SK", kl["label"])
    expect("keylog.id", ek_pub, kl["id"])
    expect("keylog.secret", sk, kl["secret"])
    return {"sk": sk, "ad": ad, "spk_b_private": bob["spk_private"], "spk_b_public": spk_b_pub}


# ---- ratchet.json ----------------------------------------------------------------


def kdf_rk(rk, dh_out):
    out = hkdf(dh_out, rk, b"kdf_rk_info", 64)
    return out[:32], out[32:]


def kdf_ck(ck):
    return hmac256(ck, b"\x02"), hmac256(ck, b"\x01")  # (next chain key, message key)


class State:
    def __init__(self, dhs_private, dhr, rk, cks, ckr):
        self.dhs = dhs_private  # hex of the private key
        self.dhr = dhr
        self.rk = rk
        self.cks = cks
        self.ckr = ckr
        self.ns = self.nr = self.pn = 0
        self.skipped = {}  # (dh, n) -> mk, in insertion order

    def dhs_public(self):
        return raw_public(x_priv(self.dhs))


def compare_state(path, s, stated):
    expect(path + ".dhs_private", bytes.fromhex(s.dhs), stated["dhs_private"])
    expect(path + ".dhs_public", s.dhs_public(), stated["dhs_public"])
    for name in ("dhr", "cks", "ckr"):
        expect(path + "." + name, getattr(s, name), stated[name])  # None is JSON null
    expect(path + ".rk", s.rk, stated["rk"])
    expect(path + ".ns", s.ns, stated["ns"])
    expect(path + ".nr", s.nr, stated["nr"])
    expect(path + ".pn", s.pn, stated["pn"])
    mine = [{"dh": d.hex(), "n": n, "mk": mk.hex()} for (d, n), mk in s.skipped.items()]
    expect(path + ".skipped", mine, stated["skipped"])


def skip_keys(s, until):
    if s.nr + MAX_SKIP < until:
        raise Mismatch("too many skipped messages")
    if s.ckr is not None:
        while s.nr < until:
            s.ckr, mk = kdf_ck(s.ckr)
            s.skipped[(s.dhr, s.nr)] = mk
            s.nr += 1


def check_ratchet(doc, x3dh):
    expect("max_skip", MAX_SKIP, doc["max_skip"])
    for i, row in enumerate(doc["counter_encoding"]):
        path = f"counter_encoding[{i}]"
        b = counter_bytes(row["value"])
        expect(path + ".bytes", b, row["bytes"])
        expect(path + ".b64", b64(b), row["b64"])
        expect(path + " decodes", row["value"], int.from_bytes(bytes.fromhex(row["bytes"]), "big"))
    # The table of 5.6.
    for value, hexs in ((0, ""), (1, "01"), (2, "0002"), (3, "0003"), (4, "000004"), (7, "000007"), (8, "00000008")):
        expect(f"counter {value} (PROTOCOLS.md 5.6)", counter_bytes(value).hex(), hexs)
    expect("counter 255 length", 8, len(counter_bytes(255)))
    expect("counter 256 length", 9, len(counter_bytes(256)))

    init = doc["initial"]
    expect("initial.sk", x3dh["sk"], init["sk"])
    expect("initial.ad", x3dh["ad"].decode("ascii"), init["ad"])
    expect("initial.spk_b_private", bytes.fromhex(x3dh["spk_b_private"]), init["spk_b_private"])
    expect("initial.spk_b_public", x3dh["spk_b_public"], init["spk_b_public"])
    sk, ad, spk_b = x3dh["sk"], x3dh["ad"], x3dh["spk_b_public"]

    # Sender init (A): DHs new, DHr = SPK_B, (RK, CKs) = KDF_RK(SK, DH(DHs, SPK_B)).
    a_dhs = init["alice"]["dhs_private"]
    rk, cks = kdf_rk(sk, dh(a_dhs, spk_b))
    states = {
        "alice": State(a_dhs, spk_b, rk, cks, None),
        # Receiver init (B): DHs = SPK_B, RK = SK, no chains.
        "bob": State(x3dh["spk_b_private"], None, sk, None, None),
    }
    compare_state("initial.alice", states["alice"], init["alice"])
    compare_state("initial.bob", states["bob"], init["bob"])

    sent = []
    for i, step in enumerate(doc["steps"]):
        path = f"steps[{i}]"
        if step["op"] == "send":
            sender = step["from"]
            to = "bob" if sender == "alice" else "alice"
            s = states[sender]
            expect(path + ".message", len(sent), step["message"])
            expect(path + ".dhs_private", bytes.fromhex(s.dhs), step["dhs_private"])
            expect(path + ".dhs_public", s.dhs_public(), step["dhs_public"])
            expect(path + ".rk", s.rk, step["rk"])
            expect(path + ".cks_before", s.cks, step["cks_before"])
            s.cks, mk = kdf_ck(s.cks)
            expect(path + ".cks_after", s.cks, step["cks_after"])
            expect(path + ".mk", mk, step["mk"])
            enc, auth, iv = payload_keys(mk, b"encrypt_info_kdf")
            expect(path + ".enc_key", enc, step["enc_key"])
            expect(path + ".auth_key", auth, step["auth_key"])
            expect(path + ".iv", iv, step["iv"])
            hdh, pn, n = s.dhs_public(), counter_bytes(s.pn), counter_bytes(s.ns)
            hd = step["header"]
            expect(path + ".header.dh", hdh, hd["dh"])
            expect(path + ".header.pn", s.pn, hd["pn"])
            expect(path + ".header.n", s.ns, hd["n"])
            expect(path + ".header.pn_bytes", pn, hd["pn_bytes"])
            expect(path + ".header.n_bytes", n, hd["n_bytes"])
            s.ns += 1
            plaintext = step["plaintext"].encode("utf-8")
            padded = pad32(plaintext)
            expect(path + ".padded_plaintext", padded, step["padded_plaintext"])
            ct = aes_cbc(enc, iv, padded, True)
            expect(path + ".cipher", ct, step["cipher"])
            prefix = pad32(ad + hdh + pn + n)
            expect(path + ".mac_prefix", prefix, step["mac_prefix"])
            mac = hmac256(auth, prefix + ct)
            expect(path + ".hmac", mac, step["hmac"])
            ev = step["ratchet_msg"]
            keys_in_order(path + ".ratchet_msg", ev, ["username", "cipher", "header", "hmac", "from"])
            keys_in_order(path + ".ratchet_msg.header", ev["header"], ["dh", "pn", "n"])
            expect(path + ".ratchet_msg.username", to, ev["username"])
            expect(path + ".ratchet_msg.from", sender, ev["from"])
            expect(path + ".ratchet_msg.cipher", b64(ct), ev["cipher"])
            expect(path + ".ratchet_msg.hmac", b64(mac), ev["hmac"])
            expect(path + ".ratchet_msg.header.dh", b64(hdh), ev["header"]["dh"])
            expect(path + ".ratchet_msg.header.pn", b64(pn), ev["header"]["pn"])
            expect(path + ".ratchet_msg.header.n", b64(n), ev["header"]["n"])
            kl = step["keylog"]
            expect(path + ".keylog.label", "SIGNAL_MESSAGE_KEY", kl["label"])
            expect(path + ".keylog.id", hdh + (s.ns - 1).to_bytes(8, "big"), kl["id"])
            expect(path + ".keylog.secret", mk, kl["secret"])
            # What travels is what the event says.
            sent.append({
                "to": to,
                "plaintext": plaintext,
                "dh": base64.standard_b64decode(ev["header"]["dh"]),
                "pn": base64.standard_b64decode(ev["header"]["pn"]),
                "n": base64.standard_b64decode(ev["header"]["n"]),
                "cipher": base64.standard_b64decode(ev["cipher"]),
                "hmac": base64.standard_b64decode(ev["hmac"]),
            })
        elif step["op"] == "deliver":
            m = sent[step["message"]]
            expect(path + ".to", m["to"], step["to"])
            s = states[m["to"]]
            compare_state(path + ".before", s, step["before"])
            n = int.from_bytes(m["n"], "big")
            pn = int.from_bytes(m["pn"], "big")
            from_skipped = (m["dh"], n) in s.skipped
            dh_step = False
            if from_skipped:
                mk = s.skipped.pop((m["dh"], n))
            else:
                if m["dh"] != s.dhr:
                    dh_step = True
                    skip_keys(s, pn)
                    s.pn, s.ns, s.nr = s.ns, 0, 0
                    s.dhr = m["dh"]
                    s.rk, s.ckr = kdf_rk(s.rk, dh(s.dhs, s.dhr))
                    # The new ratchet key is random: the file states it.
                    s.dhs = step["after"]["dhs_private"]
                    s.rk, s.cks = kdf_rk(s.rk, dh(s.dhs, s.dhr))
                skip_keys(s, n)
                s.ckr, mk = kdf_ck(s.ckr)
                s.nr += 1
            expect(path + ".from_skipped", from_skipped, step["from_skipped"])
            expect(path + ".dh_step", dh_step, step["dh_step"])
            expect(path + ".mk", mk, step["mk"])
            enc, auth, iv = payload_keys(mk, b"encrypt_info_kdf")
            h = hmac.HMAC(auth, hashes.SHA256())
            h.update(pad32(ad + m["dh"] + m["pn"] + m["n"]) + m["cipher"])
            try:
                h.verify(m["hmac"])
            except InvalidSignature:
                raise Mismatch(path + ": the MAC does not verify")
            plaintext = unpad32(aes_cbc(enc, iv, m["cipher"], False))
            expect(path + ".plaintext (decrypted)", m["plaintext"], plaintext)
            expect(path + ".plaintext", plaintext.decode("utf-8"), step["plaintext"])
            compare_state(path + ".after", s, step["after"])
        else:
            raise Mismatch(path + ".op: unknown " + repr(step["op"]))
    return len(doc["steps"]), len(sent)


def main(argv):
    if len(argv) != 3:
        print("usage: signal_vectors.py x3dh.json ratchet.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            x3dh_doc = json.load(f)
        with open(argv[2], encoding="utf-8") as f:
            ratchet_doc = json.load(f)
        x3dh = check_x3dh(x3dh_doc)
        steps, messages = check_ratchet(ratchet_doc, x3dh)
    except Mismatch as e:
        print(f"mismatch: {e}")
        return 1
    except (KeyError, IndexError, TypeError, ValueError) as e:
        print(f"mismatch: malformed vectors: {type(e).__name__}: {e}")
        return 1
    print(f"ok: x3dh.json and ratchet.json ({steps} steps, {messages} messages) recomputed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
