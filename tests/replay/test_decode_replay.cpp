// decode, replay and capture end to end.
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "replay/capture.hpp"
#include "replay/extract.hpp"
#include "replay/replayer.hpp"
#include "secmsg/endpoint.hpp"
#include "secmsg_fixture.hpp"

using namespace msglab;
using namespace msglab::test;
namespace asio = boost::asio;

namespace {

std::vector<std::string> plaintexts(const std::vector<replay::ExtractedMessage>& msgs, Peer from) {
    std::vector<std::string> out;
    for (const auto& m : msgs)
        if (m.from == from && m.decoded.plaintext) out.push_back(to_string(*m.decoded.plaintext));
    return out;
}

// An echoing SecMsg server with the given plants, on its own thread.
struct EchoServer {
    IoThread loop;
    std::unique_ptr<secmsg::Server> server;
    explicit EchoServer(std::vector<std::string> plants = {}) {
        secmsg::Server::Options so;
        so.echo = true;
        so.session.plants = PlantSet::parse(plants, "secmsg");
        server = std::make_unique<secmsg::Server>(loop.io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), so);
    }
    ~EchoServer() {
        loop.stop();  // first, so no handler runs against a destroyed server
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }
};

replay::ReplayResult replay_to(const EchoServer& s, const SecmsgCapture& cap, const KeyLog* log, bool rewrap,
                               std::vector<std::string> mutations) {
    replay::ReplayOptions o;
    o.pcap = cap.pcap;
    o.target = s.target();
    o.rewrap = rewrap;
    o.keylog = log;
    o.seed = 7;
    o.wait_seconds = 1.0;  // a loaded CI machine can take a while to close
    for (const auto& m : mutations) o.mutations.push_back(*replay::parse_mutation(m));
    return replay::run_replay(o, Registry::builtin());
}

std::vector<std::string> codes(const replay::ReplayResult& r) {
    std::vector<std::string> out;
    for (const auto& f : r.findings) out.push_back(f.code);
    return out;
}

}  // namespace

TEST_CASE("decode: a SecMsg capture with its key log gives back the plaintexts", "[decode]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, SystemClock::instance().unix_seconds());
    KeyLog log = KeyLog::load(cap.keylog);
    replay::ExtractOptions eo;
    eo.keylog = &log;
    std::vector<replay::StreamProblem> problems;
    auto msgs = replay::extract_file(cap.pcap, Registry::builtin(), eo, &problems);
    CHECK(problems.empty());
    REQUIRE(msgs.size() == 5);
    CHECK(msgs[0].decoded.type == "HANDSHAKE_REQUEST");
    CHECK(msgs[0].bytes.size() == 339);
    CHECK(msgs[1].decoded.type == "HANDSHAKE_RESPONSE");
    CHECK(msgs[0].protocol == "secmsg");
    CHECK(msgs[2].decoded.session_id == cap.session_id);
    CHECK(msgs[0].first_frame == 4);  // after the three-way handshake
    CHECK(plaintexts(msgs, Peer::client) == cap.client_texts);
    CHECK(plaintexts(msgs, Peer::server) == cap.server_texts);
    for (const auto& m : msgs) CHECK(m.decoded.anomalies.empty());
    // Without the key log: messages, no plaintexts.
    auto bare = replay::extract_file(cap.pcap, Registry::builtin(), {}, nullptr);
    REQUIRE(bare.size() == 5);
    CHECK_FALSE(bare[2].decoded.plaintext);
}

TEST_CASE("decode: the original SecMsg programs' capture, with the keys they printed", "[decode][originals]") {
    auto dir = captures_dir();
    if (!dir) MSGLAB_SKIP("captures folder not found (set MSGLAB_CAPTURES_DIR)");
    std::string path = (*dir / "originals" / "secmsg.pcap").string();
    auto bare = replay::extract_file(path, Registry::builtin(), {}, nullptr);
    REQUIRE(bare.size() == 4);
    CHECK(bare[0].decoded.type == "HANDSHAKE_REQUEST");
    CHECK(bare[0].bytes.size() == 339);
    CHECK(bare[1].decoded.type == "HANDSHAKE_RESPONSE");
    CHECK(bare[1].bytes.size() == 339);
    CHECK(bare[0].dst.port == 5000);
    std::string sid = bare[0].decoded.session_id;
    REQUIRE(sid.size() == 16);
    // Z as the original printed it (captures/originals/README.md).
    std::string z =
        "fca98b60236d5e1c634c426a6770ddc777268cb42c640d4d347692f721affcf53f6056bd8841f30d8e4edd80603d0b45145d9d2136a750"
        "663532aff6773fee8d44649b7f98da54d6b6992be6e5a81e9f84bec2ca14de4d6ad6629e44570c52f7f51f3fd7404aa48cb9b8adf59bb6"
        "e577ff55172caadc4d849f38df5756d45b3b445cbd34f54c21a87888b8c1751aec75a50bbad28329c6ae0d35a8660efea4840e2d22be6a"
        "05ed9b85d8ac70e7dca0b1c78b73388ddc9fb1a9147abc367253f617f62f3c2e8d28c592039f85e871f1148b9befc7f1c6e7b9c268c5a4"
        "a68b4355ab79e482e2b9f8a8903a9cea7e11412caa28bcf706d5b232c70e81a5fed2505f";
    std::istringstream in("SECMSG_SHARED_SECRET " + sid + " " + z + "\n");
    KeyLog log = KeyLog::parse(in);
    replay::ExtractOptions eo;
    eo.keylog = &log;
    auto msgs = replay::extract_file(path, Registry::builtin(), eo, nullptr);
    REQUIRE(msgs.size() == 4);
    CHECK(plaintexts(msgs, Peer::client) == std::vector<std::string>{"hello from A"});
    CHECK(plaintexts(msgs, Peer::server) == std::vector<std::string>{"hello from B"});
    for (const auto& m : msgs) {
        INFO(m.decoded.type);
        CHECK(m.decoded.anomalies.empty());  // HMACs and hashes of the original verify
        // msglab's codec re-serialises the original's bytes exactly.
        auto p = secmsg::parse_packet(m.bytes);
        REQUIRE(p);
        CHECK(secmsg::serialize(*p) == m.bytes);
    }
}

TEST_CASE("decode: a malformed stream is reported and the others decode", "[decode]") {
    TempDir dir;
    std::string path = (dir / "mixed.pcap").string();
    {
        replay::PcapWriter w(path, DLT_EN10MB);
        replay::SynthTcp bad(0x7f000001, 40001, 0x7f000001, 5000), good(0x7f000001, 40002, 0x7f000001, 5000);
        auto put = [&](const replay::SynthFrame& f) { w.write(f.frame, f.ts_sec, f.ts_usec); };
        put(bad.handshake_syn());
        put(good.handshake_syn());
        put(bad.data(true, as_bytes("SegMSG\x09garbage that is not SecMsg")));
        Bytes y(256, 5);
        put(good.data(true, secmsg::serialize(secmsg::make_handshake(secmsg::MessageType::handshake_request, y, 1))));
    }
    std::vector<replay::StreamProblem> problems;
    replay::ExtractOptions eo;
    eo.protocol = "secmsg";
    auto msgs = replay::extract_file(path, Registry::builtin(), eo, &problems);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].stream == 0);
    CHECK(problems[0].what.find("unknown_type") != std::string::npos);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].stream == 1);
    CHECK(msgs[0].decoded.type == "HANDSHAKE_REQUEST");
}

TEST_CASE("replay: verbatim replay of a SecMsg session is rejected by the clean peer", "[replay]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, SystemClock::instance().unix_seconds());
    EchoServer server;
    auto r = replay_to(server, cap, nullptr, false, {});
    REQUIRE(r.outcomes.size() == 3);
    CHECK(r.outcomes[0].verdict == replay::Verdict::answered);  // a fresh HANDSHAKE_RESPONSE
    CHECK(r.outcomes[0].reply_types == std::vector<std::string>{"HANDSHAKE_RESPONSE"});
    CHECK(r.outcomes[1].verdict == replay::Verdict::closed);    // old keys: bad HMAC
    CHECK(r.outcomes[2].verdict == replay::Verdict::not_sent);
    CHECK(r.findings.empty());
}

TEST_CASE("replay: a duplicate in a re-wrapped session, clean and with secmsg.no-freshness", "[replay][plant]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, SystemClock::instance().unix_seconds());
    KeyLog log = KeyLog::load(cap.keylog);
    {
        EchoServer clean;
        auto r = replay_to(clean, cap, &log, true, {"duplicate:index=0"});
        REQUIRE(r.outcomes.size() == 3);
        CHECK(r.outcomes[0].verdict == replay::Verdict::answered);
        CHECK(r.outcomes[1].message.probe == replay::Probe::replay);
        CHECK(r.outcomes[1].verdict == replay::Verdict::closed);
        CHECK(r.findings.empty());
        REQUIRE(r.live_key);
        CHECK(r.live_key->label == "SECMSG_MASTER_SECRET");
    }
    {
        EchoServer planted({"secmsg.no-freshness"});
        auto r = replay_to(planted, cap, &log, true, {"duplicate:index=0"});
        REQUIRE(r.outcomes.size() == 3);
        CHECK(r.outcomes[1].verdict == replay::Verdict::answered);
        CHECK(codes(r) == std::vector<std::string>{"REPLAY_ACCEPTED"});
        const Finding& f = r.findings[0];
        CHECK(f.confidence == Confidence::firm);
        CHECK(f.protocol == "secmsg");
        CHECK(f.session_id == cap.session_id);
        CHECK(f.evidence.pcap == cap.pcap);
        CHECK(f.evidence.frames == std::vector<std::uint64_t>{6});
    }
}

TEST_CASE("replay: stale timestamps, clean and with secmsg.no-freshness", "[replay][plant]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, 1700000000);  // years old
    KeyLog log = KeyLog::load(cap.keylog);
    EchoServer clean;
    auto r = replay_to(clean, cap, &log, true, {});
    REQUIRE_FALSE(r.outcomes.empty());
    CHECK(r.outcomes[0].message.probe == replay::Probe::stale);
    CHECK(r.outcomes[0].verdict == replay::Verdict::closed);
    CHECK(r.findings.empty());
    EchoServer planted({"secmsg.no-freshness"});
    auto p = replay_to(planted, cap, &log, true, {});
    CHECK(codes(p) == std::vector<std::string>{"STALE_MESSAGE_ACCEPTED", "STALE_MESSAGE_ACCEPTED"});
}

TEST_CASE("replay: reflection and tampering, clean and planted", "[replay][plant]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, SystemClock::instance().unix_seconds());
    KeyLog log = KeyLog::load(cap.keylog);
    {
        EchoServer clean, planted({"secmsg.accept-reflection"});
        auto r = replay_to(clean, cap, &log, true, {"reflect"});
        CHECK(r.outcomes.back().message.probe == replay::Probe::reflection);
        CHECK(r.outcomes.back().verdict == replay::Verdict::closed);
        CHECK(r.findings.empty());
        auto p = replay_to(planted, cap, &log, true, {"reflect"});
        CHECK(codes(p) == std::vector<std::string>{"REFLECTION_ACCEPTED"});
    }
    {
        EchoServer clean, planted({"secmsg.skip-hmac"});
        auto r = replay_to(clean, cap, &log, true, {"flip:field=secmsg.hmac,index=1,bit=3"});
        CHECK(r.outcomes[1].message.probe == replay::Probe::tamper);
        CHECK(r.outcomes[1].verdict == replay::Verdict::closed);
        CHECK(r.findings.empty());
        auto p = replay_to(planted, cap, &log, true, {"flip:field=secmsg.hmac,index=1,bit=3"});
        CHECK(codes(p) == std::vector<std::string>{"MAC_NOT_VERIFIED"});
    }
}

TEST_CASE("replay: clear errors before anything is sent", "[replay]") {
    TempDir dir;
    auto cap = write_secmsg_capture(dir, SystemClock::instance().unix_seconds());
    EchoServer server;
    CHECK_THROWS_WITH(replay_to(server, cap, nullptr, true, {}), Catch::Contains("no key log line for session"));
    CHECK_THROWS_WITH(replay_to(server, cap, nullptr, false, {"drop:index=9"}), Catch::Contains("out of range"));
    replay::ReplayOptions o;
    o.pcap = cap.pcap;
    o.target = {"127.0.0.1", 1};
    CHECK_THROWS_WITH(replay::run_replay(o, Registry::builtin()), Catch::Contains("cannot connect"));
    o.pcap = (dir / "missing.pcap").string();
    CHECK_THROWS_WITH(replay::run_replay(o, Registry::builtin()), Catch::Contains("missing.pcap"));
}

TEST_CASE("capture: a live SecMsg session on lo decodes with the key log", "[capture]") {
    TempDir dir;
    std::string pcap = (dir / "live.pcap").string(), keys = (dir / "keys.log").string();
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> echoed;
    bool up = false;

    IoThread loop;
    KeyLogWriter keylog(keys);
    secmsg::Server::Options so;
    so.echo = true;
    so.keylog = &keylog;
    secmsg::Server server(loop.io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), so);
    secmsg::EndpointOptions co;
    co.callbacks.on_established = [&](std::uint64_t, const std::string&) {
        std::lock_guard<std::mutex> l(m);
        up = true;
        cv.notify_all();
    };
    co.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView t) {
        std::lock_guard<std::mutex> l(m);
        echoed.push_back(to_string(t));
        cv.notify_all();
    };
    secmsg::Client client(loop.io, co);
    StopOnExit stop_loop{loop};

    replay::CaptureOptions opt;
    opt.iface = "lo";
    opt.port = server.port();
    opt.out = pcap;
    std::unique_ptr<replay::LiveCapture> cap;
    try {
        cap = std::make_unique<replay::LiveCapture>(opt);
    } catch (const replay::CaptureError& e) {
        if (std::string(e.what()).find("not allowed") != std::string::npos)
            MSGLAB_SKIP(std::string("live capture needs root or CAP_NET_RAW: ") + e.what());
        throw;
    }
    std::uint64_t packets = 0;
    std::thread capturing([&] { packets = cap->run(); });

    std::vector<std::string> sent = {"first over the wire", "second", std::string(3000, 'x')};
    client.connect("127.0.0.1", server.port());
    {
        std::unique_lock<std::mutex> l(m);
        REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return up; }));
    }
    for (const auto& t : sent) client.send(to_bytes(t));
    {
        std::unique_lock<std::mutex> l(m);
        REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return echoed.size() == sent.size(); }));
    }
    client.close();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cap->stop();
    capturing.join();
    cap.reset();  // flushes and closes the file
    CHECK(packets >= 8);

    KeyLog log = KeyLog::load(keys);
    replay::ExtractOptions eo;
    eo.keylog = &log;
    std::vector<replay::StreamProblem> problems;
    auto msgs = replay::extract_file(pcap, Registry::builtin(), eo, &problems);
    CHECK(problems.empty());
    CHECK(plaintexts(msgs, Peer::client) == sent);
    CHECK(plaintexts(msgs, Peer::server) == sent);  // the echoes
}

TEST_CASE("capture: clear errors for a bad interface and a bad filter", "[capture]") {
    TempDir dir;
    replay::CaptureOptions opt;
    opt.out = (dir / "x.pcap").string();
    opt.iface = "no-such-if0";
    CHECK_THROWS_AS(replay::LiveCapture(opt), replay::CaptureError);
    opt.iface = "lo";
    opt.filter = "tcp port banana";
    try {
        replay::LiveCapture c(opt);
        FAIL("a bad filter was accepted");
    } catch (const replay::CaptureError& e) {
        std::string what = e.what();
        if (what.find("not allowed") != std::string::npos) MSGLAB_SKIP("live capture needs root or CAP_NET_RAW");
        CHECK(what.find("bad capture filter") != std::string::npos);
    }
}
