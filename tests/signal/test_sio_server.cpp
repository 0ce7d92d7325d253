// msglab's Socket.IO client against msglab's Socket.IO server over loopback
// (reference/signal/sio_server.hpp, sio_client.hpp), in the three transport
// modes: events with acks of several arguments, server-to-client calls, a
// relay (a client call answered by a call back to the client), timeouts,
// pings keeping a session alive and a silent client dropped, disconnection
// both ways, and the wire as a plain HTTP client sees it: the polling
// handshake, bad sids, a refused namespace, an oversized body, a second
// GET, a slow reader, and garbage that must not disturb other clients.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <future>
#include <thread>

#include "csmp/client.hpp"
#include "signal/sio_client.hpp"
#include "sio_support.hpp"

using namespace msglab;
using namespace msglab::signal;
using namespace msglab::signal::test;
using namespace std::chrono_literals;

namespace {

SioClientOptions with(SioTransports t) {
    SioClientOptions o;
    o.transports = t;
    o.connect_timeout = 5s;
    return o;
}

const char* name_of(SioTransports t) {
    switch (t) {
        case SioTransports::polling_then_websocket: return "polling then websocket";
        case SioTransports::polling: return "polling";
        case SioTransports::websocket: return "websocket";
    }
    return "?";
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// The whole exchange one client has with the test server.
void exchange(SioTransports t) {
    TestServer srv;
    INFO("transport: " << name_of(t));
    SioClient c;
    Recorder got;
    c.on("question", [](const Json& args) { return Json::array({true, {{"x", args.at(0)}}}); });
    c.on("notice", [&](const Json& args) {
        got.add("notice " + dump_json(args));
        return Json();
    });
    c.on_disconnect([&](const std::string& why) { got.add("gone " + why); });
    c.connect("127.0.0.1", srv.port(), with(t));
    INFO(srv.rec.all());
    CHECK(c.connected());
    CHECK(c.transport() == (t == SioTransports::polling ? "polling" : "websocket"));
    CHECK(c.sid().size() == kEioSidLength);
    CHECK(c.eio_sid().size() == kEioSidLength);
    CHECK(c.sid() != c.eio_sid());
    CHECK(c.handshake().ping_interval_ms == 25'000);
    CHECK(c.handshake().upgrades ==
          (t == SioTransports::websocket ? std::vector<std::string>{} : std::vector<std::string>{"websocket"}));
    REQUIRE(srv.rec.wait_for("connect " + c.sid() + " 127.0.0.1:"));

    // An ack with several arguments, and one with the arguments echoed.
    CHECK(c.call("sum", Json::array({2, 3})) == Json::parse(R"([5,"sum",[2,3]])"));
    Json odd = Json::array({"caf\xc3\xa9", nullptr, 1.5, Json::object({{"k", Json::array({1, 2})}}), -7});
    CHECK(c.call("echo", odd) == odd);
    CHECK(c.call("echo", Json::array()) == Json::array());
    // A dropped ack is sent empty, as python-socketio answers None.
    CHECK(c.call("drop") == Json::array());
    // An ack from another thread than the io thread.
    auto pending = std::async(std::launch::async, [&] { return c.call("hold", Json::array({"later"})); });
    REQUIRE(srv.rec.wait_for("held"));
    {
        std::lock_guard<std::mutex> lock(srv.held_mu);
        REQUIRE(srv.held.size() == 1);
        srv.held[0]->reply(Json::array({"replied", 2}));
        srv.held[0]->reply(Json::array({"twice"}));  // ignored
        CHECK(srv.held[0]->replied());
        srv.held.clear();
    }
    CHECK(pending.get() == Json::parse(R"(["replied",2])"));

    // A relay: the server calls the client back and acks with its answer.
    CHECK(c.call("ask_back", Json::array({41})) == Json::parse(R"([true,{"x":41}])"));
    CHECK(srv.rec.count("answer [true,{\"x\":41}]") == 1);

    // A server call straight to the client, and an emit without ack.
    std::promise<std::optional<Json>> answer;
    srv.server->emit(c.sid(), "question", Json::array({"q"}), [&](std::optional<Json> a) { answer.set_value(a); });
    auto fut = answer.get_future();
    REQUIRE(fut.wait_for(5s) == std::future_status::ready);
    CHECK(fut.get() == std::optional<Json>(Json::parse(R"([true,{"x":"q"}])")));
    srv.server->emit(c.sid(), "notice", Json::array({"hello", 2}));
    CHECK(got.wait_for(R"(notice ["hello",2])"));

    // A client emit without ack reaches the handler without one.
    c.emit("echo", Json::array({"no ack"}));
    CHECK(srv.rec.wait_for(R"(event echo ["no ack"] noack)"));

    CHECK(srv.on_io([&] { return srv.server->connected_sids(); }) == std::vector<std::string>{c.sid()});
    auto remote = srv.on_io([&] { return srv.server->remote_of(c.sid()); });
    REQUIRE(remote);
    CHECK(has(*remote, "127.0.0.1:"));

    std::string sid = c.sid();
    c.close();
    CHECK_FALSE(c.connected());
    CHECK(srv.rec.wait_for("disconnect " + sid + " client disconnect"));
    CHECK(got.count("gone client disconnect") == 1);
    CHECK_THROWS_AS(c.call("sum", Json::array({1, 1})), SioError);
    CHECK(srv.on_io([&] { return srv.server->connected_sids().size(); }) == 0);
}

// A plain HTTP client for the wire checks.
csmp::HttpReply http(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = "") {
    csmp::ClientOptions o;
    o.port = port;
    o.timeout = 5s;
    return csmp::Client(o).request(method, target, body);
}

std::string handshake_sid(std::uint16_t port) {
    auto r = http(port, "GET", "/socket.io/?EIO=4&transport=polling&t=1");
    REQUIRE(r.status == 200);
    REQUIRE(r.body.rfind("0{", 0) == 0);
    auto open = parse_open_data(r.body.substr(1));
    REQUIRE(open);
    return open->sid;
}

}  // namespace

TEST_CASE("sio server: polling then websocket upgrade, events, acks, calls back, disconnect", "[signal][sio][net]") {
    exchange(SioTransports::polling_then_websocket);
}

TEST_CASE("sio server: polling only, the same exchange", "[signal][sio][net]") {
    exchange(SioTransports::polling);
}

TEST_CASE("sio server: websocket only, the same exchange", "[signal][sio][net]") {
    exchange(SioTransports::websocket);
}

TEST_CASE("sio server: an unanswered call times out on both sides", "[signal][sio][net]") {
    TestServer srv;
    SioClient c;
    // A client handler that fails sends no ack.
    c.on("question", [](const Json&) -> Json { throw std::runtime_error("no answer from this client"); });
    c.connect("127.0.0.1", srv.port(), with(SioTransports::polling_then_websocket));
    REQUIRE(srv.rec.wait_for("connect " + c.sid()));

    auto t0 = std::chrono::steady_clock::now();
    try {
        c.call("hold", Json::array(), 300ms);
        FAIL("call() returned without an ack");
    } catch (const SioError& e) {
        CHECK(e.kind() == SioError::Kind::timeout);
        CHECK(has(e.what(), "no ack within 300 ms"));
    }
    CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
    CHECK(c.connected());

    std::promise<std::optional<Json>> answer;
    t0 = std::chrono::steady_clock::now();
    srv.server->emit(c.sid(), "question", Json::array({1}), [&](std::optional<Json> a) { answer.set_value(a); }, 300ms);
    auto fut = answer.get_future();
    REQUIRE(fut.wait_for(5s) == std::future_status::ready);
    CHECK_FALSE(fut.get().has_value());
    CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
    // The session is still fine.
    CHECK(c.call("sum", Json::array({1, 2})) == Json::parse(R"([3,"sum",[1,2]])"));
}

TEST_CASE("sio server: pending acks per socket are bounded, the next emit fails at once", "[signal][sio][net]") {
    SioServerOptions o;
    o.max_pending_acks = 2;
    TestServer srv(o);
    SioClient c;
    c.on("question", [](const Json&) -> Json { throw std::runtime_error("silent"); });
    c.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
    REQUIRE(srv.rec.wait_for("connect " + c.sid()));
    std::promise<bool> third;
    std::atomic<int> none{0};
    for (int i = 0; i < 2; ++i)
        srv.server->emit(c.sid(), "question", Json::array({i}), [&](std::optional<Json> a) { none += !a; }, 30s);
    auto t0 = std::chrono::steady_clock::now();
    srv.server->emit(c.sid(), "question", Json::array({3}), [&](std::optional<Json> a) { third.set_value(!a); }, 30s);
    auto f = third.get_future();
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(f.get());
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(srv.rec.wait_for("2 acks already pending"));
    // Disconnection answers the two that wait.
    c.close();
    for (int i = 0; i < 100 && none < 2; ++i) std::this_thread::sleep_for(20ms);
    CHECK(none == 2);
}

TEST_CASE("sio server: pings keep a session alive, a silent client is dropped after ping timeout",
          "[signal][sio][net]") {
    SioServerOptions o;
    o.ping_interval = 100ms;
    o.ping_timeout = 200ms;
    TestServer srv(o);
    for (auto t : {SioTransports::polling, SioTransports::websocket}) {
        INFO(name_of(t));
        SioClient alive;
        alive.connect("127.0.0.1", srv.port(), with(t));
        CHECK(alive.handshake().ping_interval_ms == 100);
        CHECK(alive.handshake().ping_timeout_ms == 200);
        std::this_thread::sleep_for(1200ms);  // many rounds of ping and pong
        CHECK(alive.connected());
        CHECK(alive.call("sum", Json::array({20, 22})).at(0) == 42);

        SioClientOptions quiet = with(t);
        quiet.answer_pings = false;
        SioClient silent;
        Recorder got;
        silent.on_disconnect([&](const std::string& why) { got.add(why); });
        silent.connect("127.0.0.1", srv.port(), quiet);
        std::string sid = silent.sid();
        auto t0 = std::chrono::steady_clock::now();
        REQUIRE(srv.rec.wait_for("disconnect " + sid + " ping timeout", 3s));
        CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);  // a ping at 100 ms, then 200 ms without pong
        // The silent client learns it too (its transport closes, or no pings come).
        CHECK(got.wait_for("", 3s));
        CHECK_FALSE(silent.connected());
        CHECK(alive.connected());
        INFO(srv.rec.all());
        CHECK(srv.rec.count("disconnect " + alive.sid()) == 0);
    }
}

TEST_CASE("sio server: disconnect(sid) reaches the client in every transport", "[signal][sio][net]") {
    TestServer srv;
    for (auto t : {SioTransports::polling, SioTransports::websocket, SioTransports::polling_then_websocket}) {
        INFO(name_of(t));
        SioClient c;
        Recorder got;
        c.on_disconnect([&](const std::string& why) { got.add(why); });
        c.connect("127.0.0.1", srv.port(), with(t));
        std::string sid = c.sid();
        srv.server->disconnect(sid);
        CHECK(got.wait_for("server disconnect"));
        CHECK(srv.rec.wait_for("disconnect " + sid + " server disconnect"));
        CHECK_FALSE(c.connected());
        CHECK(c.disconnect_reason() == "server disconnect");
    }
    // Emitting to a socket that is gone answers nullopt.
    std::promise<bool> none;
    srv.server->emit("no-such-sid", "x", Json::array(), [&](std::optional<Json> a) { none.set_value(!a); });
    CHECK(none.get_future().get());
}

TEST_CASE("sio server: a WebSocket that closes under its session is a transport close", "[signal][sio][net]") {
    TestServer srv;
    SioClient c;
    c.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
    std::string sid = c.sid();
    c.send_eio_raw("1");  // Engine.IO CLOSE alone, without DISCONNECT
    CHECK(srv.rec.wait_for("disconnect " + sid + " client disconnect"));

    // A bare WebSocket client: open, CONNECT, then only a close frame.
    csmp::ClientOptions o;
    o.port = srv.port();
    o.deflate = false;
    auto ws = csmp::Client(o).open("/socket.io/?EIO=4&transport=websocket");
    auto open = ws->receive(5s);
    REQUIRE(open);
    CHECK(open->rfind("0{\"sid\":", 0) == 0);
    CHECK(has(*open, "\"upgrades\":[]"));
    ws->send("40");
    auto connected = ws->receive(5s);
    REQUIRE(connected);
    REQUIRE(connected->rfind("40{\"sid\":\"", 0) == 0);
    std::string sid2 = connected->substr(10, kEioSidLength);
    ws->send("421[\"sum\",1,2]");
    CHECK(ws->receive(5s) == std::optional<std::string>("431[3,\"sum\",[1,2]]"));
    ws->close();
    CHECK(srv.rec.wait_for("disconnect " + sid2 + " transport close"));
}

TEST_CASE("sio server: the polling wire as a plain HTTP client sees it", "[signal][sio][net]") {
    TestServer srv;
    auto port = srv.port();
    // The handshake, as in the capture (no maxPayload by default).
    auto r = http(port, "GET", "/socket.io/?transport=polling&EIO=4&t=1795272083.7369206");
    REQUIRE(r.status == 200);
    CHECK(r.headers["content-type"] == "text/plain; charset=UTF-8");
    auto open = parse_open_data(r.body.substr(1));
    REQUIRE(open);
    CHECK(r.body == "0{\"sid\":\"" + open->sid +
                        "\",\"upgrades\":[\"websocket\"],\"pingTimeout\":20000,\"pingInterval\":25000}");
    std::string q = "/socket.io/?EIO=4&transport=polling&sid=" + open->sid;

    // CONNECT to "/" and to a namespace the server does not have, in one POST.
    auto post = http(port, "POST", q, "40\x1e" "40/admin,{\"token\":1}");
    CHECK(post.status == 200);
    CHECK(post.body == "OK");
    auto get = http(port, "GET", q);
    REQUIRE(get.status == 200);
    auto packets = parse_payload(get.body);
    REQUIRE(packets);
    REQUIRE(packets->size() == 2);
    CHECK((*packets)[0].data.rfind("0{\"sid\":\"", 0) == 0);
    CHECK((*packets)[1].data == "4/admin,{\"message\":\"Unable to connect\"}");

    // An event with an ack id, then the ack comes on the next poll.
    CHECK(http(port, "POST", q, "421[\"sum\",40,2]").body == "OK");
    CHECK(http(port, "GET", q).body == "431[42,\"sum\",[40,2]]");

    // Bad sids, versions and transports: 400 with a JSON string, as python-engineio.
    auto bad = http(port, "GET", "/socket.io/?EIO=4&transport=polling&sid=nope");
    CHECK(bad.status == 400);
    CHECK(bad.body == "\"Invalid session nope\"");
    CHECK(http(port, "POST", "/socket.io/?EIO=4&transport=polling&sid=nope", "40").status == 400);
    auto v3 = http(port, "GET", "/socket.io/?EIO=3&transport=polling");
    CHECK(v3.status == 400);
    CHECK(has(v3.body, "unsupported version"));
    CHECK(http(port, "GET", "/socket.io/?EIO=4&transport=carrier-pigeon").body == "\"Invalid transport\"");
    CHECK(http(port, "GET", "/socket.io/?EIO=4&transport=websocket").status == 400);  // not an upgrade
    CHECK(http(port, "GET", "/elsewhere/?EIO=4&transport=polling").status == 404);
    CHECK(http(port, "GET", "/socket.io/?EIO=4&transport=polling&sid=a&sid=b").status == 400);
    CHECK(http(port, "PUT", q).status == 405);
    // A payload that does not parse.
    auto junk = http(port, "POST", q, "4a\x1e\x1e" "4b");
    CHECK(junk.status == 400);
    CHECK(srv.rec.wait_for("refused a POST payload"));

    // Nothing queued: a GET waits for the next ping, or here for an emit.
    std::string sio_sid = srv.last_sid();
    auto waiting = std::async(std::launch::async, [&] { return http(port, "GET", q); });
    REQUIRE(waiting.wait_for(300ms) == std::future_status::timeout);
    srv.server->emit(sio_sid, "notice", Json::array({"x"}));
    REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
    CHECK(waiting.get().body == "42[\"notice\",\"x\"]");

    // A second GET while one waits: 400, and the session is closed.
    auto first = std::async(std::launch::async, [&] { return http(port, "GET", q); });
    REQUIRE(first.wait_for(300ms) == std::future_status::timeout);
    auto second = http(port, "GET", q);
    CHECK(second.status == 400);
    REQUIRE(first.wait_for(5s) == std::future_status::ready);
    CHECK(first.get().body == "1");
    CHECK(srv.rec.wait_for("disconnect " + sio_sid + " transport error"));
    CHECK(http(port, "GET", q).status == 400);
}

TEST_CASE("sio server: the upgrade on the wire, a waiting GET released by the noop", "[signal][sio][net]") {
    TestServer srv;
    auto port = srv.port();
    std::string sid = handshake_sid(port);
    std::string q = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
    CHECK(http(port, "POST", q, "40").body == "OK");
    CHECK(http(port, "GET", q).body.rfind("40{\"sid\":", 0) == 0);
    auto waiting = std::async(std::launch::async, [&] { return http(port, "GET", q); });
    REQUIRE(waiting.wait_for(200ms) == std::future_status::timeout);

    csmp::ClientOptions o;
    o.port = port;
    o.deflate = false;
    auto ws = csmp::Client(o).open("/socket.io/?EIO=4&transport=websocket&sid=" + sid);
    // Anything but the probe first fails the upgrade, not the session.
    ws->send("2");
    CHECK_FALSE(ws->receive(300ms).has_value());
    CHECK(srv.rec.wait_for("websocket upgrade failed: expected 2probe"));
    ws = csmp::Client(o).open("/socket.io/?EIO=4&transport=websocket&sid=" + sid);
    // A second WebSocket while one probes is refused.
    int status = 0;
    ws->send("2probe");
    CHECK(ws->receive(5s) == std::optional<std::string>("3probe"));
    CHECK_THROWS(csmp::Client(o).open("/socket.io/?EIO=4&transport=websocket&sid=" + sid, &status));
    CHECK(status == 400);
    // The waiting GET ends with a noop, so the client can pause polling.
    REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
    CHECK(waiting.get().body == "6");
    ws->send("5");
    // From now on the session is on the WebSocket: polling is refused.
    ws->send("421[\"sum\",20,22]");
    CHECK(ws->receive(5s) == std::optional<std::string>("431[42,\"sum\",[20,22]]"));
    auto late = http(port, "GET", q);
    CHECK(late.status == 400);
    CHECK(late.body == "\"Invalid transport\"");
    srv.server->emit(srv.last_sid(), "notice", Json::array({1}));
    CHECK(ws->receive(5s) == std::optional<std::string>("42[\"notice\",1]"));
    CHECK(srv.rec.count(sid + ": upgraded to websocket") == 1);
}

TEST_CASE("sio server: server disconnect of a polling client with no GET waiting is delivered by the next GET",
          "[signal][sio][net]") {
    TestServer srv;
    auto port = srv.port();
    std::string sid = handshake_sid(port);
    std::string q = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
    CHECK(http(port, "POST", q, "40").body == "OK");
    CHECK(http(port, "GET", q).body.rfind("40{\"sid\":", 0) == 0);
    srv.server->disconnect(srv.last_sid());
    CHECK(srv.rec.wait_for("server disconnect"));
    CHECK(http(port, "GET", q).body == "41\x1e" "1");
    CHECK(http(port, "GET", q).status == 400);
}

TEST_CASE("sio server: an oversized body is refused with 413 and the server carries on", "[signal][sio][net]") {
    SioServerOptions o;
    o.max_payload = 10'000;
    TestServer srv(o);
    auto port = srv.port();
    SioClient other;
    other.connect("127.0.0.1", port, with(SioTransports::polling));
    std::string sid = handshake_sid(port);
    std::string q = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
    auto big = http(port, "POST", q, "42[\"echo\",\"" + std::string(20'000, 'a') + "\"]");
    CHECK(big.status == 413);
    CHECK(srv.rec.wait_for("refused a body over 10000 bytes"));
    CHECK(http(port, "POST", q, "40").body == "OK");
    // A WebSocket message over the bound closes that WebSocket only.
    SioClient ws;
    Recorder got;
    ws.on_disconnect([&](const std::string& why) { got.add(why); });
    ws.connect("127.0.0.1", port, with(SioTransports::websocket));
    ws.emit("echo", Json::array({std::string(20'000, 'b')}));
    CHECK(got.wait_for("transport", 5s));
    CHECK(other.connected());
    CHECK(other.call("sum", Json::array({1, 1})).at(0) == 2);
    // An emit over the bound is not sent: its ack callback gets nullopt.
    std::promise<bool> none;
    srv.server->emit(other.sid(), "notice", Json::array({std::string(20'000, 'c')}),
                     [&](std::optional<Json> a) { none.set_value(!a); });
    CHECK(none.get_future().get());
    CHECK(other.connected());
}

TEST_CASE("sio server: a polling client that never polls is closed as a slow reader", "[signal][sio][net]") {
    SioServerOptions o;
    o.max_queued_packets = 8;
    TestServer srv(o);
    auto port = srv.port();
    std::string sid = handshake_sid(port);
    std::string q = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
    CHECK(http(port, "POST", q, "40").body == "OK");
    REQUIRE(srv.rec.wait_for("connect "));
    std::string sio_sid = srv.last_sid();
    for (int i = 0; i < 20; ++i) srv.server->emit(sio_sid, "notice", Json::array({i}));
    CHECK(srv.rec.wait_for("disconnect " + sio_sid + " slow reader"));
    CHECK(http(port, "GET", q).status == 400);
}

TEST_CASE("sio server: garbage on sockets does not crash the server or disturb other clients", "[signal][sio][net]") {
    TestServer srv;
    auto port = srv.port();
    SioClient good;
    good.connect("127.0.0.1", port, with(SioTransports::polling_then_websocket));
    SioClient good_polling;
    good_polling.connect("127.0.0.1", port, with(SioTransports::polling));

    // Raw bytes that are not HTTP, then an HTTP head far over the bound.
    {
        namespace asio = boost::asio;
        asio::io_context io;
        for (const std::string& junk : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 22),
                                        std::string("GET / HTTP/1.1\r\nX: " + std::string(40'000, 'x') + "\r\n\r\n"),
                                        std::string("POST /socket.io/?EIO=4 HTTP/1.1\r\nContent-Length: -1\r\n\r\n")}) {
            asio::ip::tcp::socket s(io);
            s.connect({asio::ip::make_address("127.0.0.1"), port});
            boost::system::error_code ec;
            asio::write(s, asio::buffer(junk), ec);
            std::string reply(64, '\0');
            std::size_t n = s.read_some(asio::buffer(reply), ec);
            reply.resize(n);
            INFO(reply);
            CHECK((reply.rfind("HTTP/1.1 4", 0) == 0 || n == 0));
        }
    }
    // Engine.IO and Socket.IO garbage on live sessions: logged and dropped.
    SioClient noisy;
    noisy.connect("127.0.0.1", port, with(SioTransports::websocket));
    for (const char* junk : {"9", "bAAAA", "", "4", "47", "42", "42[", "42[1]", "43[1]", "451-[\"x\"]", "42/x,[\"y\"]",
                             "41{}", "0{}"})
        noisy.send_eio_raw(junk);
    noisy.send_raw("2[\"echo\"," + std::string(100, '[') + std::string(100, ']') + "]");
    noisy.send_raw("399[\"unknown ack id\"]");
    SioClient noisy_polling;
    noisy_polling.connect("127.0.0.1", port, with(SioTransports::polling));
    // (A polling body that does not parse is answered 400, which ends a
    // python-engineio client as it ends this one: the wire test covers it.)
    noisy_polling.send_raw("2{]");
    noisy_polling.send_raw("0/nowhere,");
    CHECK(srv.rec.wait_for("refused a Socket.IO packet"));
    CHECK(srv.rec.wait_for("refused a packet"));
    CHECK(srv.rec.wait_for("ignored an ack with unknown id 99"));

    // Everyone who behaved is untouched, and so are the noisy ones' sessions.
    CHECK(good.call("sum", Json::array({1, 2})).at(0) == 3);
    CHECK(good_polling.call("sum", Json::array({3, 4})).at(0) == 7);
    CHECK(noisy.call("sum", Json::array({5, 6})).at(0) == 11);
    CHECK(noisy_polling.connected());
    INFO(srv.rec.all());
    CHECK(srv.rec.count("disconnect ") == 0);
}

TEST_CASE("sio server: connections and sessions are bounded", "[signal][sio][net]") {
    SioServerOptions o;
    o.max_connections = 2;
    TestServer srv(o);
    SioClient a, b;
    a.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
    b.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
    // Two WebSockets hold both TCP slots: a third connection is closed at once.
    SioClient c;
    SioClientOptions quick = with(SioTransports::websocket);
    quick.connect_timeout = 1s;
    CHECK_THROWS_AS(c.connect("127.0.0.1", srv.port(), quick), SioError);
    CHECK(srv.on_io([&] { return srv.server->sessions(); }) == 2);
    CHECK(srv.on_io([&] { return srv.server->connections(); }) == 2);
    CHECK(a.call("sum", Json::array({1, 1})).at(0) == 2);
    b.close();
    // The slot is free again once the server has seen b go.
    REQUIRE(srv.rec.wait_for("disconnect "));
    for (int i = 0; i < 100 && srv.on_io([&] { return srv.server->connections(); }) > 1; ++i)
        std::this_thread::sleep_for(20ms);
    SioClient d;
    d.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
    CHECK(d.call("sum", Json::array({2, 2})).at(0) == 4);
}

TEST_CASE("sio client: connect failures are clear errors", "[signal][sio][net]") {
    // Nobody listens on a port just released.
    std::uint16_t free_port;
    {
        boost::asio::io_context io;
        boost::asio::ip::tcp::acceptor acc(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
        free_port = acc.local_endpoint().port();
    }
    SioClient c;
    try {
        c.connect("127.0.0.1", free_port, with(SioTransports::polling));
        FAIL("connected to nothing");
    } catch (const SioError& e) {
        CHECK(e.kind() == SioError::Kind::connect);
        CHECK(has(e.what(), "cannot connect"));
    }
    // A server with polling only: the client stays on polling after the handshake.
    SioServerOptions o;
    o.allow_websocket = false;
    TestServer srv(o);
    SioClient p;
    p.connect("127.0.0.1", srv.port(), with(SioTransports::polling_then_websocket));
    CHECK(p.transport() == "polling");
    CHECK(p.handshake().upgrades.empty());
    CHECK(p.call("sum", Json::array({2, 2})).at(0) == 4);
    SioClient w;
    try {
        w.connect("127.0.0.1", srv.port(), with(SioTransports::websocket));
        FAIL("a WebSocket where the server allows none");
    } catch (const SioError& e) {
        CHECK(has(e.what(), "WebSocket handshake"));
    }
}
