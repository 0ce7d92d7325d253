// msglab serve socp / msglab connect socp as processes: a mesh of three
// servers on loopback that keeps delivering direct and public messages when
// any one server is killed, and takes a restarted server back.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <thread>

#include "child_process.hpp"
#include "socp_support.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kMsglab = MSGLAB_BINARY;
const std::string U1 = "11111111-1111-4111-8111-111111111111";
const std::string U2 = "22222222-2222-4222-8222-222222222222";
const std::string U3 = "33333333-3333-4333-8333-333333333333";

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Reads lines until one contains `needle`.
void wait_for(ChildProcess& p, const std::string& needle, std::chrono::seconds limit = 20s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        auto l = p.line(1s);
        if (l && has(*l, needle)) return;
    }
    INFO(p.all());
    FAIL("no line with '" << needle << "'");
}

struct Serve {
    std::unique_ptr<ChildProcess> proc;
    std::string port;
    Serve(const std::string& key, const std::vector<std::string>& introducers, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {kMsglab, "serve", "socp", "--listen", "127.0.0.1:0", "--key",
                                      socp::test::key_path(key), "--heartbeat", "0.2", "--dead-after", "1"};
        for (const auto& i : introducers) {
            a.push_back("--introducer");
            a.push_back("127.0.0.1:" + i);
        }
        a.insert(a.end(), extra.begin(), extra.end());
        proc = std::make_unique<ChildProcess>(a);
        auto l = proc->line();
        INFO(proc->all());
        REQUIRE(l);
        port = listening_port(*l);
        if (!introducers.empty()) wait_for(*proc, "joined the mesh");
    }
    std::string target() const { return "127.0.0.1:" + port; }
};

std::string connect(const Serve& s, const std::string& user, const std::string& key, const std::string& rest) {
    return kMsglab + " connect socp " + s.target() + " --user " + user + " --key " + socp::test::key_path(key) + " " +
           rest + " 2>&1";
}

}  // namespace

TEST_CASE("msglab socp mesh: three servers survive a killed server and a killed introducer, and take a restart back",
          "[cli]") {
    Serve a("server-a", {});
    Serve b("server-b", {a.port});
    Serve c("server-c", {a.port, b.port});
    wait_for(*c.proc, "linked to server");

    // A receiver on C that expects two direct and two public messages.
    ChildProcess r2({kMsglab, "connect", "socp", c.target(), "--user", U2, "--key", socp::test::key_path("user-2"),
                     "--expect", "4", "--wait", "60"});
    std::this_thread::sleep_for(300ms);
    auto s1 = run_command(connect(a, U1, "user-1", "--wait-for " + U2 + " --to " + U2 +
                                                       " --tell 'before the kill' --all 'public before' --wait 0.3"));
    INFO(s1.output);
    REQUIRE(s1.exit_code == 0);

    // B dies: the users on A and C do not notice.
    b.proc->signal(SIGKILL);
    b.proc->finish(5s);
    std::this_thread::sleep_for(300ms);
    auto s2 = run_command(connect(a, U1, "user-1", "--wait-for " + U2 + " --to " + U2 +
                                                       " --tell 'after the kill' --all 'public after' --wait 0.3"));
    INFO(s2.output);
    REQUIRE(s2.exit_code == 0);
    auto [out2, code2] = r2.finish(30s);
    std::string all2 = r2.all() + out2;
    INFO(all2);
    CHECK(code2 == 0);
    CHECK(has(all2, "[dm] <" + U1 + "> before the kill"));
    CHECK(has(all2, "[dm] <" + U1 + "> after the kill"));
    CHECK(has(all2, "[public] <" + U1 + "> public before"));
    CHECK(has(all2, "[public] <" + U1 + "> public after"));
    CHECK_FALSE(has(all2, "NOT verified"));
    CHECK_FALSE(has(all2, "unencrypted"));

    // B restarts (a new process on a new port) and joins again through A.
    Serve b2("server-b", {a.port});
    wait_for(*b2.proc, "linked to server");
    ChildProcess r1({kMsglab, "connect", "socp", a.target(), "--user", U1, "--key", socp::test::key_path("user-1"),
                     "--expect", "1", "--wait", "60"});
    std::this_thread::sleep_for(300ms);
    auto s3 = run_command(connect(b2, U3, "user-3", "--wait-for " + U1 + " --to " + U1 + " --tell 'from the new B'"));
    INFO(s3.output);
    REQUIRE(s3.exit_code == 0);
    auto [out1, code1] = r1.finish(30s);
    INFO(r1.all() + out1);
    CHECK(code1 == 0);
    CHECK(has(r1.all() + out1, "[dm] <" + U3 + "> from the new B"));

    // The introducer A dies: B and C keep talking.
    a.proc->signal(SIGKILL);
    a.proc->finish(5s);
    ChildProcess r3({kMsglab, "connect", "socp", c.target(), "--user", U2, "--key", socp::test::key_path("user-2"),
                     "--expect", "2", "--wait", "60"});
    std::this_thread::sleep_for(300ms);
    auto s4 = run_command(connect(b2, U3, "user-3", "--wait-for " + U2 + " --to " + U2 +
                                                        " --tell 'without the introducer' --all 'still public'"));
    INFO(s4.output);
    REQUIRE(s4.exit_code == 0);
    auto [out3, code3] = r3.finish(30s);
    INFO(r3.all() + out3);
    CHECK(code3 == 0);
    CHECK(has(r3.all() + out3, "[dm] <" + U3 + "> without the introducer"));
    CHECK(has(r3.all() + out3, "[public] <" + U3 + "> still public"));
}

TEST_CASE("msglab socp mesh: a hung server is declared dead by heartbeat and its users dropped", "[cli]") {
    Serve a("server-a", {});
    Serve b("server-b", {a.port});
    ChildProcess u3({kMsglab, "connect", "socp", b.target(), "--user", U3, "--key", socp::test::key_path("user-3"),
                     "--wait", "30", "--all", "here"});
    auto before = run_command(connect(a, U1, "user-1", "--wait-for " + U3 + " --list"));
    INFO(before.output);
    REQUIRE(before.exit_code == 0);
    CHECK(has(before.output, U3));
    b.proc->signal(SIGSTOP);
    wait_for(*a.proc, "is dead", 10s);
    auto after = run_command(connect(a, U1, "user-1", "--list"));
    INFO(after.output);
    CHECK(after.exit_code == 0);
    CHECK_FALSE(has(after.output, U3));
    b.proc->signal(SIGCONT);
}
