// The CSMP server over real loopback sockets, with msglab's Beast client
// and raw HTTP bytes.
#include "support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "core/io_thread.hpp"
#include "csmp/client.hpp"
#include "csmp/server.hpp"

using namespace msglab;
using namespace msglab::csmp;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

// A server on a free loopback port, on its own thread.
struct Running {
    fs::path db;
    std::unique_ptr<HistoryStore> store;
    IoThread loop;
    std::unique_ptr<Server> server;
    StopOnExit stop{loop};

    explicit Running(std::vector<std::string> plants = {}, ServerOptions o = {}) {
        static int n = 0;
        db = fs::temp_directory_path() /
             ("msglab-csmp-server-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".db");
        for (const char* ext : {"", "-wal", "-shm"}) fs::remove(db.string() + ext);
        for (auto& p : plants) o.app.plants.enable(p);
        o.port = 0;
        bool hardcoded = o.app.plants.has(plant::hardcoded_secret);
        store = std::make_unique<HistoryStore>(
            StoreOptions{db.string(), hardcoded ? Bytes{} : to_bytes("server test secret 0123456789"), hardcoded},
            SystemRng::instance());
        server = std::make_unique<Server>(loop.io, o, store.get(), SystemRng::instance());
        std::promise<void> started;
        boost::asio::post(loop.io, [&] {
            server->start();
            started.set_value();
        });
        started.get_future().wait();
    }
    ~Running() {
        std::promise<void> stopped;
        boost::asio::post(loop.io, [&] {
            server->stop();
            stopped.set_value();
        });
        stopped.get_future().wait_for(5s);
    }
    Client client() const {
        ClientOptions c;
        c.port = server->port();
        c.timeout = 5000ms;
        return Client(c);
    }
};

// Raw bytes to the server, and everything it sends until it closes or
// `quiet` passes without a byte.
std::string raw_exchange(std::uint16_t port, const std::string& request, int quiet_ms = 1000) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[65536];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, quiet_ms) > 0) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace

TEST_CASE("Over loopback: HTTP routes, redirects and bad requests, in bytes", "[csmp][server]") {
    Running s;
    std::string r = raw_exchange(s.server->port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 307 Temporary Redirect\r\n", 0) == 0);
    CHECK(r.find("\r\nlocation: http://127.0.0.1:8000/health/\r\n") != std::string::npos);
    r = raw_exchange(s.server->port(), "GET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(r.find("\r\ncontent-type: application/json\r\n") != std::string::npos);
    CHECK(r.find("\r\n\r\n{\"status\":\"ok\",\"app_name\":\"CSMP Backend\",\"version\":\"1.0.0\",\"debug\":false}") ==
          r.size() - 77);
    // Two requests on one keep-alive connection.
    r = raw_exchange(s.server->port(),
                     "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(r.find("Welcome to CSMP Backend!") != std::string::npos);
    CHECK(r.find("\"app_name\":\"CSMP Backend\"") != std::string::npos);
    // Garbage, an oversized body, a header flood: answered, and the server lives on.
    CHECK(raw_exchange(s.server->port(), "\x01\x02 garbage\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
    std::string big = "POST /handshake/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'a');
    CHECK(raw_exchange(s.server->port(), big).rfind("HTTP/1.1 413", 0) == 0);
    std::string headers = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 2000; ++i) headers += "X-Pad-" + std::to_string(i) + ": yyyyyyyyyyyyyyyy\r\n";
    CHECK(raw_exchange(s.server->port(), headers + "\r\n").rfind("HTTP/1.1 431", 0) == 0);
    auto c = s.client();
    CHECK_FALSE(c.handshake("alice").empty());
}

TEST_CASE("Over loopback: two clients chat in their room, with permessage-deflate, and history follows",
          "[csmp][server]") {
    Running s;
    auto alice = s.client(), bob = s.client();
    alice.handshake("alice");
    bob.handshake("bob");
    auto wa = alice.open_chat("room_alice_bob");
    auto wb = bob.open_chat("room_alice_bob");
    wa->send(R"({"type":"chat","message":"hi bob","timestamp":"2026-01-26T17:05:30.000Z"})");
    for (auto* ws : {wa.get(), wb.get()}) {
        auto got = ws->receive_type("chat", 5000ms);
        REQUIRE(got);
        CHECK((*got)["from"] == "alice");
        CHECK((*got)["room_id"] == "room_alice_bob");
        CHECK((*got)["message"] == "hi bob");
    }
    wb->send("raw words, no JSON");
    auto got = wa->receive_type("chat", 5000ms);
    REQUIRE(got);
    CHECK((*got)["message"] == "raw words, no JSON");
    wb->send("{oops");
    auto err = wb->receive_type("error", 5000ms);
    REQUIRE(err);
    CHECK((*err)["code"] == "bad_json");
    auto h = bob.history("room_alice_bob");
    REQUIRE(h.size() == 2);
    CHECK(h[0]["from"] == "alice");
    CHECK(h[1]["message"] == "raw words, no JSON");

    // The upgrade negotiates permessage-deflate when offered.
    std::string upgrade = "GET /ws/chat?session_id=" + alice.session() +
                          "&room_id=general HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: Xk4T+zBRaV4dVGlZBZLm8g==\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    std::string r = raw_exchange(s.server->port(), upgrade, 300);
    CHECK(r.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    CHECK(r.find("Sec-WebSocket-Accept: w5AKr1kS3QX8H20XJ7d4H8nODjQ=\r\n") != std::string::npos);
    CHECK(r.find("Sec-WebSocket-Extensions: permessage-deflate") != std::string::npos);
}

TEST_CASE("Over loopback: refused upgrades are HTTP 403, and a third party cannot enter a pair's room",
          "[csmp][server]") {
    Running s;
    auto carol = s.client();
    carol.handshake("carol");
    int status = 0;
    CHECK_THROWS_AS(carol.open("/ws/chat?session_id=" + carol.session() + "&room_id=room_alice_bob", &status),
                    ClientError);
    CHECK(status == 403);
    status = 0;
    CHECK_THROWS_AS(carol.open("/ws/chat?session_id=made-up&room_id=general", &status), ClientError);
    CHECK(status == 403);
    status = 0;
    CHECK_THROWS_AS(carol.open("/ws/call", &status), ClientError);
    CHECK(status == 403);
    std::string r = raw_exchange(s.server->port(),
                                 "GET /ws/call?session_id=nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                                 "Upgrade\r\nSec-WebSocket-Key: Xk4T+zBRaV4dVGlZBZLm8g==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);

    Running planted({plant::room_no_acl});
    auto eve = planted.client();
    eve.handshake("eve");
    CHECK_NOTHROW(eve.open_chat("room_alice_bob"));
}

TEST_CASE("Over loopback: a call is placed, answered and ended between two sockets", "[csmp][server]") {
    Running s;
    auto alice = s.client(), bob = s.client(), carol = s.client();
    alice.handshake("alice");
    bob.handshake("bob");
    carol.handshake("carol");
    auto cb = bob.open_call();
    auto ca = alice.open_call();
    auto cc = carol.open_call();
    ca->send(R"({"type":"call:init","to":"bob","call_type":"voice"})");
    auto ack = ca->receive_type("call:ack", 5000ms);
    REQUIRE(ack);
    std::string id = (*ack)["call_id"];
    auto incoming = cb->receive_type("call:incoming", 5000ms);
    REQUIRE(incoming);
    CHECK((*incoming)["from"] == "alice");
    CHECK((*incoming)["call_id"] == id);
    // Carol is no party: her answer is refused and reaches nobody.
    cc->send(R"({"type":"call:answer","to":"alice","call_id":")" + id + R"(","sdp":{"type":"answer"}})");
    auto refused = cc->receive_type("error", 5000ms);
    REQUIRE(refused);
    CHECK((*refused)["code"] == "not_a_party");
    cb->send(R"({"type":"call:answer","to":"alice","call_id":")" + id + R"(","sdp":{"type":"answer","sdp":"v=0"}})");
    auto answer = ca->receive_type("call:answer", 5000ms);
    REQUIRE(answer);
    CHECK_FALSE(answer->contains("from"));
    ca->send(R"({"type":"call:end","to":"bob","call_id":")" + id + R"("})");
    auto end = cb->receive_type("call:end", 5000ms);
    REQUIRE(end);
    auto calls = alice.call_history();
    REQUIRE(calls["count"] == 1);
    CHECK(calls["calls"][0]["status"] == "ended");
    // No stray answer reached alice from carol.
    CHECK_FALSE(ca->receive(300ms));
}
