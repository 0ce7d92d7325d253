// The SP-SimpleChat server's logic (reference/spchat/app.hpp) without
// sockets: every rule of PROTOCOLS.md section 2.3, the clean fixes and the
// plants.
#include <catch2/catch.hpp>

#include "spchat/app.hpp"

using namespace msglab;
using namespace msglab::spchat;

namespace {

struct Harness {
    explicit Harness(AppConfig c = {}) : app(std::move(c)) {}
    App app;
    std::map<ConnId, std::vector<Json>> inbox;
    std::set<ConnId> closed;

    void take(const Effects& fx) {
        for (const auto& [id, bytes] : fx.send) {
            REQUIRE(bytes->size() >= 4);
            auto m = parse(std::string_view(reinterpret_cast<const char*>(bytes->data()) + 4, bytes->size() - 4));
            REQUIRE(m);
            inbox[id].push_back(*m);
        }
        for (ConnId id : fx.close) closed.insert(id);
    }
    void open(ConnId id) { app.opened(id); }
    void send(ConnId id, const Json& m) { take(app.frame(id, m.dump())); }
    void close(ConnId id) { take(app.closed(id)); }
    std::vector<Json> got(ConnId id) {
        auto v = std::move(inbox[id]);
        inbox[id].clear();
        return v;
    }
    // The one message `id` got, checked to be the only one.
    Json one(ConnId id) {
        auto v = got(id);
        INFO("messages: " << Json(v).dump());
        REQUIRE(v.size() == 1);
        return v[0];
    }
    void hello(ConnId id, const std::string& nick) {
        open(id);
        send(id, {{"type", "HELLO"}, {"nick", nick}});
        got(id);
    }
    void join(ConnId id, const std::string& room, std::optional<std::string> pw = std::nullopt) {
        Json j{{"type", "JOIN"}, {"room", room}};
        if (pw) j["password"] = *pw;
        send(id, j);
    }
};

Json file_start(const std::string& from, const std::string& to) {
    return {{"type", "FILE_START"},
            {"from", from},
            {"to", to},
            {"ts", 1},
            {"payload", {{"file_id", "0123456789abcdef"}, {"name", "a.txt"}, {"size", 1}}},
            {"sig", ""}};
}

PlantSet plants(std::initializer_list<const char*> ids) {
    PlantSet p;
    for (auto id : ids) p.enable(id);
    return p;
}

}  // namespace

TEST_CASE("spchat app: HELLO lower-cases, answers with the original's texts, refuses a taken nick", "[app]") {
    Harness h;
    h.open(1);
    h.send(1, {{"type", "HELLO"}, {"nick", "  Alice "}});
    CHECK(h.one(1) == Json{{"type", "INFO"}, {"text", "hello alice"}});
    h.send(1, {{"type", "HELLO"}, {"nick", " "}});
    CHECK(h.one(1) == Json{{"type", "ERROR"}, {"text", "nick required in HELLO"}});
    h.open(2);
    h.send(2, {{"type", "HELLO"}, {"nick", "ALICE"}});
    CHECK(h.one(2) == Json{{"type", "ERROR"}, {"text", "Nickname already in use!"}});
    CHECK(h.closed.count(2));
    h.open(3);
    h.send(3, {{"type", "HELLO"}, {"nick", "Server"}});
    CHECK(h.one(3)["type"] == "ERROR");
    h.send(3, {{"type", "HELLO"}, {"nick", std::string(65, 'n')}});
    CHECK(h.one(3)["type"] == "ERROR");
    h.send(3, {{"type", "PING"}});
    CHECK(h.one(3) == Json{{"type", "PONG"}});
}

TEST_CASE("spchat app: a rename and a disconnect release the nick, the plant keeps it forever", "[app]") {
    for (bool planted : {false, true}) {
        AppConfig c;
        if (planted) c.plants = plants({plant::nick_squat});
        Harness h(c);
        h.hello(1, "first");
        h.send(1, {{"type", "HELLO"}, {"nick", "second"}});
        CHECK(h.one(1)["text"] == "hello second");
        h.open(2);
        h.send(2, {{"type", "HELLO"}, {"nick", "first"}});
        CHECK(h.one(2)["text"] == (planted ? "Nickname already in use!" : "hello first"));
        if (!planted) h.close(2);
        h.close(1);
        h.open(3);
        h.send(3, {{"type", "HELLO"}, {"nick", "first"}});
        CHECK(h.one(3)["text"] == (planted ? "Nickname already in use!" : "hello first"));
        h.open(4);
        h.send(4, {{"type", "HELLO"}, {"nick", "second"}});
        CHECK(h.one(4)["text"] == "hello second");  // the last nick is released even by the original
        CHECK(h.app.nicks() <= (planted ? 3u : 2u));
    }
}

TEST_CASE("spchat app: JOIN, MSG without echo, WHO, LEAVE with the original's texts", "[app]") {
    Harness h;
    h.open(1);
    h.join(1, "room1");
    CHECK(h.one(1) == Json{{"type", "ERROR"}, {"text", "Say HELLO first to register your nick"}});
    h.hello(1, "bob");
    h.hello(2, "alice");
    h.join(1, "room1");
    CHECK(h.one(1) == Json{{"type", "INFO"}, {"text", "bob joined room1 (SECURE)"}});
    h.join(2, "room1");
    CHECK(h.one(2)["text"] == "alice joined room1 (SECURE)");
    CHECK(h.one(1) == Json{{"type", "MSG"}, {"room", "room1"}, {"nick", "server"}, {"text", "alice joined the room (SECURE)"}});
    h.send(2, {{"type", "MSG"}, {"room", "room1"}, {"text", " hello bob "}});
    CHECK(h.got(2).empty());  // no echo
    CHECK(h.one(1) == Json{{"type", "MSG"}, {"room", "room1"}, {"nick", "alice"}, {"text", "hello bob"}});
    h.send(2, {{"type", "MSG"}, {"text", "   "}});
    CHECK(h.got(1).empty());  // empty text ignored
    h.send(1, {{"type", "WHO"}, {"room", "room1"}});
    CHECK(h.one(1) == Json{{"type", "WHO_LIST"}, {"room", "room1"}, {"members", {"alice", "bob"}}});
    h.send(1, {{"type", "WHO"}, {"room", "elsewhere"}});
    CHECK(h.one(1)["text"] == "You are not in any room");
    h.send(1, {{"type", "MSG"}, {"room", "elsewhere"}, {"text", "x"}});
    CHECK(h.one(1)["text"] == "You haven't joined a room yet!");
    // The failed MSG moved bob's "last room", as the original: LEAVE then has nothing to say.
    h.send(1, {{"type", "LEAVE"}});
    CHECK(h.got(1).empty());
    h.send(1, {{"type", "WHO"}, {"room", "room1"}});
    h.got(1);
    h.send(2, {{"type", "LEAVE"}});
    CHECK(h.one(2)["text"] == "You left room1");
    CHECK(h.one(1)["text"] == "alice left the room");
    h.send(2, {{"type", "LEAVE"}});
    CHECK(h.one(2)["text"] == "You're not in any room");
    h.send(2, {{"type", "NOPE"}});
    CHECK(h.one(2)["text"] == "Unknown type: NOPE");
    h.send(2, {{"type", "QUIT"}});
    CHECK(h.one(2)["text"] == "Goodbye!");
    CHECK(h.closed.count(2));
}

TEST_CASE("spchat app: a room created with a password keeps it, the plant lets anyone in", "[app]") {
    for (bool planted : {false, true}) {
        AppConfig c;
        if (planted) c.plants = plants({plant::join_no_acl});
        c.rooms["staff"].members = std::set<std::string>{"carol"};
        Harness h(c);
        h.hello(1, "owner");
        h.hello(2, "intruder");
        h.hello(3, "carol");
        h.join(1, "private", "s3cret");
        CHECK(h.one(1)["type"] == "INFO");
        h.join(2, "private");
        auto a = h.one(2);
        CHECK(a["text"] == (planted ? "intruder joined private (VULNERABLE)" : "not authorized to join room"));
        if (!planted) {
            h.join(2, "private", "wrong");
            CHECK(h.one(2)["text"] == "not authorized to join room");
            h.join(2, "private", "s3cret");
            CHECK(h.one(2)["text"] == "intruder joined private (SECURE)");
        }
        h.join(2, "staff");
        CHECK(h.one(2)["text"] == (planted ? "intruder joined staff (VULNERABLE)" : "not authorized to join room"));
        h.join(3, "staff");
        CHECK(h.one(3)["type"] == "INFO");
        // The password outlives an empty room.
        h.close(1);
        h.close(2);
        h.hello(4, "later");
        h.join(4, "private");
        CHECK(h.one(4)["type"] == (planted ? "INFO" : "ERROR"));
    }
}

TEST_CASE("spchat app: file frames go to a nick or a room, 'from' must be the sender's nick", "[app]") {
    for (bool planted : {false, true}) {
        AppConfig c;
        if (planted) c.plants = plants({plant::spoofed_from});
        Harness h(c);
        h.hello(1, "alice");
        h.hello(2, "bob");
        h.hello(3, "carol");
        // "from" as typed (the original client writes the nick as typed).
        h.send(1, file_start("Alice", " BOB "));
        auto relayed = h.one(2);
        CHECK(relayed["from"] == "Alice");
        CHECK(relayed["payload"]["file_id"] == "0123456789abcdef");
        h.send(1, file_start("carol", "bob"));
        if (planted) CHECK(h.one(2)["from"] == "carol");
        else {
            CHECK(h.got(2).empty());
            CHECK(h.one(1)["text"] == "from does not match your nick");
        }
        // A room the sender is in: everyone else in it.
        h.join(1, "r");
        h.join(2, "r");
        h.join(3, "r");
        h.got(1), h.got(2), h.got(3);
        h.send(1, file_start("alice", "r"));
        CHECK(h.got(1).empty());
        CHECK(h.got(2).size() == 1);
        CHECK(h.got(3).size() == 1);
        // Neither a nick nor the sender's room: the original's fall-through.
        h.send(1, file_start("alice", "nowhere"));
        CHECK(h.one(1)["text"] == "Unknown type: FILE_START");
        Json bad = file_start("alice", "bob");
        bad["payload"]["file_id"] = "short";
        h.send(1, bad);
        CHECK(h.one(1)["text"] == "BAD_FILE_ID");
        h.open(9);
        h.send(9, file_start("alice", "bob"));
        if (planted) CHECK(h.got(2).size() == 1);  // even before HELLO
        else CHECK(h.one(9)["text"] == "Say HELLO first");
    }
}

TEST_CASE("spchat app: BACKDOOR is relayed when clean, answered in secret with the plant", "[app]") {
    for (bool planted : {false, true}) {
        AppConfig c;
        if (planted) c.plants = plants({plant::magic_reply});
        Harness h(c);
        h.hello(1, "a");
        h.hello(2, "b");
        h.join(1, "r");
        h.join(2, "r");
        h.got(1), h.got(2);
        h.send(1, {{"type", "MSG"}, {"room", "r"}, {"text", "backdoor"}});
        if (planted) {
            CHECK(h.one(1) == Json{{"type", "MSG"}, {"room", "r"}, {"nick", "server"}, {"text", "You found the secret backdoor!"}});
            CHECK(h.got(2).empty());
        } else {
            CHECK(h.got(1).empty());
            CHECK(h.one(2)["text"] == "backdoor");
        }
    }
}

TEST_CASE("spchat app: bad frames get an ERROR and a close, a disconnect is announced", "[app]") {
    Harness h;
    h.hello(1, "a");
    h.hello(2, "b");
    h.join(1, "r");
    h.join(2, "r");
    h.got(1), h.got(2);
    h.take(h.app.frame(1, "not json"));
    CHECK(h.one(1)["type"] == "ERROR");
    CHECK(h.closed.count(1));
    h.take(h.app.oversized(2, 5'000'000));
    CHECK(h.one(2)["text"] == "frame too large: 5000000 bytes (limit 1048576)");
    h.close(1);
    CHECK(h.one(2)["text"] == "a left the room");
    CHECK(h.app.max_frame() == kDefaultMaxFrame);
    AppConfig c;
    c.plants = plants({plant::unbounded_frame});
    CHECK(App(c).max_frame() == kMaxLengthPrefix);
    h.send(2, {{"type", "MSG"}, {"room", "r"}, {"text", std::string(20000, 'x')}});
    CHECK(h.one(2)["text"] == "text too long (at most 16384 bytes)");
    h.send(2, {{"type", "JOIN"}, {"room", 5}});
    CHECK(h.one(2)["text"] == "room must be a string");
}
