// CSMP end to end with the msglab command: serve and connect, an
// independent WebSocket client (Debian's python3-websockets), a call between
// two processes, and a kill -9 in the middle of a burst of chat.
#include "child_process.hpp"
#include "support.hpp"

#include <set>

#include "csmp/client.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

const std::string kMsglab = MSGLAB_BINARY;

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct Serve {
    ChildProcess proc;
    std::string first, port;
    explicit Serve(const std::vector<std::string>& extra) : proc(args(extra)) {
        auto l = proc.line();
        INFO("msglab serve csmp printed: " << proc.all());
        REQUIRE(l);
        first = *l;
        port = listening_port(first);
    }
    static std::vector<std::string> args(const std::vector<std::string>& extra) {
        std::vector<std::string> a = {kMsglab, "serve", "csmp", "--listen", "127.0.0.1:0"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string target() const { return "127.0.0.1:" + port; }
    csmp::Client client() const {
        csmp::ClientOptions o;
        o.port = static_cast<std::uint16_t>(std::stoi(port));
        o.timeout = 5000ms;
        return csmp::Client(o);
    }
};

}  // namespace

TEST_CASE("msglab serve csmp and connect csmp: chat, history, and an independent python3-websockets client",
          "[csmp][cli]") {
    TempDir dir;
    Serve s({"--db", (dir / "h.db").string()});
    CHECK(has(s.first, "plants: none (clean)"));
    CHECK(has(s.first, "key from " + (dir / "h.db").string() + ".key (new)"));

    ChildProcess py({kSystemPython, std::string(MSGLAB_CSMP_TEST_DIR) + "/ws_peer.py", s.target(), "alice", "bob",
                     "hello bob, from python"});
    auto ext = py.line(20s);
    INFO(py.all());
    REQUIRE(ext);
    CHECK(has(*ext, "extensions permessage-deflate"));  // the library's default offer, accepted
    auto ready = py.line(20s);
    REQUIRE(ready);
    REQUIRE(*ready == "ready");

    auto out = run_command(kMsglab + " connect csmp " + s.target() +
                           " --user bob --peer alice --send 'hello alice, from msglab' 2>&1");
    INFO(out.output);
    CHECK(out.exit_code == 0);
    CHECK(has(out.output, "> bob: hello alice, from msglab"));
    auto received = py.line(20s);
    REQUIRE(received);
    CHECK(*received == "received bob hello alice, from msglab");
    auto relayed = py.line(20s);
    REQUIRE(relayed);
    CHECK(relayed->rfind("relayed hello bob, from python ", 0) == 0);
    CHECK(py.finish().second == 0);

    out = run_command(kMsglab + " connect csmp " + s.target() + " --user alice --peer bob --history 2>&1");
    INFO(out.output);
    CHECK(out.exit_code == 0);
    CHECK(has(out.output, "] bob: hello alice, from msglab\n"));
    CHECK(has(out.output, "] alice: hello bob, from python\n"));
    // A third party is kept out of the pair's room.
    out = run_command(kMsglab + " connect csmp " + s.target() + " --user carol --room room_alice_bob --history 2>&1");
    CHECK(out.exit_code == 1);
    CHECK(has(out.output, "HTTP 403"));
}

TEST_CASE("msglab connect csmp: a call placed and answered between two processes", "[csmp][cli]") {
    TempDir dir;
    Serve s({"--db", (dir / "h.db").string()});
    ChildProcess bob({kMsglab, "connect", "csmp", s.target(), "--user", "bob", "--answer", "--wait", "20"});
    auto l = bob.line(20s);
    REQUIRE(l);
    l = bob.line(20s);
    INFO(bob.all());
    REQUIRE(l);
    REQUIRE(*l == "waiting for a call");
    auto out = run_command(kMsglab + " connect csmp " + s.target() + " --user alice --call bob --hold 0.2 2>&1");
    INFO(out.output);
    CHECK(out.exit_code == 0);
    CHECK(has(out.output, "calling bob"));
    CHECK(has(out.output, "connected (call "));
    CHECK(has(out.output, "hung up (call "));
    auto [rest, rc] = bob.finish(20s);
    INFO(bob.all());
    CHECK(rc == 0);
    CHECK(has(bob.all(), "incoming call from alice"));
    CHECK(has(bob.all(), "the caller hung up"));
    out = run_command(kMsglab + " connect csmp " + s.target() + " --user nobody --call bob --wait 1 2>&1");
    CHECK(out.exit_code == 1);
    CHECK(has(out.output, "the call ended before an answer (missed)"));
}

TEST_CASE("kill -9 during a burst of chat: every acknowledged message is in the history", "[csmp][cli]") {
    TempDir dir;
    std::string db = (dir / "h.db").string();
    std::set<std::string> acked;
    std::size_t sent = 0;
    {
        Serve s({"--db", db, "--chat-rate", "1000000"});
        auto c = s.client();
        c.handshake("bob");
        auto ws = c.open_chat("general");
        auto drain = [&](std::chrono::milliseconds wait) {
            while (auto m = ws->receive(wait)) {
                auto j = nlohmann::json::parse(*m);
                if (j.value("type", "") == "chat" && j.value("from", "") == "bob") acked.insert(j["message"]);
                wait = 0ms;
            }
        };
        bool killed = false;
        try {
            for (; sent < 50000; ++sent) {
                ws->send(R"({"type":"chat","message":"burst )" + std::to_string(sent) + R"("})");
                drain(0ms);
                if (!killed && acked.size() >= 200) {
                    s.proc.signal(SIGKILL);  // mid-burst, without warning
                    killed = true;
                }
            }
        } catch (const csmp::ClientError&) {
            // The server is gone: sends fail from here on.
        }
        drain(500ms);
        INFO("sent " << sent << ", acknowledged " << acked.size());
        REQUIRE(killed);
        REQUIRE(sent < 50000);  // the kill landed mid-burst
    }
    Serve again({"--db", db});
    CHECK_FALSE(has(again.first, "(new)"));  // the same key file, read back
    auto c = again.client();
    c.handshake("bob");
    auto history = c.history("general", 1000);
    std::set<std::string> stored;
    for (const auto& m : history) stored.insert(m["message"].get<std::string>());
    std::size_t missing = 0;
    for (const auto& m : acked) missing += stored.count(m) == 0;
    INFO("acknowledged " << acked.size() << ", stored " << stored.size());
    CHECK(missing == 0);
    CHECK(stored.size() >= acked.size());
}

TEST_CASE("msglab serve/connect csmp: help, bad options and a dead target are clear errors", "[csmp][cli]") {
    auto out = run_command(kMsglab + " serve csmp --help 2>&1");
    CHECK(out.exit_code == 0);
    CHECK(has(out.output, "--open-room"));
    CHECK(has(out.output, "--secret-file"));
    out = run_command(kMsglab + " serve csmp --plant slmp.no-ttl 2>&1");
    CHECK(out.exit_code == 2);
    out = run_command(kMsglab + " serve csmp --listen nowhere:1 2>&1");
    CHECK(out.exit_code == 2);
    TempDir dir;
    write_file(dir / "short.key", "short");
    out = run_command(kMsglab + " serve csmp --listen 127.0.0.1:0 --db " + (dir / "h.db").string() + " --secret-file " +
                      (dir / "short.key").string() + " 2>&1");
    CHECK(out.exit_code == 2);
    CHECK(has(out.output, "shorter than 16 bytes"));
    out = run_command(kMsglab + " connect csmp 127.0.0.1:1 --user a --send x --timeout 2 2>&1");
    CHECK(out.exit_code == 1);
    CHECK(has(out.output, "cannot connect to 127.0.0.1:1"));
}
