// Signal-style chat's parsers and cryptography on any input: the event
// payloads of PROTOCOLS.md 5.3, the pn/n counters and 32-byte PKCS#7 of 5.6,
// arbitrary bytes offered to X3DH and to a ratchet as messages, and the
// ratchet state format. The first byte chooses what the rest is:
//
//   s % 4 == 0  JSON text (nesting at most 16), read as each of
//               register_user, bundle, x3dh_message and ratchet_msg: what one
//               accepts writes back in the original key order, reads back to
//               the same values, and writes the same text again
//   s % 4 == 1  counters and padding: decode_counter of the rest; a value
//               read re-encodes in bit-length bytes and decodes back; the
//               header built from two halves keeps their bytes; pad/unpad
//               round trips both ways, and a strict unpad is what the rule
//               says
//   s % 4 == 2  a message: dh (32), pn (u8 length, bytes), n (u8 length,
//               bytes), hmac (32), cipher (the rest) to a ratchet that has
//               received once (s & 4: to the initiator instead), clean and
//               then the original's way; a forgery never opens, and the
//               clean mode leaves the state as it was. The same bytes as an
//               X3DH message (ik, epk, cipher, hmac) never verify
//   s % 4 == 3  a ratchet state: what restore accepts serializes to the same
//               bytes, and can still encrypt and decrypt without harm
#include <algorithm>
#include <optional>
#include <string>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "fuzz_common.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// The deepest nesting of arrays and objects in JSON text (strings skipped).
std::size_t nesting(std::string_view s) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

// Alice and Bob after X3DH and one message each way, made once.
struct Fixture {
    DeterministicRng rng{0x5167};
    Identity alice_id = Identity::generate(rng);
    Identity bob_id = Identity::generate(rng);
    std::optional<Ratchet> alice, bob;
    Fixture() {
        auto init = x3dh_initiate(alice_id, bob_id.bundle(), rng).value();
        alice = Ratchet::initiator(init.sk, bob_id.spk.public_key, init.ad, rng);
        bob = Ratchet::responder(init.sk, bob_id.spk, init.ad, rng);
        FUZZ_CHECK(bob->decrypt(alice->encrypt(as_bytes("hello")).value().message).ok());
        FUZZ_CHECK(alice->decrypt(bob->encrypt(as_bytes("hi")).value().message).ok());
        // One message held back so the receiver has a skipped key.
        alice->encrypt(as_bytes("held"));
        FUZZ_CHECK(bob->decrypt(alice->encrypt(as_bytes("next")).value().message).ok());
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

template <class T>
void round_trip(const Result<T, std::string>& r, Json (*write)(const T&), Result<T, std::string> (*read)(const Json&)) {
    if (!r) {
        FUZZ_CHECK(!r.error().empty());
        return;
    }
    Json out = write(*r);
    std::string once = out.dump();
    auto again = read(Json::parse(once));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(write(*again).dump() == once);
}

void json_mode(ByteView rest) {
    std::string_view t = text(rest);
    if (nesting(t) > 16) return;
    Json j = Json::parse(t.begin(), t.end(), nullptr, false);
    if (j.is_discarded()) return;
    round_trip<RegisterUser>(parse_register_user(j), register_user_json, parse_register_user);
    round_trip<Bundle>(parse_bundle(j), bundle_json, parse_bundle);
    round_trip<X3dhMessage>(parse_x3dh_message(j), x3dh_message_json, parse_x3dh_message);
    round_trip<RatchetMsg>(parse_ratchet_msg(j), ratchet_msg_json, parse_ratchet_msg);
    if (auto m = parse_ratchet_msg(j)) {
        FUZZ_CHECK(m->message.hmac.size() == 32);
        FUZZ_CHECK(decode_counter(m->message.header.n_bytes) == m->message.header.n);
        FUZZ_CHECK(decode_counter(m->message.header.pn_bytes) == m->message.header.pn);
        FUZZ_CHECK(m->message.cipher.size() <= kMaxCipherBytes);
        FUZZ_CHECK(m->from.size() <= kMaxUsernameBytes && valid_utf8(m->from));
    }
}

void counter_mode(ByteView rest) {
    if (auto v = decode_counter(rest)) {
        FUZZ_CHECK(*v <= kMaxCounter);
        Bytes e = encode_counter(*v);
        std::size_t bits = 0;
        for (std::uint64_t x = *v; x; x >>= 1) ++bits;
        FUZZ_CHECK(e.size() == bits);
        FUZZ_CHECK(decode_counter(e) == v);
        FUZZ_CHECK(rest.size() <= kMaxCounterBytes);
    } else {
        std::size_t lead = 0;
        while (lead < rest.size() && rest[lead] == 0) ++lead;
        FUZZ_CHECK(rest.size() > kMaxCounterBytes || rest.size() - lead >= 8);
    }
    ByteView a = rest.first(rest.size() / 2), b = rest.subspan(rest.size() / 2);
    if (auto h = Header::from_wire(Key32{}, a, b)) {
        FUZZ_CHECK(h->pn_bytes == Bytes(a.begin(), a.end()));
        FUZZ_CHECK(h->n_bytes == Bytes(b.begin(), b.end()));
    }
    Bytes padded = pkcs7_pad32(rest);
    FUZZ_CHECK(padded.size() % 32 == 0 && padded.size() > rest.size() && padded.size() <= rest.size() + 32);
    auto back = pkcs7_unpad32(padded);
    FUZZ_CHECK(back && *back == Bytes(rest.begin(), rest.end()));
    auto un = pkcs7_unpad32(rest);
    bool rule = !rest.empty() && rest.size() % 32 == 0 && rest.back() >= 1 && rest.back() <= 32 &&
                std::all_of(rest.end() - rest.back(), rest.end(), [&](std::uint8_t c) { return c == rest.back(); });
    FUZZ_CHECK(un.has_value() == rule);
    if (un) FUZZ_CHECK(pkcs7_pad32(*un) == Bytes(rest.begin(), rest.end()));
}

void message_mode(std::uint8_t s, ByteView rest) {
    Reader r(rest);
    Key32 dh = r.array<32>();
    ByteView pn = r.bytes(std::min<std::size_t>(r.u8(), r.remaining()));
    ByteView n = r.bytes(std::min<std::size_t>(r.u8(), r.remaining()));
    ByteView mac = r.bytes(std::min<std::size_t>(32, r.remaining()));
    ByteView cipher = r.rest();
    if (!r.ok()) return;
    if (cipher.size() > 4096) return;
    auto header = Header::from_wire(dh, pn, n);
    if (!header) return;
    RatchetMessage m{*header, Bytes(cipher.begin(), cipher.end()), Bytes(mac.begin(), mac.end())};

    Fixture& f = fixture();
    Ratchet receiver = (s & 4) ? *f.alice : *f.bob;  // a copy
    const RatchetState before = receiver.state();
    Decrypted d = receiver.decrypt(m);
    FUZZ_CHECK(!d.ok());  // a forgery (2^-256 aside)
    FUZZ_CHECK(!d.state_changed);
    FUZZ_CHECK(receiver.state() == before);
    DecryptOptions original;
    original.commit_before_mac = true;
    original.padded_skipped_plaintext = true;
    Decrypted o = receiver.decrypt(m, original);
    FUZZ_CHECK(!o.ok());
    FUZZ_CHECK(o.status == d.status);
    // Whatever it did to the state, the state still serializes and restores.
    auto back = Ratchet::restore(receiver.serialize(), f.rng);
    FUZZ_CHECK(back.ok() && back->state() == receiver.state());

    if (rest.size() >= 64) {
        Key32 ik{}, epk{};
        std::copy(rest.begin(), rest.begin() + 32, ik.begin());
        std::copy(rest.begin() + 32, rest.begin() + 64, epk.begin());
        ByteView tail = rest.subspan(64);
        ByteView xmac = tail.first(std::min<std::size_t>(32, tail.size()));
        auto x = x3dh_respond(f.bob_id, ik, epk, tail.subspan(xmac.size()), xmac);
        FUZZ_CHECK(!x.ok());
    }
}

void state_mode(ByteView rest) {
    Fixture& f = fixture();
    auto r = Ratchet::restore(rest, f.rng);
    if (!r) {
        FUZZ_CHECK(r.error().code != ParseErrc::none);
        return;
    }
    FUZZ_CHECK(r->serialize() == Bytes(rest.begin(), rest.end()));
    FUZZ_CHECK(r->state().skipped.size() <= kMaxSkippedKeys);
    FUZZ_CHECK(r->state().ad.size() <= kMaxAdBytes);
    Ratchet copy = *r;
    if (copy.can_send()) {
        auto sealed = copy.encrypt(as_bytes("x"));
        if (sealed) FUZZ_CHECK(sealed->message.cipher.size() == 32);
    } else {
        FUZZ_CHECK(copy.encrypt(as_bytes("x")).error() == SendError::not_ready);
    }
    // A genuine message from the fixture's Alice, whatever this state is.
    Ratchet alice = *f.alice;
    auto m = alice.encrypt(as_bytes("probe")).value().message;
    const RatchetState before = r->state();
    Decrypted d = r->decrypt(m);
    if (!d.ok()) FUZZ_CHECK(r->state() == before);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 128 * 1024) return 0;
    std::uint8_t s = data[0];
    ByteView rest(data + 1, size - 1);
    switch (s % 4) {
        case 0: json_mode(rest); break;
        case 1: counter_mode(rest); break;
        case 2: message_mode(s, rest); break;
        case 3: state_mode(rest); break;
    }
    return 0;
}
