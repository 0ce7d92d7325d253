// SecMsg throughput on one loopback connection and handshake rate, each
// printed beside its crypto-bound limit measured in the same run.
//
// Crypto-bound limit for messages: one core doing all the cryptography of a
// message, both ends (sender: SHA-256 of the plaintext, SegMSG-CTR, HMAC;
// receiver: HMAC, SegMSG-CTR, SHA-256). For handshakes: the group-14 work of
// both ends (two key generations and two agreements) on one core. The two
// endpoints run on two threads, so a rate above 100% is possible.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "secmsg/codec.hpp"
#include "core/io_thread.hpp"
#include "secmsg/endpoint.hpp"
#include "secmsg/segmsg_cipher.hpp"

using namespace msglab;
using namespace msglab::secmsg;
namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

namespace {

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

double crypto_messages_per_second(std::size_t size) {
    Bytes z(256, 7);
    Keys keys = Keys::from_shared_secret(z);
    SegmsgCipher cipher(keys.master);
    Bytes buf(kHeaderBytes + size, 'm');
    std::size_t n = 0;
    auto t0 = Steady::now();
    double elapsed = 0;
    volatile std::uint8_t sink = 0;
    while ((elapsed = seconds_since(t0)) < 1.0) {
        for (int i = 0; i < 200; ++i) {
            // Sender, then receiver: hash, cipher, MAC each.
            auto h = crypto::sha256(ByteView(buf).subspan(kHeaderBytes));
            cipher.ctr_xor(buf.data() + kHeaderBytes, size);
            auto mac = crypto::hmac_sha256(keys.hmac_key, buf);
            auto mac2 = crypto::hmac_sha256(keys.hmac_key, buf);
            cipher.ctr_xor(buf.data() + kHeaderBytes, size);
            auto h2 = crypto::sha256(ByteView(buf).subspan(kHeaderBytes));
            sink = sink ^ h[0] ^ mac[0] ^ mac2[0] ^ h2[0];
            ++n;
        }
    }
    return static_cast<double>(n) / elapsed;
}

double loopback_messages_per_second(std::size_t size, std::size_t count) {
    std::mutex m;
    std::condition_variable cv;
    std::size_t received = 0;
    bool up = false;
    IoThread server_loop, client_loop;
    Server::Options so;
    so.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView) {
        std::lock_guard<std::mutex> l(m);
        if (++received == count) cv.notify_all();
    };
    bool failed = false;
    so.callbacks.on_closed = [&](std::uint64_t, const std::string&, const std::string& why) {
        std::lock_guard<std::mutex> l(m);
        if (!why.empty()) {
            std::fprintf(stderr, "bench: server closed the connection: %s\n", why.c_str());
            failed = true;
            cv.notify_all();
        }
    };
    Server server(server_loop.io, {asio::ip::make_address("127.0.0.1"), 0}, so);
    EndpointOptions co;
    co.callbacks.on_established = [&](std::uint64_t, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        up = true;
        cv.notify_all();
    };
    Client client(client_loop.io, co);
    client.connect("127.0.0.1", server.port());
    {
        std::unique_lock<std::mutex> l(m);
        if (!cv.wait_for(l, std::chrono::seconds(10), [&] { return up; })) {
            std::fprintf(stderr, "bench: no handshake\n");
            std::exit(1);
        }
    }
    Bytes pt(size, 'm');
    auto t0 = Steady::now();
    for (std::size_t i = 0; i < count; ++i) {
        pt[0] = static_cast<std::uint8_t>(i);  // distinct texts
        pt[size > 1 ? 1 : 0] = static_cast<std::uint8_t>(i >> 8);
        client.send(pt);
    }
    {
        std::unique_lock<std::mutex> l(m);
        if (!cv.wait_for(l, std::chrono::seconds(120), [&] { return received == count || failed; }) || failed) {
            std::fprintf(stderr, "bench: only %zu of %zu messages arrived\n", received, count);
            std::exit(1);
        }
    }
    double rate = static_cast<double>(count) / seconds_since(t0);
    client_loop.stop();
    server_loop.stop();
    return rate;
}

double crypto_handshakes_per_second() {
    SystemRng& rng = SystemRng::instance();
    std::size_t n = 0;
    auto t0 = Steady::now();
    double elapsed = 0;
    while ((elapsed = seconds_since(t0)) < 1.0) {
        auto a = crypto::dh14::generate(rng);
        auto b = crypto::dh14::generate(rng);
        Bytes za = crypto::dh14::agree(a.private_exponent, b.public_value);
        Bytes zb = crypto::dh14::agree(b.private_exponent, a.public_value);
        if (za != zb) std::abort();
        ++n;
    }
    return static_cast<double>(n) / elapsed;
}

double loopback_handshakes_per_second(double duration) {
    std::mutex m;
    std::condition_variable cv;
    std::size_t done = 0;
    IoThread server_loop, client_loop;
    Server::Options so;
    Server server(server_loop.io, {asio::ip::make_address("127.0.0.1"), 0}, so);
    EndpointOptions co;
    co.callbacks.on_established = [&](std::uint64_t, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        ++done;
        cv.notify_all();
    };
    // Four handshakes in flight keep both ends busy.
    std::vector<std::unique_ptr<Client>> clients;
    auto t0 = Steady::now();
    std::size_t started = 0;
    while (seconds_since(t0) < duration) {
        std::unique_lock<std::mutex> l(m);
        while (started < done + 4) {
            auto c = std::make_unique<Client>(client_loop.io, co);
            c->connect("127.0.0.1", server.port());
            clients.push_back(std::move(c));
            ++started;
        }
        cv.wait_for(l, std::chrono::milliseconds(50));
    }
    std::size_t n;
    {
        std::lock_guard<std::mutex> l(m);
        n = done;
    }
    double rate = static_cast<double>(n) / seconds_since(t0);
    client_loop.stop();
    server_loop.stop();
    return rate;
}

void report(const char* what, double rate, double limit) {
    double pct = 100.0 * rate / limit;
    std::printf("%-36s %12.0f /s   crypto-bound limit %12.0f /s   %5.1f%%   target >= 50%%: %s\n", what, rate,
                limit, pct, pct >= 50.0 ? "met" : "NOT MET");
    std::fflush(stdout);
}

}  // namespace

int main() {
    std::printf("SecMsg benchmark (one loopback connection; limits measured in this run)\n");
    report("messages, 64-byte payload", loopback_messages_per_second(64, 200000), crypto_messages_per_second(64));
    report("messages, 1 KiB payload", loopback_messages_per_second(1024, 50000), crypto_messages_per_second(1024));
    report("handshakes (DH group 14)", loopback_handshakes_per_second(2.0), crypto_handshakes_per_second());
    return 0;
}
