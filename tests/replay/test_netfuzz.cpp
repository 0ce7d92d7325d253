// msglab fuzz --target: network fuzzing of live SecMsg endpoints on loopback.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "replay/netfuzz.hpp"
#include "replay/tcp_connection.hpp"
#include "secmsg/endpoint.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::test;
namespace asio = boost::asio;

namespace {

const std::string kMsglab = MSGLAB_BINARY;

const ProtocolInfo& secmsg_protocol() { return *Registry::builtin().protocol("secmsg"); }

// An echoing SecMsg server on 127.0.0.1, port 0, on its own thread. `tweak`
// may add callbacks; they get the server once it exists.
struct TestServer {
    IoThread loop;
    std::atomic<secmsg::Server*> live{nullptr};
    std::unique_ptr<secmsg::Server> server;
    explicit TestServer(std::vector<std::string> plants = {},
                        std::function<void(secmsg::Server::Options&, std::atomic<secmsg::Server*>&)> tweak = {}) {
        secmsg::Server::Options so;
        so.echo = true;
        so.session.plants = PlantSet::parse(plants, "secmsg");
        if (tweak) tweak(so, live);
        server = std::make_unique<secmsg::Server>(loop.io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), so);
        live = server.get();
    }
    ~TestServer() {
        loop.stop();  // first, so no handler runs against a destroyed server
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }
};

// A fresh connection and a valid handshake, the way a peer would check.
bool handshake_works(const HostPort& target) {
    try {
        replay::TcpConnection tcp(target, 3);
        DeterministicRng rng(99);
        auto live = secmsg_protocol().make_live_client(SystemClock::instance(), rng);
        for (const auto& b : live->start()) tcp.send(b);
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!live->established() && !tcp.closed() && std::chrono::steady_clock::now() < until) {
            Bytes got = tcp.receive(0.1, [](const Bytes& g) { return !g.empty(); });
            if (!got.empty()) live->feed(got);
        }
        return live->established();
    } catch (const replay::ConnectError&) {
        return false;
    }
}

replay::NetFuzzOptions options(const HostPort& target, const TempDir& dir, std::uint64_t seed) {
    replay::NetFuzzOptions o;
    o.target = target;
    o.seed = seed;
    o.seconds = 12;
    o.out_dir = (dir / "out").string();
    o.command = "msglab fuzz --protocol secmsg --target " + target.to_string();
    o.restart_wait = 0;
    return o;
}

// Runs until `code` is found (or the time is up).
replay::NetFuzzResult run_until(const replay::NetFuzzOptions& o, const std::string& code) {
    std::atomic<bool> stop{false};
    return replay::run_netfuzz(
        o, secmsg_protocol(),
        [&](const replay::NetFuzzResult& so_far) {
            for (const auto& f : so_far.findings)
                if (f.finding.code == code) stop = true;
        },
        &stop);
}

std::vector<std::string> codes(const replay::NetFuzzResult& r) {
    std::vector<std::string> out;
    for (const auto& f : r.findings) out.push_back(f.finding.code);
    return out;
}

const replay::FuzzFinding* find(const replay::NetFuzzResult& r, const std::string& code) {
    for (const auto& f : r.findings)
        if (f.finding.code == code) return &f;
    return nullptr;
}

struct DotEdge {
    std::string from, to, label;
    bool red = false, grey = false;
};

struct Dot {
    std::map<std::string, std::uint64_t> nodes;  // state -> visits in its label
    std::set<std::string> dashed_nodes;
    std::vector<DotEdge> edges;
};

// The lines state_graph_dot writes: one per node, one per edge.
Dot parse_dot(const std::string& text) {
    Dot d;
    std::istringstream in(text);
    std::string line;
    std::regex node(R"re(^  "([a-z_]+)" \[label="\1\\n(\d+)"(.*)\];$)re");
    std::regex edge(R"re(^  "([a-z_]+)" -> "([a-z_]+)" \[label="([^"]*)"(.*)\];$)re");
    bool open = false, closed = false;
    while (std::getline(in, line)) {
        std::smatch m;
        if (line.rfind("digraph \"secmsg responder\" {", 0) == 0) open = true;
        if (line == "}") closed = true;
        if (std::regex_match(line, m, edge)) {
            d.edges.push_back({m[1], m[2], m[3], m[4].str().find("color=red") != std::string::npos,
                               m[4].str().find("style=dashed") != std::string::npos});
        } else if (std::regex_match(line, m, node)) {
            d.nodes[m[1]] = std::stoull(m[2]);
            if (m[3].str().find("dashed") != std::string::npos) d.dashed_nodes.insert(m[1]);
        }
    }
    REQUIRE(open);
    REQUIRE(closed);
    return d;
}

// The observed edge from `from` on `input` to `to`, if the graph has it.
const DotEdge* dot_edge(const Dot& d, const std::string& from, const std::string& input, const std::string& to) {
    for (const auto& e : d.edges)
        if (e.from == from && e.to == to && !e.grey && e.label.rfind(input + "\\n/ ", 0) == 0) return &e;
    return nullptr;
}

}  // namespace

TEST_CASE("netfuzz: the SecMsg session model resolves inputs most specific first", "[netfuzz]") {
    const SessionModel& m = secmsg_protocol().session_model;
    REQUIRE_FALSE(m.empty());
    auto late = m.expected("established", "HANDSHAKE_REQUEST");
    REQUIRE(late.size() == 1);
    CHECK(late[0]->to == "closed");
    CHECK(late[0]->finding == "LATE_HANDSHAKE_ACCEPTED");
    auto replayed = m.expected("established", "REGULAR_MESSAGE!replay");
    REQUIRE(replayed.size() == 1);
    CHECK(replayed[0]->finding == "REPLAY_ACCEPTED");
    auto early = m.expected("awaiting_request", "REGULAR_MESSAGE!replay");  // the prefix REGULAR_MESSAGE*
    REQUIRE(early.size() == 1);
    CHECK(early[0]->to == "closed");
    CHECK(early[0]->finding.empty());
    CHECK(m.expected("awaiting_request", "HANDSHAKE_REQUEST!mutated").size() == 2);
    CHECK(m.expected("awaiting_request", "HANDSHAKE_REQUEST")[0]->answer == "HANDSHAKE_RESPONSE");
    CHECK(m.expected("closed", "REGULAR_MESSAGE").empty());
}

TEST_CASE("netfuzz: a clean SecMsg server gives no findings, full state coverage and a valid graph", "[netfuzz]") {
    TempDir dir;
    TestServer server;
    auto o = options(server.target(), dir, 11);
    o.iterations = 60;
    auto r = replay::run_netfuzz(o, secmsg_protocol());
    replay::write_netfuzz_outputs(o, secmsg_protocol(), r);
    INFO(replay::coverage_table(secmsg_protocol().session_model, r.coverage));

    CHECK(r.findings.empty());
    CHECK(r.target_alive);
    CHECK(r.stats.iterations >= 20);
    CHECK(r.stats.liveness_checks >= 2);
    // The handshake, the keyed state and the close, and nothing a clean
    // responder never does.
    for (const char* s : {"idle", "awaiting_request", "established", "closed"}) CHECK(r.coverage.visits[s] > 0);
    CHECK(r.coverage.unexpected() == 0);
    CHECK(r.coverage.transitions_reached(secmsg_protocol().session_model) >= 12);
    // Mutations anywhere, not only at the end: the handshake itself too.
    CHECK(r.stats.mutated_before_last > 0);
    REQUIRE(r.stats.mutated_at.size() > 2);
    CHECK(r.stats.mutated_at[0] > 0);
    CHECK(r.stats.mutated_at[1] > 0);
    CHECK(r.stats.closed > 0);
    CHECK(r.stats.answered > 0);

    auto summary = load_json(dir / "out" / "netfuzz-summary.json");
    CHECK(summary["iterations"] == r.stats.iterations);
    CHECK(summary["mutated_before_last"].get<std::uint64_t>() > 0);
    CHECK(summary["mutated_steps_by_position"][0].get<std::uint64_t>() > 0);
    CHECK(summary["coverage"]["states_reached"] == 4);
    CHECK(summary["coverage"]["unexpected"] == 0);
    CHECK(summary["findings"].empty());
    CHECK(read_file(dir / "out" / "findings.jsonl").empty());

    Dot d = parse_dot(read_file(dir / "out" / "state-graph.dot"));
    CHECK(d.nodes.size() == 4);
    CHECK(d.dashed_nodes.empty());
    CHECK(d.nodes["established"] == r.coverage.visits["established"]);
    const DotEdge* hs = dot_edge(d, "awaiting_request", "HANDSHAKE_REQUEST", "established");
    REQUIRE(hs);
    CHECK(std::regex_search(hs->label, std::regex(R"(/ HANDSHAKE_RESPONSE \(\d+\)$)")));
    CHECK(dot_edge(d, "idle", "connect", "awaiting_request"));
    CHECK(dot_edge(d, "established", "REGULAR_MESSAGE", "established"));
    bool to_closed = false;
    for (const auto& e : d.edges) {
        CHECK_FALSE(e.red);
        if (e.to == "closed" && !e.grey) to_closed = true;
    }
    CHECK(to_closed);
    if (run_command("command -v dot >/dev/null 2>&1").exit_code == 0)
        CHECK(run_command("dot -Tsvg " + shell_quote((dir / "out" / "state-graph.dot").string()) + " -o " +
                          shell_quote((dir / "g.svg").string()))
                  .exit_code == 0);

    CHECK(handshake_works(server.target()));
}

namespace {

// A planted server: the finding appears, its transition is red in the graph,
// and its reproducer finds it again on a fresh planted server but not on a
// clean one.
void check_plant(const std::string& plant, const std::string& code, const std::string& from,
                 const std::string& input_prefix, const std::string& to) {
    TempDir dir;
    replay::NetFuzzResult r;
    {
        TestServer server({plant});
        auto o = options(server.target(), dir, 5);
        r = run_until(o, code);
        replay::write_netfuzz_outputs(o, secmsg_protocol(), r);
    }
    INFO(plant);
    INFO(replay::coverage_table(secmsg_protocol().session_model, r.coverage));
    const replay::FuzzFinding* f = find(r, code);
    REQUIRE(f);
    CHECK(f->finding.protocol == "secmsg");
    CHECK(f->finding.technique == "fuzz");
    CHECK_FALSE(f->finding.evidence.bytes_hex.empty());
    CHECK(f->finding.evidence.detail.find("a clean responder closes the connection") != std::string::npos);
    for (const auto& c : codes(r)) CHECK(c != "CRASH");

    Dot d = parse_dot(read_file(dir / "out" / "state-graph.dot"));
    bool red = false;
    for (const auto& e : d.edges)
        if (e.red && e.from == from && e.to == to && e.label.rfind(input_prefix, 0) == 0) red = true;
    CHECK(red);
    auto lines = read_file(dir / "out" / "findings.jsonl");
    CHECK(lines.find("\"code\":\"" + code + "\"") != std::string::npos);

    const std::string repro = f->finding.evidence.reproducer;
    REQUIRE_FALSE(repro.empty());
    REQUIRE(fs::exists(repro));
    CHECK(f->finding.reproduce.find("--reproduce " + repro) != std::string::npos);
    auto j = load_json(repro);
    CHECK(j["finding"] == code);
    REQUIRE(j["iterations"].size() == 1);
    CHECK_FALSE(j["iterations"][0]["steps"].empty());
    {
        TestServer again({plant});
        auto o = options(again.target(), dir, 0);
        o.out_dir.clear();
        auto rr = replay::reproduce_netfuzz(o, secmsg_protocol(), repro);
        CHECK(find(rr, code));
    }
    {
        TestServer clean;
        auto o = options(clean.target(), dir, 0);
        o.out_dir.clear();
        auto rr = replay::reproduce_netfuzz(o, secmsg_protocol(), repro);
        CHECK(rr.findings.empty());
    }
}

}  // namespace

TEST_CASE("netfuzz: secmsg.late-handshake gives LATE_HANDSHAKE_ACCEPTED", "[netfuzz][plant]") {
    check_plant("secmsg.late-handshake", "LATE_HANDSHAKE_ACCEPTED", "established", "HANDSHAKE_REQUEST", "established");
}

TEST_CASE("netfuzz: secmsg.no-freshness gives REPLAY_ACCEPTED", "[netfuzz][plant]") {
    check_plant("secmsg.no-freshness", "REPLAY_ACCEPTED", "established", "REGULAR_MESSAGE!replay", "established");
}

TEST_CASE("netfuzz: secmsg.accept-reflection gives REFLECTION_ACCEPTED", "[netfuzz][plant]") {
    check_plant("secmsg.accept-reflection", "REFLECTION_ACCEPTED", "established", "REGULAR_MESSAGE!reflection",
                "established");
}

TEST_CASE("netfuzz: secmsg.accept-weak-dh gives WEAK_DH_PUBLIC_ACCEPTED", "[netfuzz][plant]") {
    check_plant("secmsg.accept-weak-dh", "WEAK_DH_PUBLIC_ACCEPTED", "awaiting_request", "HANDSHAKE_REQUEST!weak-key",
                "established");
}

TEST_CASE("netfuzz: secmsg.skip-hmac gives MAC_NOT_VERIFIED", "[netfuzz][plant]") {
    check_plant("secmsg.skip-hmac", "MAC_NOT_VERIFIED", "established", "REGULAR_MESSAGE!tampered", "established");
}

namespace {

// Goes down on the first malformed packet: stops accepting and drops every
// connection, as a crashed process would.
void crash_on_malformed(secmsg::Server::Options& so, std::atomic<secmsg::Server*>& self) {
    so.callbacks.on_closed = [&self](std::uint64_t, const std::string&, const std::string& why) {
        if (why.rfind("malformed", 0) == 0)
            if (auto* s = self.load()) s->stop();
    };
}

}  // namespace

TEST_CASE("netfuzz: a target that dies mid-campaign gives a CRASH with a reproducer that reproduces", "[netfuzz]") {
    TempDir dir;
    replay::NetFuzzResult r;
    HostPort target;
    {
        TestServer server({}, crash_on_malformed);
        target = server.target();
        auto o = options(target, dir, 3);
        o.stop_on_crash = true;
        r = replay::run_netfuzz(o, secmsg_protocol());
        replay::write_netfuzz_outputs(o, secmsg_protocol(), r);
        CHECK_FALSE(handshake_works(target));
    }
    CHECK_FALSE(r.target_alive);
    CHECK(r.stop_reason.find("stop-on-crash") != std::string::npos);
    CHECK(r.stats.crashes == 1);
    const replay::FuzzFinding* f = find(r, "CRASH");
    REQUIRE(f);
    CHECK(f->finding.confidence == Confidence::firm);
    CHECK(f->finding.evidence.detail.find("connection refused") != std::string::npos);
    const std::string repro = f->finding.evidence.reproducer;
    REQUIRE(fs::exists(repro));
    CHECK(f->finding.reproduce.find("--reproduce " + repro) != std::string::npos);
    auto j = load_json(repro);
    CHECK(j["seed"] == 3);
    REQUIRE_FALSE(j["iterations"].empty());
    // The exact bytes of every step sent, and the one the target closed on.
    bool closed = false, bytes = false;
    for (const auto& it : j["iterations"])
        for (const auto& s : it["steps"]) {
            if (s["reaction"] == "closed" || s["reaction"] == "reset") closed = true;
            if (!s["bytes"].get<std::string>().empty()) bytes = true;
        }
    CHECK(closed);
    CHECK(bytes);
    CHECK(read_file(dir / "out" / "findings.jsonl").find("\"code\":\"CRASH\"") != std::string::npos);

    // Run again against a fresh copy of the same target, it goes down again;
    // a clean server survives the same iterations.
    {
        TestServer again({}, crash_on_malformed);
        auto o = options(again.target(), dir, 0);
        o.out_dir.clear();
        std::ostringstream log;
        auto rr = replay::reproduce_netfuzz(o, secmsg_protocol(), repro, &log);
        CHECK(find(rr, "CRASH"));
        CHECK(log.str().find("the target went down after iteration") != std::string::npos);
    }
    {
        TestServer clean;
        auto o = options(clean.target(), dir, 0);
        o.out_dir.clear();
        auto rr = replay::reproduce_netfuzz(o, secmsg_protocol(), repro);
        CHECK(rr.findings.empty());
        CHECK(rr.target_alive);
    }
}

TEST_CASE("netfuzz: a target that hangs (accepts, never answers) gives a CRASH", "[netfuzz]") {
    TempDir dir;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> hung{false};
    replay::NetFuzzResult r;
    // Lets the server's thread go before the server is torn down, whatever happens.
    struct Release {
        std::promise<void>& p;
        ~Release() { p.set_value(); }
    };
    {
        // On the first malformed packet the server's only thread blocks: the
        // kernel still completes TCP handshakes, nothing answers.
        TestServer server({}, [&](secmsg::Server::Options& so, std::atomic<secmsg::Server*>&) {
            so.callbacks.on_closed = [&](std::uint64_t, const std::string&, const std::string& why) {
                if (why.rfind("malformed", 0) == 0 && !hung.exchange(true)) released.wait();
            };
        });
        Release on_exit{release};
        auto o = options(server.target(), dir, 3);
        o.stop_on_crash = true;
        o.reply_timeout = 0.2;
        r = replay::run_netfuzz(o, secmsg_protocol());
    }
    CHECK(hung);
    const replay::FuzzFinding* f = find(r, "CRASH");
    REQUIRE(f);
    CHECK(f->finding.evidence.detail.find("did not answer a valid handshake") != std::string::npos);
    CHECK(f->finding.evidence.detail.find("a hang") != std::string::npos);
    CHECK(fs::exists(f->finding.evidence.reproducer));
}

TEST_CASE("netfuzz: clear errors before anything is fuzzed", "[netfuzz]") {
    TempDir dir;
    auto o = options({"127.0.0.1", 1}, dir, 1);
    CHECK_THROWS_WITH(replay::run_netfuzz(o, secmsg_protocol()),
                      Catch::Equals("no endpoint at 127.0.0.1:1: connection refused"));
    CHECK_THROWS_AS(replay::run_netfuzz(o, secmsg_protocol()), replay::TargetUnreachable);
    ProtocolInfo bare = secmsg_protocol();
    bare.session_model = {};
    CHECK_THROWS_WITH(replay::run_netfuzz(o, bare), Catch::Contains("no session model"));
    // Something that is not a SecMsg responder: it closes every connection.
    TestServer server({}, [](secmsg::Server::Options& so, std::atomic<secmsg::Server*>&) {
        so.max_connections = 0;
    });
    o.target = server.target();
    CHECK_THROWS_WITH(replay::run_netfuzz(o, secmsg_protocol()), Catch::Contains("does not work as a secmsg responder"));
}

TEST_CASE("msglab fuzz --target from the command line", "[netfuzz][cli]") {
    TempDir dir;
    auto run = [&](const std::string& args) { return run_command(kMsglab + " fuzz " + args + " 2>&1"); };
    {
        TestServer server;
        std::string out = (dir / "clean").string();
        auto r = run("--protocol secmsg --target " + server.target().to_string() + " --time 3 --seed 7 --out " +
                     shell_quote(out));
        INFO(r.output);
        CHECK(r.exit_code == 0);
        CHECK(r.output.find("seed: 7") != std::string::npos);
        CHECK(r.output.find("state coverage: 4/4 states") != std::string::npos);
        CHECK(r.output.find("findings: 0") != std::string::npos);
        CHECK(read_file(fs::path(out) / "state-graph.dot").rfind("// msglab fuzz", 0) == 0);
        CHECK(fs::exists(fs::path(out) / "netfuzz-summary.json"));
        CHECK(fs::exists(fs::path(out) / "findings.jsonl"));
    }
    {
        TestServer planted({"secmsg.accept-reflection"});
        std::string out = (dir / "planted").string();
        auto r = run("--protocol secmsg --target " + planted.target().to_string() +
                     " --time 10 --iterations 60 --seed 5 --out " + shell_quote(out));
        INFO(r.output);
        CHECK(r.exit_code == 1);
        CHECK(r.output.find("REFLECTION_ACCEPTED") != std::string::npos);
        CHECK(r.output.find("reproduce: msglab fuzz --protocol secmsg --target") != std::string::npos);
        CHECK(read_file(fs::path(out) / "findings.jsonl").find("REFLECTION_ACCEPTED") != std::string::npos);
    }
    auto down = run("--protocol secmsg --target 127.0.0.1:1 --time 1 --out " + shell_quote((dir / "x").string()));
    CHECK(down.exit_code == 1);
    CHECK(down.output.find("no endpoint at 127.0.0.1:1: connection refused") != std::string::npos);
    auto unknown = run("--protocol nosuch --target 127.0.0.1:1");
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.output.find("unknown protocol 'nosuch'") != std::string::npos);
    CHECK(run("--protocol secmsg --target 127.0.0.1").exit_code == 2);  // no port
    CHECK(run("--protocol secmsg").exit_code == 2);                     // no target
    auto help = run("--protocol secmsg --help");
    CHECK(help.exit_code == 0);
    for (const char* opt : {"--target", "--time", "--iterations", "--seed", "--out", "--timeout", "--stop-on-crash",
                            "--reproduce", "state-graph.dot"})
        CHECK(help.output.find(opt) != std::string::npos);
}
