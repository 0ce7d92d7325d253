// Stateful SecMsg: both roles' sans-I/O sessions driven through a handshake
// and then any sequence of sends, raw deliveries, replays, reflections,
// tampering, clock jumps and injected handshakes, decoded from the input.
// Valid packets are made by the sessions themselves, so the fuzzer reaches
// the states behind the MAC check without any bypass.
//
// Plants are off unless named in MSGLAB_FUZZ_PLANTS (comma-separated ids, or
// "all"; `msglab fuzz --plant` sets it). The first input byte then switches
// each named plant on or off for the run, so a campaign hunts the planted
// flaws too (secmsg.recv-overflow is a heap overflow under ASan).
//
// Ops (first byte % 8), then arguments:
//   0 A sends text: len16, fill byte      1 B sends text: len16, fill byte
//   2 raw bytes to B: len8, bytes         3 raw bytes to A: len8, bytes
//   4 replay packet k to its receiver     5 reflect packet k to its sender
//   6 tamper packet k at offset16 ^ byte  7 clock += byte * 10 s; or, with the
//                                           high bit, a handshake with y = 0, 1, 2 or p-1 to B
//                                           (once per run)
#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "fuzz_common.hpp"
#include "secmsg/session.hpp"

using namespace msglab;
using namespace msglab::secmsg;

namespace {

const char* const kPlants[] = {plant::accept_weak_dh, plant::no_freshness, plant::accept_reflection,
                               plant::skip_hmac,      plant::late_handshake, plant::recv_overflow};

ManualClock g_clock;
DeterministicRng g_rng(1);

struct Pair {
    Session a, b;
};

// One established pair per plant set, made once: group-14 key generation
// costs more than a thousand runs of everything else.
const Pair& established(std::uint8_t plants) {
    static std::map<std::uint8_t, std::unique_ptr<Pair>> cache;
    auto& slot = cache[plants];
    if (!slot) {
        SessionConfig cfg;
        for (int i = 0; i < 6; ++i)
            if (plants & (1 << i)) cfg.plants.enable(kPlants[i]);
        g_clock.set(1700000000);
        slot = std::make_unique<Pair>(Pair{Session(Role::initiator, cfg, g_clock, g_rng),
                                           Session(Role::responder, cfg, g_clock, g_rng)});
        slot->b.start();
        Output resp = slot->b.feed(slot->a.start().packets.at(0));
        slot->a.feed(resp.packets.at(0));
        FUZZ_CHECK(slot->a.established() && slot->b.established());
    }
    return *slot;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    Reader in(ByteView(data, size));
    static const std::uint8_t allowed = plants_from_env(kPlants, static_cast<int>(std::size(kPlants)), "SecMsg");
    std::uint8_t plants = in.u8() & allowed;
    Pair s = established(plants);  // a copy: every run starts from the same state
    g_clock.set(1700000000);
    struct Sent {
        Bytes bytes;
        bool from_a;
    };
    std::vector<Sent> sent;
    bool injected = false;
    auto deliver = [&](bool to_b, ByteView bytes) { return (to_b ? s.b : s.a).feed(bytes); };

    for (int steps = 0; steps < 64 && in.remaining() > 0; ++steps) {
        std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {
                bool from_a = op % 8 == 0;
                std::uint16_t len = in.be16();
                std::uint8_t fill = in.u8();
                // Long texts cost a millisecond each under ASan (the byte-wise
                // cipher): keep them short, except in the band around the
                // original's 8192-byte receive buffer.
                if (len < 8000 || len > 8300) len &= 0x1ff;
                Session& sender = from_a ? s.a : s.b;
                if (!sender.established()) break;
                Bytes text(len, fill);
                Bytes packet = sender.send(text);
                Output out = deliver(from_a, packet);
                // Whatever the receiver delivers is exactly what was sent.
                for (const auto& e : out.events)
                    if (e.kind == Event::Kind::message) FUZZ_CHECK(e.plaintext == text);
                sent.push_back({std::move(packet), from_a});
                break;
            }
            case 2:
            case 3: {
                ByteView raw = in.bytes(std::min<std::size_t>(in.u8(), in.remaining()));
                deliver(op % 8 == 2, raw);
                break;
            }
            case 4:
            case 5:
            case 6: {
                if (sent.empty()) break;
                const Sent& p = sent[in.u8() % sent.size()];
                if (op % 8 == 4) {
                    deliver(p.from_a, p.bytes);  // the same receiver again
                } else if (op % 8 == 5) {
                    deliver(!p.from_a, p.bytes);  // back to its sender
                } else {
                    Bytes t = p.bytes;
                    std::uint16_t at = in.be16();
                    t[at % t.size()] ^= static_cast<std::uint8_t>(in.u8() | 1);
                    deliver(p.from_a, t);
                }
                break;
            }
            case 7: {
                std::uint8_t arg = in.u8();
                if (arg & 0x80) {
                    // One per run: each costs a group-14 exponentiation.
                    if (injected) break;
                    injected = true;
                    Bytes y(256, 0);
                    switch (arg & 3) {
                        case 0: break;
                        case 1: y.back() = 1; break;
                        case 2: y.back() = 2; break;
                        case 3: y = crypto::dh14::prime(); y.back() -= 1; break;
                    }
                    deliver(true, serialize(make_handshake(MessageType::handshake_request, y,
                                                           g_clock.unix_seconds())));
                } else {
                    g_clock.advance(arg * 10ull);
                }
                break;
            }
        }
    }
    return 0;
}
