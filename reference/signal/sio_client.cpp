#include "signal/sio_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>


namespace msglab::signal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Kind = SioError::Kind;

namespace {

// A query value, percent-encoded (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

// The answer to a call: the ack's arguments, or why there is none.
struct CallResult {
    std::optional<Json> args;
    Kind kind = Kind::disconnected;
    std::string error;
};

}  // namespace

struct SioClient::Impl : std::enable_shared_from_this<SioClient::Impl> {
    // One HTTP/1.1 connection with keep-alive, one request at a time.
    struct HttpLane {
        std::optional<beast::tcp_stream> stream;
        beast::flat_buffer buffer;
        std::optional<http::response_parser<http::string_body>> parser;
        bool used = false;  // a request went through it: a failure may be the server's idle close
    };
    using HttpDone = std::function<void(const std::string& error, int status, std::string body)>;
    enum class Phase { idle, handshake, probing, connecting, connected, closed };

    Impl() : work(asio::make_work_guard(io)), connect_timer(io), ping_watch(io) {}

    // ---- Connection ----------------------------------------------------------------------
    void start(std::shared_ptr<std::promise<std::string>> done);
    void polling_handshake();
    bool take_open(const std::string& text);
    void open_websocket(bool upgrade);
    void upgrade_failed(const std::string& why);
    void start_polling();
    void send_connect();
    void fail(Kind kind, const std::string& reason);  // the end, during connect or after

    // ---- Transports ----------------------------------------------------------------------
    void http_request(HttpLane& lane, http::verb verb, const std::string& target, std::string body,
                      std::chrono::milliseconds timeout, HttpDone done, bool retried = false);
    void do_get();
    void do_post();
    void ws_read();
    void ws_write();
    void send_packet(std::string eio_text);
    void arm_ping_watch();
    std::string target(bool websocket) const;

    // ---- Packets ---------------------------------------------------------------------------
    void on_eio(const EioPacket& p);
    void on_sio(const std::string& text);

    void set_state(Phase p) {
        std::lock_guard<std::mutex> lock(mu);
        phase = p;
    }
    void set_ws_mode(bool on) {
        ws_mode = on;
        std::lock_guard<std::mutex> lock(mu);
        ws_mode_public = on;
    }
    // Whether every packet has left (or there is nothing left to wait for).
    bool drained() const {
        if (ws_mode) return !ws || (ws_out.empty() && !ws_writing);
        return post_queue.empty() && !post_in_flight;
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;

    SioClientOptions opt;
    std::string host;
    std::uint16_t port = 0;
    tcp::resolver::results_type endpoints;

    // Io thread only.
    bool ws_mode = false;
    HttpLane get_lane, post_lane;
    bool get_in_flight = false, post_in_flight = false;
    std::deque<std::string> post_queue;
    std::optional<websocket::stream<beast::tcp_stream>> ws;
    beast::flat_buffer ws_buffer;
    std::deque<std::string> ws_out;
    bool ws_writing = false, ws_reading = false;
    asio::steady_timer connect_timer, ping_watch;
    std::chrono::milliseconds ping_deadline{45'000};
    std::uint64_t next_id = 1;
    std::uint64_t t_counter = 0;
    std::map<std::uint64_t, std::function<void(CallResult)>> pending;
    std::map<std::string, EventHandler> handlers;
    std::function<void(const std::string&)> disconnect_handler;
    std::shared_ptr<std::promise<std::string>> connect_done;  // "" or why it failed
    bool was_connected = false;
    bool closing = false;  // close() runs: whatever ends the connection now is our own doing

    // Shared with the caller's thread.
    mutable std::mutex mu;
    Phase phase = Phase::idle;
    bool ws_mode_public = false;
    std::string sid, eio_sid, reason;
    EioOpen open;
};

// ---- Connection ------------------------------------------------------------------------------

std::string SioClient::Impl::target(bool websocket) const {
    std::string t = opt.path + "?transport=" + (websocket ? "websocket" : "polling") + "&EIO=4";
    std::lock_guard<std::mutex> lock(mu);
    if (!eio_sid.empty()) t += "&sid=" + url_encode(eio_sid);
    return t;
}

void SioClient::Impl::start(std::shared_ptr<std::promise<std::string>> done) {
    connect_done = std::move(done);
    connect_timer.expires_after(opt.connect_timeout);
    connect_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        Phase p;
        {
            std::lock_guard<std::mutex> lock(self->mu);
            p = self->phase;
        }
        if (p != Phase::connected && p != Phase::closed)
            self->fail(Kind::connect, "timed out after " + std::to_string(self->opt.connect_timeout.count()) + " ms");
    });
    set_state(Phase::handshake);
    if (opt.transports == SioTransports::websocket)
        open_websocket(false);
    else
        polling_handshake();
}

void SioClient::Impl::polling_handshake() {
    http_request(get_lane, http::verb::get, target(false) + "&t=" + std::to_string(++t_counter), "",
                 opt.request_timeout, [self = shared_from_this()](const std::string& err, int status, std::string body) {
                     if (!err.empty()) return self->fail(Kind::connect, "polling handshake: " + err);
                     if (status != 200)
                         return self->fail(Kind::connect,
                                           "polling handshake: HTTP " + std::to_string(status) + " " + body);
                     auto packets = parse_payload(body, self->opt.max_payload);
                     if (!packets || packets->empty() || (*packets)[0].type != EioType::open)
                         return self->fail(Kind::connect, "polling handshake: no open packet in " + body.substr(0, 200));
                     if (!self->take_open(build_eio_packet((*packets)[0]))) return;
                     for (std::size_t i = 1; i < packets->size(); ++i) self->on_eio((*packets)[i]);
                     bool upgrade = self->opt.transports == SioTransports::polling_then_websocket;
                     bool offered = false;
                     {
                         std::lock_guard<std::mutex> lock(self->mu);
                         for (const auto& u : self->open.upgrades) offered |= u == "websocket";
                     }
                     if (upgrade && offered) return self->open_websocket(true);
                     self->start_polling();
                     self->send_connect();
                 });
}

bool SioClient::Impl::take_open(const std::string& text) {
    auto p = parse_eio_packet(text, opt.max_payload);
    if (!p || p->type != EioType::open) {
        fail(Kind::connect, "expected the open packet, got " + text.substr(0, 200));
        return false;
    }
    auto o = parse_open_data(p->data);
    if (!o) {
        fail(Kind::connect, "bad open packet: " + o.error().to_string());
        return false;
    }
    {
        std::lock_guard<std::mutex> lock(mu);
        open = *o;
        eio_sid = o->sid;
    }
    ping_deadline = std::chrono::milliseconds(static_cast<std::int64_t>(o->ping_interval_ms) + o->ping_timeout_ms);
    arm_ping_watch();
    return true;
}

void SioClient::Impl::open_websocket(bool upgrade) {
    ws.emplace(io);
    ws_buffer.clear();
    auto self = shared_from_this();
    beast::get_lowest_layer(*ws).expires_after(opt.connect_timeout);
    beast::get_lowest_layer(*ws).async_connect(endpoints, [self, upgrade](beast::error_code ec, const tcp::endpoint&) {
        if (ec) {
            if (upgrade) return self->upgrade_failed("cannot connect: " + ec.message());
            return self->fail(Kind::connect, "cannot connect the WebSocket: " + ec.message());
        }
        // Small packets go out at once (no Nagle delay behind a delayed ACK).
        beast::error_code nd;
        beast::get_lowest_layer(*self->ws).socket().set_option(tcp::no_delay(true), nd);
        websocket::stream_base::timeout t{};
        t.handshake_timeout = self->opt.connect_timeout;
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        beast::get_lowest_layer(*self->ws).expires_never();
        self->ws->set_option(t);
        self->ws->read_message_max(self->opt.max_payload);
        self->ws->set_option(websocket::stream_base::decorator(
            [agent = self->opt.user_agent](websocket::request_type& req) { req.set(http::field::user_agent, agent); }));
        std::string tgt = self->target(true) + "&t=" + std::to_string(++self->t_counter);
        self->ws->async_handshake(self->host + ":" + std::to_string(self->port), tgt,
                                  [self, upgrade](beast::error_code ec2) {
                                      if (ec2) {
                                          if (upgrade) return self->upgrade_failed("handshake: " + ec2.message());
                                          return self->fail(Kind::connect, "WebSocket handshake: " + ec2.message());
                                      }
                                      if (!upgrade) {
                                          // The open packet is the first message.
                                          self->set_ws_mode(true);
                                          return self->ws_read();
                                      }
                                      self->set_state(Phase::probing);
                                      self->ws_out.push_back(build_eio_packet(EioType::ping, "probe"));
                                      self->ws_write();
                                      self->ws_read();
                                  });
    });
}

void SioClient::Impl::upgrade_failed(const std::string& why) {
    (void)why;  // python-engineio carries on with polling, and so does this client
    if (ws) {
        beast::error_code ec;
        beast::get_lowest_layer(*ws).socket().close(ec);
    }
    ws_out.clear();
    set_ws_mode(false);
    set_state(Phase::handshake);
    start_polling();
    send_connect();
}

void SioClient::Impl::start_polling() {
    set_ws_mode(false);
    do_get();
}

void SioClient::Impl::send_connect() {
    set_state(Phase::connecting);
    SioPacket c;
    c.type = SioType::connect;
    c.data = opt.auth;
    send_packet(eio_message(c));
}

void SioClient::Impl::fail(Kind kind, const std::string& reason_given) {
    const std::string why = closing ? std::string("client disconnect") : reason_given;
    Phase before;
    {
        std::lock_guard<std::mutex> lock(mu);
        before = phase;
        if (phase == Phase::closed) return;
        phase = Phase::closed;
        reason = why;
    }
    connect_timer.cancel();
    ping_watch.cancel();
    beast::error_code ec;
    if (ws) beast::get_lowest_layer(*ws).socket().close(ec);
    if (get_lane.stream) get_lane.stream->socket().close(ec);
    if (post_lane.stream) post_lane.stream->socket().close(ec);
    post_queue.clear();
    ws_out.clear();
    auto calls = std::move(pending);
    pending.clear();
    for (auto& [id, cb] : calls) cb(CallResult{std::nullopt, Kind::disconnected, "disconnected: " + why});
    if (before != Phase::connected) {
        if (connect_done) {
            connect_done->set_value(why.empty() ? std::string("failed") : why);
            connect_done.reset();
        }
        (void)kind;
        return;
    }
    if (disconnect_handler) disconnect_handler(why);
}

// ---- HTTP ---------------------------------------------------------------------------------------

void SioClient::Impl::http_request(HttpLane& lane, http::verb verb, const std::string& tgt, std::string body,
                                   std::chrono::milliseconds timeout, HttpDone done, bool retried) {
    auto self = shared_from_this();
    auto req = std::make_shared<http::request<http::string_body>>(verb, tgt, 11);
    req->set(http::field::host, host + ":" + std::to_string(port));
    req->set(http::field::user_agent, opt.user_agent);
    req->set(http::field::accept, "*/*");
    if (verb == http::verb::post) {
        req->set(http::field::content_type, "text/plain;charset=UTF-8");
        req->body() = body;
    }
    req->keep_alive(true);
    req->prepare_payload();
    bool reused = lane.used && lane.stream && lane.stream->socket().is_open();
    auto retry_or_fail = [self, &lane, verb, tgt, body, timeout, done, retried, reused](const std::string& err) {
        lane.stream.reset();
        lane.used = false;
        // A kept-alive connection the server closed meanwhile: once more on a fresh one.
        if (reused && !retried) return self->http_request(lane, verb, tgt, body, timeout, done, true);
        done(err, 0, {});
    };
    auto send = [self, &lane, req, timeout, done, retry_or_fail] {
        lane.stream->expires_after(timeout);
        http::async_write(*lane.stream, *req, [self, &lane, req, timeout, done, retry_or_fail](beast::error_code ec,
                                                                                              std::size_t) {
            if (ec) return retry_or_fail("cannot send: " + ec.message());
            lane.parser.emplace();
            lane.parser->body_limit(self->opt.max_payload);
            lane.parser->header_limit(16 * 1024);
            lane.stream->expires_after(timeout);
            http::async_read(*lane.stream, lane.buffer, *lane.parser,
                             [self, &lane, done, retry_or_fail](beast::error_code ec2, std::size_t) {
                                 if (ec2 == http::error::body_limit) {
                                     lane.stream.reset();
                                     return done("a body over " + std::to_string(self->opt.max_payload) + " bytes", 0,
                                                 {});
                                 }
                                 if (ec2) return retry_or_fail("no answer: " + ec2.message());
                                 auto res = lane.parser->release();
                                 lane.used = true;
                                 if (!res.keep_alive()) lane.stream.reset();
                                 done("", static_cast<int>(res.result_int()), std::move(res.body()));
                             });
        });
    };
    if (reused) return send();
    lane.stream.emplace(io);
    lane.buffer.clear();
    lane.stream->expires_after(timeout);
    lane.stream->async_connect(endpoints, [&lane, send, done](beast::error_code ec, const tcp::endpoint&) {
        if (ec) {
            lane.stream.reset();
            return done("cannot connect: " + ec.message(), 0, {});
        }
        beast::error_code nd;
        lane.stream->socket().set_option(tcp::no_delay(true), nd);
        send();
    });
}

void SioClient::Impl::do_get() {
    if (get_in_flight || ws_mode) return;
    {
        std::lock_guard<std::mutex> lock(mu);
        if (phase == Phase::closed) return;
    }
    get_in_flight = true;
    http_request(get_lane, http::verb::get, target(false) + "&t=" + std::to_string(++t_counter), "",
                 ping_deadline + opt.request_timeout,
                 [self = shared_from_this()](const std::string& err, int status, std::string body) {
                     self->get_in_flight = false;
                     if (self->ws_mode) return;
                     if (!err.empty()) return self->fail(Kind::disconnected, "transport error");
                     if (status != 200) return self->fail(Kind::disconnected, "transport close");
                     auto packets = parse_payload(body, self->opt.max_payload);
                     if (!packets) return self->fail(Kind::protocol, "protocol error");
                     for (const auto& p : *packets) {
                         self->on_eio(p);
                         std::lock_guard<std::mutex> lock(self->mu);
                         if (self->phase == Phase::closed) return;
                     }
                     self->do_get();
                 });
}

void SioClient::Impl::do_post() {
    if (post_in_flight || post_queue.empty() || ws_mode) return;
    post_in_flight = true;
    std::string body = take_payload(post_queue, opt.max_payload);
    http_request(post_lane, http::verb::post, target(false) + "&t=" + std::to_string(++t_counter), std::move(body),
                 opt.request_timeout, [self = shared_from_this()](const std::string& err, int status, std::string) {
                     self->post_in_flight = false;
                     if (!err.empty()) return self->fail(Kind::disconnected, "transport error");
                     if (status != 200) return self->fail(Kind::disconnected, "transport close");
                     if (self->ws_mode) {
                         // Upgraded meanwhile: the rest goes on the WebSocket.
                         while (!self->post_queue.empty()) {
                             self->ws_out.push_back(std::move(self->post_queue.front()));
                             self->post_queue.pop_front();
                         }
                         return self->ws_write();
                     }
                     self->do_post();
                 });
}

// ---- WebSocket -----------------------------------------------------------------------------------

void SioClient::Impl::ws_read() {
    if (ws_reading || !ws) return;
    ws_reading = true;
    ws->async_read(ws_buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->ws_reading = false;
        Phase p;
        {
            std::lock_guard<std::mutex> lock(self->mu);
            p = self->phase;
        }
        if (p == Phase::closed) return;
        if (ec) {
            if (p == Phase::probing) return self->upgrade_failed(ec.message());
            if (!self->ws_mode) return;
            return self->fail(Kind::disconnected,
                              ec == websocket::error::closed ? "transport close" : "transport error");
        }
        std::string text = beast::buffers_to_string(self->ws_buffer.data());
        self->ws_buffer.consume(self->ws_buffer.size());
        if (!self->ws->got_text()) return self->fail(Kind::protocol, "protocol error");
        if (p == Phase::probing) {
            if (text != "3probe") return self->upgrade_failed("expected 3probe, got " + text.substr(0, 100));
            // The server answered the probe: the session moves to this WebSocket.
            self->set_ws_mode(true);
            self->ws_out.push_back(build_eio_packet(EioType::upgrade));
            self->ws_write();
            self->ws_read();
            return self->send_connect();
        }
        if (p == Phase::handshake && self->opt.transports == SioTransports::websocket) {
            if (!self->take_open(text)) return;
            self->ws_read();
            return self->send_connect();
        }
        auto packet = parse_eio_packet(text, self->opt.max_payload);
        if (!packet) return self->fail(Kind::protocol, "protocol error");
        self->on_eio(*packet);
        self->ws_read();
    });
}

void SioClient::Impl::ws_write() {
    if (ws_writing || ws_out.empty() || !ws) return;
    ws_writing = true;
    ws->text(true);
    ws->async_write(asio::buffer(ws_out.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->ws_writing = false;
        if (ec) return self->fail(Kind::disconnected, "transport error");
        if (!self->ws_out.empty()) self->ws_out.pop_front();
        self->ws_write();
    });
}

void SioClient::Impl::send_packet(std::string eio_text) {
    {
        std::lock_guard<std::mutex> lock(mu);
        if (phase == Phase::closed) return;
    }
    auto& queue = ws_mode ? ws_out : post_queue;
    if (queue.size() >= opt.max_queued_packets) return fail(Kind::disconnected, "slow peer");
    queue.push_back(std::move(eio_text));
    if (ws_mode)
        ws_write();
    else
        do_post();
}

void SioClient::Impl::arm_ping_watch() {
    ping_watch.expires_after(ping_deadline);
    ping_watch.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->fail(Kind::disconnected, "ping timeout");
    });
}

// ---- Packets ---------------------------------------------------------------------------------------

void SioClient::Impl::on_eio(const EioPacket& p) {
    switch (p.type) {
        case EioType::ping:
            arm_ping_watch();
            if (opt.answer_pings) send_packet(build_eio_packet(EioType::pong, p.data));
            return;
        case EioType::message: return on_sio(p.data);
        case EioType::close: return fail(Kind::disconnected, "server disconnect");
        default: return;  // open (again), pong, upgrade, noop
    }
}

void SioClient::Impl::on_sio(const std::string& text) {
    auto parsed = parse_sio_packet(text);
    if (!parsed) return;  // dropped, as python-socketio logs and drops a packet it cannot decode
    SioPacket& p = *parsed;
    if (p.nsp != "/") return;
    switch (p.type) {
        case SioType::connect: {
            if (!p.data || !p.data->is_object() || !p.data->contains("sid") || !(*p.data)["sid"].is_string())
                return fail(Kind::connect, "CONNECT answer without a sid: " + text.substr(0, 200));
            Phase before;
            {
                std::lock_guard<std::mutex> lock(mu);
                before = phase;
                sid = (*p.data)["sid"].get<std::string>();
                if (phase != Phase::closed) phase = Phase::connected;
            }
            if (before == Phase::connected || before == Phase::closed) return;
            connect_timer.cancel();
            was_connected = true;
            if (connect_done) {
                connect_done->set_value("");
                connect_done.reset();
            }
            return;
        }
        case SioType::connect_error: {
            std::string message = p.data && p.data->is_string() ? p.data->get<std::string>() : std::string();
            if (p.data && p.data->is_object() && p.data->contains("message") && (*p.data)["message"].is_string())
                message = (*p.data)["message"].get<std::string>();
            return fail(Kind::connect, "CONNECT refused: " + message);
        }
        case SioType::disconnect: return fail(Kind::disconnected, "server disconnect");
        case SioType::event: {
            std::string name = event_name(p);
            auto it = handlers.find(name);
            Json args = event_args(p);
            if (it == handlers.end()) {
                it = handlers.find("*");
                args = *p.data;
            }
            Json answer;  // null: an empty ack
            if (it != handlers.end()) {
                try {
                    answer = it->second(args);
                } catch (const std::exception&) {
                    return;  // a handler that fails sends no ack, as in python-socketio
                }
            }
            if (p.id) send_packet(eio_message(sio_ack(*p.id, answer.is_null() ? Json::array() : answer)));
            return;
        }
        case SioType::ack: {
            auto it = pending.find(*p.id);
            if (it == pending.end()) return;
            auto cb = std::move(it->second);
            pending.erase(it);
            cb(CallResult{std::move(*p.data), Kind::disconnected, ""});
            return;
        }
        default: return;
    }
}

// ---- SioClient ------------------------------------------------------------------------------------

SioClient::SioClient() : m_impl(std::make_shared<Impl>()) {
    auto* impl = m_impl.get();
    impl->thread = std::thread([impl] { impl->io.run(); });
}

SioClient::~SioClient() {
    try {
        close();
    } catch (...) {
    }
    m_impl->work.reset();
    m_impl->io.stop();
    if (m_impl->thread.joinable()) m_impl->thread.join();
    // Every handler still queued holds the Impl: run them out (their
    // operations are cancelled) so that none outlives it.
    beast::error_code ec;
    if (m_impl->ws) beast::get_lowest_layer(*m_impl->ws).socket().close(ec);
    if (m_impl->get_lane.stream) m_impl->get_lane.stream->socket().close(ec);
    if (m_impl->post_lane.stream) m_impl->post_lane.stream->socket().close(ec);
    m_impl->connect_timer.cancel();
    m_impl->ping_watch.cancel();
    m_impl->io.restart();
    for (int i = 0; i < 1000 && m_impl->io.poll() > 0; ++i) {
    }
}

void SioClient::connect(const std::string& host, std::uint16_t port, SioClientOptions options) {
    {
        std::lock_guard<std::mutex> lock(m_impl->mu);
        if (m_impl->phase != Impl::Phase::idle)
            throw SioError(Kind::usage, "connect() is called once per SioClient");
    }
    tcp::resolver resolver(m_impl->io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) throw SioError(Kind::connect, "cannot resolve " + host + ": " + ec.message());
    auto done = std::make_shared<std::promise<std::string>>();
    auto result = done->get_future();
    auto impl = m_impl;
    auto timeout = options.connect_timeout;
    asio::post(impl->io, [impl, host, port, endpoints, options = std::move(options), done]() mutable {
        impl->host = host;
        impl->port = port;
        impl->endpoints = endpoints;
        impl->opt = std::move(options);
        impl->start(done);
    });
    if (result.wait_for(timeout + std::chrono::seconds(2)) != std::future_status::ready) {
        asio::post(impl->io, [impl] { impl->fail(Kind::connect, "timed out"); });
        throw SioError(Kind::connect, "connect to " + host + ":" + std::to_string(port) + " timed out");
    }
    std::string why = result.get();
    if (!why.empty()) throw SioError(Kind::connect, "connect to " + host + ":" + std::to_string(port) + ": " + why);
}

Json SioClient::call(const std::string& event, const Json& args, std::chrono::milliseconds timeout) {
    if (!connected()) throw SioError(Kind::disconnected, "call(" + event + "): not connected");
    auto promise = std::make_shared<std::promise<CallResult>>();
    auto future = promise->get_future();
    auto impl = m_impl;
    auto id_holder = std::make_shared<std::uint64_t>(0);
    asio::post(impl->io, [impl, event, args, promise, id_holder] {
        {
            std::lock_guard<std::mutex> lock(impl->mu);
            if (impl->phase != Impl::Phase::connected)
                return promise->set_value(CallResult{std::nullopt, Kind::disconnected, "not connected"});
        }
        if (impl->pending.size() >= impl->opt.max_pending_calls)
            return promise->set_value(CallResult{std::nullopt, Kind::usage,
                                                 std::to_string(impl->opt.max_pending_calls) + " calls pending"});
        std::uint64_t id = impl->next_id++;
        *id_holder = id;
        impl->pending[id] = [promise](CallResult r) { promise->set_value(std::move(r)); };
        impl->send_packet(eio_message(sio_event(event, args, id)));
    });
    if (future.wait_for(timeout) != std::future_status::ready) {
        asio::post(impl->io, [impl, id_holder] { impl->pending.erase(*id_holder); });
        throw SioError(Kind::timeout, "call(" + event + "): no ack within " + std::to_string(timeout.count()) + " ms");
    }
    CallResult r = future.get();
    if (!r.args) throw SioError(r.kind, "call(" + event + "): " + r.error);
    return std::move(*r.args);
}

void SioClient::emit(const std::string& event, const Json& args) {
    if (!connected()) throw SioError(Kind::disconnected, "emit(" + event + "): not connected");
    auto impl = m_impl;
    asio::post(impl->io, [impl, packet = eio_message(sio_event(event, args))]() mutable {
        impl->send_packet(std::move(packet));
    });
}

void SioClient::on(const std::string& event, EventHandler handler) {
    auto impl = m_impl;
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(impl->io, [impl, event, handler = std::move(handler), &done]() mutable {
        impl->handlers[event] = std::move(handler);
        done.set_value();
    });
    f.wait();
}

void SioClient::on_disconnect(std::function<void(const std::string&)> handler) {
    auto impl = m_impl;
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(impl->io, [impl, handler = std::move(handler), &done]() mutable {
        impl->disconnect_handler = std::move(handler);
        done.set_value();
    });
    f.wait();
}

void SioClient::send_raw(const std::string& sio_text) { send_eio_raw(build_eio_packet(EioType::message, sio_text)); }

void SioClient::send_eio_raw(const std::string& eio_text) {
    {
        std::lock_guard<std::mutex> lock(m_impl->mu);
        if (m_impl->phase == Impl::Phase::idle || m_impl->phase == Impl::Phase::closed)
            throw SioError(Kind::disconnected, "send_raw: not connected");
    }
    auto impl = m_impl;
    asio::post(impl->io, [impl, eio_text] { impl->send_packet(eio_text); });
}

void SioClient::close() {
    {
        std::lock_guard<std::mutex> lock(m_impl->mu);
        if (m_impl->phase == Impl::Phase::idle || m_impl->phase == Impl::Phase::closed) return;
    }
    auto impl = m_impl;
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    asio::post(impl->io, [impl, done] {
        {
            std::lock_guard<std::mutex> lock(impl->mu);
            if (impl->phase == Impl::Phase::closed) return done->set_value();
        }
        impl->closing = true;
        SioPacket d;
        d.type = SioType::disconnect;
        std::string farewell = eio_message(d);
        auto finish = [impl, done] {
            impl->fail(Kind::disconnected, "client disconnect");
            done->set_value();
        };
        // DISCONNECT and CLOSE (one POST when polling), then, once they are
        // written, the close frame or the end of the HTTP connections.
        impl->send_packet(farewell);
        impl->send_packet(build_eio_packet(EioType::close));
        auto wait = std::make_shared<asio::steady_timer>(impl->io);
        auto step = std::make_shared<std::function<void(int)>>();
        // The pending wait holds the step; the step only a weak reference to itself.
        std::weak_ptr<std::function<void(int)>> weak_step = step;
        *step = [impl, wait, weak_step, finish](int left) {
            bool closed;
            {
                std::lock_guard<std::mutex> lock(impl->mu);
                closed = impl->phase == Impl::Phase::closed;
            }
            if (closed || impl->drained() || left == 0) {
                if (!closed && impl->ws_mode && impl->ws && impl->ws->is_open()) {
                    beast::get_lowest_layer(*impl->ws).expires_after(std::chrono::seconds(2));
                    impl->ws->async_close(websocket::close_code::normal, [finish](beast::error_code) { finish(); });
                    return;
                }
                return finish();
            }
            wait->expires_after(std::chrono::milliseconds(10));
            wait->async_wait([next = weak_step.lock(), left](beast::error_code) {
                if (next) (*next)(left - 1);
            });
        };
        (*step)(200);
    });
    f.wait_for(std::chrono::seconds(5));
}

bool SioClient::connected() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    return m_impl->phase == Impl::Phase::connected;
}

std::string SioClient::sid() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    return m_impl->sid;
}

std::string SioClient::eio_sid() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    return m_impl->eio_sid;
}

std::string SioClient::transport() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    // ws_mode is the io thread's; the phase tells enough for a caller.
    return m_impl->phase == Impl::Phase::idle ? "" : (m_impl->ws_mode_public ? "websocket" : "polling");
}

EioOpen SioClient::handshake() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    return m_impl->open;
}

std::string SioClient::disconnect_reason() const {
    std::lock_guard<std::mutex> lock(m_impl->mu);
    return m_impl->phase == Impl::Phase::closed ? m_impl->reason : std::string();
}

}  // namespace msglab::signal
