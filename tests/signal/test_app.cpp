// The relay and key directory (signal/app.hpp) and its SQLite file, sans-I/O.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core/clock.hpp"
#include "signal/app.hpp"
#include "signal/chat.hpp"
#include "signal/directory.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

Identity identity(std::uint64_t seed) {
    DeterministicRng rng(seed);
    return Identity::generate(rng);
}

Json reg(const std::string& name, const Identity& id) {
    return Json::array({register_user_json(register_user(name, id))});
}

std::vector<Action> of_kind(const std::vector<Action>& v, Action::Kind k) {
    std::vector<Action> out;
    for (const auto& a : v)
        if (a.kind == k) out.push_back(a);
    return out;
}

// The one ack in `v` (there must be exactly one).
Json ack_of(const std::vector<Action>& v) {
    auto acks = of_kind(v, Action::Kind::ack);
    REQUIRE(acks.size() == 1);
    return acks[0].args;
}

struct Fixture {
    Directory dir{":memory:"};
    App app;
    explicit Fixture(PlantSet plants = {}) : app(AppConfig{plants}, dir) {
        for (const char* s : {"s1", "s2", "s3"}) app.connected(s, "127.0.0.1:1");
    }
};

}  // namespace

TEST_CASE("signal app: register, list users, fetch a bundle with spk_sign", "[signal][app]") {
    Fixture f;
    auto alice = identity(1), bob = identity(2);
    CHECK(ack_of(f.app.event("s1", "register_user", reg("bob", bob), 1)) == Json::array({true}));
    CHECK(ack_of(f.app.event("s2", "register_user", reg("alice", alice), 7)) == Json::array({true}));
    CHECK(ack_of(f.app.event("s2", "request_users", Json::array(), 8)) == Json::parse(R"([["bob","alice"]])"));
    auto b = ack_of(f.app.event("s2", "request_prekey", Json::parse(R"([{"username":"bob"}])"), 9));
    REQUIRE(b.size() == 2);
    CHECK(b[0] == true);
    // The bundle's keys, in the original's order, with "spk_sign".
    CHECK(b[1].dump() == bundle_json(bob.bundle()).dump());
    CHECK(b[1].begin().key() == "ik");
    CHECK(b[1].contains("spk_sign"));
    auto none = ack_of(f.app.event("s2", "request_prekey", Json::parse(R"([{"username":"carol"}])"), 10));
    CHECK(none == Json::parse("[false,{}]"));
    // An ack is only sent when one was asked for.
    CHECK(of_kind(f.app.event("s2", "request_users", Json::array(), std::nullopt), Action::Kind::ack).empty());
}

TEST_CASE("signal app: a name is not taken over, and stays bound to its signing key", "[signal][app]") {
    Fixture f;
    auto bob = identity(2), mallory = identity(3);
    REQUIRE(ack_of(f.app.event("s1", "register_user", reg("bob", bob), 1)) == Json::array({true}));
    // Online elsewhere: refused, even with bob's own keys.
    CHECK(ack_of(f.app.event("s2", "register_user", reg("bob", mallory), 1)) == Json::array({false}));
    CHECK(ack_of(f.app.event("s2", "register_user", reg("bob", bob), 2)) == Json::array({false}));
    CHECK(f.app.sid_of("bob") == "s1");
    // Offline, another SIK: still refused; the directory keeps bob's bundle.
    f.app.disconnected("s1");
    CHECK(f.app.online().empty());
    CHECK(ack_of(f.app.event("s2", "register_user", reg("bob", mallory), 3)) == Json::array({false}));
    CHECK(f.dir.find("bob")->ik == register_user_json(register_user("bob", bob))["ik"].get<std::string>());
    // The same SIK with a new, properly signed prekey: a rotation.
    DeterministicRng rng(9);
    Identity rotated = bob;
    rotated.spk = crypto::x25519_generate(rng);
    rotated.spk_sig = crypto::ed25519_sign(bob.sik, rotated.spk.public_key);
    CHECK(ack_of(f.app.event("s2", "register_user", reg("bob", rotated), 4)) == Json::array({true}));
    CHECK(f.app.user_of("s2") == "bob");
    // The same SIK but a prekey signature that does not verify: refused.
    f.app.disconnected("s2");
    Identity forged = rotated;
    forged.spk = crypto::x25519_generate(rng);
    CHECK(ack_of(f.app.event("s3", "register_user", reg("bob", forged), 5)) == Json::array({false}));
    // A connection holds one name.
    CHECK(ack_of(f.app.event("s3", "register_user", reg("carol", identity(5)), 6)) == Json::array({true}));
    CHECK(ack_of(f.app.event("s3", "register_user", reg("dave", identity(6)), 7)) == Json::array({false}));
}

TEST_CASE("signal app: plant register-overwrite substitutes keys and moves the name", "[signal][app][plant]") {
    PlantSet plants;
    plants.enable(plant::register_overwrite);
    Fixture f(plants);
    auto bob = identity(2), mallory = identity(3);
    REQUIRE(ack_of(f.app.event("s1", "register_user", reg("bob", bob), 1)) == Json::array({true}));
    CHECK(ack_of(f.app.event("s2", "register_user", reg("bob", mallory), 1)) == Json::array({true}));
    CHECK(f.app.sid_of("bob") == "s2");
    auto b = ack_of(f.app.event("s3", "request_prekey", Json::parse(R"([{"username":"bob"}])"), 2));
    CHECK(b[1].dump() == bundle_json(mallory.bundle()).dump());
}

TEST_CASE("signal app: relays carry the sender's own name only", "[signal][app]") {
    Fixture f;
    REQUIRE(ack_of(f.app.event("s1", "register_user", reg("bob", identity(2)), 1)) == Json::array({true}));
    REQUIRE(ack_of(f.app.event("s2", "register_user", reg("alice", identity(1)), 1)) == Json::array({true}));
    auto msg = Json::parse(R"({"username":"bob","cipher":"AA==","header":{"dh":"","pn":"","n":""},"hmac":"","from":"alice"})");
    auto out = f.app.event("s2", "ratchet_msg", Json::array({msg}), 5);
    auto relays = of_kind(out, Action::Kind::relay);
    REQUIRE(relays.size() == 1);
    CHECK(relays[0].sid == "s1");
    CHECK(relays[0].event == "ratchet_msg");
    CHECK(relays[0].args == Json::array({msg}));  // the same dict
    CHECK(of_kind(out, Action::Kind::ack).empty());
    CHECK(f.app.pending_relays() == 1);
    // The recipient's ack, several arguments and all, goes back to the sender.
    auto back = f.app.relay_answered(relays[0].token, Json::parse(R"([true,"x"])"));
    REQUIRE(of_kind(back, Action::Kind::ack).size() == 1);
    CHECK(of_kind(back, Action::Kind::ack)[0].sid == "s2");
    CHECK(of_kind(back, Action::Kind::ack)[0].request == 5);
    CHECK(of_kind(back, Action::Kind::ack)[0].args == Json::parse(R"([true,"x"])"));
    // No answer (timeout, disconnect): [false].
    out = f.app.event("s2", "ratchet_msg", Json::array({msg}), 6);
    auto t = of_kind(out, Action::Kind::relay).at(0).token;
    CHECK(ack_of(f.app.relay_answered(t, std::nullopt)) == Json::array({false}));

    // from naming someone else: refused, nothing relayed.
    auto spoof = msg;
    spoof["from"] = "carol";
    out = f.app.event("s2", "ratchet_msg", Json::array({spoof}), 7);
    CHECK(of_kind(out, Action::Kind::relay).empty());
    CHECK(ack_of(out) == Json::array({false}));
    // An unregistered connection cannot send.
    out = f.app.event("s3", "x3dh_message", Json::array({spoof}), 8);
    CHECK(of_kind(out, Action::Kind::relay).empty());
    // Recipient offline: [false].
    auto offline = msg;
    offline["username"] = "zed";
    CHECK(ack_of(f.app.event("s2", "ratchet_msg", Json::array({offline}), 9)) == Json::array({false}));
    // Not an object, oversized cipher: refused.
    CHECK(ack_of(f.app.event("s2", "ratchet_msg", Json::parse("[7]"), 10)) == Json::array({false}));
    auto big = msg;
    big["cipher"] = std::string(kMaxCipherText + 1, 'A');
    CHECK(ack_of(f.app.event("s2", "ratchet_msg", Json::array({big}), 11)) == Json::array({false}));
}

TEST_CASE("signal app: plant from-spoof relays any from", "[signal][app][plant]") {
    PlantSet plants;
    plants.enable(plant::from_spoof);
    Fixture f(plants);
    REQUIRE(ack_of(f.app.event("s1", "register_user", reg("bob", identity(2)), 1)) == Json::array({true}));
    auto spoof = Json::parse(R"({"username":"bob","from":"carol","ik":"","epk":"","cipher":"","hmac":""})");
    auto out = f.app.event("s3", "x3dh_message", Json::array({spoof}), 2);
    REQUIRE(of_kind(out, Action::Kind::relay).size() == 1);
    CHECK(of_kind(out, Action::Kind::relay)[0].args[0]["from"] == "carol");
}

TEST_CASE("signal app: pongi is ignored unless plant debug-broadcast", "[signal][app][plant]") {
    {
        Fixture f;
        auto out = f.app.event("s1", "pongi", Json::array({1}), 3);
        CHECK(of_kind(out, Action::Kind::ack).empty());
        CHECK(of_kind(out, Action::Kind::emit).empty());
    }
    PlantSet plants;
    plants.enable(plant::debug_broadcast);
    Fixture f(plants);
    auto out = f.app.event("s1", "pongi", Json::array({1}), 3);
    auto emits = of_kind(out, Action::Kind::emit);
    CHECK(emits.size() == 3);  // every connected socket, the sender too
    for (const auto& e : emits) {
        CHECK(e.event == "pingi");
        CHECK(e.args == Json::array({"sankalp"}));
    }
    CHECK(ack_of(out) == Json::array({true}));
}

TEST_CASE("signal app: registrations are refused field by field", "[signal][app]") {
    Fixture f;
    auto good = register_user_json(register_user("eve", identity(4)));
    auto refused = [&](Json arg) { return ack_of(f.app.event("s1", "register_user", Json::array({arg}), 1)) == Json::array({false}); };
    CHECK(refused(Json::array()));
    for (const char* k : {"username", "ik", "sik", "spk", "spk_sig"}) {
        auto j = good;
        j.erase(k);
        CHECK(refused(j));
    }
    auto j = good;
    j["username"] = "";
    CHECK(refused(j));
    j["username"] = std::string(65, 'a');
    CHECK(refused(j));
    j["username"] = "a\nb";
    CHECK(refused(j));
    j = good;
    j["ik"] = "AAAA";  // 3 bytes
    CHECK(refused(j));
    j = good;
    j["spk_sig"] = good["ik"];  // 32 bytes, not 64
    CHECK(refused(j));
    CHECK(f.dir.size() == 0);
    CHECK(ack_of(f.app.event("s1", "register_user", Json::array({good}), 1)) == Json::array({true}));
}

TEST_CASE("signal directory: the SQLite file survives a reopen and refuses a foreign file", "[signal][app]") {
    msglab::test::TempDir tmp;
    auto path = (tmp.path() / "keys.db").string();
    auto bob = identity(2);
    {
        Directory d(path);
        App app(AppConfig{}, d);
        app.connected("s1", "x");
        REQUIRE(ack_of(app.event("s1", "register_user", reg("bob", bob), 1)) == Json::array({true}));
    }
    Directory again(path);
    REQUIRE(again.find("bob"));
    CHECK(again.find("bob")->spk_sign == register_user_json(register_user("bob", bob))["spk_sig"].get<std::string>());
    CHECK(again.usernames() == std::vector<std::string>{"bob"});
    // A file that is not a database.
    auto junk = (tmp.path() / "junk.db").string();
    {
        std::ofstream o(junk);
        o << "this is not a database, just text that is long enough to fill a header page..........";
    }
    CHECK_THROWS_AS(Directory(junk), DirectoryError);
}
