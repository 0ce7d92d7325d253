// The relay server and the chat client over real Socket.IO on loopback.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <thread>

#include "core/clock.hpp"
#include "signal/client.hpp"
#include "signal/server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::signal;
using namespace std::chrono_literals;

namespace {

// A server on a free loopback port, running on its own thread.
struct Running {
    boost::asio::io_context io;
    std::unique_ptr<Server> server;
    std::thread thread;
    std::vector<std::string> log;
    std::mutex log_mutex;

    explicit Running(const std::string& db, PlantSet plants = {}) {
        ServerOptions o;
        o.sio.port = 0;
        o.db_path = db;
        o.app.plants = plants;
        o.relay_timeout = 3s;
        o.on_log = [this](const std::string& l) {
            std::lock_guard<std::mutex> lock(log_mutex);
            log.push_back(l);
        };
        server = std::make_unique<Server>(io, o);
        server->start();
        thread = std::thread([this] { io.run(); });
    }
    ~Running() {
        server->stop();
        thread.join();
    }
    std::uint16_t port() const { return server->port(); }
};

ClientOptions options(std::uint16_t port, const std::string& user,
                      SioTransports t = SioTransports::polling_then_websocket) {
    ClientOptions o;
    o.port = port;
    o.user = user;
    o.transports = t;
    o.timeout = 5s;
    return o;
}

Identity identity(std::uint64_t seed) {
    DeterministicRng rng(seed);
    return Identity::generate(rng);
}

// The next event of `kind` within `wait`.
std::optional<ChatEvent> wait_for(ChatClient& c, ChatEvent::Kind kind, std::chrono::milliseconds wait = 5s) {
    auto end = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < end) {
        auto e = c.next(50ms);
        if (e && e->kind == kind) return e;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("signal server: two clients register, open a session and talk both ways", "[signal][server]") {
    Running s(":memory:");
    auto transports = GENERATE(SioTransports::polling_then_websocket, SioTransports::polling, SioTransports::websocket);
    ChatClient alice(options(s.port(), "alice", transports), identity(1), SystemRng::instance());
    ChatClient bob(options(s.port(), "bob", transports), identity(2), SystemRng::instance());
    bob.connect();
    alice.connect();
    CHECK(alice.users() == std::vector<std::string>{"bob", "alice"});
    alice.start("bob");
    auto opened = wait_for(bob, ChatEvent::Kind::session);
    REQUIRE(opened);
    CHECK(opened->from == "alice");
    for (int turn = 0; turn < 3; ++turn) {
        CHECK(alice.send("bob", "from alice " + std::to_string(turn)) == Delivery::delivered);
        auto m = wait_for(bob, ChatEvent::Kind::message);
        REQUIRE(m);
        CHECK(m->text == "from alice " + std::to_string(turn));
        CHECK(bob.send("alice", "from bob " + std::to_string(turn)) == Delivery::delivered);
        auto r = wait_for(alice, ChatEvent::Kind::message);
        REQUIRE(r);
        CHECK(r->text == "from bob " + std::to_string(turn));
    }
    // Offline recipient: not delivered.
    bob.close();
    std::this_thread::sleep_for(200ms);
    CHECK(alice.send("bob", "anyone?") == Delivery::refused);
}

TEST_CASE("signal server: the directory survives a restart and the name stays its owner's", "[signal][server]") {
    msglab::test::TempDir tmp;
    auto db = (tmp.path() / "keys.db").string();
    auto bob_id = identity(2);
    {
        Running s(db);
        ChatClient bob(options(s.port(), "bob"), bob_id, SystemRng::instance());
        bob.connect();
        // Online: nobody else registers "bob".
        ChatClient mallory(options(s.port(), "bob"), identity(3), SystemRng::instance());
        CHECK_THROWS_AS(mallory.connect(), ClientError);
    }
    Running s(db);
    // After the restart: mallory still cannot, bob (same keys) can, and
    // alice opens a session from the stored bundle.
    ChatClient mallory(options(s.port(), "bob"), identity(3), SystemRng::instance());
    CHECK_THROWS_AS(mallory.connect(), ClientError);
    ChatClient alice(options(s.port(), "alice"), identity(1), SystemRng::instance());
    alice.connect();
    ChatClient bob(options(s.port(), "bob"), bob_id, SystemRng::instance());
    bob.connect();
    alice.start("bob");
    CHECK(alice.send("bob", "after the restart") == Delivery::delivered);
    auto m = wait_for(bob, ChatEvent::Kind::message);
    REQUIRE(m);
    CHECK(m->text == "after the restart");
}

TEST_CASE("signal server: a spoofed from is refused, and relayed only under the plant", "[signal][server][plant]") {
    for (bool planted : {false, true}) {
        PlantSet plants;
        if (planted) plants.enable(plant::from_spoof);
        Running s(":memory:", plants);
        ChatClient alice(options(s.port(), "alice"), identity(1), SystemRng::instance());
        ChatClient bob(options(s.port(), "bob"), identity(2), SystemRng::instance());
        ChatClient eve(options(s.port(), "eve"), identity(4), SystemRng::instance());
        alice.connect();
        bob.connect();
        eve.connect();
        // Eve opens a session with bob in alice's name.
        Json q = Json::object();
        q["username"] = "bob";
        auto bundle = eve.sio().call("request_prekey", Json::array({q}), 5s);
        auto x = eve.with_chat([&](Chat& c) { return c.initiate("bob", bundle); });
        REQUIRE(x);
        auto forged = *x;
        forged["from"] = "alice";
        auto ack = eve.sio().call("x3dh_message", Json::array({forged}), 5s);
        auto opened = wait_for(bob, ChatEvent::Kind::session, 1s);
        if (planted) {
            CHECK(ack_true(ack));
            REQUIRE(opened);
            CHECK(opened->from == "alice");
        } else {
            CHECK(!ack_true(ack));
            CHECK(!opened);
        }
    }
}

TEST_CASE("signal server: the echo bot greets, answers, and refuses a bad bundle", "[signal][server]") {
    Running s(":memory:");
    BotOptions bo;
    bo.client = options(s.port(), "msglab-bot");
    bo.greet_after = 200ms;
    Bot bot(bo, identity(9), SystemRng::instance());
    bot.start();
    ChatClient alice(options(s.port(), "alice"), identity(1), SystemRng::instance());
    alice.connect();
    alice.start("msglab-bot");
    CHECK(alice.send("msglab-bot", "ping") == Delivery::delivered);
    auto m = wait_for(alice, ChatEvent::Kind::message);
    REQUIRE(m);
    CHECK(m->from == "msglab-bot");
    CHECK(m->text == "echo: ping");
    // A user who does not write first is greeted.
    ChatClient carol(options(s.port(), "carol"), identity(5), SystemRng::instance());
    carol.connect();
    REQUIRE(wait_for(carol, ChatEvent::Kind::session));
    auto hello = wait_for(carol, ChatEvent::Kind::message);
    REQUIRE(hello);
    CHECK(hello->text.rfind("hello carol", 0) == 0);
    // One whose prekey signature is bad is not.
    Identity bad = identity(6);
    bad.spk_sig[0] ^= 1;
    ChatClient dave(options(s.port(), "dave"), bad, SystemRng::instance());
    dave.connect();
    CHECK(!wait_for(dave, ChatEvent::Kind::session, 1500ms));
}
