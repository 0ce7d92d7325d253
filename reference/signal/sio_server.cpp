#include "signal/sio_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <array>
#include <deque>
#include <map>

#include "core/clock.hpp"
#include "core/pyjson.hpp"
#include "csmp/wire.hpp"

namespace msglab::signal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kServerName = "msglab-signal";
constexpr const char* kPayloadType = "text/plain; charset=UTF-8";

// An error body as python-engineio writes it: a JSON string.
std::string json_string(const std::string& s) { return python_dumps(Json(s)); }

std::string endpoint_text(const tcp::socket& s) {
    beast::error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) return "?";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// A short, printable view of hostile text for a log line.
std::string preview(std::string_view text, std::size_t max = 80) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f)
            out.push_back(static_cast<char>(c));
        else
            out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    }
    if (text.size() > max) out += "...";
    return out;
}

}  // namespace

class Conn;
class HttpConn;
class WsConn;

// One Engine.IO session and the Socket.IO socket on it (namespace "/").
struct Session {
    explicit Session(asio::io_context& io) : ping_timer(io), pong_timer(io) {}

    std::string sid;     // Engine.IO
    std::string remote;  // the address that opened it
    bool websocket = false;
    bool upgrading = false;
    bool closed = false;
    // Closed by the server while no GET waited: kept until the next GET
    // takes what is queued and the CLOSE packet (or until ping_timeout).
    bool draining = false;
    std::deque<std::string> queue;  // packets for the next GET (polling)
    std::shared_ptr<HttpConn> pending_get;
    std::shared_ptr<WsConn> ws;
    asio::steady_timer ping_timer, pong_timer;
    bool awaiting_pong = false;

    bool connected = false;  // Socket.IO CONNECT to "/" done
    std::string sio_sid;
    std::uint64_t next_ack = 1;
    struct PendingAck {
        SioAckCallback callback;
        std::unique_ptr<asio::steady_timer> timer;
    };
    std::map<std::uint64_t, PendingAck> acks;
};

struct SioServer::Impl : std::enable_shared_from_this<SioServer::Impl> {
    Impl(asio::io_context& io, SioServerOptions o, SioHandler h)
        : io(io), opt(std::move(o)), handler(std::move(h)), acceptor(io) {}

    void accept();
    void log(const std::string& line) const {
        if (opt.on_log) opt.on_log(line);
    }

    // HTTP and the transports.
    void handle_http(const std::shared_ptr<HttpConn>& conn, http::request<http::string_body>&& req);
    void ws_accepted(const std::shared_ptr<WsConn>& ws);
    void ws_text(const std::shared_ptr<WsConn>& ws, const std::string& text);
    void ws_gone(const std::shared_ptr<WsConn>& ws, const std::string& why);

    // Engine.IO.
    std::shared_ptr<Session> new_session(const std::string& remote, bool websocket);
    std::string open_packet(const Session& s) const;
    void send(const std::shared_ptr<Session>& s, std::string packet);
    void flush_poll(Session& s);
    void schedule_ping(const std::shared_ptr<Session>& s);
    void on_packet(const std::shared_ptr<Session>& s, const EioPacket& p);
    void close_session(const std::shared_ptr<Session>& s, const std::string& reason, bool send_close);

    // Socket.IO.
    void on_sio(const std::shared_ptr<Session>& s, const std::string& text);
    void fail_acks(Session& s);
    void do_emit(const std::string& sid, const std::string& event, const Json& args, SioAckCallback cb,
                 std::chrono::milliseconds timeout);
    void do_disconnect(const std::string& sid);
    void send_ack(const std::string& sid, std::uint64_t id, const Json& args);
    std::shared_ptr<Session> by_sio_sid(const std::string& sid) const;
    void later(SioAckCallback cb) {
        if (cb) asio::post(io, [cb = std::move(cb)] { cb(std::nullopt); });
    }

    asio::io_context& io;
    SioServerOptions opt;
    SioHandler handler;
    tcp::acceptor acceptor;
    bool stopped = false;
    std::size_t live = 0;
    std::uint64_t next_conn = 1;
    std::map<std::uint64_t, std::weak_ptr<Conn>> conns;
    std::map<std::string, std::shared_ptr<Session>> sessions;  // by Engine.IO sid
    std::map<std::string, std::string> sio_to_eio;
    std::shared_ptr<SioAck::Sender> sender;
};

struct SioAck::Sender {
    std::weak_ptr<SioServer::Impl> impl;
};

// A TCP connection the server holds: HTTP requests or a WebSocket.
class Conn {
public:
    explicit Conn(std::shared_ptr<SioServer::Impl> srv) : m_srv(std::move(srv)), m_id(m_srv->next_conn++) {
        ++m_srv->live;
    }
    virtual ~Conn() { --m_srv->live; }
    virtual void abort() = 0;
    std::uint64_t id() const { return m_id; }

protected:
    std::shared_ptr<SioServer::Impl> m_srv;
    std::uint64_t m_id;
};

// HTTP/1.1 with keep-alive: one request at a time; a polling GET may be held
// by its session until there is something to answer.
class HttpConn : public Conn, public std::enable_shared_from_this<HttpConn> {
public:
    HttpConn(std::shared_ptr<SioServer::Impl> srv, tcp::socket socket)
        : Conn(std::move(srv)), m_stream(std::move(socket)) {
        m_remote = endpoint_text(m_stream.socket());
        // Small packets go out at once: with Nagle a reply written while the
        // peer delays its ACK waits 40 ms.
        beast::error_code ec;
        m_stream.socket().set_option(tcp::no_delay(true), ec);
    }

    void start() {
        m_srv->conns[m_id] = std::weak_ptr<Conn>(shared_from_this());
        read();
    }
    void abort() override {
        beast::error_code ec;
        m_stream.socket().close(ec);
    }
    const std::string& remote() const { return m_remote; }
    beast::tcp_stream& stream() { return m_stream; }
    beast::flat_buffer& buffer() { return m_buffer; }
    // The stream moves to a WebSocket: this object reads no more.
    void handed_over() {
        m_srv->conns.erase(m_id);
        m_handed_over = true;
    }

    void respond(http::status status, std::string body, const char* content_type = "text/plain",
                 bool close = false) {
        auto res = std::make_shared<http::response<http::string_body>>(status, 11);
        res->set(http::field::server, kServerName);
        res->set(http::field::content_type, content_type);
        res->body() = std::move(body);
        res->keep_alive(!close && m_keep_alive);
        res->prepare_payload();
        m_stream.expires_after(std::chrono::seconds(30));
        http::async_write(m_stream, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
            if (ec || !res->keep_alive() || self->m_srv->stopped) return self->shutdown();
            self->read();
        });
    }

private:
    void read() {
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(m_srv->opt.max_http_head));
        m_parser->body_limit(m_srv->opt.max_payload);
        m_stream.expires_after(m_srv->opt.http_idle_timeout);
        http::async_read(m_stream, m_buffer, *m_parser,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (m_srv->stopped) return shutdown();
        if (ec == http::error::body_limit) {
            m_srv->log("refused a body over " + std::to_string(m_srv->opt.max_payload) + " bytes from " + m_remote);
            m_keep_alive = false;
            return respond(http::status::payload_too_large, json_string("Payload too large"), "text/plain", true);
        }
        if (ec == http::error::header_limit) {
            m_keep_alive = false;
            return respond(http::status::request_header_fields_too_large, json_string("Header too large"),
                           "text/plain", true);
        }
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            return shutdown();
        if (ec) {
            if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
                m_srv->log("refused a malformed HTTP request from " + m_remote + ": " + ec.message());
                m_keep_alive = false;
                return respond(http::status::bad_request, json_string("Bad Request"), "text/plain", true);
            }
            return shutdown();
        }
        auto req = m_parser->release();
        m_keep_alive = req.keep_alive();
        m_srv->handle_http(shared_from_this(), std::move(req));
    }

    void shutdown() {
        if (m_handed_over || m_shut) return;
        m_shut = true;
        m_srv->conns.erase(m_id);
        beast::error_code ec;
        m_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (m_srv->stopped) return m_stream.socket().close(ec);
        linger();
    }

    // Reads what the client still sends (the rest of a refused body) for a
    // moment before closing: closing with unread bytes would reset the
    // connection, and the client could lose the answer it has not read yet.
    void linger() {
        m_stream.expires_after(std::chrono::seconds(1));
        m_stream.async_read_some(asio::buffer(m_scratch), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
            self->m_drained += n;
            if (!ec && self->m_drained < 4 * self->m_srv->opt.max_payload + 65536) return self->linger();
            beast::error_code ignored;
            self->m_stream.socket().close(ignored);
        });
    }

    beast::tcp_stream m_stream;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    std::string m_remote;
    bool m_keep_alive = true;
    bool m_handed_over = false;
    bool m_shut = false;
    std::array<char, 4096> m_scratch{};
    std::size_t m_drained = 0;
};

// A WebSocket: a session of its own, or the upgrade of a polling session.
class WsConn : public Conn, public std::enable_shared_from_this<WsConn> {
public:
    enum class Phase { accepting, probe, await_upgrade, live };

    WsConn(std::shared_ptr<SioServer::Impl> srv, beast::tcp_stream stream, std::string remote,
           http::request<http::string_body> req, std::shared_ptr<Session> upgrade_of)
        : Conn(std::move(srv)),
          m_ws(std::move(stream)),
          m_remote(std::move(remote)),
          m_req(std::move(req)),
          m_upgrade_of(std::move(upgrade_of)) {}

    void start() {
        m_srv->conns[m_id] = std::weak_ptr<Conn>(shared_from_this());
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::seconds(10);
        t.idle_timeout = websocket::stream_base::none();  // Engine.IO's pings decide
        t.keep_alive_pings = false;
        beast::get_lowest_layer(m_ws).expires_never();
        m_ws.set_option(t);
        m_ws.read_message_max(m_srv->opt.max_payload);
        m_ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, kServerName); }));
        m_ws.async_accept(m_req, [self = shared_from_this()](beast::error_code ec) {
            if (ec || self->m_srv->stopped) return self->gone(ec ? "handshake failed: " + ec.message() : "stopped");
            self->m_open = true;
            self->m_srv->ws_accepted(self);
            self->read();
        });
    }

    void abort() override {
        beast::error_code ec;
        beast::get_lowest_layer(m_ws).socket().close(ec);
    }

    // False when the queue is full: the session is then closed by the caller.
    bool send(std::string text) {
        if (m_closing || !m_open) return true;
        if (m_queue.size() >= m_srv->opt.max_queued_packets) return false;
        m_queue.push_back(std::move(text));
        if (!m_writing) write_next();
        return true;
    }
    // A close frame once what is queued is written.
    void close() {
        if (m_closing) return;
        m_closing = true;
        if (!m_writing) do_close();
    }

    Phase phase = Phase::accepting;
    std::shared_ptr<Session> session;         // set once it carries a session
    std::shared_ptr<Session> upgrade_of() const { return m_upgrade_of.lock(); }
    bool is_upgrade() const { return m_is_upgrade; }
    const std::string& remote() const { return m_remote; }

private:
    void read() {
        m_ws.async_read(m_buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->gone(ec == websocket::error::closed ? "closed by the client" : ec.message());
            if (!self->m_ws.got_text()) {
                self->m_buffer.consume(self->m_buffer.size());
                self->m_srv->log("refused a binary WebSocket message from " + self->m_remote +
                                 ": msglab speaks text packets only");
                return self->read();
            }
            std::string text = beast::buffers_to_string(self->m_buffer.data());
            self->m_buffer.consume(self->m_buffer.size());
            if (!self->m_srv->stopped) self->m_srv->ws_text(self, text);
            if (!self->m_gone) self->read();
        });
    }

    void write_next() {
        m_writing = true;
        m_ws.text(true);
        m_ws.async_write(asio::buffer(m_queue.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->m_writing = false;
            if (ec) return self->gone("write failed: " + ec.message());
            self->m_queue.pop_front();
            if (!self->m_queue.empty())
                self->write_next();
            else if (self->m_closing)
                self->do_close();
        });
    }

    void do_close() {
        if (m_close_sent) return;
        m_close_sent = true;
        m_queue.clear();
        beast::get_lowest_layer(m_ws).expires_after(std::chrono::seconds(5));
        m_ws.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
            beast::error_code ec;
            beast::get_lowest_layer(self->m_ws).socket().close(ec);
        });
    }

    void gone(const std::string& why) {
        if (m_gone) return;
        m_gone = true;
        m_open = false;
        m_srv->conns.erase(m_id);
        m_srv->ws_gone(shared_from_this(), why);
        session.reset();
    }

    websocket::stream<beast::tcp_stream> m_ws;
    std::string m_remote;
    http::request<http::string_body> m_req;
    std::weak_ptr<Session> m_upgrade_of;
    bool m_is_upgrade = m_upgrade_of.lock() != nullptr;
    beast::flat_buffer m_buffer;
    std::deque<std::string> m_queue;
    bool m_open = false, m_writing = false, m_closing = false, m_close_sent = false, m_gone = false;
};

// ---- Accepting and HTTP ------------------------------------------------------------------

void SioServer::Impl::accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped) return;
        if (!ec) {
            if (self->live >= self->opt.max_connections) {
                beast::error_code ignored;
                socket.close(ignored);  // full: refused at once, never queued
            } else {
                std::make_shared<HttpConn>(self, std::move(socket))->start();
            }
        }
        self->accept();
    });
}

void SioServer::Impl::handle_http(const std::shared_ptr<HttpConn>& conn, http::request<http::string_body>&& req) {
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target, query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    std::string bare = opt.path;
    if (bare.size() > 1 && bare.back() == '/') bare.pop_back();
    if (path != opt.path && path != bare) return conn->respond(http::status::not_found, json_string("Not Found"));

    for (const char* name : {"EIO", "transport", "sid"})
        if (csmp::query_parameter_count(query, name) > 1)
            return conn->respond(http::status::bad_request,
                                 json_string(std::string("Repeated query parameter ") + name));
    auto eio = csmp::query_parameter(query, "EIO");
    if (eio != std::string("4"))
        return conn->respond(
            http::status::bad_request,
            json_string("The client is using an unsupported version of the Socket.IO or Engine.IO protocols"));
    auto transport = csmp::query_parameter(query, "transport").value_or("");
    bool polling = transport == "polling" && opt.allow_polling;
    bool ws = transport == "websocket" && opt.allow_websocket;
    if (!polling && !ws) return conn->respond(http::status::bad_request, json_string("Invalid transport"));
    bool upgrade_req = websocket::is_upgrade(req);
    if (ws && !upgrade_req)
        return conn->respond(http::status::bad_request, json_string("Invalid websocket upgrade"));
    auto method = req.method();
    if (method != http::verb::get && method != http::verb::post)
        return conn->respond(http::status::method_not_allowed, json_string("Method Not Allowed"));
    auto sid = csmp::query_parameter(query, "sid");

    if (!sid) {
        if (method != http::verb::get) return conn->respond(http::status::bad_request, json_string("Invalid session"));
        if (sessions.size() >= opt.max_connections)
            return conn->respond(http::status::service_unavailable, json_string("Too many sessions"));
        if (polling) {
            auto s = new_session(conn->remote(), false);
            log(s->sid + ": new polling connection from " + conn->remote());
            return conn->respond(http::status::ok, open_packet(*s), kPayloadType);
        }
        // A WebSocket of its own: the session opens once the handshake is done.
        conn->handed_over();
        auto w = std::make_shared<WsConn>(shared_from_this(), std::move(conn->stream()), conn->remote(),
                                          std::move(req), nullptr);
        return w->start();
    }

    auto it = sessions.find(*sid);
    if (it != sessions.end() && it->second->draining && polling && method == http::verb::get) {
        auto s = it->second;
        sessions.erase(it);
        s->ping_timer.cancel();
        return conn->respond(http::status::ok, take_payload(s->queue, opt.max_payload), kPayloadType);
    }
    if (it == sessions.end() || it->second->closed)
        return conn->respond(http::status::bad_request, json_string("Invalid session " + *sid));
    auto s = it->second;

    if (ws) {
        if (s->websocket || s->upgrading)
            return conn->respond(http::status::bad_request, json_string("Invalid transport"));
        s->upgrading = true;
        conn->handed_over();
        auto w = std::make_shared<WsConn>(shared_from_this(), std::move(conn->stream()), conn->remote(),
                                          std::move(req), s);
        return w->start();
    }
    if (s->websocket) return conn->respond(http::status::bad_request, json_string("Invalid transport"));

    if (method == http::verb::get) {
        if (s->pending_get) {
            // Two polls at once: the protocol's error, and the end of the session.
            log(s->sid + ": a second GET while one waits; session closed");
            conn->respond(http::status::bad_request, json_string("Invalid session " + *sid));
            return close_session(s, "transport error", true);
        }
        s->pending_get = conn;
        return flush_poll(*s);
    }

    // POST: a payload of packets.
    auto packets = parse_payload(req.body(), opt.max_payload);
    if (!packets) {
        log(s->sid + ": refused a POST payload: " + packets.error().to_string());
        return conn->respond(http::status::bad_request, json_string("Bad Request"));
    }
    conn->respond(http::status::ok, "OK");
    for (const auto& p : *packets) {
        if (s->closed) break;
        on_packet(s, p);
    }
}

// ---- WebSocket transport ---------------------------------------------------------------------

void SioServer::Impl::ws_accepted(const std::shared_ptr<WsConn>& w) {
    if (!w->is_upgrade()) {
        if (sessions.size() >= opt.max_connections) return w->close();
        auto s = new_session(w->remote(), true);
        s->ws = w;
        w->session = s;
        w->phase = WsConn::Phase::live;
        log(s->sid + ": new websocket connection from " + w->remote());
        send(s, open_packet(*s));
        return;
    }
    auto s = w->upgrade_of();
    if (!s || s->closed) return w->close();
    w->phase = WsConn::Phase::probe;
}

void SioServer::Impl::ws_text(const std::shared_ptr<WsConn>& w, const std::string& text) {
    auto p = parse_eio_packet(text, opt.max_payload);
    if (w->phase == WsConn::Phase::live) {
        auto s = w->session;
        if (!s || s->closed) return;
        if (!p) {
            log(s->sid + ": refused a packet: " + p.error().to_string() + " [" + preview(text) + "]");
            return;
        }
        return on_packet(s, *p);
    }
    // The upgrade of a polling session.
    auto s = w->upgrade_of();
    if (!s || s->closed) return w->close();
    auto fail = [&](const std::string& why) {
        log(s->sid + ": websocket upgrade failed: " + why);
        s->upgrading = false;
        w->close();
    };
    if (!p) return fail(p.error().to_string());
    if (w->phase == WsConn::Phase::probe) {
        if (p->type != EioType::ping || p->data != "probe") return fail("expected 2probe, got " + preview(text));
        w->send("3probe");
        // Releases the GET that waits, so the client can pause polling.
        s->queue.push_back(build_eio_packet(EioType::noop));
        flush_poll(*s);
        w->phase = WsConn::Phase::await_upgrade;
        return;
    }
    if (w->phase == WsConn::Phase::await_upgrade) {
        if (p->type != EioType::upgrade || !p->data.empty()) return fail("expected 5, got " + preview(text));
        s->upgrading = false;
        s->websocket = true;
        s->ws = w;
        w->session = s;
        w->phase = WsConn::Phase::live;
        if (s->pending_get) {
            // The poll that was still waiting ends with a noop.
            auto get = std::move(s->pending_get);
            get->respond(http::status::ok, build_eio_packet(EioType::noop), kPayloadType);
        }
        log(s->sid + ": upgraded to websocket");
        while (!s->queue.empty() && !s->closed) {
            std::string front = std::move(s->queue.front());
            s->queue.pop_front();
            if (!w->send(std::move(front))) return close_session(s, "slow reader", false);
        }
    }
}

void SioServer::Impl::ws_gone(const std::shared_ptr<WsConn>& w, const std::string& why) {
    if (w->phase == WsConn::Phase::live) {
        auto s = w->session;
        if (s && !s->closed && s->ws == w) {
            log(s->sid + ": websocket closed (" + why + ")");
            close_session(s, "transport close", false);
        }
        return;
    }
    if (auto s = w->upgrade_of(); s && s->upgrading) s->upgrading = false;
}

// ---- Engine.IO sessions ----------------------------------------------------------------------

std::shared_ptr<Session> SioServer::Impl::new_session(const std::string& remote, bool websocket) {
    auto s = std::make_shared<Session>(io);
    do {
        s->sid = make_sid(SystemRng::instance());
    } while (sessions.count(s->sid));
    s->remote = remote;
    s->websocket = websocket;
    sessions[s->sid] = s;
    schedule_ping(s);
    return s;
}

std::string SioServer::Impl::open_packet(const Session& s) const {
    EioOpen o;
    o.sid = s.sid;
    if (!s.websocket && opt.allow_websocket) o.upgrades.push_back("websocket");
    o.ping_interval_ms = static_cast<std::uint32_t>(opt.ping_interval.count());
    o.ping_timeout_ms = static_cast<std::uint32_t>(opt.ping_timeout.count());
    if (opt.advertise_max_payload) o.max_payload = opt.max_payload;
    return build_eio_packet(EioType::open, build_open_data(o));
}

void SioServer::Impl::send(const std::shared_ptr<Session>& s, std::string packet) {
    if (s->closed) return;
    if (s->websocket && s->ws) {
        if (!s->ws->send(std::move(packet))) {
            log(s->sid + ": more than " + std::to_string(opt.max_queued_packets) + " packets queued; closed");
            close_session(s, "slow reader", false);
        }
        return;
    }
    if (s->queue.size() >= opt.max_queued_packets) {
        log(s->sid + ": more than " + std::to_string(opt.max_queued_packets) + " packets queued; closed");
        return close_session(s, "slow reader", false);
    }
    s->queue.push_back(std::move(packet));
    flush_poll(*s);
}

void SioServer::Impl::flush_poll(Session& s) {
    if (!s.pending_get || s.queue.empty()) return;
    auto get = std::move(s.pending_get);
    get->respond(http::status::ok, take_payload(s.queue, opt.max_payload), kPayloadType);
}

void SioServer::Impl::schedule_ping(const std::shared_ptr<Session>& s) {
    s->ping_timer.expires_after(opt.ping_interval);
    s->ping_timer.async_wait([self = shared_from_this(), s](beast::error_code ec) {
        if (ec || s->closed || self->stopped) return;
        self->send(s, build_eio_packet(EioType::ping));
        if (s->closed) return;
        if (!s->awaiting_pong) {
            s->awaiting_pong = true;
            s->pong_timer.expires_after(self->opt.ping_timeout);
            s->pong_timer.async_wait([self, s](beast::error_code ec2) {
                if (ec2 || s->closed || !s->awaiting_pong) return;
                self->log(s->sid + ": no pong within " + std::to_string(self->opt.ping_timeout.count()) +
                          " ms; closed");
                self->close_session(s, "ping timeout", false);
            });
        }
        self->schedule_ping(s);
    });
}

void SioServer::Impl::on_packet(const std::shared_ptr<Session>& s, const EioPacket& p) {
    switch (p.type) {
        case EioType::pong:
            s->awaiting_pong = false;
            s->pong_timer.cancel();
            return;
        case EioType::ping:  // clients of older revisions ping; answer in kind
            return send(s, build_eio_packet(EioType::pong, p.data));
        case EioType::message: return on_sio(s, p.data);
        case EioType::close:
            log(s->sid + ": the client closed the session");
            return close_session(s, "client disconnect", false);
        case EioType::noop: return;
        case EioType::open:
        case EioType::upgrade:
            log(s->sid + ": ignored an unexpected " + eio_type_name(p.type) + " packet");
            return;
    }
}

void SioServer::Impl::close_session(const std::shared_ptr<Session>& s, const std::string& reason, bool send_close) {
    if (s->closed) return;
    s->closed = true;
    s->ping_timer.cancel();
    s->pong_timer.cancel();
    if (s->ws) {
        if (send_close) s->ws->send(build_eio_packet(EioType::close));
        s->ws->close();
        s->ws->session.reset();
        s->ws.reset();
        s->queue.clear();
    } else if (s->pending_get) {
        // The waiting poll learns of the end: what is queued, then CLOSE.
        s->queue.push_back(build_eio_packet(EioType::close));
        auto get = std::move(s->pending_get);
        get->respond(http::status::ok, take_payload(s->queue, opt.max_payload), kPayloadType);
        s->queue.clear();
    } else if (send_close && !stopped) {
        // No poll waits: the next one gets the rest and CLOSE.
        s->queue.push_back(build_eio_packet(EioType::close));
        s->draining = true;
        s->ping_timer.expires_after(opt.ping_timeout);
        s->ping_timer.async_wait([self = shared_from_this(), s](beast::error_code ec) {
            if (ec) return;
            auto it = self->sessions.find(s->sid);
            if (it != self->sessions.end() && it->second == s) self->sessions.erase(it);
        });
    } else {
        s->queue.clear();
    }
    if (!s->draining) sessions.erase(s->sid);
    fail_acks(*s);
    if (s->connected) {
        s->connected = false;
        sio_to_eio.erase(s->sio_sid);
        log("disconnect " + s->sio_sid + " (" + reason + ")");
        if (handler.on_disconnect) handler.on_disconnect(s->sio_sid, reason);
    } else {
        log(s->sid + ": session closed (" + reason + ")");
    }
}

// ---- Socket.IO -------------------------------------------------------------------------------

void SioServer::Impl::on_sio(const std::shared_ptr<Session>& s, const std::string& text) {
    auto parsed = parse_sio_packet(text);
    if (!parsed) {
        log(s->sid + ": refused a Socket.IO packet: " + parsed.error().to_string() + " [" + preview(text) + "]");
        return;
    }
    SioPacket& p = *parsed;
    if (p.nsp != "/") {
        if (p.type == SioType::connect) {
            SioPacket err;
            err.type = SioType::connect_error;
            err.nsp = p.nsp;
            err.data = Json{{"message", "Unable to connect"}};
            log(s->sid + ": refused a connection to namespace " + preview(p.nsp));
            return send(s, eio_message(err));
        }
        log(s->sid + ": ignored a " + sio_type_name(p.type) + " packet for namespace " + preview(p.nsp));
        return;
    }
    switch (p.type) {
        case SioType::connect: {
            bool fresh = !s->connected;
            if (fresh) {
                do {
                    s->sio_sid = make_sid(SystemRng::instance());
                } while (sio_to_eio.count(s->sio_sid));
                s->connected = true;
                sio_to_eio[s->sio_sid] = s->sid;
            }
            SioPacket ok;
            ok.type = SioType::connect;
            ok.data = Json{{"sid", s->sio_sid}};
            send(s, eio_message(ok));
            if (fresh && !s->closed) {
                log("connect " + s->sio_sid + " (engine.io " + s->sid + ", " +
                    (s->websocket ? "websocket" : "polling") + ", from " + s->remote + ")");
                if (handler.on_connect) handler.on_connect(s->sio_sid, s->remote);
            }
            return;
        }
        case SioType::disconnect:
            if (!s->connected) return;
            s->connected = false;
            sio_to_eio.erase(s->sio_sid);
            fail_acks(*s);
            log("disconnect " + s->sio_sid + " (client disconnect)");
            if (handler.on_disconnect) handler.on_disconnect(s->sio_sid, "client disconnect");
            return;
        case SioType::event: {
            if (!s->connected) {
                log(s->sid + ": ignored an event before CONNECT");
                return;
            }
            std::string name = event_name(p);
            log("received event \"" + preview(name) + "\" from " + s->sio_sid + " [/]");
            std::shared_ptr<SioAck> ack;
            if (p.id) ack = std::make_shared<SioAck>(sender, s->sio_sid, *p.id);
            if (handler.on_event) handler.on_event(s->sio_sid, name, event_args(p), std::move(ack));
            return;
        }
        case SioType::ack: {
            if (!s->connected) return;
            auto it = s->acks.find(*p.id);
            if (it == s->acks.end()) {
                log(s->sio_sid + ": ignored an ack with unknown id " + std::to_string(*p.id));
                return;
            }
            auto cb = std::move(it->second.callback);
            it->second.timer->cancel();
            s->acks.erase(it);
            log("received ack from " + s->sio_sid + " [/]");
            if (cb) cb(std::move(*p.data));
            return;
        }
        default: log(s->sid + ": ignored a " + std::string(sio_type_name(p.type)) + " packet"); return;
    }
}

void SioServer::Impl::fail_acks(Session& s) {
    auto acks = std::move(s.acks);
    s.acks.clear();
    for (auto& [id, pending] : acks) {
        pending.timer->cancel();
        later(std::move(pending.callback));
    }
}

std::shared_ptr<Session> SioServer::Impl::by_sio_sid(const std::string& sid) const {
    auto it = sio_to_eio.find(sid);
    if (it == sio_to_eio.end()) return nullptr;
    auto s = sessions.find(it->second);
    if (s == sessions.end() || s->second->closed || !s->second->connected) return nullptr;
    return s->second;
}

void SioServer::Impl::do_emit(const std::string& sid, const std::string& event, const Json& args, SioAckCallback cb,
                              std::chrono::milliseconds timeout) {
    auto s = stopped ? nullptr : by_sio_sid(sid);
    if (!s) {
        log("emitting event \"" + preview(event) + "\" to " + preview(sid) + " [/]: no such socket");
        return later(std::move(cb));
    }
    std::optional<std::uint64_t> id;
    if (cb) {
        if (s->acks.size() >= opt.max_pending_acks) {
            log("emitting event \"" + preview(event) + "\" to " + sid + " [/]: " +
                std::to_string(opt.max_pending_acks) + " acks already pending");
            return later(std::move(cb));
        }
        id = s->next_ack++;
    }
    std::string packet = eio_message(sio_event(event, args, id));
    if (packet.size() > opt.max_payload) {
        log("emitting event \"" + preview(event) + "\" to " + sid + " [/]: packet over " +
            std::to_string(opt.max_payload) + " bytes");
        return later(std::move(cb));
    }
    if (id) {
        auto& pending = s->acks[*id];
        pending.callback = std::move(cb);
        pending.timer = std::make_unique<asio::steady_timer>(io);
        pending.timer->expires_after(timeout);
        pending.timer->async_wait([self = shared_from_this(), s, ack_id = *id](beast::error_code ec) {
            if (ec) return;
            auto it = s->acks.find(ack_id);
            if (it == s->acks.end()) return;
            auto callback = std::move(it->second.callback);
            s->acks.erase(it);
            self->log(s->sio_sid + ": no ack for id " + std::to_string(ack_id) + " in time");
            if (callback) callback(std::nullopt);
        });
    }
    log("emitting event \"" + preview(event) + "\" to " + sid + " [/]");
    send(s, std::move(packet));
}

void SioServer::Impl::do_disconnect(const std::string& sid) {
    auto s = by_sio_sid(sid);
    if (!s) return;
    SioPacket d;
    d.type = SioType::disconnect;
    // Without flushing a waiting GET: DISCONNECT and CLOSE go out together.
    if (s->websocket && s->ws)
        send(s, eio_message(d));
    else
        s->queue.push_back(eio_message(d));
    close_session(s, "server disconnect", true);
}

void SioServer::Impl::send_ack(const std::string& sid, std::uint64_t id, const Json& args) {
    auto s = stopped ? nullptr : by_sio_sid(sid);
    if (!s) return;
    std::string packet = eio_message(sio_ack(id, args));
    if (packet.size() > opt.max_payload) {
        log(sid + ": an ack over " + std::to_string(opt.max_payload) + " bytes was not sent");
        return;
    }
    send(s, std::move(packet));
}

// ---- SioAck ------------------------------------------------------------------------------

SioAck::SioAck(std::shared_ptr<Sender> sender, std::string sid, std::uint64_t id)
    : m_sender(std::move(sender)), m_sid(std::move(sid)), m_id(id), m_done(std::make_shared<std::atomic<bool>>(false)) {}

SioAck::~SioAck() {
    if (m_done->exchange(true)) return;
    auto impl = m_sender ? m_sender->impl.lock() : nullptr;
    if (!impl) return;
    // Never inline: the ack may die inside the server's own code.
    asio::post(impl->io, [impl, sid = m_sid, id = m_id] { impl->send_ack(sid, id, Json::array()); });
}

void SioAck::reply(const Json& args) {
    if (m_done->exchange(true)) return;
    auto impl = m_sender ? m_sender->impl.lock() : nullptr;
    if (!impl) return;
    asio::dispatch(impl->io, [impl, sid = m_sid, id = m_id, args] { impl->send_ack(sid, id, args); });
}

bool SioAck::replied() const { return m_done->load(); }

// ---- SioServer ---------------------------------------------------------------------------

SioServer::SioServer(asio::io_context& io, SioServerOptions options, SioHandler handler)
    : m_impl(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {
    m_impl->sender = std::make_shared<SioAck::Sender>();
    m_impl->sender->impl = m_impl;
    tcp::endpoint ep(asio::ip::make_address(m_impl->opt.host), m_impl->opt.port);
    m_impl->acceptor.open(ep.protocol());
    m_impl->acceptor.set_option(asio::socket_base::reuse_address(true));
    m_impl->acceptor.bind(ep);
    m_impl->acceptor.listen(asio::socket_base::max_listen_connections);
}

SioServer::~SioServer() {
    m_impl->stopped = true;
    beast::error_code ec;
    m_impl->acceptor.close(ec);
    for (auto& [sid, s] : m_impl->sessions) {
        s->closed = true;
        s->ping_timer.cancel();
        s->pong_timer.cancel();
        for (auto& [id, pending] : s->acks) pending.timer->cancel();
    }
}

std::uint16_t SioServer::port() const {
    beast::error_code ec;
    auto ep = m_impl->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void SioServer::start() {
    auto impl = m_impl;
    asio::post(impl->io, [impl] {
        if (impl->stopped) return;
        impl->accept();
    });
}

void SioServer::stop() {
    auto impl = m_impl;
    asio::dispatch(impl->io, [impl] {
        if (impl->stopped) return;
        impl->stopped = true;
        beast::error_code ec;
        impl->acceptor.close(ec);
        auto all = impl->sessions;
        for (auto& [sid, s] : all) impl->close_session(s, "server stop", true);
        auto conns = impl->conns;
        for (auto& [id, weak] : conns)
            if (auto c = weak.lock()) c->abort();
    });
}

void SioServer::emit(const std::string& sid, const std::string& event, const Json& args, SioAckCallback on_ack,
                     std::chrono::milliseconds timeout) {
    auto impl = m_impl;
    asio::dispatch(impl->io, [impl, sid, event, args, cb = std::move(on_ack), timeout]() mutable {
        impl->do_emit(sid, event, args, std::move(cb), timeout);
    });
}

void SioServer::disconnect(const std::string& sid) {
    auto impl = m_impl;
    asio::dispatch(impl->io, [impl, sid] { impl->do_disconnect(sid); });
}

std::vector<std::string> SioServer::connected_sids() const {
    std::vector<std::string> out;
    for (const auto& [sio, eio] : m_impl->sio_to_eio) out.push_back(sio);
    return out;
}

std::optional<std::string> SioServer::remote_of(const std::string& sid) const {
    auto s = m_impl->by_sio_sid(sid);
    if (!s) return std::nullopt;
    return s->remote;
}

std::size_t SioServer::sessions() const { return m_impl->sessions.size(); }

std::size_t SioServer::connections() const { return m_impl->live; }

}  // namespace msglab::signal
