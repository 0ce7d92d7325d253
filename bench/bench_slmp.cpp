// SLMP sessions per second on loopback, printed beside the ECDH-bound limit
// measured in the same run.
//
// A session is one whole exchange on its own TCP connection: connect, the
// two PEM keys, the request token, the reply token, close. The clients run
// slmp::exchange() on their own threads against an in-process Server on one
// Asio thread.
//
// ECDH-bound limit: one core doing the cryptography of a session for both
// ends, in a loop: a P-256 key generation and agreement on each side, HKDF
// on each side, and the Fernet request and reply (sealed by one end, opened
// by the other). Client and server run on different threads, so a rate above
// 100% is possible on a machine with more than one core.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/io_thread.hpp"
#include "slmp/codec.hpp"
#include "slmp/endpoint.hpp"

using namespace msglab;
using namespace msglab::slmp;
namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

namespace {

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

struct CryptoCost {
    double ecdh_us = 0;       // two key generations and two agreements
    double symmetric_us = 0;  // two HKDFs, the request and the reply sealed and opened
    double sessions_per_second() const { return 1e6 / (ecdh_us + symmetric_us); }
};

CryptoCost crypto_cost(double duration) {
    SystemRng& rng = SystemRng::instance();
    const std::string request = auth_token("amir", kDefaultSecret) + ";amir;Hello SLMP!";
    const std::string reply = std::string(kReplyPrefix) + "Hello SLMP!";
    const std::uint64_t now = SystemClock::instance().unix_seconds();
    fernet::VerifyOptions verify;
    verify.ttl = 300;
    std::size_t n = 0;
    double ecdh = 0, symmetric = 0;
    auto t0 = Steady::now();
    while (seconds_since(t0) < duration) {
        auto a = Steady::now();
        auto client = crypto::P256PrivateKey::generate(rng);
        auto server = crypto::P256PrivateKey::generate(rng);
        auto zs = server.agree(client.public_key());
        auto zc = client.agree(server.public_key());
        auto b = Steady::now();
        if (!zs || !zc || *zs != *zc) {
            std::fprintf(stderr, "bench: ECDH disagreement\n");
            std::exit(1);
        }
        fernet::Key ks = derive_key(*zs), kc = derive_key(*zc);
        std::string req = fernet::encrypt(kc, as_bytes(request), now, rng.bytes(16));
        auto got = fernet::decrypt(ks, req, now, verify);
        std::string rep = fernet::encrypt(ks, as_bytes(reply), now, rng.bytes(16));
        auto back = fernet::decrypt(kc, rep, now, verify);
        auto c = Steady::now();
        if (!got || !back || to_string(*back) != reply) {
            std::fprintf(stderr, "bench: Fernet round trip failed\n");
            std::exit(1);
        }
        ecdh += std::chrono::duration<double, std::micro>(b - a).count();
        symmetric += std::chrono::duration<double, std::micro>(c - b).count();
        ++n;
    }
    return {ecdh / static_cast<double>(n), symmetric / static_cast<double>(n)};
}

struct LoopbackResult {
    double rate = 0;
    std::size_t sessions = 0;
};

// `clients` threads doing exchanges back to back for `duration` seconds.
LoopbackResult loopback_sessions(int clients, double duration) {
    IoThread loop;
    Server::Options so;
    std::atomic<std::size_t> refused{0};
    so.callbacks.on_closed = [&](const std::string&, const std::string& reason) {
        if (!reason.empty()) ++refused;
    };
    Server server(loop.io, {asio::ip::make_address("127.0.0.1"), 0}, so);
    StopOnExit stop_loop{loop};
    const std::uint16_t port = server.port();
    std::atomic<std::size_t> done{0};
    std::mutex m;
    std::string failure;
    auto t0 = Steady::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&, t] {
            ClientConfig cfg;
            cfg.user = "bench" + std::to_string(t);
            const std::string message = "Hello SLMP!";
            while (seconds_since(t0) < duration) {
                auto r = exchange("127.0.0.1", port, cfg, message, std::chrono::seconds(30));
                if (!r.ok || r.reply != std::string(kReplyPrefix) + message) {
                    std::lock_guard<std::mutex> l(m);
                    if (failure.empty()) failure = r.error.empty() ? "wrong reply: " + r.reply : r.error;
                    return;
                }
                ++done;
            }
        });
    for (auto& th : threads) th.join();
    double elapsed = seconds_since(t0);
    if (!failure.empty() || refused) {
        std::fprintf(stderr, "bench: an exchange failed (%s); the server refused %zu connection(s)\n",
                     failure.c_str(), refused.load());
        std::exit(1);
    }
    server.stop();
    return {static_cast<double>(done) / elapsed, done.load()};
}

void report(const std::string& what, const LoopbackResult& r, double limit) {
    double pct = 100.0 * r.rate / limit;
    std::printf("%-28s %9.0f sessions/s  (%6zu sessions)   ECDH-bound limit %7.0f /s   %5.1f%%\n", what.c_str(), r.rate,
                r.sessions, limit, pct);
    std::fflush(stdout);
}

}  // namespace

int main() {
    unsigned cores = std::thread::hardware_concurrency();
    std::printf("SLMP benchmark: whole exchanges on loopback, one TCP connection each, against an in-process\n"
                "server on one thread (%u core(s) here); limits measured in this run\n",
                cores);
    CryptoCost cost = crypto_cost(1.5);
    const double limit = cost.sessions_per_second();
    std::printf("ECDH-bound limit: %.0f sessions/s on one core = %.1f us per session: P-256 keygen + agreement on "
                "both sides %.1f us (%.0f%%), HKDF + Fernet request and reply %.1f us\n",
                limit, cost.ecdh_us + cost.symmetric_us, cost.ecdh_us,
                100.0 * cost.ecdh_us / (cost.ecdh_us + cost.symmetric_us), cost.symmetric_us);
    std::fflush(stdout);
    for (int clients : {1, 4, 16})
        report("sessions, " + std::to_string(clients) + (clients == 1 ? " client" : " clients"),
               loopback_sessions(clients, 2.0), limit);
    return 0;
}
