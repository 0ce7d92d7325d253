// Stateful Signal-style chat: Alice's and Bob's Double Ratchets (PROTOCOLS.md
// 5.6, after the X3DH of 5.5) driven by any sequence of sends, deliveries in
// any order, drops, forgeries, tampered copies, replays and state
// save/restore, decoded from the input. Genuine messages are made by the
// ratchets themselves, so the fuzzer reaches every state behind the MAC.
//
// The first byte switches the original's flaws on (bit i: kPlants[i]), only
// those MSGLAB_FUZZ_PLANTS names (`msglab fuzz --plant`); the invariants
// below hold for the clean ratchet, so a hunted flaw shows as a crash:
//   signal.state-before-mac  DecryptOptions::commit_before_mac
//   signal.padded-skipped    DecryptOptions::padded_skipped_plaintext: the
//                            original's bug (5.9 item 7), a fuzzing switch
//                            only (MSGLAB_FUZZ_PLANTS=signal.padded-skipped);
//                            it is not in the plant catalogue, so
//                            `msglab fuzz --plant` does not take it
//
// Then at most 64 ops, one byte (% 8) and its operands:
//   0 Alice sends: len (u8), fill        1 Bob sends: len (u8), fill
//   2 deliver message k (any order)      3 drop message k (never delivered)
//   4 forge to Alice or Bob: dh (32 from the input, or the sender's real
//     one), pn, n (u8 each), hmac and cipher filled from the input
//   5 tamper message k: cipher, hmac, dh, pn or n bytes, then deliver
//   6 replay a delivered message k       7 save and restore Alice's or Bob's state
//
// Invariants:
//   - a genuine message delivered for the first time opens with the text
//     sent, or is refused only as too_many_skipped (its key can not be lost);
//   - a forged, tampered or replayed message never opens;
//   - a refused message leaves the receiver's state exactly as it was;
//   - Bob cannot send before his first message arrives, and his refusal
//     changes nothing;
//   - a restored state equals the saved one and serializes the same.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "fuzz_common.hpp"
#include "signal/ratchet.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

// The ids of reference/signal/app.hpp's plant namespace (state-before-mac)
// and of the original's padded skipped-key plaintext.
const char* const kPlants[] = {"signal.state-before-mac", "signal.padded-skipped"};
constexpr int kPlantCount = 2;

// Alice and Bob right after X3DH, made once; every run copies them.
struct Fixture {
    DeterministicRng rng{0x5e55};
    std::optional<Ratchet> alice, bob;
    Fixture() {
        Identity a = Identity::generate(rng);
        Identity b = Identity::generate(rng);
        auto init = x3dh_initiate(a, b.bundle(), rng).value();
        alice = Ratchet::initiator(init.sk, b.spk.public_key, init.ad, rng);
        bob = Ratchet::responder(init.sk, b.spk, init.ad, rng);
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

struct Message {
    RatchetMessage m;
    bool to_bob;
    Bytes text;
    bool delivered = false;
    bool dropped = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::uint8_t hunted = plants_from_env(kPlants, kPlantCount, "signal");
    if (size == 0) return 0;
    Reader in(ByteView(data, size));
    std::uint8_t plants = in.u8() & hunted;
    DecryptOptions options;
    options.commit_before_mac = plants & 1;
    options.padded_skipped_plaintext = plants & 2;

    Fixture& f = fixture();
    Ratchet alice = *f.alice, bob = *f.bob;
    // New ratchet keys from a counter: the same input, the same keys.
    std::uint64_t counter = 0;
    KeySource keys = [&counter]() {
        Writer w;
        w.bytes("signal_session").be64(++counter);
        Key32 priv = crypto::sha256(w.data());
        return crypto::X25519KeyPair{priv, crypto::x25519_public(priv)};
    };
    alice.set_key_source(keys);
    bob.set_key_source(keys);
    std::vector<Message> sent;
    bool evicted = false;  // the skipped-key store overflowed: a stored key may be gone

    auto receiver = [&](bool to_bob) -> Ratchet& { return to_bob ? bob : alice; };
    // A message that must not open: refused, and the state untouched.
    auto refuse = [&](bool to_bob, const RatchetMessage& m) {
        Ratchet& r = receiver(to_bob);
        const RatchetState before = r.state();
        Decrypted d = r.decrypt(m, options);
        FUZZ_CHECK(!d.ok());
        FUZZ_CHECK(!d.state_changed);
        FUZZ_CHECK(r.state() == before);
    };
    auto pick = [&](std::uint8_t k) -> Message* { return sent.empty() ? nullptr : &sent[k % sent.size()]; };

    for (int steps = 0; steps < 64 && in.remaining() > 0; ++steps) {
        std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {
                bool from_alice = op % 8 == 0;
                std::uint8_t len = in.u8(), fill = in.u8();
                Ratchet& s = from_alice ? alice : bob;
                Bytes text(len, fill);
                if (!s.can_send()) {
                    const RatchetState before = s.state();
                    auto r = s.encrypt(text);
                    FUZZ_CHECK(!r.ok() && r.error() == SendError::not_ready);
                    FUZZ_CHECK(s.state() == before);
                    FUZZ_CHECK(!from_alice);
                    break;
                }
                auto sealed = s.encrypt(text);
                FUZZ_CHECK(sealed.ok());
                FUZZ_CHECK(sealed->message.cipher.size() == (len / 32u + 1) * 32u);
                if (sent.size() < 96) sent.push_back({sealed->message, from_alice, text});
                break;
            }
            case 2: {
                Message* m = pick(in.u8());
                if (!m || m->dropped) break;
                if (m->delivered) {
                    refuse(m->to_bob, m->m);  // a replay
                    break;
                }
                Ratchet& r = receiver(m->to_bob);
                const RatchetState before = r.state();
                Decrypted d = r.decrypt(m->m, options);
                if (d.ok()) {
                    FUZZ_CHECK(d.plaintext == m->text);
                    FUZZ_CHECK(d.mk.has_value());
                    m->delivered = true;
                } else {
                    FUZZ_CHECK(d.status == DecryptStatus::too_many_skipped || evicted);
                    FUZZ_CHECK(r.state() == before);
                }
                if (r.state().skipped.size() >= kMaxSkippedKeys) evicted = true;
                break;
            }
            case 3: {
                if (Message* m = pick(in.u8())) m->dropped = true;
                break;
            }
            case 4: {
                std::uint8_t how = in.u8();
                bool to_bob = how & 1;
                Key32 dh{};
                if (how & 2) {
                    dh = (to_bob ? alice : bob).state().dhs.public_key;  // the sender's real key
                } else {
                    dh = in.array<32>();
                }
                std::uint8_t pn = in.u8(), n = in.u8(), fill = in.u8();
                if (!in.ok()) break;
                RatchetMessage forged{Header::make(dh, pn, n), Bytes(32u * (1 + (fill & 3)), fill),
                                      Bytes(32, static_cast<std::uint8_t>(fill ^ how))};
                refuse(to_bob, forged);
                break;
            }
            case 5: {
                Message* m = pick(in.u8());
                std::uint8_t field = in.u8(), at = in.u8(), bit = static_cast<std::uint8_t>(in.u8() | 1);
                if (!m || !in.ok()) break;
                RatchetMessage t = m->m;
                switch (field % 5) {
                    case 0: t.cipher[at % t.cipher.size()] ^= bit; break;
                    case 1: t.hmac[at % t.hmac.size()] ^= bit; break;
                    case 2: t.header.dh[at % 32] ^= bit; break;
                    case 3: {
                        // A leading zero: the same counter in other bytes.
                        Bytes pn = t.header.pn_bytes;
                        pn.insert(pn.begin(), 0);
                        t.header = *Header::from_wire(t.header.dh, pn, t.header.n_bytes);
                        break;
                    }
                    case 4: {
                        std::uint64_t n = t.header.n ^ (bit & 0x0f);
                        t.header = Header::make(t.header.dh, t.header.pn, n);
                        t.header.pn_bytes = m->m.header.pn_bytes;
                        break;
                    }
                }
                refuse(m->to_bob, t);
                break;
            }
            case 6: {
                Message* m = pick(in.u8());
                if (m && m->delivered) refuse(m->to_bob, m->m);
                break;
            }
            case 7: {
                Ratchet& r = (in.u8() & 1) ? bob : alice;
                Bytes blob = r.serialize();
                auto back = Ratchet::restore(blob, f.rng);
                FUZZ_CHECK(back.ok());
                FUZZ_CHECK(back->state() == r.state());
                FUZZ_CHECK(back->serialize() == blob);
                back->set_key_source(keys);
                r = std::move(*back);
                break;
            }
        }
    }
    return 0;
}
