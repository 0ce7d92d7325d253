// Signal-style chat on loopback: ratchet messages per second between two
// clients through the relay, beside what the cryptography alone allows,
// measured in the same run.
//
// Through the server: the relay on its own Asio thread, alice and bob as
// msglab clients (Socket.IO over WebSocket after the polling handshake, each
// with its own io thread). After X3DH:
//   one way   alice sends N messages to bob, each a call: the relay calls
//             bob, bob decrypts and acks, the relay acks alice. One message
//             in flight at a time, so this is the round-trip rate.
//   turns     alice and bob alternate, so every message is a DH ratchet step
//             (two X25519 agreements and a key generation on each side).
// In memory, the bound: Ratchet encrypt and decrypt of the same 32-byte
// messages with no transport (AES-256-CBC, HMAC-SHA256, HKDF, KDF_CK), the
// same with a DH step per message, and X25519 agreements per second.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/io_thread.hpp"
#include "signal/client.hpp"
#include "signal/server.hpp"

using namespace msglab;
using namespace msglab::signal;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench_signal: %s\n", why.c_str());
    std::exit(1);
}

ByteView view(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

std::pair<Ratchet, Ratchet> pair_of(Rng& rng) {
    auto a = Identity::generate(rng), b = Identity::generate(rng);
    auto init = x3dh_initiate(a, b.bundle(), rng);
    if (!init) fail("X3DH failed");
    auto acc = x3dh_respond(b, a.ik.public_key, init->ek.public_key, init->cipher, init->mac);
    if (!acc) fail("X3DH response failed");
    auto ra = Ratchet::initiator(init->sk, b.spk.public_key, init->ad, rng);
    if (!ra) fail("ratchet init failed");
    return {std::move(*ra), Ratchet::responder(acc->sk, b.spk, acc->ad, rng)};
}

// Messages per second in memory; `turns` alternates the direction.
double in_memory(int n, bool turns, Rng& rng) {
    auto [a, b] = pair_of(rng);
    const std::string text = "a message of 32 bytes, or close.";
    auto t0 = Steady::now();
    for (int i = 0; i < n; ++i) {
        Ratchet& from = (turns && i % 2) ? b : a;
        Ratchet& to = (turns && i % 2) ? a : b;
        auto s = from.encrypt(view(text));
        if (!s) fail("encrypt failed");
        if (!to.decrypt(s->message).ok()) fail("decrypt failed");
    }
    return n / seconds_since(t0);
}

double x25519_per_second(int n, Rng& rng) {
    auto k = crypto::x25519_generate(rng), p = crypto::x25519_generate(rng);
    auto t0 = Steady::now();
    for (int i = 0; i < n; ++i)
        if (!crypto::x25519(k.private_key, p.public_key)) fail("x25519 failed");
    return n / seconds_since(t0);
}

ChatEvent next_message(ChatClient& c) {
    auto end = Steady::now() + 10s;
    while (Steady::now() < end) {
        auto e = c.next(100ms);
        if (e && e->kind == ChatEvent::Kind::message) return *e;
        if (e && e->kind == ChatEvent::Kind::refused) fail("a message was refused: " + e->detail);
    }
    fail("a message did not arrive");
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
    if (n < 10) fail("usage: bench_signal [MESSAGES >= 10]");
    auto& rng = SystemRng::instance();

    IoThread loop;
    ServerOptions so;
    so.sio.port = 0;
    so.db_path = ":memory:";
    auto server = std::make_unique<Server>(loop.io, so);
    server->start();
    ClientOptions co;
    co.port = server->port();
    co.user = "alice";
    ChatClient alice(co, Identity::generate(rng), rng);
    co.user = "bob";
    ChatClient bob(co, Identity::generate(rng), rng);
    bob.connect();
    alice.connect();
    alice.start("bob");

    auto t0 = Steady::now();
    for (int i = 0; i < n; ++i)
        if (alice.send("bob", "a message of 32 bytes, or close.") != Delivery::delivered) fail("not delivered");
    const double one_way = n / seconds_since(t0);
    for (int i = 0; i < n; ++i) next_message(bob);

    const int turns = n / 2;
    t0 = Steady::now();
    for (int i = 0; i < turns; ++i) {
        ChatClient& from = i % 2 ? bob : alice;
        ChatClient& to = i % 2 ? alice : bob;
        if (from.send(to.user(), "a message of 32 bytes, or close.") != Delivery::delivered) fail("not delivered");
        next_message(to);
    }
    const double alternating = turns / seconds_since(t0);
    alice.close();
    bob.close();
    server->stop();
    loop.stop();

    const double mem_chain = in_memory(n * 5, false, rng);
    const double mem_turns = in_memory(n, true, rng);
    const double x25519 = x25519_per_second(n * 2, rng);

    std::printf("bench_signal: %d messages of 32 bytes, relay and both clients on loopback (Socket.IO over WebSocket)\n", n);
    std::printf("  through the server, one way (a call per message, one in flight):  %8.0f messages/s\n", one_way);
    std::printf("  through the server, alternating (a DH ratchet step per message):  %8.0f messages/s\n", alternating);
    std::printf("  bound, in memory, one chain (AES-256-CBC + HMAC-SHA256 + HKDF):   %8.0f messages/s\n", mem_chain);
    std::printf("  bound, in memory, a DH step per message:                          %8.0f messages/s\n", mem_turns);
    std::printf("  X25519 agreements:                                                %8.0f /s\n", x25519);
    std::printf("  the relay reaches %.1f%% of the one-chain bound and %.1f%% of the DH-step bound\n",
                100.0 * one_way / mem_chain, 100.0 * alternating / mem_turns);
    return 0;
}
