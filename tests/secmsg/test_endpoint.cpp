// SecMsg endpoints over real loopback sockets.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/io_thread.hpp"
#include "secmsg/endpoint.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::secmsg;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Waits until `pred` holds (checked under `m`), or fails the test after `limit`.
template <class Pred>
bool wait_for(std::mutex& m, std::condition_variable& cv, Pred pred, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, limit, pred);
}

tcp::endpoint loopback() { return {asio::ip::make_address("127.0.0.1"), 0}; }

// A raw TCP client that sends bytes and reports whether the server closed it.
bool server_closes_after(std::uint16_t port, const Bytes& data) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(s, asio::buffer(data));
    std::array<char, 512> buf;
    boost::system::error_code ec;
    for (;;) {
        s.read_some(asio::buffer(buf), ec);
        if (ec) return ec == asio::error::eof || ec == asio::error::connection_reset;
    }
}

}  // namespace

TEST_CASE("Two SecMsg peers over loopback exchange 1,000 messages each way", "[endpoint]") {
    constexpr int kCount = 1000;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> at_server, at_client;
    std::uint64_t conn = 0;
    bool client_up = false;

    IoThread loop;
    Server::Options so;
    so.callbacks.on_established = [&](std::uint64_t id, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        conn = id;
        cv.notify_all();
    };
    so.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView t) {
        std::lock_guard<std::mutex> l(m);
        at_server.push_back(to_string(t));
        cv.notify_all();
    };
    Server server(loop.io, loopback(), so);

    EndpointOptions co;
    co.callbacks.on_established = [&](std::uint64_t, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        client_up = true;
        cv.notify_all();
    };
    co.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView t) {
        std::lock_guard<std::mutex> l(m);
        at_client.push_back(to_string(t));
        cv.notify_all();
    };
    Client client(loop.io, co);
    StopOnExit stop_loop{loop};
    client.connect("127.0.0.1", server.port());
    REQUIRE(wait_for(m, cv, [&] { return client_up && conn != 0; }, std::chrono::seconds(10)));

    for (int i = 0; i < kCount; ++i) {
        client.send(to_bytes("client " + std::to_string(i)));
        server.send(conn, to_bytes("server " + std::to_string(i)));
    }
    REQUIRE(wait_for(m, cv, [&] { return (int)at_server.size() == kCount && (int)at_client.size() == kCount; },
                     std::chrono::seconds(30)));
    for (int i = 0; i < kCount; ++i) {
        CHECK(at_server[i] == "client " + std::to_string(i));
        CHECK(at_client[i] == "server " + std::to_string(i));
    }
    client.close();
    server.stop();
}

TEST_CASE("SecMsg server: bad input closes only that connection", "[endpoint]") {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> reasons;
    std::vector<std::string> echoes;
    bool up = false;

    IoThread loop;
    Server::Options so;
    so.echo = true;
    so.handshake_timeout = std::chrono::milliseconds(300);
    so.callbacks.on_closed = [&](std::uint64_t, const std::string&, const std::string& why) {
        std::lock_guard<std::mutex> l(m);
        reasons.push_back(why);
        cv.notify_all();
    };
    Server server(loop.io, loopback(), so);

    EndpointOptions co;
    co.callbacks.on_established = [&](std::uint64_t, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        up = true;
        cv.notify_all();
    };
    co.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView t) {
        std::lock_guard<std::mutex> l(m);
        echoes.push_back(to_string(t));
        cv.notify_all();
    };
    Client good(loop.io, co);
    StopOnExit stop_loop{loop};
    good.connect("127.0.0.1", server.port());
    REQUIRE(wait_for(m, cv, [&] { return up; }, std::chrono::seconds(10)));

    CHECK(server_closes_after(server.port(), to_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    CHECK(server_closes_after(server.port(), unhex("5365674d534701ffffffff")));  // 4 GiB payload claimed
    CHECK(server_closes_after(server.port(), unhex("5365674d534701000000050000")));  // REGULAR before handshake
    CHECK(server_closes_after(server.port(), Bytes{}));  // silent peer: handshake timeout
    REQUIRE(wait_for(m, cv, [&] { return reasons.size() >= 4; }, std::chrono::seconds(10)));
    {
        std::lock_guard<std::mutex> l(m);
        auto has = [&](const std::string& s) {
            return std::any_of(reasons.begin(), reasons.end(), [&](const std::string& r) { return r.find(s) != std::string::npos; });
        };
        CHECK(has("bad_magic"));
        CHECK(has("length_over_limit"));
        CHECK(has("handshake not completed in time"));
    }
    // The good peer never noticed.
    good.send(to_bytes("still here"));
    REQUIRE(wait_for(m, cv, [&] { return !echoes.empty(); }, std::chrono::seconds(10)));
    CHECK(echoes[0] == "still here");
    good.close();
    server.stop();
}

TEST_CASE("SecMsg server holds 1,000 concurrent peers", "[endpoint][load]") {
    constexpr int kPeers = 1000;
    std::mutex m;
    std::condition_variable cv;
    int echoed = 0, failed = 0;
    std::size_t peak = 0;

    IoThread server_loop;
    Server::Options so;
    so.echo = true;
    Server server(server_loop.io, loopback(), so);

    IoThread client_loop;
    EndpointOptions co;
    co.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView) {
        std::lock_guard<std::mutex> l(m);
        ++echoed;
        peak = std::max(peak, server.connections());
        cv.notify_all();
    };
    co.callbacks.on_closed = [&](std::uint64_t, const std::string&, const std::string& why) {
        std::lock_guard<std::mutex> l(m);
        if (!why.empty()) ++failed;
        cv.notify_all();
    };
    std::vector<std::unique_ptr<Client>> clients;
    StopOnExit stop_server{server_loop};
    StopOnExit stop_clients{client_loop};
    for (int i = 0; i < kPeers; ++i) {
        clients.push_back(std::make_unique<Client>(client_loop.io, co));
        clients.back()->connect("127.0.0.1", server.port());
        clients.back()->send(to_bytes("peer " + std::to_string(i)));
    }
    REQUIRE(wait_for(m, cv, [&] { return echoed + failed >= kPeers; }, std::chrono::seconds(120)));
    CHECK(failed == 0);
    CHECK(echoed == kPeers);
    // No client has closed yet, so every connection is open at once.
    CHECK(server.connections() == static_cast<std::size_t>(kPeers));
    CHECK(peak == static_cast<std::size_t>(kPeers));
    for (auto& c : clients) c->close();
    server.stop();
}

TEST_CASE("SecMsg echo server survives one read holding a good packet and a bad one", "[endpoint]") {
    // Found by msglab fuzz --target: the good packet's echo went into the
    // session the bad packet had just closed, and the exception thrown there
    // brought the whole server down.
    IoThread loop;
    Server::Options so;
    so.echo = true;
    Server server(loop.io, loopback(), so);
    StopOnExit stop_loop{loop};
    auto handshake = [&](tcp::socket& s, Session& peer) {
        s.connect({asio::ip::make_address("127.0.0.1"), server.port()});
        asio::write(s, asio::buffer(peer.start().packets.at(0)));
        std::array<std::uint8_t, 4096> buf;
        while (!peer.established()) {
            std::size_t n = s.read_some(asio::buffer(buf));
            peer.feed(ByteView(buf.data(), n));
        }
    };
    for (const Bytes& junk : {unhex("5365674d5347ff"), Bytes{}}) {
        asio::io_context io;
        tcp::socket s(io);
        Session peer(Role::initiator, {}, SystemClock::instance(), SystemRng::instance());
        handshake(s, peer);
        Bytes packet = peer.send(to_bytes("taken"));
        // The packet followed by junk, or by itself again (a duplicate).
        Bytes both = packet;
        both.insert(both.end(), junk.empty() ? packet.begin() : junk.begin(), junk.empty() ? packet.end() : junk.end());
        asio::write(s, asio::buffer(both));
        std::array<char, 512> buf;
        boost::system::error_code ec;
        while (!ec) s.read_some(asio::buffer(buf), ec);
        CHECK((ec == asio::error::eof || ec == asio::error::connection_reset));
    }
    // Still serving.
    asio::io_context io;
    tcp::socket s(io);
    Session peer(Role::initiator, {}, SystemClock::instance(), SystemRng::instance());
    handshake(s, peer);
    CHECK(peer.established());
    server.stop();
}
