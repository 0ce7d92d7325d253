// One user's side of the chat (signal/chat.hpp): two Chats exchanging the
// event payloads directly, clean and with each client plant.
#include <catch2/catch.hpp>

#include "core/clock.hpp"
#include "signal/app.hpp"
#include "signal/chat.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

struct Pair {
    DeterministicRng rng_a{11}, rng_b{12};
    Chat alice, bob;
    std::vector<std::tuple<std::string, std::string, std::string>> keylog;  // who, label, id

    explicit Pair(PlantSet plants_b = {}, PlantSet plants_a = {})
        : alice("alice", Identity::generate(rng_a), ChatOptions{plants_a}, rng_a),
          bob("bob", Identity::generate(rng_b), ChatOptions{plants_b}, rng_b) {
        alice.set_keylog([this](std::string_view l, ByteView id, ByteView) {
            keylog.emplace_back("alice", std::string(l), hex(id));
        });
        bob.set_keylog([this](std::string_view l, ByteView id, ByteView) {
            keylog.emplace_back("bob", std::string(l), hex(id));
        });
    }

    Json bundle_of(const Chat& c) { return Json::array({true, bundle_json(c.identity().bundle())}); }

    // X3DH alice -> bob, acked with what bob answers; the opening message
    // delivered. Returns bob's answer to the x3dh_message.
    Incoming open() {
        auto x = alice.initiate("bob", bundle_of(bob));
        REQUIRE(x);
        auto in = bob.receive_x3dh(*x);
        auto opening = alice.x3dh_answered("bob", in.ack);
        if (opening) {
            auto o = bob.receive_ratchet(*opening);
            CHECK(o.kind == Incoming::Kind::opening);
        }
        return in;
    }
};

Json seal(Chat& c, const std::string& to, const std::string& text) {
    auto r = c.seal(to, text);
    REQUIRE(r);
    REQUIRE(r->has_value());
    return **r;
}

}  // namespace

TEST_CASE("signal chat: X3DH, then messages both ways over several DH steps", "[signal][chat]") {
    Pair p;
    auto in = p.open();
    CHECK(in.kind == Incoming::Kind::session);
    CHECK(in.from == "alice");
    CHECK(in.ack);
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 2; ++i) {
            auto m = p.bob.receive_ratchet(seal(p.alice, "bob", "a" + std::to_string(round) + std::to_string(i)));
            CHECK(m.kind == Incoming::Kind::message);
            CHECK(m.text == "a" + std::to_string(round) + std::to_string(i));
            CHECK(m.ack);
        }
        auto m = p.alice.receive_ratchet(seal(p.bob, "alice", "b" + std::to_string(round)));
        CHECK(m.text == "b" + std::to_string(round));
    }
    // Key log lines: an SK on each side and a message key per message per side.
    std::size_t sk = 0, mk = 0;
    for (auto& [who, label, id] : p.keylog) {
        if (label == kKeylogX3dhSk) {
            ++sk;
            CHECK(id.size() == 64);
        } else if (label == kKeylogMessageKey) {
            ++mk;
            CHECK(id.size() == 80);
        }
    }
    CHECK(sk == 2);
    CHECK(mk == 2 * (1 + 3 * 3));
}

TEST_CASE("signal chat: the responder writes first, and its messages wait for the opening", "[signal][chat]") {
    Pair p;
    auto x = p.alice.initiate("bob", p.bundle_of(p.bob));
    REQUIRE(x);
    REQUIRE(p.bob.receive_x3dh(*x).ack);
    // Bob writes before anything from alice arrived: queued, not lost, no crash.
    auto r = p.bob.seal("alice", "bob speaks first");
    REQUIRE(r);
    CHECK(!r->has_value());
    CHECK(p.bob.queued("alice") == 1);
    auto opening = p.alice.x3dh_answered("bob", true);
    REQUIRE(opening);
    auto o = p.bob.receive_ratchet(*opening);
    CHECK(o.kind == Incoming::Kind::opening);
    REQUIRE(o.flush.size() == 1);
    CHECK(p.bob.queued("alice") == 0);
    auto m = p.alice.receive_ratchet(o.flush[0]);
    CHECK(m.kind == Incoming::Kind::message);
    CHECK(m.text == "bob speaks first");
}

TEST_CASE("signal chat: a refused x3dh ack starts no session", "[signal][chat]") {
    Pair p;
    auto x = p.alice.initiate("bob", p.bundle_of(p.bob));
    REQUIRE(x);
    CHECK(!p.alice.x3dh_answered("bob", false));
    CHECK(!p.alice.has_session("bob"));
    CHECK(!p.alice.seal("bob", "x"));
    // Unknown user.
    CHECK(!p.alice.initiate("carol", Json::parse("[false,{}]")));
}

TEST_CASE("signal chat: a bundle with a bad prekey signature is refused unless spk-sig-unchecked", "[signal][chat][plant]") {
    Pair p;
    auto b = p.bundle_of(p.bob);
    auto sig = b[1]["spk_sign"].get<std::string>();
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    b[1]["spk_sign"] = sig;
    auto x = p.alice.initiate("bob", b);
    REQUIRE(!x);
    CHECK(x.error().find("does not verify") != std::string::npos);
    PlantSet plants;
    plants.enable(plant::spk_sig_unchecked);
    Pair q({}, plants);
    auto b2 = q.bundle_of(q.bob);
    auto sig2 = b2[1]["spk_sign"].get<std::string>();
    sig2[0] = sig2[0] == 'A' ? 'B' : 'A';
    b2[1]["spk_sign"] = sig2;
    CHECK(q.alice.initiate("bob", b2));
}

TEST_CASE("signal chat: forged messages are refused with false and leave the session working", "[signal][chat]") {
    Pair p;
    p.open();
    auto genuine = seal(p.alice, "bob", "genuine");
    auto forged = genuine;
    // A fresh dh and a counter jump, with MACs that cannot verify.
    forged["header"]["dh"] = bundle_json(p.alice.identity().bundle())["spk"];
    auto f1 = p.bob.receive_ratchet(forged);
    CHECK(f1.kind == Incoming::Kind::refused);
    CHECK(!f1.ack);
    auto jump = genuine;
    jump["header"]["n"] = "CQ==";  // 9
    CHECK(!p.bob.receive_ratchet(jump).ack);
    auto m = p.bob.receive_ratchet(genuine);
    CHECK(m.kind == Incoming::Kind::message);
    CHECK(m.text == "genuine");
    // A replay of the same message: refused.
    CHECK(!p.bob.receive_ratchet(genuine).ack);
    // A bad X3DH MAC: refused.
    auto x = p.alice.initiate("bob", p.bundle_of(p.bob));
    REQUIRE(x);
    auto bad = *x;
    bad["hmac"] = bad["epk"];
    CHECK(!p.bob.receive_x3dh(bad).ack);
    // Malformed payloads: refused, never thrown.
    CHECK(!p.bob.receive_ratchet(Json::parse("{}")).ack);
    CHECK(!p.bob.receive_x3dh(Json::parse("[1,2]")).ack);
}

TEST_CASE("signal chat: plant state-before-mac loses the session to one forgery", "[signal][chat][plant]") {
    PlantSet plants;
    plants.enable(plant::state_before_mac);
    Pair p(plants);
    p.open();
    auto genuine = seal(p.alice, "bob", "genuine");
    auto forged = genuine;
    forged["header"]["dh"] = bundle_json(p.alice.identity().bundle())["spk"];
    CHECK(!p.bob.receive_ratchet(forged).ack);
    // The forged DH step was committed: the genuine message no longer opens.
    CHECK(!p.bob.receive_ratchet(genuine).ack);
}

TEST_CASE("signal chat: plant ack-on-failure acks true for what failed", "[signal][chat][plant]") {
    PlantSet plants;
    plants.enable(plant::ack_on_failure);
    Pair p(plants);
    auto x = p.alice.initiate("bob", p.bundle_of(p.bob));
    REQUIRE(x);
    auto bad = *x;
    bad["hmac"] = bad["epk"];
    auto in = p.bob.receive_x3dh(bad);
    CHECK(in.kind == Incoming::Kind::refused);
    CHECK(in.ack);
    CHECK(p.bob.receive_ratchet(Json::parse("{}")).ack);
}

TEST_CASE("signal chat: a replayed x3dh_message opens the session again (no one-time prekeys)", "[signal][chat]") {
    Pair p;
    auto x = p.alice.initiate("bob", p.bundle_of(p.bob));
    REQUIRE(x);
    REQUIRE(p.bob.receive_x3dh(*x).ack);
    auto opening = p.alice.x3dh_answered("bob", true);
    REQUIRE(opening);
    REQUIRE(p.bob.receive_ratchet(*opening).kind == Incoming::Kind::opening);
    // The design flaw, shown: the same message is accepted again and resets bob.
    auto again = p.bob.receive_x3dh(*x);
    CHECK(again.kind == Incoming::Kind::session);
    CHECK(again.ack);
    CHECK(!p.bob.can_send("alice"));
    CHECK(p.bob.receive_ratchet(*opening).kind == Incoming::Kind::opening);
}
