// Engine.IO v4 and Socket.IO v5 packet codecs (reference/signal/eio.hpp):
// every packet type both ways, polling payloads with 0x1e, the open packet,
// the bytes python-socketio writes (from the Signal capture), the bounds,
// and errors for malformed input.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "core/clock.hpp"
#include "signal/eio.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

SioPacket sio_ok(const std::string& text) {
    auto r = parse_sio_packet(text);
    INFO(text << ": " << (r ? std::string() : r.error().to_string()));
    REQUIRE(r);
    return *r;
}

std::string sio_err(const std::string& text) {
    auto r = parse_sio_packet(text);
    INFO(text);
    REQUIRE_FALSE(r);
    return r.error().to_string();
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("eio: every Engine.IO packet type parses and builds back", "[signal][eio]") {
    const char* texts[] = {"0{\"sid\":\"x\"}", "1", "2", "3", "4hello", "5", "6", "2probe", "3probe", "4"};
    EioType types[] = {EioType::open,  EioType::close,   EioType::ping, EioType::pong, EioType::message,
                       EioType::upgrade, EioType::noop, EioType::ping, EioType::pong, EioType::message};
    for (std::size_t i = 0; i < std::size(texts); ++i) {
        auto p = parse_eio_packet(texts[i]);
        INFO(texts[i]);
        REQUIRE(p);
        CHECK(p->type == types[i]);
        CHECK(p->data == std::string(texts[i]).substr(1));
        CHECK(build_eio_packet(*p) == texts[i]);
    }
    CHECK(std::string(eio_type_name(EioType::noop)) == "NOOP");
    CHECK(build_eio_packet(EioType::ping, "probe") == "2probe");
}

TEST_CASE("eio: malformed Engine.IO packets are errors, binary is refused by name", "[signal][eio]") {
    CHECK_FALSE(parse_eio_packet(""));
    CHECK(parse_eio_packet("").error().code == ParseErrc::truncated);
    auto b = parse_eio_packet("bAQID");
    REQUIRE_FALSE(b);
    CHECK(has(b.error().to_string(), "binary"));
    for (const char* t : {"7", "9x", "x", "{", "\x1e"}) {
        INFO(t);
        auto p = parse_eio_packet(t);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == ParseErrc::unknown_type);
    }
    auto big = parse_eio_packet("4" + std::string(100, 'a'), 50);
    REQUIRE_FALSE(big);
    CHECK(big.error().code == ParseErrc::length_over_limit);
}

TEST_CASE("eio: polling payloads split on the record separator and join back", "[signal][eio]") {
    std::string body = "40\x1e" "421[\"hello\",1]\x1e" "3\x1e" "6";
    auto p = parse_payload(body);
    REQUIRE(p);
    REQUIRE(p->size() == 4);
    CHECK((*p)[0] == EioPacket{EioType::message, "0"});
    CHECK((*p)[1] == EioPacket{EioType::message, "21[\"hello\",1]"});
    CHECK((*p)[2] == EioPacket{EioType::pong, ""});
    CHECK((*p)[3] == EioPacket{EioType::noop, ""});
    CHECK(build_payload(*p) == body);

    auto one = parse_payload("2");
    REQUIRE(one);
    CHECK(one->size() == 1);
}

TEST_CASE("eio: payload bounds and empty packets are errors", "[signal][eio]") {
    CHECK(parse_payload("").error().code == ParseErrc::truncated);
    for (const char* t : {"\x1e", "4a\x1e", "\x1e" "4a", "4a\x1e\x1e" "4b"}) {
        INFO(::msglab::hex(as_bytes(t)));
        auto p = parse_payload(t);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == ParseErrc::bad_length);
    }
    // A binary packet inside a payload: its offset is the packet's.
    auto b = parse_payload("4a\x1e" "bAAAA");
    REQUIRE_FALSE(b);
    CHECK(b.error().offset == 3);
    CHECK(has(b.error().to_string(), "binary"));

    std::string many;
    for (int i = 0; i < 11; ++i) many += (i ? "\x1e" : "") + std::string("6");
    CHECK(parse_payload(many, kDefaultMaxPayload, 11));
    auto over = parse_payload(many, kDefaultMaxPayload, 10);
    REQUIRE_FALSE(over);
    CHECK(over.error().code == ParseErrc::length_over_limit);

    std::string big = "4" + std::string(kDefaultMaxPayload, 'x');
    auto huge = parse_payload(big);
    REQUIRE_FALSE(huge);
    CHECK(huge.error().code == ParseErrc::length_over_limit);
    CHECK(parse_payload(big.substr(0, kDefaultMaxPayload)));
}

TEST_CASE("eio: take_payload packs what fits and always makes progress", "[signal][eio]") {
    std::deque<std::string> q = {"4aaaa", "4bbbb", "4cccc"};
    // 5 + 1 + 5 = 11 bytes fit in 12, the third does not.
    CHECK(take_payload(q, 12) == "4aaaa\x1e" "4bbbb");
    REQUIRE(q.size() == 1);
    // One packet larger than the bound still goes alone.
    q.push_front(std::string(20, '4'));
    CHECK(take_payload(q, 12) == std::string(20, '4'));
    CHECK(take_payload(q, 12) == "4cccc");
    CHECK(take_payload(q, 12).empty());
    std::deque<std::string> many(10, "6");
    CHECK(take_payload(many, 1000, 3) == "6\x1e" "6\x1e" "6");
    CHECK(many.size() == 7);
}

TEST_CASE("eio: the open packet as the capture shows it, and its checks", "[signal][eio]") {
    EioOpen o;
    o.sid = "jGgU-pDc6jF4ctTbAAAA";
    o.upgrades = {"websocket"};
    // Frame 8 of signal.pcap, byte for byte.
    CHECK(build_eio_packet(EioType::open, build_open_data(o)) ==
          R"(0{"sid":"jGgU-pDc6jF4ctTbAAAA","upgrades":["websocket"],"pingTimeout":20000,"pingInterval":25000})");
    o.max_payload = 1000000;
    auto back = parse_open_data(build_open_data(o));
    REQUIRE(back);
    CHECK(*back == o);

    auto spec = parse_open_data(
        R"({"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000,"extra":1})");
    REQUIRE(spec);
    CHECK(spec->ping_timeout_ms == 5000);
    CHECK(spec->max_payload == std::optional<std::uint64_t>(1000000));

    for (const char* bad : {
             "[]", "{}", R"({"sid":"","upgrades":[],"pingInterval":1,"pingTimeout":1})",
             R"({"sid":1,"upgrades":[],"pingInterval":1,"pingTimeout":1})",
             R"({"sid":"a","upgrades":"websocket","pingInterval":1,"pingTimeout":1})",
             R"({"sid":"a","upgrades":[1],"pingInterval":1,"pingTimeout":1})",
             R"({"sid":"a","upgrades":[],"pingInterval":0,"pingTimeout":1})",
             R"({"sid":"a","upgrades":[],"pingInterval":1.5,"pingTimeout":1})",
             R"({"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":-1})",
             R"({"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":4294967296})",
             R"({"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":0})",
             R"({"sid":"a","upgrades":["a","b","c","d","e","f","g","h","i"],"pingInterval":1,"pingTimeout":1})",
             "{\"sid\":\"a\"",
         }) {
        INFO(bad);
        CHECK_FALSE(parse_open_data(bad));
    }
    CHECK_FALSE(parse_open_data("{\"sid\":\"" + std::string(kMaxSidLength + 1, 'a') +
                                "\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":1}"));
}

TEST_CASE("eio: sids are 20 URL-safe characters and differ", "[signal][eio]") {
    DeterministicRng rng(7);
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        std::string sid = make_sid(rng);
        REQUIRE(sid.size() == kEioSidLength);
        for (char c : sid) {
            INFO(sid);
            CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
        }
        seen.insert(sid);
    }
    CHECK(seen.size() == 200);
}

TEST_CASE("sio: every Socket.IO packet type parses and builds back", "[signal][sio]") {
    struct Case {
        const char* text;
        SioType type;
        const char* nsp;
        std::optional<std::uint64_t> id;
        const char* data;  // JSON, or nullptr
    } cases[] = {
        {"0", SioType::connect, "/", std::nullopt, nullptr},
        {"0{}", SioType::connect, "/", std::nullopt, "{}"},
        {"0{\"token\":\"abc\"}", SioType::connect, "/", std::nullopt, "{\"token\":\"abc\"}"},
        {"0/admin,", SioType::connect, "/admin", std::nullopt, nullptr},
        {"0{\"sid\":\"pYRGy8yjgHxtU0yLAAAB\"}", SioType::connect, "/", std::nullopt, "{\"sid\":\"pYRGy8yjgHxtU0yLAAAB\"}"},
        {"1", SioType::disconnect, "/", std::nullopt, nullptr},
        {"1/admin,", SioType::disconnect, "/admin", std::nullopt, nullptr},
        {"2[\"hello\"]", SioType::event, "/", std::nullopt, "[\"hello\"]"},
        {"21[\"register_user\",{\"username\":\"bob\"}]", SioType::event, "/", 1, "[\"register_user\",{\"username\":\"bob\"}]"},
        {"2/chat,12[\"x\",1,2]", SioType::event, "/chat", 12, "[\"x\",1,2]"},
        {"31[true]", SioType::ack, "/", 1, "[true]"},
        {"33[true,{\"ik\":\"a\"}]", SioType::ack, "/", 3, "[true,{\"ik\":\"a\"}]"},
        {"37[]", SioType::ack, "/", 7, "[]"},
        {"4{\"message\":\"Not authorized\"}", SioType::connect_error, "/", std::nullopt,
         "{\"message\":\"Not authorized\"}"},
        {"4/x,\"Unable to connect\"", SioType::connect_error, "/x", std::nullopt, "\"Unable to connect\""},
    };
    for (const auto& c : cases) {
        SioPacket p = sio_ok(c.text);
        INFO(c.text);
        CHECK(p.type == c.type);
        CHECK(p.nsp == c.nsp);
        CHECK(p.id == c.id);
        if (c.data) {
            REQUIRE(p.data);
            CHECK(*p.data == Json::parse(c.data));
        } else {
            CHECK_FALSE(p.data);
        }
        CHECK(build_sio_packet(p) == c.text);
    }
}

TEST_CASE("sio: packets are written as python-socketio writes them (compact JSON, ASCII escapes)", "[signal][sio]") {
    // Frames 24, 51 and 53 of signal.pcap.
    CHECK(eio_message(sio_ack(1, Json::array({true}))) == "431[true]");
    CHECK(eio_message(sio_ack(2, Json::array({Json::array({"bob", "alice"})}))) == R"(432[["bob","alice"]])");
    Json keys = {{"ik", "H2M8"}, {"sik", "wXQG"}, {"spk", "5JvG"}, {"spk_sign", "I1H5"}};
    CHECK(eio_message(sio_ack(3, Json::array({true, keys}))) ==
          R"(433[true,{"ik":"H2M8","sik":"wXQG","spk":"5JvG","spk_sign":"I1H5"}])");
    // Frame 50: an event without arguments.
    CHECK(eio_message(sio_event("request_users", Json::array(), 2)) == R"(422["request_users"])");
    // One non-array value is one argument.
    CHECK(build_sio_packet(sio_event("pingi", "sankalp")) == R"(2["pingi","sankalp"])");
    CHECK(build_sio_packet(sio_ack(5, "one")) == R"(35["one"])");
    // json.dumps(ensure_ascii=True): \u escapes, surrogate pairs above U+FFFF.
    CHECK(build_sio_packet(sio_event("m", Json::array({"caf\xc3\xa9 \xf0\x9f\x94\x92"}))) ==
          R"(2["m","caf\u00e9 \ud83d\udd12"])");
    CHECK(build_sio_packet(sio_event("m", Json::array({std::string("a\x1e" "b\x7f")}))) ==
          R"(2["m","a\u001eb\u007f"])");
    SioPacket e = sio_ok(R"(21["x",{"a":1},"z"])");
    CHECK(event_name(e) == "x");
    CHECK(event_args(e) == Json::parse(R"([{"a":1},"z"])"));
}

TEST_CASE("sio: malformed Socket.IO packets are errors that say why", "[signal][sio]") {
    CHECK(has(sio_err(""), "empty"));
    CHECK(has(sio_err("7[]"), "0-6"));
    CHECK(has(sio_err("x"), "0-6"));
    CHECK(has(sio_err("51-[\"x\",{\"_placeholder\":true,\"num\":0}]"), "binary"));
    CHECK(has(sio_err("61-0[{\"_placeholder\":true,\"num\":0}]"), "binary"));
    CHECK(has(sio_err("0[]"), "object"));
    CHECK(has(sio_err("01{}"), "ack id"));
    CHECK(has(sio_err("1{}"), "no payload"));
    CHECK(has(sio_err("11"), "ack id"));
    CHECK(has(sio_err("2"), "event name"));
    CHECK(has(sio_err("2[]"), "event name"));
    CHECK(has(sio_err("2[1]"), "event name"));
    CHECK(has(sio_err("2{\"a\":1}"), "event name"));
    CHECK(has(sio_err("3[1]"), "ack id is required"));
    CHECK(has(sio_err("31{}"), "array"));
    CHECK(has(sio_err("31"), "array"));
    CHECK(has(sio_err("4"), "object"));
    CHECK(has(sio_err("41{}"), "ack id"));
    CHECK(has(sio_err("4[1]"), "object"));
    CHECK(has(sio_err("2[\"x\""), "invalid JSON"));
    CHECK(has(sio_err("2[\"x\"]junk"), "invalid JSON"));
    CHECK(has(sio_err("2[\"x\",NaN]"), "invalid JSON"));
    CHECK(has(sio_err("2[\"x\",1e400]"), "invalid JSON"));
    CHECK(has(sio_err("2[\"\\ud800\"]"), "invalid JSON"));  // a lone surrogate
    CHECK(has(sio_err("2[\"\xff\"]"), "invalid JSON"));
    CHECK(has(sio_err("2/chat[\"x\"]"), "event name"));  // no ',' after the namespace
}

TEST_CASE("sio: bounds on namespaces, ack ids and JSON nesting", "[signal][sio]") {
    std::string nsp = "/" + std::string(kMaxNamespace - 1, 'n');
    CHECK(sio_ok("2" + nsp + ",[\"x\"]").nsp == nsp);
    CHECK(has(sio_err("2" + nsp + "n,[\"x\"]"), "namespace longer"));

    std::string id(kMaxAckIdDigits, '9');
    CHECK(sio_ok("3" + id + "[]").id == std::optional<std::uint64_t>(999999999999999ull));
    CHECK(has(sio_err("3" + id + "9[]"), "ack id longer"));
    CHECK(sio_ok("3007[]").id == std::optional<std::uint64_t>(7));

    std::string deep_ok = "2[\"x\"," + std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']') + "]";
    CHECK(sio_ok(deep_ok).type == SioType::event);
    std::string too_deep = "2[\"x\"," + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "]";
    auto e = parse_sio_packet(too_deep);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == ParseErrc::length_over_limit);
    // Brackets inside strings do not count.
    CHECK(sio_ok("2[\"" + std::string(100, '[') + "\"]").type == SioType::event);
    // A million brackets are refused before anything is built.
    auto huge = parse_sio_packet("2" + std::string(1'000'000, '['));
    REQUIRE_FALSE(huge);
    CHECK(huge.error().code == ParseErrc::length_over_limit);
}

TEST_CASE("sio: duplicate keys keep the last value at the first place, as Python's json does", "[signal][sio]") {
    SioPacket p = sio_ok(R"(2["x",{"a":1,"b":2,"a":3}])");
    CHECK(build_sio_packet(p) == R"(2["x",{"a":3,"b":2}])");
}
