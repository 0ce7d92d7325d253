// CSMP's call state machine, sans-I/O.
#include "support.hpp"

#include <set>

#include "csmp/calls.hpp"

using namespace msglab::csmp;

namespace {

struct Book {
    std::set<std::string> online = {"alice", "bob", "carol"};
    int n = 0;
    CallBook book;
    explicit Book(CallConfig c = {})
        : book(c, [this] { return "call-" + std::to_string(++n); },
               [this](const std::string& who) { return online.count(who) != 0; }) {}
};

Json ev(std::initializer_list<std::pair<const std::string, Json>> kv) {
    Json j = Json::object();
    for (const auto& [k, v] : kv) j[k] = v;
    return j;
}

std::string error_code(const std::vector<CallOut>& out) {
    if (out.size() != 1 || out[0].message.value("type", "") != "error") return "";
    return out[0].message.value("code", "");
}

}  // namespace

TEST_CASE("A call goes ringing, connected, ended with the original's messages", "[csmp][calls]") {
    Book b;
    auto out = b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}, {"call_type", "video"}}), 1000);
    REQUIRE(out.size() == 2);
    CHECK(out[0].to == "bob");
    CHECK(out[0].message.dump() == R"({"type":"call:incoming","call_id":"call-1","from":"alice","call_type":"video"})");
    CHECK(out[1].to == "alice");
    CHECK(out[1].message.dump() == R"({"type":"call:ack","call_id":"call-1","to":"bob","call_type":"video"})");
    CHECK(b.book.find("call-1")->state == CallState::ringing);

    Json sdp = {{"type", "offer"}, {"sdp", "v=0"}};
    out = b.book.event("alice", ev({{"type", "call:offer"}, {"to", "bob"}, {"call_id", "call-1"}, {"sdp", sdp}}), 1100);
    REQUIRE(out.size() == 1);
    CHECK(out[0].message.dump() == R"({"type":"call:offer","call_id":"call-1","sdp":{"type":"offer","sdp":"v=0"},"from":"alice"})");
    out = b.book.event("bob", ev({{"type", "call:answer"}, {"to", "alice"}, {"call_id", "call-1"}, {"sdp", sdp}}), 1200);
    REQUIRE(out.size() == 1);
    CHECK(out[0].to == "alice");
    CHECK(out[0].message.dump() == R"({"type":"call:answer","call_id":"call-1","sdp":{"type":"offer","sdp":"v=0"}})");
    CHECK(b.book.find("call-1")->state == CallState::connected);
    // The original's candidates carry no call id.
    out = b.book.event("bob", ev({{"type", "call:ice"}, {"to", "alice"}, {"candidate", {{"candidate", "c"}}}}), 1300);
    REQUIRE(out.size() == 1);
    CHECK(out[0].message.dump() == R"({"type":"call:ice","candidate":{"candidate":"c"}})");
    out = b.book.event("bob", ev({{"type", "call:end"}, {"to", "alice"}, {"call_id", "call-1"}}), 1400);
    REQUIRE(out.size() == 1);
    CHECK(out[0].message.dump() == R"({"type":"call:end","call_id":"call-1"})");
    CHECK(b.book.find("call-1")->state == CallState::ended);
    CHECK(b.book.live() == 0);
    auto h = b.book.history("alice", 10);
    REQUIRE(h.size() == 1);
    CHECK(h[0].ended_ms == 1400);
}

TEST_CASE("Only the parties signal a call, only to each other, illegal transitions are errors", "[csmp][calls]") {
    Book b;
    b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 0);
    Json sdp = {{"type", "answer"}};
    CHECK(error_code(b.book.event("carol", ev({{"type", "call:answer"}, {"to", "alice"}, {"call_id", "call-1"}, {"sdp", sdp}}), 1)) == "not_a_party");
    CHECK(error_code(b.book.event("carol", ev({{"type", "call:end"}, {"to", "bob"}, {"call_id", "call-1"}}), 1)) == "not_a_party");
    CHECK(error_code(b.book.event("carol", ev({{"type", "call:ice"}, {"to", "bob"}, {"call_id", "call-1"}, {"candidate", 1}}), 1)) == "not_a_party");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:offer"}, {"to", "carol"}, {"call_id", "call-1"}, {"sdp", sdp}}), 1)) == "wrong_peer");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:end"}, {"to", "bob"}, {"call_id", "nope"}}), 1)) == "unknown_call");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:reject"}, {"to", "bob"}, {"call_id", "call-1"}}), 1)) == "bad_state");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:init"}}), 1)) == "bad_event");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:init"}, {"to", "alice"}}), 1)) == "bad_event");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:offer"}, {"to", "bob"}, {"call_id", "call-1"}}), 1)) == "bad_event");
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:teleport"}}), 1)) == "unknown_type");
    CHECK(error_code(b.book.event("alice", Json::array(), 1)) == "bad_event");
    CHECK(b.book.find("call-1")->state == CallState::ringing);
    // The callee rejects: the caller hears it, the call is over.
    auto out = b.book.event("bob", ev({{"type", "call:reject"}, {"to", "alice"}, {"call_id", "call-1"}}), 2);
    REQUIRE(out.size() == 1);
    CHECK(out[0].to == "alice");
    CHECK(b.book.find("call-1")->state == CallState::rejected);
    CHECK(error_code(b.book.event("bob", ev({{"type", "call:answer"}, {"to", "alice"}, {"call_id", "call-1"}, {"sdp", sdp}}), 3)) == "unknown_call");
}

TEST_CASE("Calls time out: ringing ones are missed, idle ones end, offline parties end them", "[csmp][calls]") {
    CallConfig c;
    c.ring_timeout_ms = 1000;
    c.idle_timeout_ms = 5000;
    Book b(c);
    b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 0);
    CHECK(b.book.tick(999).empty());
    auto out = b.book.tick(1000);
    REQUIRE(out.size() == 2);
    CHECK(out[0].message.value("reason", "") == "missed");
    CHECK(b.book.find("call-1")->state == CallState::missed);

    // A callee who is not connected: the call is missed at once.
    out = b.book.event("alice", ev({{"type", "call:init"}, {"to", "dave"}}), 10);
    REQUIRE(out.size() == 2);
    CHECK(out[0].message.value("type", "") == "call:ack");
    CHECK(out[1].message.value("reason", "") == "missed");
    CHECK(b.book.find("call-2")->state == CallState::missed);

    b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 100);
    b.book.event("bob", ev({{"type", "call:answer"}, {"to", "alice"}, {"call_id", "call-3"}, {"sdp", 1}}), 200);
    CHECK(b.book.tick(5199).empty());
    out = b.book.tick(5200);
    REQUIRE(out.size() == 2);
    CHECK(b.book.find("call-3")->state == CallState::ended);

    b.book.event("alice", ev({{"type", "call:init"}, {"to", "carol"}}), 6000);
    out = b.book.offline("carol", 6001);
    REQUIRE(out.size() == 1);
    CHECK(out[0].to == "alice");
    CHECK(out[0].message.value("reason", "") == "peer_offline");
    CHECK(b.book.live() == 0);
}

TEST_CASE("Bounds: live calls per identity and in all, finished records", "[csmp][calls]") {
    CallConfig c;
    c.max_live_per_identity = 2;
    c.max_live_calls = 3;
    c.max_records = 2;
    Book b(c);
    b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 0);
    b.book.event("alice", ev({{"type", "call:init"}, {"to", "carol"}}), 0);
    CHECK(error_code(b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 0)) == "busy");
    b.book.event("bob", ev({{"type", "call:init"}, {"to", "carol"}}), 0);
    CHECK(error_code(b.book.event("carol", ev({{"type", "call:init"}, {"to", "bob"}}), 0)) == "busy");
    b.book.tick(60'000);
    CHECK(b.book.live() == 0);
    CHECK(b.book.history("alice", 10).size() == 1);  // only two records are kept
}

TEST_CASE("Planted call-hijack: anyone signals any call, as the original", "[csmp][calls]") {
    CallConfig c;
    c.any_party = true;
    Book b(c);
    b.book.event("alice", ev({{"type", "call:init"}, {"to", "bob"}}), 0);
    auto out = b.book.event("carol", ev({{"type", "call:end"}, {"to", "bob"}, {"call_id", "call-1"}}), 1);
    REQUIRE(out.size() == 1);
    CHECK(out[0].to == "bob");
    CHECK(out[0].message.value("type", "") == "call:end");
    // An unknown call id is relayed anyway.
    out = b.book.event("carol", ev({{"type", "call:answer"}, {"to", "alice"}, {"call_id", "made-up"}, {"sdp", 1}}), 2);
    REQUIRE(out.size() == 1);
    CHECK(out[0].message.value("call_id", "") == "made-up");
}
