// The msglab command as a user runs it.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/findings.hpp"
#include "core/keylog.hpp"
#include "support.hpp"

using namespace msglab::test;

namespace {

const std::string kMsglab = MSGLAB_BINARY;

CommandResult run_msglab(const std::string& args) { return run_command(kMsglab + " " + args + " 2>&1"); }

// A server process whose standard output is read line by line.
class ServerProcess {
public:
    explicit ServerProcess(const std::string& args) {
        m_pipe = popen(("exec " + kMsglab + " " + args + " 2>&1").c_str(), "r");
        REQUIRE(m_pipe);
    }
    ~ServerProcess() {
        if (m_pipe) pclose(m_pipe);
    }
    std::string line() {
        char buf[4096];
        if (!fgets(buf, sizeof buf, m_pipe)) return {};
        return buf;
    }
    // Everything left until the process exits; its exit status.
    std::pair<std::string, int> finish() {
        std::string rest;
        for (std::string l = line(); !l.empty(); l = line()) rest += l;
        int status = pclose(m_pipe);
        m_pipe = nullptr;
        return {rest, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
    }

private:
    FILE* m_pipe = nullptr;
};

std::string listening_port(const std::string& first_line) {
    std::smatch m;
    REQUIRE(std::regex_search(first_line, m, std::regex(R"(listening on 127\.0\.0\.1:(\d+))")));
    return m[1];
}

}  // namespace

TEST_CASE("msglab --help lists every command, --version prints one", "[cli]") {
    auto r = run_msglab("--help");
    CHECK(r.exit_code == 0);
    for (const char* c : {"protocols", "plants", "findings", "serve", "connect", "capture", "decode", "replay",
                          "tshark", "wireshark", "selftest", "audit"})
        CHECK(r.output.find(std::string("\n  ") + c) != std::string::npos);
    auto v = run_msglab("--version");
    CHECK(v.exit_code == 0);
    CHECK(std::regex_match(v.output, std::regex("msglab \\d+\\.\\d+\\.\\d+\n")));
    CHECK(run_msglab("").exit_code == 2);
}

TEST_CASE("msglab: unknown commands and options exit 2 with a clear message", "[cli]") {
    auto a = run_msglab("frobnicate");
    CHECK(a.exit_code == 2);
    CHECK(a.output.find("unknown command 'frobnicate'") != std::string::npos);
    auto b = run_msglab("--frobnicate");
    CHECK(b.exit_code == 2);
    CHECK(b.output.find("unknown option '--frobnicate'") != std::string::npos);
    auto c = run_msglab("plants --frobnicate");
    CHECK(c.exit_code == 2);
    CHECK(c.output.find("--frobnicate") != std::string::npos);
    auto d = run_msglab("serve secmsg --plant secmsg.nope");
    CHECK(d.exit_code == 2);
    CHECK(d.output.find("unknown plant 'secmsg.nope'") != std::string::npos);
    auto e = run_msglab("serve nosuchproto");
    CHECK(e.exit_code == 2);
    CHECK(e.output.find("unknown protocol 'nosuchproto'") != std::string::npos);
    auto f = run_msglab("connect secmsg 127.0.0.1:99999");
    CHECK(f.exit_code == 2);
    CHECK(f.output.find("bad port") != std::string::npos);
    CHECK(run_msglab("serve secmsg --listen not-an-ip:5000").exit_code == 2);
}

TEST_CASE("msglab <command> --help documents its options", "[cli]") {
    auto s = run_msglab("serve secmsg --help");
    CHECK(s.exit_code == 0);
    for (const char* o : {"--listen", "--echo", "--plant", "--keylog", "--max-connections"})
        CHECK(s.output.find(o) != std::string::npos);
    auto c = run_msglab("connect secmsg --help");
    CHECK(c.exit_code == 0);
    for (const char* o : {"--send", "--wait", "--keylog", "HOST:PORT"}) CHECK(c.output.find(o) != std::string::npos);
    CHECK(run_msglab("plants --help").output.find("--protocol") != std::string::npos);
}

TEST_CASE("msglab protocols and plants print the registries", "[cli]") {
    auto p = run_msglab("protocols");
    CHECK(p.exit_code == 0);
    CHECK(std::regex_search(p.output, std::regex(R"(secmsg\s+tcp\s+5000\s+6\s+SecMsg)")));
    auto q = run_msglab("plants --protocol secmsg --verbose");
    CHECK(q.exit_code == 0);
    for (const char* id : {"secmsg.accept-weak-dh", "secmsg.no-freshness", "secmsg.accept-reflection",
                           "secmsg.skip-hmac", "secmsg.late-handshake", "secmsg.recv-overflow"})
        CHECK(q.output.find(id) != std::string::npos);
    CHECK(q.output.find("detected by: MAC_NOT_VERIFIED") != std::string::npos);
    auto v = run_msglab("protocols --verbose");
    CHECK(v.exit_code == 0);
    for (const char* code : {"KEYSTREAM_REUSE", "PLAINTEXT_HASH_EXPOSED", "UNAUTHENTICATED_KEY_EXCHANGE",
                             "NONSTANDARD_CIPHER", "SECMSG_MASTER_SECRET"})
        CHECK(v.output.find(code) != std::string::npos);
    auto f = run_msglab("findings");
    CHECK(f.exit_code == 0);
    CHECK(f.output.find("REPLAY_ACCEPTED") != std::string::npos);
}

TEST_CASE("msglab selftest passes and says what it ran", "[cli]") {
    auto s = run_msglab("selftest");
    CHECK(s.exit_code == 0);
    CHECK(std::regex_search(s.output, std::regex(R"(selftest: \d+ passed, 0 failed)")));
}

TEST_CASE("Two msglab peers from the command line, with a key log", "[cli][endpoint]") {
    TempDir dir;
    std::string keylog = (dir / "keys.log").string();
    ServerProcess server("serve secmsg --listen 127.0.0.1:0 --echo --duration 4 --keylog " + keylog);
    std::string port = listening_port(server.line());
    auto c = run_command(kMsglab + " connect secmsg 127.0.0.1:" + port +
                         " --send 'hello from A' --send 'second line' --wait 0.5");
    CHECK(c.exit_code == 0);
    CHECK(c.output == "< hello from A\n< second line\n");
    auto piped = run_command("printf 'one\\ntwo\\n' | " + kMsglab + " connect secmsg 127.0.0.1:" + port +
                             " --wait 0.5");
    CHECK(piped.exit_code == 0);
    CHECK(piped.output == "< one\n< two\n");
    auto [out, rc] = server.finish();
    CHECK(rc == 0);
    CHECK(out.find("> hello from A") != std::string::npos);
    CHECK(out.find("> two") != std::string::npos);
    CHECK(out.find("stopped: 2 session(s), 4 message(s) received") != std::string::npos);
    auto log = msglab::KeyLog::load(keylog);
    CHECK(log.size() == 2);
}

TEST_CASE("msglab connect fails clearly when nobody listens", "[cli][endpoint]") {
    auto r = run_msglab("connect secmsg 127.0.0.1:1 --timeout 3");
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("cannot connect") != std::string::npos);
}

TEST_CASE("msglab serve --plant shows the plant and keeps serving", "[cli][endpoint]") {
    ServerProcess server("serve secmsg --listen 127.0.0.1:0 --plant secmsg.no-freshness --duration 2");
    std::string first = server.line();
    CHECK(first.find("plants: secmsg.no-freshness") != std::string::npos);
    std::string port = listening_port(first);
    CHECK(run_command(kMsglab + " connect secmsg 127.0.0.1:" + port + " --send x --wait 0.2").exit_code == 0);
    auto [out, rc] = server.finish();
    CHECK(rc == 0);
    CHECK(out.find("> x") != std::string::npos);
}

TEST_CASE("msglab capture, decode and replay from the command line", "[cli][capture][replay]") {
    TempDir dir;
    std::string keys = (dir / "keys.log").string(), pcap = (dir / "s.pcap").string();
    ServerProcess server("serve secmsg --listen 127.0.0.1:0 --echo --duration 10 --keylog " + keys);
    std::string port = listening_port(server.line());
    ServerProcess capture("capture --iface lo --port " + port + " --out " + pcap + " --duration 4");
    std::string first = capture.line();
    if (first.find("not allowed") != std::string::npos) MSGLAB_SKIP("live capture needs root or CAP_NET_RAW");
    CHECK(first.find("capturing on lo (tcp port " + port + ")") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(run_command(kMsglab + " connect secmsg 127.0.0.1:" + port +
                      " --send 'hello from A' --send 'attack at dawn' --wait 0.3")
              .exit_code == 0);
    auto [cap_out, cap_rc] = capture.finish();
    CHECK(cap_rc == 0);
    CHECK(std::regex_search(cap_out, std::regex(R"(\d+ packets written to )")));

    auto text = run_msglab("decode " + pcap + " --keylog " + keys);
    CHECK(text.exit_code == 0);
    CHECK(text.output.find("HANDSHAKE_REQUEST") != std::string::npos);
    CHECK(text.output.find("\"hello from A\"") != std::string::npos);
    CHECK(text.output.find("\"attack at dawn\"") != std::string::npos);
    CHECK(text.output.find("1 of a known protocol, 6 message(s)") != std::string::npos);
    auto json = run_command(kMsglab + " decode " + pcap + " --json --keylog " + keys + " 2>/dev/null");
    std::size_t lines = 0, with_plaintext = 0;
    std::istringstream in(json.output);
    for (std::string l; std::getline(in, l); ++lines) {
        auto j = nlohmann::json::parse(l);
        CHECK(j.at("protocol") == "secmsg");
        if (j.contains("plaintext")) ++with_plaintext;
    }
    CHECK(lines == 6);
    CHECK(with_plaintext == 4);  // two messages and their echoes

    // The same capture through `msglab tshark`: decoded and decrypted by the
    // plugin (not built in sanitizer builds: it could not load into tshark).
    if (MSGLAB_HAVE_PLUGIN && run_command("command -v tshark >/dev/null 2>&1").exit_code == 0) {
        auto ts = run_command(kMsglab + " tshark -r " + pcap + " --keylog " + keys +
                              " -Y secmsg -T fields -e secmsg.type -e secmsg.hmac_status -e secmsg.plaintext"
                              " 2>/dev/null");
        CHECK(ts.exit_code == 0);
        // The handshake pair comes first; an echo may overtake the client's
        // second message on the wire, so the REGULAR rows are compared as a set.
        std::vector<std::string> rows;
        std::istringstream tin(ts.output);
        for (std::string l; std::getline(tin, l);) rows.push_back(l);
        REQUIRE(rows.size() == 6);
        CHECK(rows[0] == "2\t3\t");
        CHECK(rows[1] == "3\t3\t");
        std::sort(rows.begin() + 2, rows.end());
        CHECK(std::vector<std::string>(rows.begin() + 2, rows.end()) ==
              std::vector<std::string>{"1\t1\tattack at dawn", "1\t1\tattack at dawn", "1\t1\thello from A",
                                       "1\t1\thello from A"});
    }

    auto clean = run_msglab("replay " + pcap + " --target 127.0.0.1:" + port +
                            " --rewrap --keylog " + keys + " --mutate duplicate:index=0 --seed 5 --wait 1.5");
    CHECK(clean.exit_code == 0);
    CHECK(clean.output.find("seed: 5") != std::string::npos);
    CHECK(clean.output.find("duplicate of #0, 95 B -> closed") != std::string::npos);
    CHECK(clean.output.find("findings: 0") != std::string::npos);
    server.finish();

    ServerProcess planted("serve secmsg --listen 127.0.0.1:0 --echo --duration 5 --plant secmsg.no-freshness");
    std::string pport = listening_port(planted.line());
    std::string findings = (dir / "findings.jsonl").string();
    auto hit = run_msglab("replay " + pcap + " --target 127.0.0.1:" + pport + " --rewrap --keylog " + keys +
                          " --mutate duplicate:index=0 --wait 1.5 --findings " + findings);
    CHECK(hit.exit_code == 0);
    CHECK(hit.output.find("findings: 1") != std::string::npos);
    std::ifstream fin(findings);
    auto read = msglab::read_findings(fin);
    REQUIRE(read.findings.size() == 1);
    CHECK(read.findings[0].code == "REPLAY_ACCEPTED");
    CHECK(read.findings[0].reproduce.find("msglab replay " + pcap) == 0);
}

TEST_CASE("msglab decode and replay: clear errors", "[cli][replay]") {
    auto a = run_msglab("decode /nonexistent/x.pcap");
    CHECK(a.exit_code == 1);
    CHECK(a.output.find("/nonexistent/x.pcap") != std::string::npos);
    auto b = run_msglab("replay x.pcap --target 127.0.0.1:1 --mutate frobnicate");
    CHECK(b.exit_code == 2);
    CHECK(b.output.find("unknown mutation 'frobnicate'") != std::string::npos);
    auto c = run_msglab("replay x.pcap");
    CHECK(c.exit_code == 2);
    CHECK(c.output.find("--target") != std::string::npos);
    auto d = run_msglab("decode x.pcap --protocol nosuch");
    CHECK(d.exit_code == 2);
    auto e = run_msglab("capture --iface lo");
    CHECK(e.exit_code == 2);
    CHECK(e.output.find("--out") != std::string::npos);
}

TEST_CASE("msglab capture stops cleanly on Ctrl-C and leaves a readable pcap", "[cli][capture]") {
    TempDir dir;
    std::string pcap = (dir / "int.pcap").string();
    auto r = run_command("sh -c '" + kMsglab + " capture --iface lo --port 1 --out " + pcap +
                         " 2>&1 & pid=$!; sleep 1; kill -INT $pid; wait $pid; echo rc=$?'");
    if (r.output.find("not allowed") != std::string::npos) MSGLAB_SKIP("live capture needs root or CAP_NET_RAW");
    CHECK(r.output.find("rc=0") != std::string::npos);
    CHECK(r.output.find("packets written to " + pcap) != std::string::npos);
    auto d = run_msglab("decode " + pcap);
    CHECK(d.exit_code == 0);
    CHECK(d.output.find("0 TCP stream(s)") != std::string::npos);
}

TEST_CASE("msglab tshark: help, and a clear error when the plugin is missing", "[cli][dissector]") {
    auto h = run_msglab("tshark --help");
    CHECK(h.exit_code == 0);
    CHECK(h.output.find("--keylog") != std::string::npos);
    auto m = run_command("MSGLAB_PLUGIN_DIR=/nonexistent " + kMsglab + " tshark -v 2>&1");
    CHECK(m.exit_code == 1);
    CHECK(m.output.find("no 4.0/epan/msglab.so") != std::string::npos);
}
