// Signal-style chat's cryptography (PROTOCOLS.md 5.4 to 5.6): counters,
// padding, X3DH, the Double Ratchet in the clean mode and with the
// original's flaws, state serialisation, and the event payloads (5.3).
#include <algorithm>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"
#include "tests/support.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

Key32 key_of(std::uint8_t fill) {
    Key32 k;
    k.fill(fill);
    return k;
}

Bytes b(std::string_view s) { return to_bytes(s); }

// Alice and Bob after X3DH, Alice's ratchet opened, Bob's waiting.
struct Pair {
    DeterministicRng rng;
    Identity alice_id, bob_id;
    X3dhInitiation init;
    std::optional<Ratchet> alice, bob;

    explicit Pair(std::uint64_t seed = 1) : rng(seed) {
        alice_id = Identity::generate(rng);
        bob_id = Identity::generate(rng);
        init = x3dh_initiate(alice_id, bob_id.bundle(), rng).value();
        auto acc = x3dh_respond(bob_id, alice_id.ik.public_key, init.ek.public_key, init.cipher, init.mac).value();
        alice = Ratchet::initiator(init.sk, bob_id.spk.public_key, init.ad, rng);
        bob = Ratchet::responder(acc.sk, bob_id.spk, acc.ad, rng);
    }
};

RatchetMessage send(Ratchet& r, std::string_view text) { return r.encrypt(as_bytes(text)).value().message; }

std::string open(Ratchet& r, const RatchetMessage& m, DecryptOptions o = {}) {
    auto d = r.decrypt(m, o);
    INFO("status " << decrypt_status_name(d.status));
    REQUIRE(d.ok());
    return to_string(d.plaintext);
}

}  // namespace

TEST_CASE("signal: the X3DH SK test vector of 5.5") {
    Key32 two = key_of(0x02);
    CHECK(hex(x3dh_secret(two, two, two)) == "747ad7a2f94eb5920297442a74ba90928c99662b85a116105c7812457af3a3bd");
}

TEST_CASE("signal: pn and n are big-endian in bit-length bytes") {
    struct Row {
        std::uint64_t value;
        const char* hex;
    };
    for (Row r : {Row{0, ""}, Row{1, "01"}, Row{2, "0002"}, Row{3, "0003"}, Row{4, "000004"}, Row{7, "000007"},
                  Row{8, "00000008"}, Row{255, "00000000000000ff"}, Row{256, "000000000000000100"}}) {
        INFO(r.value);
        CHECK(hex(encode_counter(r.value)) == r.hex);
        CHECK(decode_counter(unhex(r.hex)) == r.value);
    }
    CHECK(encode_counter(UINT64_MAX).size() == 64);
    // Lenient decoding: any leading zeros, as int.from_bytes.
    CHECK(decode_counter(unhex("0000000000000000000000000005")) == 5u);
    CHECK(decode_counter(unhex("05")) == 5u);
    CHECK(decode_counter(Bytes(64, 0)) == 0u);
    CHECK_FALSE(decode_counter(Bytes(65, 0)));
    CHECK(decode_counter(unhex("7fffffffffffffff")) == kMaxCounter);
    CHECK_FALSE(decode_counter(unhex("8000000000000000")));
    CHECK_FALSE(decode_counter(unhex("010000000000000000")));
    CHECK(decode_counter(unhex("00007fffffffffffffff")) == kMaxCounter);
}

TEST_CASE("signal: PKCS#7 with a 32-byte block") {
    CHECK(pkcs7_pad32({}) == Bytes(32, 32));
    Bytes x = b("abc");
    Bytes p = pkcs7_pad32(x);
    REQUIRE(p.size() == 32);
    CHECK(p[31] == 29);
    CHECK(pkcs7_unpad32(p) == x);
    Bytes full(32, 'a');
    CHECK(pkcs7_pad32(full).size() == 64);
    CHECK(pkcs7_unpad32(pkcs7_pad32(full)) == full);
    Bytes odd(33, 'a');
    CHECK(pkcs7_pad32(odd).size() == 64);
    // Strict un-padding.
    CHECK_FALSE(pkcs7_unpad32({}));
    CHECK_FALSE(pkcs7_unpad32(Bytes(16, 16)));  // a 16-byte block is not a 32-byte one
    CHECK_FALSE(pkcs7_unpad32(Bytes(31, 1)));
    Bytes zero(32, 0);
    CHECK_FALSE(pkcs7_unpad32(zero));
    Bytes big(32, 33);
    CHECK_FALSE(pkcs7_unpad32(big));
    Bytes mixed = pkcs7_pad32(b("abc"));
    mixed[10] = 28;  // one pad byte wrong
    CHECK_FALSE(pkcs7_unpad32(mixed));
    CHECK(pkcs7_unpad32(Bytes(32, 32)) == Bytes{});
}

TEST_CASE("signal: the bundle signature and AD") {
    DeterministicRng rng(3);
    Identity id = Identity::generate(rng);
    Bundle bundle = id.bundle();
    CHECK(bundle.signature_valid());
    bundle.spk[0] ^= 1;
    CHECK_FALSE(bundle.signature_valid());
    Identity again = Identity::from_private(id.ik.private_key, id.sik.seed, id.spk.private_key);
    CHECK(again.ik.public_key == id.ik.public_key);
    CHECK(again.spk_sig == id.spk_sig);  // Ed25519 is deterministic
    Bytes ad = associated_data(key_of(0), key_of(0xff));
    CHECK(ad.size() == kAdBytes);
    CHECK(to_string(ad) == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=//////////////////////////////////////////8=");
}

TEST_CASE("signal: X3DH both ways") {
    DeterministicRng rng(2);
    Identity alice = Identity::generate(rng);
    Identity bob = Identity::generate(rng);
    auto init = x3dh_initiate(alice, bob.bundle(), rng);
    REQUIRE(init.ok());
    CHECK(init->cipher.size() == 32);
    CHECK(init->ad.size() == 88);

    SECTION("the responder derives the same keys and the constant") {
        auto acc = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, init->cipher, init->mac);
        REQUIRE(acc.ok());
        CHECK(acc->sk == init->sk);
        CHECK(acc->dh1 == init->dh1);
        CHECK(acc->dh2 == init->dh2);
        CHECK(acc->dh3 == init->dh3);
        CHECK(acc->ad == init->ad);
        CHECK(to_string(acc->plaintext) == "##CHAT_START##");
        CHECK(acc->expected_plaintext);
    }
    SECTION("a fixed ephemeral key gives the same message twice") {
        auto a = x3dh_initiate(alice, bob.bundle(), rng, key_of(0x41));
        auto b2 = x3dh_initiate(alice, bob.bundle(), rng, key_of(0x41));
        REQUIRE(a.ok());
        REQUIRE(b2.ok());
        CHECK(a->mac == b2->mac);
        CHECK(a->ek.private_key == key_of(0x41));
    }
    SECTION("a wrong MAC is refused") {
        Mac mac = init->mac;
        mac[31] ^= 0x80;
        auto acc = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, init->cipher, mac);
        REQUIRE_FALSE(acc.ok());
        CHECK(acc.error() == X3dhError::bad_mac);
        auto shortmac = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, init->cipher,
                                     ByteView(init->mac).first(31));
        REQUIRE_FALSE(shortmac.ok());
        CHECK(shortmac.error() == X3dhError::bad_length);
    }
    SECTION("a MAC over another AD is refused") {
        // The right keys, but AD in the other order (responder first).
        Bytes wrong_ad = associated_data(bob.ik.public_key, alice.ik.public_key);
        Bytes data = pkcs7_pad32(wrong_ad);
        data.insert(data.end(), init->cipher.begin(), init->cipher.end());
        Mac mac = crypto::hmac_sha256(init->keys.auth_key, data);
        auto acc = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, init->cipher, mac);
        REQUIRE_FALSE(acc.ok());
        CHECK(acc.error() == X3dhError::bad_mac);
        // A claimed identity key that is not the initiator's changes AD and DH1.
        Identity mallory = Identity::generate(rng);
        auto acc2 = x3dh_respond(bob, mallory.ik.public_key, init->ek.public_key, init->cipher, init->mac);
        REQUIRE_FALSE(acc2.ok());
        CHECK(acc2.error() == X3dhError::bad_mac);
    }
    SECTION("a tampered epk or cipher is refused") {
        Key32 epk = init->ek.public_key;
        epk[5] ^= 1;
        auto acc = x3dh_respond(bob, alice.ik.public_key, epk, init->cipher, init->mac);
        REQUIRE_FALSE(acc.ok());
        CHECK(acc.error() == X3dhError::bad_mac);
        Bytes ct = init->cipher;
        ct[0] ^= 1;
        auto acc2 = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, ct, init->mac);
        REQUIRE_FALSE(acc2.ok());
        CHECK(acc2.error() == X3dhError::bad_mac);
        auto acc3 = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, ByteView(init->cipher).first(17),
                                 init->mac);
        REQUIRE_FALSE(acc3.ok());
        CHECK(acc3.error() == X3dhError::bad_length);
    }
    SECTION("a low-order epk is refused") {
        auto acc = x3dh_respond(bob, alice.ik.public_key, key_of(0), init->cipher, init->mac);
        REQUIRE_FALSE(acc.ok());
        CHECK(acc.error() == X3dhError::bad_key);
    }
    SECTION("a bundle with a bad signature is refused unless told otherwise") {
        Bundle bad = bob.bundle();
        bad.spk_sig[0] ^= 1;
        auto r = x3dh_initiate(alice, bad, rng);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == X3dhError::bad_signature);
        CHECK(x3dh_initiate(alice, bad, rng, std::nullopt, false).ok());
    }
    SECTION("a valid MAC over another plaintext is reported") {
        Bytes ct = crypto::aes_cbc_encrypt_raw(init->keys.enc_key, init->keys.iv, pkcs7_pad32(b("hello")));
        Bytes data = pkcs7_pad32(init->ad);
        data.insert(data.end(), ct.begin(), ct.end());
        Mac mac = crypto::hmac_sha256(init->keys.auth_key, data);
        auto acc = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, ct, mac);
        REQUIRE(acc.ok());
        CHECK_FALSE(acc->expected_plaintext);
        // And a valid MAC over a cipher that is not padded.
        Bytes raw = crypto::aes_cbc_encrypt_raw(init->keys.enc_key, init->keys.iv, Bytes(32, 0));
        data = pkcs7_pad32(init->ad);
        data.insert(data.end(), raw.begin(), raw.end());
        mac = crypto::hmac_sha256(init->keys.auth_key, data);
        auto bad = x3dh_respond(bob, alice.ik.public_key, init->ek.public_key, raw, mac);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error() == X3dhError::bad_padding);
    }
}

TEST_CASE("signal: a conversation with DH steps, out-of-order and skipped messages") {
    Pair p;
    Ratchet& a = *p.alice;
    Ratchet& bob = *p.bob;
    auto a0 = send(a, "a0"), a1 = send(a, "a1"), a2 = send(a, "a2");
    CHECK(a0.header.n == 0);
    CHECK(a2.header.n == 2);
    CHECK(hex(a2.header.n_bytes) == "0002");
    CHECK(open(bob, a0) == "a0");  // bob's first DH step
    auto d2 = bob.decrypt(a2);
    REQUIRE(d2.ok());
    CHECK(d2.dh_step == false);
    CHECK(bob.state().skipped.size() == 1);  // a1's key
    auto b0 = send(bob, "b0"), b1 = send(bob, "b1");
    CHECK(b0.header.dh != a0.header.dh);
    CHECK(open(a, b1) == "b1");  // alice's first DH step, b0 skipped
    auto d1 = bob.decrypt(a1);
    REQUIRE(d1.ok());
    CHECK(d1.from_skipped);
    CHECK(to_string(d1.plaintext) == "a1");
    CHECK(bob.state().skipped.empty());
    auto a3 = send(a, "a3");
    CHECK(a3.header.pn == 3);
    CHECK(hex(a3.header.pn_bytes) == "0003");
    CHECK(open(a, b0) == "b0");
    CHECK(open(bob, a3) == "a3");  // bob's second step
    // Several more round trips, each a DH step on both sides.
    std::vector<Key32> dhs;
    for (int i = 0; i < 4; ++i) {
        auto m = send(bob, "ping " + std::to_string(i));
        dhs.push_back(m.header.dh);
        CHECK(open(a, m) == "ping " + std::to_string(i));
        auto r = send(a, "pong " + std::to_string(i));
        dhs.push_back(r.header.dh);
        CHECK(open(bob, r) == "pong " + std::to_string(i));
    }
    std::sort(dhs.begin(), dhs.end());
    CHECK(std::unique(dhs.begin(), dhs.end()) == dhs.end());  // a new ratchet key every time
    // A message skipped across a DH step (through pn) opens later.
    auto late = send(a, "late");
    auto next = send(a, "next");
    CHECK(open(bob, next) == "next");
    auto reply = send(bob, "reply");
    CHECK(open(a, reply) == "reply");
    auto after = send(a, "after");
    CHECK(open(bob, after) == "after");
    CHECK(open(bob, late) == "late");
    // UTF-8, empty and long plaintexts.
    for (std::string text : {std::string(), std::string("Gr\u00fc\u00dfe \u2713"), std::string(1000, 'x')}) {
        auto m = send(a, text);
        CHECK(m.cipher.size() == (text.size() / 32 + 1) * 32);
        CHECK(open(bob, m) == text);
    }
}

TEST_CASE("signal: MAX_SKIP allows 10 skipped messages and refuses 11") {
    for (int skipped : {10, 11}) {
        Pair p(7);
        Ratchet& a = *p.alice;
        Ratchet& bob = *p.bob;
        CHECK(open(bob, send(a, "first")) == "first");
        std::vector<RatchetMessage> held;
        for (int i = 0; i < skipped; ++i) held.push_back(send(a, "held " + std::to_string(i)));
        auto last = send(a, "last");
        auto before = bob.state();
        auto d = bob.decrypt(last);
        if (skipped == 10) {
            REQUIRE(d.ok());
            CHECK(bob.state().skipped.size() == 10);
            for (int i = 9; i >= 0; --i) CHECK(open(bob, held[static_cast<std::size_t>(i)]) == "held " + std::to_string(i));
        } else {
            CHECK(d.status == DecryptStatus::too_many_skipped);
            CHECK(bob.state() == before);
            CHECK(open(bob, held[0]) == "held 0");  // the session goes on
        }
    }
    SECTION("also through pn at a DH step") {
        Pair p(8);
        Ratchet& a = *p.alice;
        Ratchet& bob = *p.bob;
        CHECK(open(bob, send(a, "first")) == "first");
        for (int i = 0; i < 11; ++i) send(a, "lost");
        CHECK(open(a, send(bob, "turn")) == "turn");
        auto m = send(a, "new chain");
        CHECK(m.header.pn == 12);
        auto d = bob.decrypt(m);
        CHECK(d.status == DecryptStatus::too_many_skipped);
        CHECK(d.dh_step);
    }
}

TEST_CASE("signal: clean mode leaves the state unchanged after forged messages") {
    Pair p(11);
    Ratchet& a = *p.alice;
    Ratchet& bob = *p.bob;
    CHECK(open(bob, send(a, "hello")) == "hello");
    CHECK(open(a, send(bob, "hi")) == "hi");
    auto genuine = send(a, "genuine");
    const RatchetState before = bob.state();

    DeterministicRng mallory(99);
    SECTION("a fresh dh with a bad MAC") {
        RatchetMessage forged = genuine;
        forged.header = Header::make(crypto::x25519_generate(mallory).public_key, 0, 0);
        auto d = bob.decrypt(forged);
        CHECK(d.status == DecryptStatus::bad_mac);
        CHECK(d.dh_step);
        CHECK_FALSE(d.state_changed);
        CHECK(bob.state() == before);
    }
    SECTION("a large n with a bad MAC") {
        RatchetMessage forged = genuine;
        forged.header = Header::make(genuine.header.dh, genuine.header.pn, 10);
        auto d = bob.decrypt(forged);
        CHECK(d.status == DecryptStatus::bad_mac);
        CHECK(bob.state() == before);
    }
    SECTION("a tampered cipher, MAC, or counter bytes") {
        RatchetMessage t1 = genuine;
        t1.cipher[3] ^= 1;
        CHECK(bob.decrypt(t1).status == DecryptStatus::bad_mac);
        RatchetMessage t2 = genuine;
        t2.hmac[0] ^= 1;
        CHECK(bob.decrypt(t2).status == DecryptStatus::bad_mac);
        RatchetMessage t3 = genuine;
        t3.hmac.pop_back();
        CHECK(bob.decrypt(t3).status == DecryptStatus::bad_mac);
        // The same n with a leading zero byte: another MAC input.
        RatchetMessage t4 = genuine;
        t4.header = *Header::from_wire(genuine.header.dh, genuine.header.pn_bytes, unhex("00"));
        CHECK(bob.decrypt(t4).status == DecryptStatus::bad_mac);
        CHECK(bob.state() == before);
    }
    SECTION("a low-order dh") {
        RatchetMessage forged = genuine;
        forged.header = Header::make(key_of(0), 0, 0);
        CHECK(bob.decrypt(forged).status == DecryptStatus::bad_key);
        CHECK(bob.state() == before);
    }
    SECTION("a replay") {
        CHECK(open(bob, genuine) == "genuine");
        const RatchetState after = bob.state();
        auto d = bob.decrypt(genuine);
        CHECK(d.status == DecryptStatus::bad_mac);
        CHECK(bob.state() == after);
        auto again = send(a, "again");
        CHECK(open(bob, again) == "again");
        return;
    }
    // Whatever was refused, the genuine message still opens and the
    // conversation goes on.
    CHECK(open(bob, genuine) == "genuine");
    CHECK(open(a, send(bob, "still here")) == "still here");
}

TEST_CASE("signal: commit_before_mac desynchronises the session") {
    DecryptOptions original;
    original.commit_before_mac = true;
    Pair p(12);
    Ratchet& a = *p.alice;
    Ratchet& bob = *p.bob;
    CHECK(open(bob, send(a, "hello"), original) == "hello");
    CHECK(open(a, send(bob, "hi"), original) == "hi");
    auto genuine = send(a, "genuine");
    const RatchetState before = bob.state();

    SECTION("a forged message with a fresh dh") {
        DeterministicRng mallory(5);
        RatchetMessage forged = genuine;
        forged.header = Header::make(crypto::x25519_generate(mallory).public_key, 0, 0);
        auto d = bob.decrypt(forged, original);
        CHECK(d.status == DecryptStatus::bad_mac);
        CHECK(d.state_changed);
        CHECK(bob.state().dhr == forged.header.dh);
        // Bob's chains now belong to Mallory's key: the genuine message
        // causes another DH step against the wrong root key and fails.
        CHECK(bob.decrypt(genuine, original).status == DecryptStatus::bad_mac);
        // Bob's next messages are under a chain Alice cannot follow.
        auto reply = send(bob, "lost");
        CHECK_FALSE(a.decrypt(reply).ok());
    }
    SECTION("a forged message with a large n") {
        RatchetMessage forged = genuine;
        forged.header = Header::make(genuine.header.dh, genuine.header.pn, 5);
        auto d = bob.decrypt(forged, original);
        CHECK(d.status == DecryptStatus::bad_mac);
        CHECK(d.state_changed);
        CHECK(bob.state().nr == 6);  // the receiving chain moved past n = 5
        // n = 0..4 open from the keys the forgery made Bob store ...
        CHECK(open(bob, genuine, original) == "genuine");
        for (int i = 1; i < 5; ++i) CHECK(open(bob, send(a, "m"), original) == "m");
        // ... but n = 5's key was spent on the forgery: Alice's real one is lost.
        auto fifth = send(a, "lost");
        CHECK(fifth.header.n == 5);
        CHECK(bob.decrypt(fifth, original).status == DecryptStatus::bad_mac);
    }
    SECTION("a replay advances the chain") {
        CHECK(open(bob, genuine, original) == "genuine");
        CHECK(bob.decrypt(genuine, original).status == DecryptStatus::bad_mac);
        // The replay consumed n = 1's key: Alice's real n = 1 is lost.
        auto next = send(a, "next");
        CHECK(next.header.n == 1);
        CHECK(bob.decrypt(next, original).status == DecryptStatus::bad_mac);
        // The clean mode would have kept it.
    }
    SECTION("the same replay in the clean mode") {
        CHECK(open(bob, genuine) == "genuine");
        CHECK(bob.decrypt(genuine).status == DecryptStatus::bad_mac);
        CHECK(open(bob, send(a, "next")) == "next");
    }
    CHECK_FALSE(bob.state() == before);
}

TEST_CASE("signal: padded_skipped_plaintext returns the padding") {
    Pair p(13);
    Ratchet& a = *p.alice;
    Ratchet& bob = *p.bob;
    auto m0 = send(a, "skipped one");
    auto m1 = send(a, "in order");
    CHECK(open(bob, m1) == "in order");
    DecryptOptions original;
    original.padded_skipped_plaintext = true;
    SECTION("the original") {
        auto d = bob.decrypt(m0, original);
        REQUIRE(d.ok());
        CHECK(d.from_skipped);
        CHECK(d.plaintext == pkcs7_pad32(b("skipped one")));
        // Messages in order are un-padded even then.
        CHECK(open(bob, send(a, "third"), original) == "third");
    }
    SECTION("clean") {
        auto d = bob.decrypt(m0);
        REQUIRE(d.ok());
        CHECK(to_string(d.plaintext) == "skipped one");
    }
}

TEST_CASE("signal: the responder cannot encrypt before receiving") {
    Pair p(14);
    CHECK(p.alice->can_send());
    CHECK_FALSE(p.bob->can_send());
    const RatchetState before = p.bob->state();
    auto r = p.bob->encrypt(as_bytes("too early"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == SendError::not_ready);
    CHECK(p.bob->state() == before);
    CHECK(open(*p.bob, send(*p.alice, "x")) == "x");
    CHECK(p.bob->can_send());
    CHECK(p.bob->encrypt(Bytes(kMaxPlaintext + 1, 'a')).error() == SendError::too_long);
    // A message under SPK_B (the initiator's DHr before any reply) has no
    // receiving chain on the initiator's side.
    RatchetMessage odd = send(*p.bob, "y");
    odd.header = Header::make(p.bob_id.spk.public_key, 0, 0);
    const RatchetState alice_before = p.alice->state();
    CHECK(p.alice->decrypt(odd).status == DecryptStatus::bad_mac);
    CHECK(p.alice->state() == alice_before);
}

TEST_CASE("signal: message keys and key log ids") {
    Pair p(15);
    auto sealed = p.alice->encrypt(as_bytes("k")).value();
    auto d = p.bob->decrypt(sealed.message);
    REQUIRE(d.ok());
    REQUIRE(d.mk);
    CHECK(*d.mk == sealed.mk);
    CHECK(d.keys->enc_key == sealed.keys.enc_key);
    CHECK(derive_payload_keys(sealed.mk, kMessageInfo).iv == sealed.keys.iv);
    Bytes id = keylog_id(sealed.message.header.dh, 0x0102);
    REQUIRE(id.size() == 40);
    CHECK(std::equal(id.begin(), id.begin() + 32, sealed.message.header.dh.begin()));
    CHECK(hex(ByteView(id).subspan(32)) == "0000000000000102");
    CHECK(keylog_x3dh_id(p.init.ek.public_key) == Bytes(p.init.ek.public_key.begin(), p.init.ek.public_key.end()));
    // The chain KDF of 5.6.
    auto [ck, mk] = kdf_ck(key_of(1));
    const std::uint8_t one = 1, two = 2;
    CHECK(mk == crypto::hmac_sha256(key_of(1), ByteView(&one, 1)));
    CHECK(ck == crypto::hmac_sha256(key_of(1), ByteView(&two, 1)));
}

TEST_CASE("signal: ratchet state serialisation") {
    Pair p(16);
    Ratchet& a = *p.alice;
    Ratchet& bob = *p.bob;
    send(a, "skip me");
    CHECK(open(bob, send(a, "m")) == "m");
    REQUIRE(bob.state().skipped.size() == 1);
    Bytes blob = bob.serialize();
    auto back = Ratchet::restore(blob, p.rng);
    REQUIRE(back.ok());
    CHECK(back->state() == bob.state());
    CHECK(back->serialize() == blob);
    CHECK(open(*back, send(a, "after restore")) == "after restore");
    auto fresh = Ratchet::restore(Pair(17).bob->serialize(), p.rng);
    REQUIRE(fresh.ok());
    CHECK_FALSE(fresh->can_send());

    SECTION("truncated, trailing or bad bytes are refused") {
        for (std::size_t cut = 0; cut < blob.size(); cut += 7)
            CHECK_FALSE(Ratchet::restore(ByteView(blob).first(cut), p.rng).ok());
        Bytes extra = blob;
        extra.push_back(0);
        auto r = Ratchet::restore(extra, p.rng);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ParseErrc::trailing_bytes);
        Bytes magic = blob;
        magic[0] = 'X';
        CHECK(Ratchet::restore(magic, p.rng).error().code == ParseErrc::bad_magic);
        Bytes flags = blob;
        flags[4] |= 0x80;
        CHECK(Ratchet::restore(flags, p.rng).error().code == ParseErrc::bad_value);
    }
    SECTION("the skipped-key store is bounded, oldest out first") {
        // A state with a full store, then a skip of two more keys.
        Writer w;
        Reader r(blob);
        r.bytes(4);
        std::uint8_t fl = r.u8();
        std::size_t fixed = 4 + 1 + 32 + 32 * (1 + ((fl & 1) != 0) + ((fl & 2) != 0) + ((fl & 4) != 0)) + 24;
        Bytes prefix(blob.begin(), blob.begin() + static_cast<std::ptrdiff_t>(fixed));
        w.bytes(prefix).prefixed(2, bob.state().ad).be16(static_cast<std::uint16_t>(kMaxSkippedKeys));
        for (std::size_t i = 0; i < kMaxSkippedKeys; ++i) w.bytes(key_of(0x33)).be64(i).bytes(key_of(0x44));
        auto full = Ratchet::restore(w.data(), p.rng);
        REQUIRE(full.ok());
        REQUIRE(full->state().skipped.size() == kMaxSkippedKeys);
        send(a, "gap 1");
        send(a, "gap 2");
        CHECK(open(*full, send(a, "beyond")) == "beyond");
        CHECK(full->state().skipped.size() == kMaxSkippedKeys);
        // n = 2, 3, 4 of Alice's chain pushed out the three oldest.
        CHECK(full->state().skipped.front().n == 3);
        Writer over;
        over.bytes(prefix).prefixed(2, bob.state().ad).be16(static_cast<std::uint16_t>(kMaxSkippedKeys + 1));
        CHECK(Ratchet::restore(over.data(), p.rng).error().code == ParseErrc::length_over_limit);
    }
}

TEST_CASE("signal: events round-trip byte for byte") {
    Pair p(18);
    Json reg = register_user_json(register_user("alice", p.alice_id));
    CHECK(reg.dump().rfind("{\"username\":\"alice\",\"ik\":\"", 0) == 0);
    std::vector<std::string> keys;
    for (auto& [k, v] : reg.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"username", "ik", "sik", "spk", "spk_sig"});
    auto r = parse_register_user(reg);
    REQUIRE(r.ok());
    CHECK(r->keys.spk_sig == p.alice_id.spk_sig);
    CHECK(register_user_json(*r).dump() == reg.dump());

    Json bundle = bundle_json(p.bob_id.bundle());
    CHECK(bundle.dump().find("\"spk_sign\":") != std::string::npos);
    auto bb = parse_bundle(bundle);
    REQUIRE(bb.ok());
    CHECK(bb->signature_valid());
    CHECK(bundle_json(*bb).dump() == bundle.dump());

    Json x = x3dh_message_json(x3dh_message("bob", "alice", p.alice_id.ik.public_key, p.init));
    keys.clear();
    for (auto& [k, v] : x.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"username", "from", "ik", "epk", "cipher", "hmac"});
    CHECK(x["cipher"].get<std::string>().size() == 44);
    auto xm = parse_x3dh_message(Json::parse(x.dump()));
    REQUIRE(xm.ok());
    CHECK(xm->epk == p.init.ek.public_key);
    CHECK(x3dh_message_json(*xm).dump() == x.dump());

    auto m = send(*p.alice, "hi");
    Json rm = ratchet_msg_json(ratchet_msg("bob", "alice", m));
    CHECK(rm.dump().find("\"header\":{\"dh\":\"") != std::string::npos);
    CHECK(rm["header"]["pn"] == "");
    CHECK(rm["header"]["n"] == "");
    keys.clear();
    for (auto& [k, v] : rm.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"username", "cipher", "header", "hmac", "from"});
    auto pm = parse_ratchet_msg(Json::parse(rm.dump()));
    REQUIRE(pm.ok());
    CHECK(ratchet_msg_json(*pm).dump() == rm.dump());
    CHECK(open(*p.bob, pm->message) == "hi");
    // A counter with leading zeros keeps its bytes.
    Json lead = rm;
    lead["header"]["n"] = crypto::base64_encode(unhex("0000"));
    auto pl = parse_ratchet_msg(lead);
    REQUIRE(pl.ok());
    CHECK(pl->message.header.n == 0);
    CHECK(hex(pl->message.header.n_bytes) == "0000");
    CHECK(ratchet_msg_json(*pl).dump() == lead.dump());
    // Unicode usernames within the bound.
    Json uni = rm;
    uni["from"] = "\u00e9l\u00e8ve";
    CHECK(parse_ratchet_msg(uni).ok());
}

TEST_CASE("signal: events refuse bad fields") {
    Pair p(19);
    Json x = x3dh_message_json(x3dh_message("bob", "alice", p.alice_id.ik.public_key, p.init));
    auto refuses = [](const Result<X3dhMessage, std::string>& r, const std::string& field) {
        REQUIRE_FALSE(r.ok());
        INFO(r.error());
        CHECK(r.error().find(field) != std::string::npos);
    };
    {
        Json j = x;
        j.erase("epk");
        refuses(parse_x3dh_message(j), "epk: missing");
    }
    {
        Json j = x;
        j["ik"] = 5;
        refuses(parse_x3dh_message(j), "ik: not a string");
    }
    {
        Json j = x;
        j["ik"] = crypto::base64_encode(Bytes(31, 1));
        refuses(parse_x3dh_message(j), "ik: must be base64 of 32 bytes");
    }
    {
        Json j = x;
        std::string s = j["hmac"].get<std::string>();
        s.pop_back();  // padding removed
        j["hmac"] = s;
        refuses(parse_x3dh_message(j), "hmac");
    }
    {
        Json j = x;
        j["epk"] = crypto::base64_encode(Bytes(32, 0xfb), crypto::Base64Alphabet::url);  // url-safe
        refuses(parse_x3dh_message(j), "epk");
    }
    {
        Json j = x;
        j["cipher"] = "AB==";  // non-canonical (stray bits)
        refuses(parse_x3dh_message(j), "cipher");
    }
    {
        Json j = x;
        j["cipher"] = crypto::base64_encode(Bytes(kMaxCipherBytes + 1, 0));
        refuses(parse_x3dh_message(j), "cipher");
        j["cipher"] = crypto::base64_encode(Bytes(kMaxCipherBytes, 0));
        CHECK(parse_x3dh_message(j).ok());
    }
    {
        Json j = x;
        j["from"] = std::string(65, 'a');
        refuses(parse_x3dh_message(j), "from: longer than 64");
        j["from"] = std::string(64, 'a');
        CHECK(parse_x3dh_message(j).ok());
        j["username"] = std::string("\xc3\x28");
        refuses(parse_x3dh_message(j), "username: not valid UTF-8");
    }
    CHECK_FALSE(parse_x3dh_message(Json::array()).ok());
    CHECK_FALSE(parse_x3dh_message(Json("text")).ok());

    auto m = send(*p.alice, "hi");
    Json rm = ratchet_msg_json(ratchet_msg("bob", "alice", m));
    auto refuses_r = [](const Result<RatchetMsg, std::string>& r, const std::string& field) {
        REQUIRE_FALSE(r.ok());
        INFO(r.error());
        CHECK(r.error().find(field) != std::string::npos);
    };
    {
        Json j = rm;
        j["header"] = "x";
        refuses_r(parse_ratchet_msg(j), "header: not a JSON object");
        j.erase("header");
        refuses_r(parse_ratchet_msg(j), "header: missing");
    }
    {
        Json j = rm;
        j["header"]["n"] = crypto::base64_encode(unhex("8000000000000000"));
        refuses_r(parse_ratchet_msg(j), "header.n");
        j["header"]["n"] = crypto::base64_encode(Bytes(65, 0));
        refuses_r(parse_ratchet_msg(j), "header.n");
    }
    {
        Json j = rm;
        j["header"]["pn"] = 0;
        refuses_r(parse_ratchet_msg(j), "header.pn: not a string");
    }
    {
        Json j = rm;
        j["header"]["dh"] = crypto::base64_encode(Bytes(33, 0));
        refuses_r(parse_ratchet_msg(j), "header.dh");
    }
    {
        Json j = rm;
        j["hmac"] = crypto::base64_encode(Bytes(31, 0));
        refuses_r(parse_ratchet_msg(j), "hmac");
    }
    {
        Json reg = register_user_json(register_user("alice", p.alice_id));
        reg["spk_sig"] = crypto::base64_encode(Bytes(32, 0));
        auto r = parse_register_user(reg);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("spk_sig: must be base64 of 64 bytes") != std::string::npos);
        Json bundle = bundle_json(p.bob_id.bundle());
        bundle.erase("spk_sign");
        bundle["spk_sig"] = reg["sik"];  // the register_user spelling
        auto bb = parse_bundle(bundle);
        REQUIRE_FALSE(bb.ok());
        CHECK(bb.error() == "bundle: spk_sign: missing");
    }
}
