// msglab's Socket.IO server and client against Debian's python-socketio 5.7
// / python-engineio 4.3 (tests/signal/sio_peer.py, run with /usr/bin/python3):
// the python Client against msglab's server, and msglab's client against
// python's AsyncServer on aiohttp, each with the default transports (polling
// then the WebSocket upgrade) and with polling only. Both directions check
// acks of several arguments, server-to-client calls answered with two
// values, a relay of a call, and a plain emit, value for value.
#include <catch2/catch.hpp>

#include <regex>

#include "child_process.hpp"
#include "signal/sio_client.hpp"
#include "sio_support.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::signal;
using namespace msglab::test;
using namespace std::chrono_literals;
using msglab::signal::test::Recorder;
using msglab::signal::test::TestServer;

namespace {

const std::string kPeer = std::string(MSGLAB_SIGNAL_TEST_DIR) + "/sio_peer.py";

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Why the Python peer cannot run here, or "" when it can.
std::string python_missing() {
    if (!fs::exists(kSystemPython)) return std::string("no ") + kSystemPython;
    auto r = run_command(std::string(kSystemPython) + " -c 'import socketio, engineio, aiohttp, requests, websocket' 2>&1");
    if (r.exit_code != 0) return "python3-socketio, -engineio, -aiohttp, -requests or -websocket is missing: " + r.output;
    return "";
}

#define SKIP_WITHOUT_PYTHON()                 \
    do {                                      \
        std::string why_ = python_missing();  \
        if (!why_.empty()) MSGLAB_SKIP(why_); \
    } while (0)

// The python Client against msglab's server.
void python_client(const std::string& transports) {
    // Pings every 300 ms: the python client answers them through the exchange.
    SioServerOptions o;
    o.ping_interval = 300ms;
    o.ping_timeout = 1000ms;
    TestServer srv(o);
    ChildProcess py({kSystemPython, kPeer, "client", "--url", "http://127.0.0.1:" + std::to_string(srv.port()),
                     "--transports", transports});
    auto [rest, code] = py.finish(60s);
    (void)rest;
    std::string out = py.all();
    INFO("python client:\n" << out);
    INFO("msglab server:\n" << srv.rec.all());
    CHECK(code == 0);
    CHECK(has(out, "PASS\n"));
    CHECK_FALSE(has(out, "FAIL"));
    // What the server saw, value for value.
    CHECK(srv.rec.count("event sum [2,3] ack") == 1);
    CHECK(srv.rec.count(R"(event echo ["caf\u00e9 \ud83d\udd12",null,1.5,{"k":[1,2]},-7,true] ack)") == 1);
    CHECK(srv.rec.count("event ask_back [41] ack") == 1);
    CHECK(srv.rec.count("event please_call [] ack") == 1);
    // python's answers to the server's calls: two arguments each.
    CHECK(srv.rec.count(R"(answer [true,{"x":41}])") == 1);
    CHECK(srv.rec.count(R"(answer [true,{"x":"q"}])") == 1);
    // python-socketio 5.7's disconnect() sends DISCONNECT and CLOSE, then
    // aborts its transport without waiting for them to leave: the server
    // sees them, or the WebSocket closing, or (polling) no more pongs.
    std::string sid = srv.last_sid();
    REQUIRE(srv.rec.wait_for("disconnect " + sid + " ", 5s));
    CHECK((srv.rec.count("disconnect " + sid + " client disconnect") +
           srv.rec.count("disconnect " + sid + " transport close") +
           srv.rec.count("disconnect " + sid + " ping timeout")) == 1);
    CHECK(srv.rec.count("log: disconnect ") == 1);
    if (transports == "default")
        CHECK(srv.rec.count(": upgraded to websocket") == 1);
    else
        CHECK(srv.rec.count(": upgraded to websocket") == 0);
}

struct PythonServer {
    std::unique_ptr<ChildProcess> proc;
    std::uint16_t port = 0;
    PythonServer() {
        proc = std::make_unique<ChildProcess>(std::vector<std::string>{kSystemPython, kPeer, "server"});
        auto l = proc->line(30s);
        INFO(proc->all());
        REQUIRE(l);
        port = static_cast<std::uint16_t>(std::stoi(listening_port(*l)));
    }
    // Lines printed so far (waits a little for stragglers).
    std::string log() {
        while (proc->line(100ms)) {
        }
        return proc->all();
    }
    bool wait_line(const std::string& needle, std::chrono::seconds limit = 10s) {
        auto until = Steady::now() + limit;
        if (has(proc->all(), needle)) return true;
        while (Steady::now() < until) {
            auto l = proc->line(std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now()));
            if (!l) break;
            if (has(*l, needle)) return true;
        }
        return false;
    }
};

// msglab's client against the python AsyncServer.
void msglab_client(SioTransports t) {
    PythonServer py;
    SioClient c;
    Recorder got;
    std::vector<std::string> questions;
    std::mutex qmu;
    c.on("question", [&](const Json& args) {
        {
            std::lock_guard<std::mutex> lock(qmu);
            questions.push_back(dump_json(args));
        }
        return Json::array({true, {{"x", args.at(0)}}});
    });
    c.on("notice", [&](const Json& args) {
        got.add("notice " + dump_json(args));
        return Json();
    });
    SioClientOptions o;
    o.transports = t;
    o.auth = Json{{"token", "t-1"}};
    c.connect("127.0.0.1", py.port, o);
    INFO("python server:\n" << py.log());
    CHECK(c.transport() == (t == SioTransports::polling ? "polling" : "websocket"));
    CHECK(c.handshake().ping_interval_ms == 25'000);
    CHECK(c.handshake().ping_timeout_ms == 20'000);
    CHECK(c.sid().size() == kEioSidLength);
    CHECK(py.wait_line("connect " + c.sid()));
    CHECK(py.wait_line(R"(auth={"token": "t-1"})"));

    CHECK(c.call("sum", Json::array({2, 3}), 10s) == Json::parse(R"([5,"sum",[2,3]])"));
    Json odd = Json::array({"caf\xc3\xa9 \xf0\x9f\x94\x92", nullptr, 1.5, Json::object({{"k", Json::array({1, 2})}}), -7, true});
    CHECK(c.call("echo", odd, 10s) == odd);
    CHECK(py.wait_line(R"(event echo ["caf\u00e9 \ud83d\udd12", null, 1.5, {"k": [1, 2]}, -7, true])"));
    CHECK(c.call("ask_back", Json::array({41}), 10s) == Json::parse(R"([true,{"x":41}])"));
    CHECK(py.wait_line(R"(answer [true, {"x": 41}])"));
    CHECK(c.call("please_call", Json::array(), 10s) == Json::array({true}));
    CHECK(got.wait_for(R"(notice ["hello",2])"));
    CHECK(py.wait_line(R"(answer [true, {"x": "q"}])"));
    {
        std::lock_guard<std::mutex> lock(qmu);
        CHECK(questions == std::vector<std::string>{"[41]", "[\"q\"]"});
    }
    c.close();
    CHECK(py.wait_line("disconnect "));
}

}  // namespace

TEST_CASE("signal interop: python-socketio Client to msglab's server, polling then websocket upgrade",
          "[signal][sio][python]") {
    SKIP_WITHOUT_PYTHON();
    python_client("default");
}

TEST_CASE("signal interop: python-socketio Client to msglab's server, polling only", "[signal][sio][python]") {
    SKIP_WITHOUT_PYTHON();
    python_client("polling");
}

TEST_CASE("signal interop: msglab's client to python-socketio AsyncServer, polling then websocket upgrade",
          "[signal][sio][python]") {
    SKIP_WITHOUT_PYTHON();
    msglab_client(SioTransports::polling_then_websocket);
}

TEST_CASE("signal interop: msglab's client to python-socketio AsyncServer, polling only", "[signal][sio][python]") {
    SKIP_WITHOUT_PYTHON();
    msglab_client(SioTransports::polling);
}
