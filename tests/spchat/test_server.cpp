// The SP-SimpleChat server over real loopback sockets with msglab's client:
// a room of 100 where every member gets every message exactly once, and the
// bounds a hostile or slow client meets.
#include "support.hpp"

#include <future>
#include <thread>

#include "core/io_thread.hpp"
#include "spchat/client.hpp"
#include "spchat/server.hpp"

using namespace msglab;
using namespace msglab::spchat;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

struct Running {
    IoThread loop;
    std::unique_ptr<Server> server;
    StopOnExit stop{loop};

    explicit Running(ServerOptions o = {}) {
        o.port = 0;
        server = std::make_unique<Server>(loop.io, o);
        std::promise<void> started;
        boost::asio::post(loop.io, [&] {
            server->start();
            started.set_value();
        });
        started.get_future().wait();
    }
    ~Running() {
        server->stop();
        loop.stop();
    }
    Client client() const {
        Client c;
        c.connect("127.0.0.1", server->port(), 5000ms);
        return c;
    }
};

Json msg(const std::string& room, const std::string& text) { return {{"type", "MSG"}, {"room", room}, {"text", text}}; }

}  // namespace

TEST_CASE("spchat server: 100 clients in one room, every member receives every message exactly once", "[server]") {
    Running s;
    constexpr int kClients = 100, kEach = 5;
    std::vector<Client> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(s.client());
        auto h = hello(clients.back(), "member" + std::to_string(i), 5000ms);
        REQUIRE(h);
        REQUIRE((*h)["type"] == "INFO");
        clients.back().send(Json{{"type", "JOIN"}, {"room", "hall"}});
        REQUIRE(clients.back().expect("INFO", 5000ms));
    }
    for (int round = 0; round < kEach; ++round)
        for (int i = 0; i < kClients; ++i) clients[i].send(msg("hall", "m" + std::to_string(i) + "." + std::to_string(round)));
    for (int i = 0; i < kClients; ++i) {
        INFO("member " << i);
        std::map<std::string, int> got;
        std::size_t chats = 0;
        while (chats < static_cast<std::size_t>((kClients - 1) * kEach)) {
            auto r = clients[i].receive(10000ms);
            REQUIRE(r.status == Client::Status::message);
            if (r.message["nick"] == "server") continue;  // later members joining
            ++chats;
            std::string text = r.message["text"];
            CHECK(r.message["nick"] == "member" + text.substr(1, text.find('.') - 1));
            ++got[text];
        }
        // Nothing more after the last one.
        auto extra = clients[i].receive(100ms);
        CHECK(extra.status == Client::Status::timeout);
        CHECK(got.size() == static_cast<std::size_t>((kClients - 1) * kEach));
        for (const auto& [text, n] : got) CHECK(n == 1);
        CHECK(got.count("m" + std::to_string(i) + ".0") == 0);  // no echo
    }
}

TEST_CASE("spchat server: a 2 GiB length prefix is refused at once, the planted server waits", "[server]") {
    {
        Running s;
        Client c = s.client();
        c.send_raw(Bytes{0x7f, 0xff, 0xff, 0xf0, '{'});
        auto r = c.receive(3000ms);
        REQUIRE(r.status == Client::Status::message);
        CHECK(r.message["text"] == "frame too large: 2147483632 bytes (limit 1048576)");
        CHECK(c.receive(3000ms).status == Client::Status::closed);
    }
    {
        ServerOptions o;
        o.app.plants.enable(plant::unbounded_frame);
        o.frame_timeout = 200ms;  // not applied under the plant, as the original waits forever
        Running s(o);
        Client c = s.client();
        c.send_raw(Bytes{0x7f, 0xff, 0xff, 0xf0, '{'});
        c.send_raw(Bytes(300'000, 'x'));
        CHECK(c.receive(800ms).status == Client::Status::timeout);
        Client d = s.client();
        CHECK(hello(d, "other", 3000ms));
    }
}

TEST_CASE("spchat server: a frame that stalls half-way and a silent client are closed", "[server]") {
    ServerOptions o;
    o.frame_timeout = 300ms;
    o.idle_timeout = 600ms;
    Running s(o);
    Client half = s.client(), silent = s.client();
    half.send_raw(Bytes{0x00, 0x00, 0x00, 0x20, '{'});
    auto t0 = std::chrono::steady_clock::now();
    CHECK(half.receive(3000ms).status == Client::Status::closed);
    CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
    CHECK(silent.receive(3000ms).status == Client::Status::closed);
    Client fresh = s.client();
    CHECK(hello(fresh, "fresh", 3000ms));
}

TEST_CASE("spchat server: a member that never reads is dropped, the room goes on", "[server]") {
    ServerOptions o;
    o.max_queued_bytes = 2 * 1024 * 1024;
    Running s(o);
    Client talker = s.client(), reader = s.client(), stuck = s.client();
    REQUIRE(hello(talker, "talker", 3000ms));
    REQUIRE(hello(reader, "reader", 3000ms));
    REQUIRE(hello(stuck, "stuck", 3000ms));
    for (Client* c : {&talker, &reader, &stuck}) {
        c->send(Json{{"type", "JOIN"}, {"room", "r"}});
        REQUIRE(c->expect("INFO", 3000ms));
    }
    // 20 MB to the room: `stuck` reads nothing, so its socket buffers (a few
    // MiB on loopback) and then the server's queue fill.
    const std::string big(8000, 'z');
    constexpr std::size_t kMessages = 2500;
    std::size_t seen = 0;
    for (std::size_t i = 0; i < kMessages; ++i) {
        talker.send(msg("r", big + std::to_string(i)));
        // `reader` keeps up: every 50 messages it reads what was sent.
        while ((i + 1) % 50 == 0 && seen < i + 1) {
            auto r = reader.receive(5000ms);
            REQUIRE(r.status == Client::Status::message);
            if (r.message["nick"] == "talker") ++seen;
        }
    }
    CHECK(seen == kMessages);
    // `stuck` was closed: reading on, it ends before the last message.
    std::size_t stuck_seen = 0;
    for (;;) {
        auto r = stuck.receive(3000ms);
        if (r.status != Client::Status::message) {
            CHECK(r.status == Client::Status::closed);
            break;
        }
        if (r.message["nick"] == "talker") ++stuck_seen;
    }
    CHECK(stuck_seen < kMessages);
}

TEST_CASE("spchat server: connections over the limit are told the server is full", "[server]") {
    ServerOptions o;
    o.max_connections = 2;
    Running s(o);
    Client a = s.client(), b = s.client();
    REQUIRE(hello(a, "a", 3000ms));
    REQUIRE(hello(b, "b", 3000ms));
    Client c = s.client();
    auto r = c.receive(3000ms);
    REQUIRE(r.status == Client::Status::message);
    CHECK(r.message["text"] == "server full");
    CHECK(c.receive(3000ms).status == Client::Status::closed);
}
