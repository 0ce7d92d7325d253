// SLMP end to end with the msglab command: serve, connect, capture, decode,
// replay; and against an independent Python implementation.
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/findings.hpp"
#include "core/io_thread.hpp"
#include "core/keylog.hpp"
#include "slmp/endpoint.hpp"
#include "slmp_support.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

const std::string kMsglab = MSGLAB_BINARY;
const std::string kAmirToken = "7123e531f4dc6fa4c91fb7d1278cf06c174786254b72c58d6934ed625cd5a0a3";
const std::string kUser1Token = "2d75f6dd4c166e8a0c6843c306fd81724c23baeabb701970823108f669337fd8";

CommandResult run_msglab(const std::string& args) { return run_command(kMsglab + " " + args + " 2>&1"); }

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::size_t count_of(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

// `msglab serve slmp` on an ephemeral port; stopped with Ctrl-C.
struct ServeProcess {
    ChildProcess proc;
    std::string first, port;
    explicit ServeProcess(std::vector<std::string> extra) : proc(args(std::move(extra))) {
        auto l = proc.line();
        INFO("msglab serve slmp printed: " << proc.all());
        REQUIRE(l);
        first = *l;
        port = listening_port(first);
    }
    static std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> a = {kMsglab, "serve", "slmp", "--listen", "127.0.0.1:0"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string target() const { return "127.0.0.1:" + port; }
    // Ctrl-C; everything it printed, and its exit status.
    std::pair<std::string, int> stop() {
        proc.signal(SIGINT);
        auto [rest, rc] = proc.finish();
        return {proc.all(), rc};
    }
};

// `msglab capture` of one port on lo; nullopt when capturing is not allowed.
struct CaptureProcess {
    std::unique_ptr<ChildProcess> proc;
    std::string first;
    bool allowed = false;
    CaptureProcess(const std::string& port, const std::string& pcap) {
        proc = std::make_unique<ChildProcess>(
            std::vector<std::string>{kMsglab, "capture", "--iface", "lo", "--port", port, "--out", pcap});
        auto l = proc->line();
        first = l.value_or("");
        allowed = !has(first, "not allowed") && !has(first, "ermission");
        if (allowed) {
            INFO(first);
            REQUIRE(has(first, "capturing on lo (tcp port " + port + ")"));
            std::this_thread::sleep_for(300ms);  // let the capture settle before traffic starts
        }
    }
    std::string stop() {
        std::this_thread::sleep_for(500ms);  // the last packets reach the capture
        proc->signal(SIGINT);
        auto [rest, rc] = proc->finish();
        CHECK(rc == 0);
        CHECK(std::regex_search(rest, std::regex(R"(\d+ packets written to )")));
        return rest;
    }
};

std::string connect_cmd(const std::string& target, const std::string& user, const std::vector<std::string>& messages,
                        const std::string& extra = "") {
    std::string c = kMsglab + " connect slmp " + target + " --user " + shell_quote(user);
    for (const auto& m : messages) c += " --send " + shell_quote(m);
    return c + " " + extra;
}

std::vector<std::string> keylog_lines(const std::string& path) {
    std::vector<std::string> out;
    for (auto& l : lines_of(read_file(path))) {
        CHECK(std::regex_match(l, std::regex("SLMP_FERNET_KEY [0-9a-f]{16} [0-9a-f]{64}")));
        out.push_back(l);
    }
    return out;
}

}  // namespace

TEST_CASE("msglab serve slmp and connect slmp, with key logs on both sides", "[cli]") {
    TempDir dir;
    std::string skeys = (dir / "server.log").string(), ckeys = (dir / "client.log").string();
    ServeProcess server({"--keylog", skeys});
    CHECK(has(server.first, "plants: none (clean)"));
    CHECK(has(server.first, "key log: " + skeys));
    CHECK(has(server.first, "secret: the original's default"));

    auto c = run_command(connect_cmd(server.target(), "amir", {"Hello SLMP!", "second message"}, "--keylog " + ckeys));
    CHECK(c.exit_code == 0);
    CHECK(c.output == "< Message received: Hello SLMP!\n< Message received: second message\n");
    auto wrong = run_command(connect_cmd(server.target(), "amir", {"x"}, "--secret nope --timeout 20 2>&1"));
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.output == "msglab connect slmp: " + server.target() +
                              ": the server closed the connection without a reply (it refused the request)\n");

    auto [out, rc] = server.stop();
    INFO(out);
    CHECK(rc == 0);
    CHECK(count_of(out, " amir > Hello SLMP!\n") == 1);
    CHECK(count_of(out, " amir > second message\n") == 1);
    CHECK(has(out, "closed: bad authentication token: the token is not SHA-256(user || secret) for user 'amir'"));
    CHECK(has(out, "stopped: 2 request(s) answered, 1 connection(s) closed on bad input"));

    // Both ends logged the same two keys (the refused connection's too, on the server).
    auto server_lines = keylog_lines(skeys), client_lines = keylog_lines(ckeys);
    REQUIRE(client_lines.size() == 2);
    REQUIRE(server_lines.size() == 3);
    CHECK(std::vector<std::string>(server_lines.begin(), server_lines.begin() + 2) == client_lines);
    for (const auto& l : client_lines) CHECK(has(out, "keys exchanged (session " + l.substr(16, 16) + ")"));
}

TEST_CASE("msglab decode of the original programs' SLMP capture, in place", "[cli][originals]") {
    auto path = original_slmp_capture();
    if (!path) MSGLAB_SKIP("captures/originals/slmp.pcap not found (set MSGLAB_CAPTURES_DIR)");
    auto r = run_msglab("decode " + *path);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(has(r.output, *path + ": 26 frames, 2 TCP stream(s), 2 of a known protocol, 8 message(s)\n"));
    CHECK_FALSE(has(r.output, "[!]"));
    std::vector<std::string> types;
    for (const auto& l : lines_of(r.output)) {
        std::smatch m;
        if (std::regex_search(l, m, std::regex(R"(  slmp  ([A-Z_]+))"))) types.push_back(m[1]);
    }
    CHECK(types == std::vector<std::string>{"CLIENT_KEY", "SERVER_KEY", "REQUEST", "RESPONSE", "CLIENT_KEY",
                                            "SERVER_KEY", "REQUEST", "RESPONSE"});
    CHECK(count_of(r.output, "curve=P-256 ") == 4);
    CHECK(count_of(r.output, "length=178") == 4);
    CHECK(count_of(r.output, "session=41d42fd09cf6e9a8") == 3);  // the server key and both tokens
    CHECK(count_of(r.output, "session=2a3ba7176e316e0b") == 3);
    CHECK(count_of(r.output, "timestamp=2026-11-21T14:41:18Z") == 4);
    CHECK(has(r.output, "127.0.0.1:39804 -> 127.0.0.1:9999  slmp  CLIENT_KEY"));
    CHECK(has(r.output, "127.0.0.1:39812 <- 127.0.0.1:9999  slmp  RESPONSE"));
    CHECK_FALSE(has(r.output, "\"Message received"));  // no key log, no plaintext

    auto json = run_command(kMsglab + " decode " + *path + " --json 2>/dev/null");
    CHECK(json.exit_code == 0);
    auto jl = lines_of(json.output);
    REQUIRE(jl.size() == 8);
    const std::size_t lengths[] = {178, 178, 204, 120, 178, 178, 204, 140};
    for (std::size_t i = 0; i < jl.size(); ++i) {
        auto j = nlohmann::json::parse(jl[i]);
        CHECK(j.at("protocol") == "slmp");
        CHECK(j.at("length") == lengths[i]);
        CHECK(j.at("anomalies").empty());
        CHECK_FALSE(j.contains("plaintext"));
    }
}

TEST_CASE("msglab capture of a live SLMP exchange, decoded with the key log", "[cli][capture]") {
    TempDir dir;
    std::string keys = (dir / "keys.log").string(), pcap = (dir / "slmp.pcap").string();
    ServeProcess server({"--keylog", keys});
    CaptureProcess capture(server.port, pcap);
    if (!capture.allowed) MSGLAB_SKIP("live capture needs root or CAP_NET_RAW: " + capture.first);
    auto c = run_command(connect_cmd(server.target(), "amir", {"Hello SLMP!"}) + "&& " +
                         connect_cmd(server.target(), "user1", {"second message"}));
    CHECK(c.exit_code == 0);
    CHECK(c.output == "< Message received: Hello SLMP!\n< Message received: second message\n");
    capture.stop();
    server.stop();

    auto text = run_msglab("decode " + pcap + " --keylog " + keys);
    INFO(text.output);
    CHECK(text.exit_code == 0);
    CHECK(has(text.output, "2 TCP stream(s), 2 of a known protocol, 8 message(s)\n"));
    CHECK_FALSE(has(text.output, "[!]"));
    CHECK(has(text.output, "  \"" + kAmirToken + ";amir;Hello SLMP!\"\n"));
    CHECK(has(text.output, "  \"Message received: Hello SLMP!\"\n"));
    CHECK(has(text.output, "  \"" + kUser1Token + ";user1;second message\"\n"));
    CHECK(has(text.output, "  \"Message received: second message\"\n"));
    CHECK(count_of(text.output, "user=amir message=Hello SLMP!") == 1);

    auto json = run_command(kMsglab + " decode " + pcap + " --json --keylog " + keys + " 2>/dev/null");
    std::vector<std::string> plaintexts;
    for (const auto& l : lines_of(json.output)) {
        auto j = nlohmann::json::parse(l);
        CHECK(j.at("protocol") == "slmp");
        if (j.contains("plaintext")) plaintexts.push_back(j.at("plaintext"));
    }
    CHECK(plaintexts == std::vector<std::string>{kAmirToken + ";amir;Hello SLMP!", "Message received: Hello SLMP!",
                                                 kUser1Token + ";user1;second message",
                                                 "Message received: second message"});
    // Without the key log: the same messages, no plaintext.
    auto bare = run_msglab("decode " + pcap);
    CHECK(has(bare.output, "8 message(s)"));
    CHECK_FALSE(has(bare.output, "Message received"));
}

TEST_CASE("msglab replay of a captured SLMP session, verbatim: accepted only by a static-key server",
          "[cli][capture][replay][plant]") {
    TempDir dir;
    // The planted server: one key pair for the process. A session captured
    // against it and sent again verbatim derives the same key.
    std::string ppcap = (dir / "planted.pcap").string(), findings = (dir / "findings.jsonl").string();
    ServeProcess planted({"--plant", "slmp.static-server-key"});
    CHECK(has(planted.first, "plants: slmp.static-server-key"));
    {
        CaptureProcess capture(planted.port, ppcap);
        if (!capture.allowed) MSGLAB_SKIP("live capture needs root or CAP_NET_RAW: " + capture.first);
        auto c = run_command(connect_cmd(planted.target(), "amir", {"Hello SLMP!"}));
        CHECK(c.output == "< Message received: Hello SLMP!\n");
        capture.stop();
    }
    auto hit = run_command(kMsglab + " replay " + ppcap + " --target " + planted.target() +
                           " --wait 1.5 --seed 3 --findings " + findings + " 2>&1");
    INFO(hit.output);
    CHECK(hit.exit_code == 0);
    CHECK(std::regex_search(hit.output, std::regex(R"(#0 captured #0 CLIENT_KEY \(frame \d+\), 178 B -> answered \(SERVER_KEY\))")));
    CHECK(std::regex_search(
        hit.output,
        std::regex(R"(#1 captured #1 REQUEST \(frame \d+\), 204 B -> answered \(RESPONSE\)  \[replay probe\])")));
    CHECK(has(hit.output, "findings: 1"));
    std::ifstream fin(findings);
    auto read = read_findings(fin);
    REQUIRE(read.findings.size() == 1);
    CHECK(read.findings[0].code == "REPLAY_ACCEPTED");
    CHECK(read.findings[0].protocol == "slmp");
    CHECK(read.findings[0].reproduce.find("msglab replay " + ppcap + " --target " + planted.target()) == 0);
    auto [pout, prc] = planted.stop();
    CHECK(prc == 0);
    // The server took the request twice: once from the client, once replayed.
    CHECK(count_of(pout, " amir > Hello SLMP!\n") == 2);

    // The clean server: a fresh key per connection, so the replayed token does not verify.
    std::string cpcap = (dir / "clean.pcap").string();
    ServeProcess clean({});
    {
        CaptureProcess capture(clean.port, cpcap);
        REQUIRE(capture.allowed);
        auto c = run_command(connect_cmd(clean.target(), "amir", {"Hello SLMP!"}));
        CHECK(c.output == "< Message received: Hello SLMP!\n");
        capture.stop();
    }
    for (const std::string& pcap : {cpcap, ppcap}) {
        auto miss = run_command(kMsglab + " replay " + pcap + " --target " + clean.target() + " --wait 1.5 --seed 3 2>&1");
        INFO(miss.output);
        CHECK(miss.exit_code == 0);
        CHECK(std::regex_search(miss.output, std::regex(R"(#0 captured #0 CLIENT_KEY \(frame \d+\), 178 B -> answered \(SERVER_KEY\))")));
        CHECK(std::regex_search(miss.output, std::regex(R"(#1 captured #1 REQUEST \(frame \d+\), 204 B -> closed)")));
        CHECK(has(miss.output, "findings: 0; the target closed the connection"));
        CHECK_FALSE(has(miss.output, "REPLAY_ACCEPTED"));
    }
    auto [cout_, crc] = clean.stop();
    CHECK(crc == 0);
    CHECK(count_of(cout_, " amir > Hello SLMP!\n") == 1);
    CHECK(count_of(cout_, "closed: token does not verify") == 2);
}

// ---------------------------------------------------------------- Python

namespace {

std::string python_peer(const std::string& args) {
    return shell_quote(kSystemPython) + " -u " + shell_quote(slmp_peer_script()) + " " + args;
}

}  // namespace

TEST_CASE("crosscheck: an independent Python SLMP client against msglab's server", "[crosscheck][python]") {
    if (!python_has_cryptography())
        MSGLAB_SKIP(std::string(kSystemPython) + " cannot import cryptography (Debian's python3-cryptography)");
    TempDir dir;
    std::string keylog = (dir / "server.log").string();
    std::mutex m;
    std::vector<std::pair<std::string, std::string>> requests;
    {
        KeyLogWriter log(keylog);
        IoThread loop;
        slmp::Server::Options o;
        o.keylog = &log;
        o.callbacks.on_request = [&](const std::string&, const std::string& user, const std::string& message) {
            std::lock_guard<std::mutex> l(m);
            requests.emplace_back(user, message);
        };
        slmp::Server server(loop.io, {boost::asio::ip::make_address("127.0.0.1"), 0}, o);
        StopOnExit stop_loop{loop};
        std::string port = std::to_string(server.port());

        const std::string utf8 = "h\xc3\xa9llo \xe2\x98\x83";
        std::vector<std::string> python_keylines;
        for (auto [user, message] : {std::pair<std::string, std::string>{"amir", "Hello SLMP!"}, {"user1", utf8}}) {
            auto r = run_command(python_peer("client 127.0.0.1 " + port + " " + shell_quote(user) + " " +
                                             shell_quote(message) + " 2>&1"));
            INFO(r.output);
            CHECK(r.exit_code == 0);
            auto ls = lines_of(r.output);
            REQUIRE(ls.size() == 2);
            CHECK(ls[1] == "reply: Message received: " + message);
            REQUIRE(ls[0].rfind("keylog: ", 0) == 0);
            python_keylines.push_back(ls[0].substr(8));
        }
        // A client with another secret gets no reply.
        auto refused = run_command(python_peer("client 127.0.0.1 " + port + " amir hi not_my_secret 2>&1"));
        CHECK(refused.exit_code == 1);
        CHECK(has(refused.output, "error: the server closed without a reply"));
        server.stop();
        // msglab's key log names each session and key exactly as Python derived them.
        auto lines = keylog_lines(keylog);
        REQUIRE(lines.size() == 3);
        CHECK(std::vector<std::string>(lines.begin(), lines.begin() + 2) == python_keylines);
    }
    std::lock_guard<std::mutex> l(m);
    CHECK(requests == std::vector<std::pair<std::string, std::string>>{{"amir", "Hello SLMP!"},
                                                                       {"user1", "h\xc3\xa9llo \xe2\x98\x83"}});
}

TEST_CASE("crosscheck: msglab's client against an independent Python SLMP server", "[crosscheck][python]") {
    if (!python_has_cryptography())
        MSGLAB_SKIP(std::string(kSystemPython) + " cannot import cryptography (Debian's python3-cryptography)");
    TempDir dir;
    std::string keylog = (dir / "client.log").string();
    ChildProcess py({kSystemPython, "-u", slmp_peer_script(), "server", "2"});
    auto first = py.line();
    INFO(py.all());
    REQUIRE(first);
    std::string port = listening_port(*first);
    {
        KeyLogWriter log(keylog);
        auto r = slmp::exchange("127.0.0.1", static_cast<std::uint16_t>(std::stoi(port)), [] {
            slmp::ClientConfig c;
            c.user = "amir";
            return c;
        }(), "Hello SLMP!", 30s, &log);
        INFO(r.error);
        CHECK(r.ok);
        CHECK(r.reply == "Message received: Hello SLMP!");
    }
    auto c = run_command(connect_cmd("127.0.0.1:" + port, "user1", {"second message"}, "--keylog " + keylog + " 2>&1"));
    CHECK(c.exit_code == 0);
    CHECK(c.output == "< Message received: second message\n");
    auto [rest, rc] = py.finish();
    std::string out = py.all();
    INFO(out);
    CHECK(rc == 0);
    // The Python server's own checks: 178 bytes in 64-character lines, P-256,
    // three fields, the right token.
    CHECK(count_of(out, "client pem: 178 bytes, lines 26,64,60,24,0\n") == 2);
    CHECK(has(out, "request: user=amir message=Hello SLMP!\n"));
    CHECK(has(out, "request: user=user1 message=second message\n"));
    CHECK(has(out, "served 2\n"));
    CHECK_FALSE(has(out, "error:"));
    std::vector<std::string> python_keylines;
    for (const auto& l : lines_of(out))
        if (l.rfind("keylog: ", 0) == 0) python_keylines.push_back(l.substr(8));
    CHECK(keylog_lines(keylog) == python_keylines);
}
