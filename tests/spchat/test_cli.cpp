// SP-SimpleChat end to end with the msglab command: serve and connect, a
// 10 MiB file between two clients with its hash checked, and an independent
// peer (tests/spchat/spchat_peer.py on Debian's python3-pycryptodome) that
// sends files to msglab's client and receives files from it.
#include "child_process.hpp"
#include "support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "core/crypto.hpp"
#include "spchat/client.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

const std::string kMsglab = MSGLAB_BINARY;
const std::string kPeer = std::string(MSGLAB_SPCHAT_TEST_DIR) + "/spchat_peer.py";

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct Serve {
    ChildProcess proc;
    std::string first, port;
    explicit Serve(const std::vector<std::string>& extra = {}) : proc(args(extra)) {
        auto l = proc.line();
        INFO("msglab serve spchat printed: " << proc.all());
        REQUIRE(l);
        first = *l;
        port = listening_port(first);
    }
    static std::vector<std::string> args(const std::vector<std::string>& extra) {
        std::vector<std::string> a = {kMsglab, "serve", "spchat", "--listen", "127.0.0.1:0"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string target() const { return "127.0.0.1:" + port; }
};

std::string sha256_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto d = crypto::sha256(b);
    return hex(Bytes(d.begin(), d.end()));
}

fs::path random_file(const TempDir& dir, const std::string& name, std::size_t n) {
    Bytes b = SystemRng::instance().bytes(n);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(n));
    return dir / name;
}

// Waits until a `msglab connect` child prints `line` ("* hello bob").
void wait_line(ChildProcess& p, const std::string& line) {
    for (;;) {
        auto l = p.line(20s);
        INFO(p.all());
        REQUIRE(l);
        if (*l == line) return;
    }
}

}  // namespace

TEST_CASE("msglab connect spchat: a 10 MiB file from one client to another, hash checked", "[cli]") {
    TempDir dir;
    Serve s;
    CHECK(has(s.first, "plants: none (clean)"));
    auto file = random_file(dir, "big.bin", 10 * 1024 * 1024);
    ChildProcess bob({kMsglab, "connect", "spchat", s.target(), "--nick", "bob", "--auto-accept", "--expect-files", "1",
                      "--wait", "120", "--downloads", (dir / "bob").string()});
    wait_line(bob, "* hello bob");
    auto sent = run_command(kMsglab + " connect spchat " + s.target() + " --nick Alice --send-file " +
                            shell_quote(file.string()) + " --to dm:bob --send-wait 0 2>&1");
    INFO(sent.output);
    CHECK(sent.exit_code == 0);
    CHECK(has(sent.output, "320 chunks"));
    auto [rest, code] = bob.finish(120s);
    INFO(bob.all());
    CHECK(code == 0);
    CHECK(has(bob.all(), "received 'big.bin' from Alice"));
    REQUIRE(fs::exists(dir / "bob" / "big.bin"));
    CHECK(fs::file_size(dir / "bob" / "big.bin") == 10 * 1024 * 1024);
    CHECK(sha256_file(dir / "bob" / "big.bin") == sha256_file(file));
}

TEST_CASE("msglab connect spchat: a room transfer reaches every member, chat lines are printed", "[cli]") {
    TempDir dir;
    Serve s;
    auto file = random_file(dir, "notes.txt", 70000);
    std::vector<std::unique_ptr<ChildProcess>> members;
    for (const char* nick : {"carol", "dave"}) {
        members.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
            kMsglab, "connect", "spchat", s.target(), "--nick", nick, "--room", "team", "--auto-accept", "--expect-files",
            "1", "--wait", "60", "--downloads", (dir / nick).string()}));
        wait_line(*members.back(), std::string("* ") + nick + " joined team (SECURE)");
    }
    auto out = run_command(kMsglab + " connect spchat " + s.target() +
                           " --nick erin --room team --send 'status at noon' --send-file " + shell_quote(file.string()) +
                           " --send-wait 0 2>&1");
    INFO(out.output);
    CHECK(out.exit_code == 0);
    for (std::size_t i = 0; i < members.size(); ++i) {
        auto [rest, code] = members[i]->finish(60s);
        INFO(members[i]->all());
        CHECK(code == 0);
        CHECK(has(members[i]->all(), "[team] <erin> status at noon"));
        std::string nick = i == 0 ? "carol" : "dave";
        CHECK(sha256_file(dir / nick / "notes.txt") == sha256_file(file));
    }
}

TEST_CASE("spchat against an independent peer (python3-pycryptodome): files both ways, chat texts", "[cli][python]") {
    if (!fs::exists(kSystemPython)) MSGLAB_SKIP("no /usr/bin/python3");
    TempDir dir;
    Serve s;
    const std::string port = s.port;
    // msglab sends, python receives and checks every derivation.
    fs::create_directories(dir / "py");
    auto file = random_file(dir, "from-msglab.bin", 100000);
    ChildProcess py({kSystemPython, kPeer, "recv", "127.0.0.1", port, "pybob", (dir / "py").string()});
    auto ready = py.line(20s);
    INFO(py.all());
    REQUIRE(ready == std::string("ready"));
    auto out = run_command(kMsglab + " connect spchat " + s.target() + " --nick alice --send-file " +
                           shell_quote(file.string()) + " --to dm:pybob --send-wait 0 2>&1");
    INFO(out.output);
    CHECK(out.exit_code == 0);
    auto ok = py.line(30s);
    REQUIRE(ok);
    CHECK(*ok == "ok from-msglab.bin 100000 " + sha256_file(file) + " from alice");
    // python sends, msglab receives.
    auto pyfile = random_file(dir, "from-python.bin", 50000);
    ChildProcess bob({kMsglab, "connect", "spchat", s.target(), "--nick", "bob", "--auto-accept", "--expect-files", "1",
                      "--wait", "60", "--downloads", (dir / "bob").string()});
    wait_line(bob, "* hello bob");
    auto sent = run_command(kSystemPython + std::string(" ") + kPeer + " send 127.0.0.1 " + port + " Carol dm:bob " +
                            shell_quote(pyfile.string()) + " 2>&1");
    INFO(sent.output);
    CHECK(sent.exit_code == 0);
    auto [rest, code] = bob.finish(60s);
    INFO(bob.all());
    CHECK(code == 0);
    CHECK(sha256_file(dir / "bob" / "from-python.bin") == sha256_file(pyfile));
    // Chat: python in a room with msglab; the texts are the original's.
    ChildProcess listener({kMsglab, "connect", "spchat", s.target(), "--nick", "dana", "--room", "r1", "--wait", "5",
                           "--send", "hi from msglab"});
    wait_line(listener, "* dana joined r1 (SECURE)");
    auto joined = run_command(kSystemPython + std::string(" ") + kPeer + " chat 127.0.0.1 " + port + " Eve r1 'hi from python' 2>&1");
    INFO(joined.output);
    CHECK(joined.exit_code == 0);
    CHECK(has(joined.output, "{\"type\": \"INFO\", \"text\": \"eve joined r1 (SECURE)\"}"));
    auto [lout, lcode] = listener.finish(30s);
    INFO(listener.all());
    CHECK(has(listener.all(), "[r1] <eve> hi from python"));
}

TEST_CASE("msglab serve spchat: plants named, rooms configured, bad options refused", "[cli]") {
    {
        Serve s({"--plant", "spchat.magic-reply", "--room", "staff=pw"});
        CHECK(has(s.first, "plants: spchat.magic-reply"));
        CHECK(has(s.first, "1 configured room(s)"));
        auto out = run_command(kMsglab + " connect spchat " + s.target() + " --nick x --room staff 2>&1");
        CHECK(out.exit_code != 0);
        CHECK(has(out.output, "! not authorized to join room"));
        out = run_command(kMsglab + " connect spchat " + s.target() + " --nick x --room staff --password pw --who 2>&1");
        CHECK(out.exit_code == 0);
        CHECK(has(out.output, "members of staff: x"));
    }
    auto bad = run_command(kMsglab + " serve spchat --plant csmp.room-no-acl 2>&1");
    CHECK(bad.exit_code == 2);
    CHECK(has(bad.output, "csmp.room-no-acl"));
    bad = run_command(kMsglab + " serve spchat --room nopassword 2>&1");
    CHECK(bad.exit_code == 2);
    bad = run_command(kMsglab + " connect spchat 127.0.0.1:1 --send hi 2>&1");
    CHECK(bad.exit_code == 2);
    CHECK(has(bad.output, "--send needs --room"));
    bad = run_command(kMsglab + " connect spchat 127.0.0.1:1 --nick x 2>&1");
    CHECK(bad.exit_code == 1);
    CHECK(has(bad.output, "cannot connect to 127.0.0.1:1"));
}

TEST_CASE("msglab connect spchat interactive: /join, /msg, /who, /accept, /send, /leave, /quit", "[cli]") {
    TempDir dir;
    Serve s;
    const std::string fifo = (dir / "bob.in").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    ChildProcess bob({"/bin/sh", "-c",
                      "exec " + kMsglab + " connect spchat " + s.target() + " --nick bob --send-wait 0 --downloads " +
                          shell_quote((dir / "bob").string()) + " < " + shell_quote(fifo)});
    int in = ::open(fifo.c_str(), O_WRONLY);
    REQUIRE(in >= 0);
    auto type = [&](const std::string& line) {
        std::string l = line + "\n";
        REQUIRE(::write(in, l.data(), l.size()) == static_cast<ssize_t>(l.size()));
    };
    wait_line(bob, "* hello bob");
    type("/join r1");
    wait_line(bob, "* bob joined r1 (SECURE)");
    // alice sends a file with the original's pause before the chunks; bob accepts it by hand.
    auto file = random_file(dir, "paper.pdf", 80000);
    ChildProcess alice({kMsglab, "connect", "spchat", s.target(), "--nick", "alice", "--room", "r1", "--send",
                        "hello bob", "--send-file", file.string(), "--to", "dm:bob", "--send-wait", "2"});
    wait_line(bob, "[r1] <alice> hello bob");
    std::string offer;
    for (;;) {
        auto l = bob.line(20s);
        INFO(bob.all());
        REQUIRE(l);
        if (l->rfind("file offer ", 0) == 0) {
            offer = l->substr(11, 8);
            break;
        }
    }
    type("/accept " + offer);
    for (;;) {
        auto l = bob.line(20s);
        INFO(bob.all());
        REQUIRE(l);
        if (l->rfind("received 'paper.pdf' from alice", 0) == 0) break;
    }
    CHECK(sha256_file(dir / "bob" / "paper.pdf") == sha256_file(file));
    auto [aout, acode] = alice.finish(30s);
    INFO(alice.all());
    CHECK(acode == 0);
    // And back: /send to the room, /msg, /who, /leave, /quit.
    ChildProcess carol({kMsglab, "connect", "spchat", s.target(), "--nick", "carol", "--room", "r1", "--auto-accept",
                        "--expect-files", "1", "--wait", "30", "--downloads", (dir / "carol").string()});
    wait_line(carol, "* carol joined r1 (SECURE)");
    type("/msg hi carol");
    type("/send " + file.string());
    type("/who");
    wait_line(bob, "members of r1: bob, carol");
    type("/leave");
    wait_line(bob, "* You left r1");
    type("/quit");
    ::close(in);
    auto [rest, code] = bob.finish(20s);
    CHECK(code == 0);
    auto [cout, ccode] = carol.finish(30s);
    INFO(carol.all());
    CHECK(ccode == 0);
    CHECK(has(carol.all(), "[r1] <bob> hi carol"));
    CHECK(sha256_file(dir / "carol" / "paper.pdf") == sha256_file(file));
}
