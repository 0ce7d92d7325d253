// CSMP's server logic, sans-I/O: the routes of PROTOCOLS.md 1.3 with their
// bodies and status codes, sessions, rooms, and each plant.
#include "support.hpp"

#include <sqlite3.h>

#include <regex>

#include "csmp/app.hpp"
#include "replay/extract.hpp"

using namespace msglab;
using namespace msglab::csmp;
using namespace msglab::test;

namespace {

constexpr std::uint64_t kT0 = 1769447131000000ull;  // 2026-01-26 17:05:31 UTC, in microseconds

struct Fixture {
    fs::path db;
    std::unique_ptr<HistoryStore> store;
    std::unique_ptr<App> app;
    std::uint64_t now = kT0;

    explicit Fixture(std::vector<std::string> plants = {}, AppConfig cfg = {}) {
        static int n = 0;
        db = fs::temp_directory_path() /
             ("msglab-csmp-app-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".db");
        for (const char* ext : {"", "-wal", "-shm"}) fs::remove(db.string() + ext);
        for (auto& p : plants) cfg.plants.enable(p);
        bool hardcoded = cfg.plants.has(plant::hardcoded_secret);
        store = std::make_unique<HistoryStore>(
            StoreOptions{db.string(), hardcoded ? Bytes{} : to_bytes("test secret, sixteen+ bytes"), hardcoded},
            SystemRng::instance());
        app = std::make_unique<App>(cfg, store.get(), SystemRng::instance());
    }

    HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                      std::map<std::string, std::string> headers = {}) {
        HttpRequest r;
        r.method = method;
        r.target = target;
        r.body = body;
        r.headers = std::move(headers);
        r.headers.emplace("host", "127.0.0.1:8000");
        return app->http(r, now);
    }

    std::string handshake(const std::string& who) {
        auto r = call("POST", "/handshake/", R"({"client_id":")" + who + R"("})");
        REQUIRE(r.status == 200);
        return nlohmann::json::parse(r.body)["session_id"].get<std::string>();
    }
};

}  // namespace

TEST_CASE("Public routes answer with the original's bodies, slashes and redirects", "[csmp][app]") {
    Fixture f;
    auto r = f.call("GET", "/");
    CHECK(r.status == 200);
    CHECK(r.body ==
          R"({"message":"Welcome to CSMP Backend!","version":"1.0.0","environment":"production","endpoints":{"health":"/health","handshake":"/handshake","chat_http":"/chat/send","chat_ws":"/ws/chat","call_ws":"/ws/call","call_history":"/call/history"},"docs":"/docs","debug":false})");
    r = f.call("GET", "/health/");
    CHECK(r.body == R"({"status":"ok","app_name":"CSMP Backend","version":"1.0.0","debug":false})");
    r = f.call("GET", "/health");
    CHECK(r.status == 307);
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0] == std::make_pair(std::string("location"), std::string("http://127.0.0.1:8000/health/")));
    r = f.call("POST", "/handshake", R"({"client_id":"alice"})");
    CHECK(r.status == 307);
    CHECK(r.headers[0].second == "http://127.0.0.1:8000/handshake/");

    r = f.call("POST", "/handshake/", R"({"client_id":"alice"})");
    CHECK(r.status == 200);
    std::regex shape(R"(\{"session_id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","client_id":"alice","protocol_version":"1.0.0","expires_in":1800\})");
    CHECK(std::regex_match(r.body, shape));
    CHECK(f.handshake("alice") != f.handshake("alice"));

    r = f.call("POST", "/handshake/", R"({"user":"alice"})");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"detail":"Data validation failed","errors":[{"type":"missing","loc":["body","client_id"],"msg":"Field required","input":{"user":"alice"}}]})");
    CHECK(f.call("POST", "/handshake/", R"({"client_id":7})").status == 422);
    CHECK(f.call("POST", "/handshake/", "{not json").status == 422);
    CHECK(f.call("GET", "/handshake/").status == 405);
    CHECK(f.call("GET", "/handshake/").body == R"({"detail":"Method Not Allowed"})");

    r = f.call("POST", "/handshake/register", R"({"user_id":"  alice "})");
    CHECK(r.body == R"({"status":"ok","user_id":"alice"})");
    r = f.call("POST", "/handshake/register", R"({"user_id":"alice"})");
    CHECK(r.status == 409);
    CHECK(r.body == R"({"detail":"User already exists"})");
    r = f.call("POST", "/handshake/register", R"({"user_id":"   "})");
    CHECK(r.status == 400);
    CHECK(r.body == R"({"detail":"user_id required"})");
    // Clean: no API documentation, no debug flag.
    CHECK(f.call("GET", "/docs").status == 404);
    CHECK(f.call("GET", "/openapi.json").status == 404);
}

TEST_CASE("The session guard: header or query, missing or unknown ids refused", "[csmp][app]") {
    Fixture f;
    auto r = f.call("GET", "/history/general");
    CHECK(r.status == 401);
    CHECK(r.body == R"({"detail":"Identity verification required. Please login.","code":"SESSION_MISSING"})");
    r = f.call("GET", "/history/general", "", {{"x-session-id", "bob"}});
    CHECK(r.status == 401);
    CHECK(r.body ==
          R"({"detail":"Session has expired or server was restarted. Please re-login.","code":"SESSION_NOT_FOUND"})");
    CHECK(f.call("GET", "/nothing-here").status == 401);  // the guard first, as the original
    std::string sid = f.handshake("alice");
    CHECK(f.call("GET", "/history/general", "", {{"x-session-id", sid}}).status == 200);
    CHECK(f.call("GET", "/history/general?session_id=" + sid).status == 200);
    CHECK(f.call("GET", "/nothing-here?session_id=" + sid).status == 404);
    CHECK(f.call("GET", "/nothing-here?session_id=" + sid).body == R"({"detail":"Not Found"})");
    // The session lives expires_in seconds after its last use, then is gone.
    f.now += 1799ull * 1'000'000;
    CHECK(f.call("GET", "/call/history", "", {{"x-session-id", sid}}).status == 200);
    f.now += 1800ull * 1'000'000;
    CHECK(f.call("GET", "/call/history", "", {{"x-session-id", sid}}).status == 401);
    CHECK(f.call("GET", "/call/history", "", {{"x-session-id", sid}}).status == 401);  // never resurrected
}

TEST_CASE("Chat over HTTP is stored and history works across sessions and for both call-history paths",
          "[csmp][app]") {
    Fixture f;
    std::string alice = f.handshake("alice"), bob = f.handshake("bob");
    auto r = f.call("POST", "/chat/send", R"({"message":"hi bob","room_id":"room_alice_bob"})", {{"x-session-id", alice}});
    CHECK(r.status == 200);
    CHECK(r.body == R"({"status":"sent","client_id":"alice","message":"hi bob","id":1})");
    r = f.call("POST", "/chat/send", R"({"message":"to everyone"})", {{"x-session-id", bob}});
    CHECK(r.body == R"({"status":"sent","client_id":"bob","message":"to everyone","id":2})");
    // Another session of bob's reads what alice's session wrote.
    std::string bob2 = f.handshake("bob");
    r = f.call("GET", "/history/room_alice_bob?limit=10", "", {{"x-session-id", bob2}});
    CHECK(r.status == 200);
    CHECK(r.body ==
          R"([{"id":1,"from":"alice","message":"hi bob","status":"sent","timestamp":"2026-01-26T17:05:31","room_id":"room_alice_bob"}])");
    CHECK(f.call("GET", "/history/general?limit=0", "", {{"x-session-id", bob}}).status == 422);
    CHECK(f.call("GET", "/history/general?limit=x", "", {{"x-session-id", bob}}).status == 422);
    CHECK(f.call("POST", "/chat/send", R"({"message":""})", {{"x-session-id", bob}}).status == 422);
    CHECK(f.call("POST", "/chat/send", R"({"message":")" + std::string(1001, 'x') + R"("})", {{"x-session-id", bob}}).status == 422);
    CHECK(f.call("POST", "/chat/send", R"({"message":")" + std::string(1000, 'x') + R"("})", {{"x-session-id", bob}}).status == 200);
    CHECK(f.call("GET", "/call/call/history", "", {{"x-session-id", bob}}).body == R"({"count":0,"calls":[]})");
    CHECK(f.call("GET", "/call/history", "", {{"x-session-id", bob}}).body == R"({"count":0,"calls":[]})");
}

TEST_CASE("Rooms: room_<a>_<b> admits a and b, other rooms only when open", "[csmp][app]") {
    Fixture f;
    CHECK(f.app->room_member("alice", "room_alice_bob"));
    CHECK(f.app->room_member("bob", "room_alice_bob"));
    CHECK_FALSE(f.app->room_member("carol", "room_alice_bob"));
    CHECK_FALSE(f.app->room_member("bob", "room_bob_alice"));  // not sorted: nobody's room
    CHECK(f.app->room_member("a_b", "room_a_b_c"));
    CHECK_FALSE(f.app->room_member("alice", "room_alice"));
    CHECK(f.app->room_member("anyone", "general"));
    CHECK_FALSE(f.app->room_member("anyone", "room1"));
    std::string carol = f.handshake("carol");
    auto r = f.call("GET", "/history/room_alice_bob", "", {{"x-session-id", carol}});
    CHECK(r.status == 403);
    CHECK_FALSE(f.app->admit_chat("/ws/chat?session_id=" + carol + "&room_id=room_alice_bob", f.now).ok);
    CHECK(f.app->admit_chat("/ws/chat?session_id=" + carol + "&room_id=general", f.now).ok);
    CHECK_FALSE(f.app->admit_chat("/ws/chat?session_id=" + carol, f.now).ok);
    CHECK(f.app->admit_chat("/ws/chat?session_id=" + carol, f.now).refusal.status == 403);
    CHECK_FALSE(f.app->admit_chat("/ws/chat?session_id=bogus&room_id=general", f.now).ok);

    Fixture planted({plant::room_no_acl});
    std::string eve = planted.handshake("eve");
    CHECK(planted.call("GET", "/history/room_alice_bob", "", {{"x-session-id", eve}}).status == 200);
    CHECK(planted.app->admit_chat("/ws/chat?session_id=" + eve + "&room_id=room_alice_bob", planted.now).ok);
}

TEST_CASE("WebSocket chat through the app: relayed to the room after it is stored, errors are messages",
          "[csmp][app]") {
    Fixture f;
    std::string alice = f.handshake("alice"), bob = f.handshake("bob"), carol = f.handshake("carol");
    auto a = f.app->admit_chat("/ws/chat?session_id=" + alice + "&room_id=room_alice_bob", f.now);
    auto b = f.app->admit_chat("/ws/chat?session_id=" + bob + "&room_id=room_alice_bob", f.now);
    auto c = f.app->admit_chat("/ws/chat?session_id=" + carol + "&room_id=general", f.now);
    REQUIRE((a.ok && b.ok && c.ok));
    f.app->chat_opened(1, a);
    f.app->chat_opened(2, b);
    f.app->chat_opened(3, c);
    auto fx = f.app->chat_text(1, R"({"type":"chat","message":"hi","timestamp":"2026-01-26T17:05:30.000Z"})", f.now + 123456);
    REQUIRE(fx.send.size() == 2);
    std::set<ConnId> to;
    for (const auto& [id, text] : fx.send) {
        to.insert(id);
        // Python's json.dumps defaults, as the original's capture shows.
        CHECK(text == R"({"type": "chat", "from": "alice", "room_id": "room_alice_bob", "message": "hi", "timestamp": "2026-01-26T17:05:31.123456"})");
    }
    CHECK(to == std::set<ConnId>{1, 2});
    // Raw text is a chat message.
    fx = f.app->chat_text(2, "plain words", f.now + 200000);
    REQUIRE(fx.send.size() == 2);
    CHECK(fx.send[0].second.find(R"("from": "bob", "room_id": "room_alice_bob", "message": "plain words")") != std::string::npos);
    fx = f.app->chat_text(2, R"({"type":"chat","message":"h\u00e9llo \ud83d\ude00"})", f.now + 250000);
    REQUIRE(fx.send.size() == 2);
    CHECK(fx.send[0].second.find(R"("message": "h\u00e9llo \ud83d\ude00")") != std::string::npos);
    auto error_of = [&](const std::string& text) {
        auto e = f.app->chat_text(1, text, f.now + 300000);
        REQUIRE(e.send.size() == 1);
        CHECK(e.send[0].first == 1);
        return nlohmann::json::parse(e.send[0].second).value("code", "");
    };
    CHECK(error_of("{broken") == "bad_json");
    CHECK(error_of(R"({"type":"typing"})") == "unknown_type");
    CHECK(error_of(R"({"type":"chat"})") == "bad_message");
    CHECK(error_of(R"({"type":"chat","message":""})") == "bad_message");
    CHECK(error_of(std::string(1001, 'x')) == "bad_message");
    CHECK(f.store->count() == 3);
    f.app->chat_closed(2);
    fx = f.app->chat_text(1, "again", f.now + 400000);
    REQUIRE(fx.send.size() == 1);
}

TEST_CASE("Chat frames beyond the rate get an error, and bounds on sessions hold", "[csmp][app]") {
    AppConfig cfg;
    cfg.chat_rate = 1;
    cfg.chat_burst = 2;
    cfg.max_sessions = 3;
    Fixture f({}, cfg);
    std::string alice = f.handshake("alice");
    auto a = f.app->admit_chat("/ws/chat?session_id=" + alice + "&room_id=general", f.now);
    f.app->chat_opened(1, a);
    CHECK(f.app->chat_text(1, "one", f.now).send.size() == 1);
    CHECK(f.app->chat_text(1, "two", f.now).send.size() == 1);
    auto fx = f.app->chat_text(1, "three", f.now);
    REQUIRE(fx.send.size() == 1);
    CHECK(fx.send[0].second.find("rate_limited") != std::string::npos);
    CHECK(f.app->chat_text(1, "four", f.now + 1'000'000).send.size() == 1);  // refilled

    f.handshake("bob");
    f.handshake("carol");
    auto r = f.call("POST", "/handshake/", R"({"client_id":"dave"})");
    CHECK(r.status == 503);
    // A flood of bogus ids creates nothing.
    for (int i = 0; i < 1000; ++i) f.call("GET", "/history/general", "", {{"x-session-id", "bogus-" + std::to_string(i)}});
    CHECK(f.app->sessions() == 3);
    // Expired sessions make room.
    f.now += 1801ull * 1'000'000;
    CHECK(f.call("POST", "/handshake/", R"({"client_id":"dave"})").status == 200);
}

TEST_CASE("Call sockets: one identity's calls stay with its session, planted, the newest socket wins",
          "[csmp][app]") {
    Fixture f;
    std::string alice = f.handshake("alice"), bob = f.handshake("bob"), bob_again = f.handshake("bob");
    auto ba = f.app->admit_call("/ws/call?session_id=" + bob, f.now);
    REQUIRE(ba.ok);
    f.app->call_opened(1, ba);
    CHECK_FALSE(f.app->admit_call("/ws/call?session_id=" + bob_again, f.now).ok);  // another session's claim
    auto same = f.app->admit_call("/ws/call?session_id=" + bob, f.now);
    REQUIRE(same.ok);  // the same session may reconnect
    auto fx = f.app->call_opened(2, same);
    REQUIRE(fx.close.size() == 1);
    CHECK(fx.close[0].first == 1);
    auto aa = f.app->admit_call("/ws/call?session_id=" + alice, f.now);
    f.app->call_opened(3, aa);
    fx = f.app->call_text(3, R"({"type":"call:init","to":"bob"})", f.now);
    REQUIRE(fx.send.size() == 2);
    CHECK(fx.send[0].first == 2);  // bob's current socket
    CHECK(fx.send[1].first == 3);
    fx = f.app->call_text(3, "not json", f.now);
    REQUIRE(fx.send.size() == 1);
    CHECK(fx.send[0].second.find("bad_json") != std::string::npos);
    // Bob leaves: alice hears the call end.
    fx = f.app->call_closed(2, f.now);
    REQUIRE(fx.send.size() == 1);
    CHECK(fx.send[0].first == 3);
    CHECK(fx.send[0].second.find("peer_offline") != std::string::npos);

    Fixture planted({plant::call_hijack});
    std::string pbob = planted.handshake("bob"), eve = planted.handshake("bob");
    planted.app->call_opened(1, planted.app->admit_call("/ws/call?session_id=" + pbob, planted.now));
    auto e = planted.app->admit_call("/ws/call?session_id=" + eve, planted.now);
    CHECK(e.ok);
}

TEST_CASE("Planted session-fallback, predictable ids and debug mode behave as the original", "[csmp][app]") {
    Fixture fb({plant::session_fallback});
    auto r = fb.call("GET", "/call/history", "", {{"x-session-id", "bob-is-me-now"}});
    CHECK(r.status == 200);
    auto a = fb.app->admit_call("/ws/call?session_id=bob-is-me-now", fb.now);
    CHECK(a.ok);
    CHECK(a.client_id == "bob-is-m");  // sid[:8]
    CHECK(fb.app->admit_chat("/ws/chat?session_id=bob&room_id=general", fb.now).client_id == "bob");

    Fixture pr({plant::predictable_session_id});
    CHECK(pr.handshake("a") == "00000000-0000-4000-8000-000000000001");
    CHECK(pr.handshake("b") == "00000000-0000-4000-8000-000000000002");

    Fixture dbg({plant::debug_traceback});
    CHECK(dbg.call("GET", "/health/").body == R"({"status":"ok","app_name":"CSMP Backend","version":"1.0.0","debug":true})");
    CHECK(dbg.call("GET", "/docs").status == 200);
    std::string sid = dbg.handshake("alice");
    // Break the store under the running server: the 500 carries a trace.
    {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open(dbg.db.c_str(), &raw) == SQLITE_OK);
        REQUIRE(sqlite3_exec(raw, "DROP TABLE chat_messages", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(raw);
    }
    r = dbg.call("GET", "/history/general", "", {{"x-session-id", sid}});
    CHECK(r.status == 500);
    auto j = nlohmann::json::parse(r.body);
    CHECK(j["detail"] == "History load failed");
    CHECK(j["traceback"].get<std::string>().find("Traceback") == 0);
    CHECK(j["traceback"].get<std::string>().find(dbg.db.string()) != std::string::npos);
    // The clean server says only what failed.
    Fixture clean;
    std::string csid = clean.handshake("alice");
    {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open(clean.db.c_str(), &raw) == SQLITE_OK);
        REQUIRE(sqlite3_exec(raw, "DROP TABLE chat_messages", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(raw);
    }
    r = clean.call("POST", "/chat/send", R"({"message":"x"})", {{"x-session-id", csid}});
    CHECK(r.status == 500);
    CHECK(r.body == R"({"detail":"Internal server error while saving message"})");
}

TEST_CASE("The server's bodies and relays match the original's capture byte for byte", "[csmp][app][originals]") {
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals" / "csmp.pcap")) MSGLAB_SKIP("captures/originals/csmp.pcap not found");
    std::vector<replay::StreamProblem> problems;
    auto messages = replay::extract_file((*dir / "originals" / "csmp.pcap").string(), Registry::builtin(), {}, &problems);
    std::vector<std::string> from_server;
    for (const auto& m : messages)
        if (m.from == Peer::server && m.decoded.plaintext) from_server.push_back(to_string(*m.decoded.plaintext));
    auto seen = [&](const std::string& text) {
        return std::find(from_server.begin(), from_server.end(), text) != from_server.end();
    };
    REQUIRE(from_server.size() > 10);

    // The time of the capture's chat relay, to the microsecond.
    std::uint64_t at = 0;
    for (const auto& t : from_server)
        if (t.find(R"("message": "hello bob, from alice")") != std::string::npos) {
            std::string ts = nlohmann::json::parse(t)["timestamp"];  // 2026-11-21T14:41:34.154067
            std::tm tm{};
            REQUIRE(strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm));
            at = std::uint64_t(timegm(&tm)) * 1'000'000 + std::stoull(ts.substr(20));
        }
    REQUIRE(at != 0);
    // The original runs in debug mode: its health body is the planted one's.
    AppConfig open_room1;
    open_room1.open_rooms.insert("room1");
    Fixture planted({plant::debug_traceback}, open_room1);
    planted.now = at - 1'000'000;
    CHECK(seen(planted.call("GET", "/health/").body));
    CHECK(seen(planted.call("GET", "/history/room1").body));  // 401 SESSION_MISSING
    // The handshake answer, with the session id the capture issued to alice.
    std::string alice = planted.handshake("alice");
    std::string answer = planted.call("POST", "/handshake/", R"({"client_id": "alice"})").body;
    std::string issued;
    for (const auto& t : from_server)
        if (t.find(R"("client_id":"alice")") != std::string::npos) issued = nlohmann::json::parse(t)["session_id"];
    REQUIRE_FALSE(issued.empty());
    std::string sid = nlohmann::json::parse(answer)["session_id"];
    CHECK(seen(answer.replace(answer.find(sid), sid.size(), issued)));
    // The chat relay at the capture's own microsecond.
    auto a = planted.app->admit_chat("/ws/chat?session_id=" + alice + "&room_id=room1", planted.now);
    REQUIRE(a.ok);
    planted.app->chat_opened(1, a);
    auto fx = planted.app->chat_text(1, R"({"type": "chat", "message": "hello bob, from alice"})", at);
    REQUIRE(fx.send.size() == 1);
    INFO(fx.send[0].second);
    CHECK(seen(fx.send[0].second));
    // The clean server's 500 for history is gone; its /chat/send body is the intended one.
    CHECK(seen(R"({"detail":"History load failed"})"));
}
