// msglab serve signal / msglab connect signal as processes: a user talks to
// the echo bot through a live capture that decode opens with the key log;
// the key directory survives a restart and keeps names with their owners;
// the original capture decodes; usage errors are clear.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <regex>
#include <thread>

#include "child_process.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kMsglab = MSGLAB_BINARY;

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct Serve {
    std::unique_ptr<ChildProcess> proc;
    std::string port;
    explicit Serve(const std::string& db, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {kMsglab, "serve", "signal", "--listen", "127.0.0.1:0", "--db", db};
        a.insert(a.end(), extra.begin(), extra.end());
        proc = std::make_unique<ChildProcess>(a);
        auto l = proc->line();
        INFO(proc->all());
        REQUIRE(l);
        REQUIRE(has(*l, "signal server listening on"));
        port = listening_port(*l);
    }
    ~Serve() {
        proc->signal(SIGTERM);
        proc->finish();
    }
    std::string target() const { return "127.0.0.1:" + port; }
    void wait_for(const std::string& needle) {
        auto until = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < until) {
            auto l = proc->line(1s);
            if (l && has(*l, needle)) return;
        }
        INFO(proc->all());
        FAIL("no line with '" << needle << "'");
    }
};

struct CaptureProcess {
    std::unique_ptr<ChildProcess> proc;
    bool allowed = false;
    CaptureProcess(const std::string& port, const std::string& pcap) {
        proc = std::make_unique<ChildProcess>(
            std::vector<std::string>{kMsglab, "capture", "--iface", "lo", "--port", port, "--out", pcap});
        auto first = proc->line().value_or("");
        allowed = !has(first, "not allowed") && !has(first, "ermission");
        if (allowed) {
            INFO(first);
            REQUIRE(has(first, "capturing on lo (tcp port " + port + ")"));
            std::this_thread::sleep_for(300ms);
        }
    }
    void stop() {
        std::this_thread::sleep_for(500ms);
        proc->signal(SIGINT);
        auto [rest, rc] = proc->finish();
        CHECK(rc == 0);
    }
};

}  // namespace

TEST_CASE("msglab signal: a user and the echo bot, captured live and decoded with the key log", "[cli]") {
    TempDir tmp;
    Serve s((tmp / "keys.db").string(), {"--bot", "msglab-bot"});
    s.wait_for("echo bot msglab-bot online");
    const auto pcap = (tmp / "chat.pcap").string(), keys = (tmp / "keys.log").string();
    CaptureProcess cap(s.port, pcap);
    auto r = run_command(kMsglab + " connect signal " + s.target() +
                         " --user alice --to msglab-bot --send 'hello bot' --send 'and again' --expect 2 --wait 10"
                         " --keylog " + keys + " 2>&1");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(has(r.output, "registered as alice"));
    CHECK(has(r.output, "session with msglab-bot opened (X3DH)"));
    CHECK(has(r.output, "<msglab-bot> echo: hello bot"));
    CHECK(has(r.output, "<msglab-bot> echo: and again"));
    auto log = read_file(keys);
    CHECK(std::regex_search(log, std::regex("SIGNAL_X3DH_SK [0-9a-f]{64} [0-9a-f]{64}")));
    CHECK(std::regex_search(log, std::regex("SIGNAL_MESSAGE_KEY [0-9a-f]{80} [0-9a-f]{64}")));
    if (!cap.allowed) MSGLAB_SKIP("live capture on lo is not allowed here");
    cap.stop();
    auto d = run_command(kMsglab + " decode " + pcap + " --keylog " + keys + " 2>&1");
    INFO(d.output);
    CHECK(d.exit_code == 0);
    CHECK(has(d.output, "x3dh_message"));
    CHECK(has(d.output, "##CHAT_START##"));
    CHECK(has(d.output, "hello bot"));
    CHECK(has(d.output, "echo: and again"));
}

TEST_CASE("msglab signal: the key directory survives a restart and a name stays with its keys", "[cli]") {
    TempDir tmp;
    const auto db = (tmp / "keys.db").string(), id = (tmp / "alice.json").string();
    {
        Serve s(db);
        auto r = run_command(kMsglab + " connect signal " + s.target() + " --user alice --identity " + id +
                             " --list --wait 0 2>&1");
        INFO(r.output);
        CHECK(r.exit_code == 0);
        CHECK(has(r.output, "made a new identity in"));
        CHECK(has(r.output, "alice (you)"));
    }
    Serve s(db);
    auto again = run_command(kMsglab + " connect signal " + s.target() + " --user alice --identity " + id +
                             " --list --wait 0 2>&1");
    INFO(again.output);
    CHECK(again.exit_code == 0);
    auto thief = run_command(kMsglab + " connect signal " + s.target() + " --user alice --list --wait 0 2>&1");
    INFO(thief.output);
    CHECK(thief.exit_code == 1);
    CHECK(has(thief.output, "refused to register alice"));
}

TEST_CASE("msglab signal: the original capture decodes", "[cli]") {
    auto dir = captures_dir();
    if (!dir) MSGLAB_SKIP("no captures folder");
    auto d = run_command(kMsglab + " decode " + (*dir / "originals" / "signal.pcap").string() + " 2>&1");
    INFO(d.output);
    CHECK(d.exit_code == 0);
    for (const char* e : {"register_user", "request_users", "request_prekey", "x3dh_message", "ratchet_msg"})
        CHECK(has(d.output, e));
}

TEST_CASE("msglab signal: usage errors are clear", "[cli]") {
    auto r = run_command(kMsglab + " connect signal 127.0.0.1:1 2>&1");
    CHECK(r.exit_code != 0);
    CHECK(has(r.output, "--user is required"));
    r = run_command(kMsglab + " connect signal 127.0.0.1:1 --user a --plant signal.from-spoof 2>&1");
    CHECK(r.exit_code != 0);
    CHECK(has(r.output, "is a server plant"));
    r = run_command(kMsglab + " connect signal 127.0.0.1:1 --user a --transport carrier-pigeon 2>&1");
    CHECK(r.exit_code != 0);
    CHECK(has(r.output, "--transport must be"));
    r = run_command(kMsglab + " serve signal --plant signal.nope 2>&1");
    CHECK(r.exit_code != 0);
    CHECK(has(r.output, "signal.nope"));
    // Nobody listening: a clear failure, no hang.
    r = run_command(kMsglab + " connect signal 127.0.0.1:1 --user a --timeout 2 2>&1");
    CHECK(r.exit_code == 1);
    CHECK(has(r.output, "cannot connect"));
    r = run_command(kMsglab + " serve signal --help 2>&1");
    CHECK(r.exit_code == 0);
    CHECK(has(r.output, "--bot"));
    CHECK(has(r.output, "--db"));
}
