// msglab's SOCP server and client against an independent user client:
// tests/socp/socp_peer.py, written from PROTOCOLS.md section 2.8 on Debian's
// python3-websockets and python3-cryptography. Each case runs a mesh of two
// `msglab serve socp` processes (A, and B joined through A) and checks
// direct and public messages both ways, across the two servers and within
// one, with every content signature verified on the receiving side; a
// direct message longer than one RSA-OAEP block goes as several MSG_DIRECT,
// each cut at a UTF-8 character boundary, and arrives whole.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "socp_support.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::test;
using namespace std::chrono_literals;

namespace {

const std::string kMsglab = MSGLAB_BINARY;
const std::string kPeer = std::string(MSGLAB_SOCP_TEST_DIR) + "/socp_peer.py";
const std::string U1 = "11111111-1111-4111-8111-111111111111";
const std::string U2 = "22222222-2222-4222-8222-222222222222";
const std::string U3 = "33333333-3333-4333-8333-333333333333";
const std::string U4 = "44444444-4444-4444-8444-444444444444";
const std::string U5 = "55555555-5555-4555-8555-555555555555";
const std::string U6 = "66666666-6666-4666-8666-666666666666";
const std::string U7 = "77777777-7777-4777-8777-777777777777";

bool has(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// Why the Python peer cannot run here, or "" when it can.
std::string python_missing() {
    if (!fs::exists(kSystemPython)) return std::string("no ") + kSystemPython;
    auto r = run_command(std::string(kSystemPython) +
                         " -c 'import websockets, cryptography.hazmat.primitives.ciphers.aead' 2>&1");
    if (r.exit_code != 0) return "python3-websockets or python3-cryptography is missing: " + r.output;
    return "";
}

#define SKIP_WITHOUT_PYTHON()                 \
    do {                                      \
        std::string why_ = python_missing();  \
        if (!why_.empty()) MSGLAB_SKIP(why_); \
    } while (0)

// Reads lines until one contains `needle`; false (with the output so far as
// INFO) when none came within `limit` or the process ended.
bool wait_line(ChildProcess& p, const std::string& needle, std::chrono::seconds limit = 20s) {
    auto until = Steady::now() + limit;
    while (Steady::now() < until) {
        auto l = p.line(std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now()));
        if (!l) break;
        if (has(*l, needle)) return true;
    }
    UNSCOPED_INFO("no line with '" << needle << "' in:\n" << p.all());
    return false;
}

struct Done {
    std::string out;
    int code = -1;
};

// Everything the process printed once it exits (killed after `limit`).
Done finish(ChildProcess& p, std::chrono::seconds limit = 30s) {
    auto [rest, code] = p.finish(limit);
    (void)rest;
    return {p.all(), code};
}

struct Serve {
    std::unique_ptr<ChildProcess> proc;
    std::string port;
    Serve(const std::string& key, const std::vector<std::string>& introducers) {
        std::vector<std::string> a = {
            kMsglab,       "serve", "socp",         "--listen", "127.0.0.1:0", "--key", socp::test::key_path(key),
            "--heartbeat", "0.25",  "--dead-after", "5"};
        for (const auto& i : introducers) {
            a.push_back("--introducer");
            a.push_back("127.0.0.1:" + i);
        }
        proc = std::make_unique<ChildProcess>(a);
        auto l = proc->line();
        INFO(proc->all());
        REQUIRE(l);
        port = listening_port(*l);
        if (!introducers.empty()) REQUIRE(wait_line(*proc, "joined the mesh"));
    }
    std::string target() const { return "127.0.0.1:" + port; }
    std::string url() const { return "ws://127.0.0.1:" + port; }
};

// A mesh of two servers: A, and B joined through A (linked once B says so).
struct Mesh {
    Serve a{"server-a", {}};
    Serve b{"server-b", {a.port}};
    // The servers' logs so far, for failure messages.
    std::string logs() {
        for (auto* s : {&a, &b})
            while (s->proc->line(50ms)) {
            }
        return "server A:\n" + a.proc->all() + "server B:\n" + b.proc->all();
    }
};

std::vector<std::string> msglab_client(const Serve& s, const std::string& user, const std::string& key,
                                       const std::vector<std::string>& rest) {
    std::vector<std::string> a = {kMsglab,  "connect", "socp",  s.target(),
                                  "--user", user,      "--key", socp::test::key_path(key)};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
}

std::vector<std::string> python_peer(const Serve& s, const std::string& user, const std::string& key,
                                     const std::vector<std::string>& rest) {
    std::vector<std::string> a = {
        kSystemPython, kPeer, "--url", s.url(), "--user", user, "--key", socp::test::key_path(key), "--timeout", "20"};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
}

// What msglab's client prints for a message whose signature verified and
// whose sender_pub is the directory's key: the line and nothing after it.
std::string dm_line(const std::string& from, const std::string& text) {
    return "[dm] <" + from + "> " + text + "\n";
}
std::string public_line(const std::string& from, const std::string& text) {
    return "[public] <" + from + "> " + text + "\n";
}

// A direct message longer than one RSA-4096 OAEP block (446 bytes), in UTF-8
// with two- and three-byte characters: it goes as two MSG_DIRECT, each cut
// at a character boundary.
std::string long_text() {
    std::string t;
    for (int i = 0; i < 50; ++i) t += "Gr\u00fc\u00dfe, \u2713 ";
    return t + "end";  // 653 bytes
}

// The texts of the lines `prefix` TEXT `suffix`, in order, joined: a long
// message as its pieces arrived.
std::string joined(const std::string& out, const std::string& prefix, const std::string& suffix = "") {
    std::string all;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t nl = out.find('\n', pos);
        if (nl == std::string::npos) nl = out.size();
        std::string l = out.substr(pos, nl - pos);
        pos = nl + 1;
        if (l.size() >= prefix.size() + suffix.size() && l.compare(0, prefix.size(), prefix) == 0 &&
            l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0)
            all += l.substr(prefix.size(), l.size() - prefix.size() - suffix.size());
    }
    return all;
}

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) ++n;
    return n;
}

void check_msglab_clean(const std::string& out) {
    CHECK_FALSE(has(out, "NOT verified"));
    CHECK_FALSE(has(out, "differs"));
    CHECK_FALSE(has(out, "unencrypted"));
    CHECK_FALSE(has(out, "does not"));
}

}  // namespace

TEST_CASE("socp peer: python3 DMs (one over an RSA block) and a public message reach msglab on both servers, verified",
          "[peer][python]") {
    SKIP_WITHOUT_PYTHON();
    Mesh m;
    // msglab receivers: U1 on B (across the mesh from the peer), U3 on A (beside it).
    // U1 gets a short DM, a long one in two pieces and the public message.
    ChildProcess far(msglab_client(m.b, U1, "user-1", {"--expect", "4", "--wait", "20"}));
    REQUIRE(wait_line(far, "logged in as"));
    ChildProcess near(msglab_client(m.a, U3, "user-3", {"--expect", "2", "--wait", "20"}));
    REQUIRE(wait_line(near, "logged in as"));

    ChildProcess py(
        python_peer(m.a, U2, "user-2",
                    {"--wait-for", U1, "--wait-for", U3, "--tell", U1, "across the mesh, from python", "--tell", U1,
                     long_text(), "--tell", U3, "next door, from python", "--all", "public, from python"}));
    auto p = finish(py);
    INFO(m.logs());
    INFO("python peer:\n" << p.out);
    CHECK(p.code == 0);
    CHECK(has(p.out, "sent DM " + U1 + " across the mesh, from python\n"));
    CHECK(has(p.out, "sent DM " + U3 + " next door, from python\n"));
    CHECK(has(p.out, "sent PUBLIC public, from python version="));

    auto f = finish(far);
    INFO("msglab client on B:\n" << f.out);
    CHECK(f.code == 0);
    CHECK(has(f.out, dm_line(U2, "across the mesh, from python")));
    CHECK(joined(f.out, "[dm] <" + U2 + "> ") == "across the mesh, from python" + long_text());
    CHECK(count(f.out, "[dm] <" + U2 + "> ") == 3);
    CHECK(has(f.out, public_line(U2, "public, from python")));
    check_msglab_clean(f.out);

    auto n = finish(near);
    INFO("msglab client on A:\n" << n.out);
    CHECK(n.code == 0);
    CHECK(has(n.out, dm_line(U2, "next door, from python")));
    CHECK(has(n.out, public_line(U2, "public, from python")));
    check_msglab_clean(n.out);
}

TEST_CASE("socp peer: msglab --tell (one over an RSA block) and --all reach python3 on both servers, verified",
          "[peer][python]") {
    SKIP_WITHOUT_PYTHON();
    Mesh m;
    // Python receivers: U2 on A (across the mesh from the sender), U4 on B
    // (beside it; it waits until B has U2 in its directory, so the group key
    // issued at the sender's login is wrapped for both).
    // U2 gets a short DM, a long one in two pieces and the public message.
    ChildProcess far(python_peer(m.a, U2, "user-2", {"--expect", "4"}));
    REQUIRE(wait_line(far, "ready " + U2));
    ChildProcess near(python_peer(m.b, U4, "user-4", {"--wait-for", U2, "--expect", "1"}));
    REQUIRE(wait_line(near, "ready " + U4));

    ChildProcess sender(
        msglab_client(m.b, U1, "user-1",
                      {"--wait-for", U2, "--wait-for", U4, "--to", U2, "--tell", "to python, from msglab", "--tell",
                       long_text(), "--all", "public, from msglab", "--wait", "0.2"}));
    auto s = finish(sender);
    INFO(m.logs());
    INFO("msglab client on B:\n" << s.out);
    CHECK(s.code == 0);
    CHECK_FALSE(has(s.out, "unencrypted"));

    auto f = finish(far);
    INFO("python peer on A:\n" << f.out);
    CHECK(f.code == 0);
    CHECK(has(f.out, "DM " + U1 + " to python, from msglab sig=ok\n"));
    CHECK(joined(f.out, "DM " + U1 + " ", " sig=ok") == "to python, from msglab" + long_text());
    CHECK(count(f.out, "DM " + U1 + " ") == 3);
    CHECK(has(f.out, "PUBLIC " + U1 + " public, from msglab sig=ok\n"));
    CHECK_FALSE(has(f.out, "FAIL"));

    auto n = finish(near);
    INFO("python peer on B:\n" << n.out);
    CHECK(n.code == 0);
    CHECK(has(n.out, "PUBLIC " + U1 + " public, from msglab sig=ok\n"));
    CHECK_FALSE(has(n.out, "FAIL"));
}

TEST_CASE("socp peer: python3 with PEM keys and maximum PSS salts interoperates both ways", "[peer][python]") {
    SKIP_WITHOUT_PYTHON();
    Mesh m;
    // The peer on A sends its key as PEM text and signs with PSS.MAX_LENGTH
    // salts (the Python cohort teams' habit), to U6 on B, then stays for two
    // messages from U7 (beside it on A, whose key goes as base64url PEM).
    ChildProcess receiver(msglab_client(m.b, U6, "user-6", {"--expect", "2", "--wait", "20"}));
    REQUIRE(wait_line(receiver, "logged in as"));
    ChildProcess py(
        python_peer(m.a, U5, "user-5",
                    {"--pem-keys", "--max-salt", "--wait-for", U6, "--tell", U6, "PEM key, long salt, from python",
                     "--all", "public with a long salt", "--expect", "2"}));
    REQUIRE(wait_line(py, "sent PUBLIC"));

    auto r = finish(receiver);
    INFO(m.logs());
    INFO("msglab client on B:\n" << r.out);
    CHECK(r.code == 0);
    CHECK(has(r.out, dm_line(U5, "PEM key, long salt, from python")));
    CHECK(has(r.out, public_line(U5, "public with a long salt")));
    check_msglab_clean(r.out);

    ChildProcess sender(msglab_client(m.a, U7, "user-7",
                                      {"--key-encoding", "pem", "--wait-for", U5, "--to", U5, "--tell",
                                       "to a PEM key, from msglab", "--all", "public, to a PEM key", "--wait", "0.2"}));
    auto s = finish(sender);
    INFO("msglab client on A:\n" << s.out);
    CHECK(s.code == 0);
    CHECK_FALSE(has(s.out, "unencrypted"));

    auto p = finish(py);
    INFO("python peer on A:\n" << p.out);
    CHECK(p.code == 0);
    CHECK(has(p.out, "DM " + U7 + " to a PEM key, from msglab sig=ok\n"));
    CHECK(has(p.out, "PUBLIC " + U7 + " public, to a PEM key sig=ok\n"));
    CHECK_FALSE(has(p.out, "FAIL"));
}
