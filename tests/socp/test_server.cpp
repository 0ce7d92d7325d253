// The SOCP server (Beast) and client over loopback: two servers in this
// process, users as socp::Client.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "core/io_thread.hpp"
#include "socp/client.hpp"
#include "socp/server.hpp"
#include "socp_support.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::socp;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string U1 = "11111111-1111-4111-8111-111111111111";
const std::string U2 = "22222222-2222-4222-8222-222222222222";

crypto::RsaPrivateKey priv(const std::string& name) {
    return *crypto::RsaPrivateKey::from_pem(socp::test::read_text(socp::test::key_path(name)));
}

ServerOptions options(std::vector<Endpoint> introducers = {}) {
    ServerOptions o;
    o.port = 0;
    o.app.introducers = std::move(introducers);
    o.app.heartbeat_ms = 200;
    o.app.dead_after_ms = 1000;
    return o;
}

std::unique_ptr<Client> user(const std::string& id, const std::string& key_name, std::uint16_t port, Rng& rng,
                             KeyEncoding enc = KeyEncoding::der, std::string downloads = "") {
    ClientOptions o;
    o.port = port;
    o.user = id;
    o.key_encoding = enc;
    o.downloads = std::move(downloads);
    o.timeout = 5000ms;
    return std::make_unique<Client>(o, priv(key_name), rng);
}

std::optional<Event> next_of(Client& c, Event::Kind kind, std::chrono::milliseconds limit = 5000ms) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        auto ev = c.next(100ms);
        if (ev && ev->kind == kind) return ev;
    }
    return std::nullopt;
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit = 5000ms) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (f()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return f();
}

}  // namespace

TEST_CASE("socp over loopback: two servers, a DM and a public message each way, and a file", "[server]") {
    SystemRng rng;
    msglab::test::TempDir dir;
    IoThread loop;
    auto a = std::make_unique<Server>(loop.io, options(), priv("server-a"), "server-a", rng);
    a->start();
    auto b = std::make_unique<Server>(loop.io, options({Endpoint{"127.0.0.1", a->port()}}),
                                      priv("server-b"), "server-b", rng);
    b->start();
    StopOnExit stop{loop};

    auto alice = user(U1, "user-1", a->port(), rng);
    auto bob = user(U2, "user-2", b->port(), rng, KeyEncoding::pem, (dir / "bob").string());
    alice->login();
    bob->login();
    REQUIRE(alice->wait_for_user(U2, 5000ms));
    REQUIRE(bob->wait_for_user(U1, 5000ms));
    CHECK(alice->online() == std::vector<std::string>{U1, U2});

    alice->tell(U2, "hi bob, caf\xc3\xa9");
    auto dm = next_of(*bob, Event::Kind::direct);
    REQUIRE(dm);
    CHECK(dm->from == U1);
    CHECK(dm->text == "hi bob, caf\xc3\xa9");
    CHECK(dm->verified);
    CHECK(dm->key_matches);

    // A text longer than one RSA block goes as several messages.
    std::string long_text(1000, 'x');
    bob->tell(U1, long_text);
    std::string joined;
    while (joined.size() < long_text.size()) {
        auto part = next_of(*alice, Event::Kind::direct);
        REQUIRE(part);
        joined += part->text;
    }
    CHECK(joined == long_text);

    REQUIRE(alice->wait_for_group_key(5000ms));
    REQUIRE(eventually([&] {
        bob->next(0ms);
        return bob->group_version() == alice->group_version();
    }));
    CHECK(alice->all("hello everyone"));
    auto pub = next_of(*bob, Event::Kind::public_message);
    REQUIRE(pub);
    CHECK(pub->text == "hello everyone");
    CHECK(pub->encrypted);
    CHECK(pub->verified);

    fs::path f = dir / "notes.bin";
    {
        Bytes data = rng.bytes(5000);
        std::ofstream(f, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), 5000);
    }
    alice->send_file(U2, f.string());
    auto got = next_of(*bob, Event::Kind::file, 10000ms);
    REQUIRE(got);
    CHECK(got->verified);
    CHECK(socp::test::read_text(got->text) == socp::test::read_text(f.string()));

    // bob leaves: alice is told.
    bob->close();
    auto left = next_of(*alice, Event::Kind::left);
    REQUIRE(left);
    CHECK(left->from == U2);
    CHECK_THROWS_AS(alice->tell(U2, "gone"), ClientError);
    a->stop();
    b->stop();
}

TEST_CASE("socp over loopback: refusals reach the client as clear errors", "[server]") {
    SystemRng rng;
    IoThread loop;
    ServerOptions o = options();
    o.app.limits.max_message = 8192;
    auto a = std::make_unique<Server>(loop.io, o, priv("server-a"), "server-a", rng);
    a->start();
    StopOnExit stop{loop};
    auto first = user(U1, "user-1", a->port(), rng);
    first->login();
    auto second = user(U1, "user-3", a->port(), rng);
    try {
        second->login();
        FAIL("a second login under a taken name was accepted");
    } catch (const ClientError& e) {
        CHECK(std::string(e.what()).find("NAME_IN_USE") != std::string::npos);
    }
    auto weak = user(U2, "weak-1", a->port(), rng);
    CHECK_THROWS_WITH(weak->login(), Catch::Contains("BAD_KEY"));
    // A message over the bound: the WebSocket closes with 1009 (message too big).
    first->send_text(std::string(9000, ' '));
    CHECK(eventually([&] {
        first->next(0ms);
        return first->closed();
    }));
    CHECK(first->close_reason().find("1009") != std::string::npos);
    a->stop();
}
