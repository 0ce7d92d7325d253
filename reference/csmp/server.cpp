#include "csmp/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cctype>
#include <ctime>
#include <deque>
#include <map>
#include <optional>

namespace msglab::csmp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kServerName = "msglab-csmp";

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::string http_date() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

enum class Channel { chat, call };

}  // namespace

class WsConn;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o, HistoryStore* store, Rng& rng)
        : io(io), opt(std::move(o)), app(opt.app, store, rng), acceptor(io), timer(io) {}

    void accept();
    void schedule_tick();
    void apply(const Effects& fx);

    asio::io_context& io;
    ServerOptions opt;
    App app;
    tcp::acceptor acceptor;
    asio::steady_timer timer;
    bool stopped = false;
    std::size_t live = 0;
    ConnId next_id = 1;
    std::map<ConnId, std::weak_ptr<WsConn>> sockets;
};

// One WebSocket, chat or call, after a successful upgrade.
class WsConn : public std::enable_shared_from_this<WsConn> {
public:
    WsConn(std::shared_ptr<Server::Impl> srv, beast::tcp_stream stream, Channel channel, Admission admission)
        : m_srv(std::move(srv)), m_ws(std::move(stream)), m_channel(channel), m_admission(std::move(admission)) {
        ++m_srv->live;
    }
    ~WsConn() { --m_srv->live; }

    void accept(http::request<http::string_body> req) {
        beast::get_lowest_layer(m_ws).expires_never();
        m_ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        websocket::permessage_deflate pmd;
        pmd.server_enable = m_srv->opt.permessage_deflate;
        m_ws.set_option(pmd);
        m_ws.read_message_max(m_srv->opt.max_ws_message);
        m_ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, kServerName); }));
        m_ws.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    void send(const std::string& text) {
        if (m_closing || !m_open) return;
        if (m_queue.size() >= m_srv->opt.max_queued_frames) return close(1008);  // a reader too slow
        m_queue.push_back(text);
        if (!m_writing) write_next();
    }

    void close(int code) {
        if (m_closing) return;
        m_closing = true;
        m_close_code = code;
        if (!m_writing) do_close();
    }

    void abort() {
        beast::error_code ec;
        beast::get_lowest_layer(m_ws).socket().close(ec);
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec || m_srv->stopped) return;
        m_id = m_srv->next_id++;
        m_open = true;
        m_srv->sockets[m_id] = weak_from_this();
        m_srv->apply(m_channel == Channel::chat ? m_srv->app.chat_opened(m_id, m_admission)
                                                : m_srv->app.call_opened(m_id, m_admission));
        read();
    }

    void read() {
        m_ws.async_read(m_buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) return gone();
        if (!m_ws.got_text()) {
            // Binary frames are not part of CSMP (the original raises on them).
            m_buffer.consume(m_buffer.size());
            close(static_cast<int>(websocket::close_code::bad_payload));
            return read_until_closed();
        }
        std::string text = beast::buffers_to_string(m_buffer.data());
        m_buffer.consume(m_buffer.size());
        if (!m_closing)
            m_srv->apply(m_channel == Channel::chat ? m_srv->app.chat_text(m_id, text, now_us())
                                                    : m_srv->app.call_text(m_id, text, now_us()));
        read();
    }

    // After our close frame the peer's answer still has to be read.
    void read_until_closed() { read(); }

    void write_next() {
        m_writing = true;
        m_ws.text(true);
        m_ws.async_write(asio::buffer(m_queue.front()),
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->m_writing = false;
                             if (ec) return;
                             self->m_queue.pop_front();
                             if (self->m_closing)
                                 self->do_close();
                             else if (!self->m_queue.empty())
                                 self->write_next();
                         });
    }

    void do_close() {
        if (m_close_sent) return;
        m_close_sent = true;
        m_queue.clear();
        websocket::close_reason reason(static_cast<std::uint16_t>(m_close_code));
        m_ws.async_close(reason, [self = shared_from_this()](beast::error_code) {});
    }

    void gone() {
        if (!m_open) return;
        m_open = false;
        m_srv->sockets.erase(m_id);
        if (m_channel == Channel::chat)
            m_srv->app.chat_closed(m_id);
        else
            m_srv->apply(m_srv->app.call_closed(m_id, now_us()));
    }

    std::shared_ptr<Server::Impl> m_srv;
    websocket::stream<beast::tcp_stream> m_ws;
    Channel m_channel;
    Admission m_admission;
    beast::flat_buffer m_buffer;
    std::deque<std::string> m_queue;
    ConnId m_id = 0;
    bool m_open = false, m_writing = false, m_closing = false, m_close_sent = false;
    int m_close_code = 1000;
};

// One HTTP connection: requests until it closes or upgrades.
class HttpConn : public std::enable_shared_from_this<HttpConn> {
public:
    HttpConn(std::shared_ptr<Server::Impl> srv, tcp::socket socket) : m_srv(std::move(srv)), m_stream(std::move(socket)) {
        ++m_srv->live;
    }
    ~HttpConn() { --m_srv->live; }

    void read() {
        m_parser.emplace();
        m_parser->body_limit(m_srv->opt.max_body);
        m_parser->header_limit(16 * 1024);
        m_stream.expires_after(m_srv->opt.http_timeout);
        http::async_read(m_stream, m_buffer, *m_parser,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

private:
    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream) return shutdown();
        if (ec == http::error::body_limit) return refuse(413, "Request body too large");
        if (ec == http::error::header_limit) return refuse(431, "Request header fields too large");
        if (ec == http::error::bad_target || ec == http::error::bad_method || ec == http::error::bad_field ||
            ec == http::error::bad_value || ec == http::error::bad_version || ec == http::error::bad_line_ending ||
            ec == http::error::bad_content_length || ec == http::error::bad_chunk ||
            ec == http::error::bad_transfer_encoding || ec == http::error::bad_obs_fold)
            return refuse(400, "Bad request");
        if (ec) return;  // timeout or reset: nothing to answer
        if (m_srv->stopped) return;
        http::request<http::string_body> req = m_parser->release();
        if (websocket::is_upgrade(req)) return upgrade(std::move(req));
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) r.headers[lower(std::string(f.name_string()))] = std::string(f.value());
        r.body = std::move(req.body());
        respond(m_srv->app.http(r, now_us()), req.version(), req.keep_alive());
    }

    void upgrade(http::request<http::string_body> req) {
        std::string target(req.target());
        std::string path = target.substr(0, target.find('?'));
        Admission a;
        Channel channel = Channel::chat;
        if (path == "/ws/chat") {
            a = m_srv->app.admit_chat(target, now_us());
        } else if (path == "/ws/call") {
            channel = Channel::call;
            a = m_srv->app.admit_call(target, now_us());
        } else {
            HttpResponse nf;
            nf.status = 404;
            nf.body = R"({"detail":"Not Found"})";
            return respond(nf, req.version(), false);
        }
        if (!a.ok) return respond(a.refusal, req.version(), false);  // 403 on the upgrade, as uvicorn
        auto ws = std::make_shared<WsConn>(m_srv, std::move(m_stream), channel, std::move(a));
        ws->accept(std::move(req));
    }

    void refuse(int status, const std::string& text) {
        HttpResponse r;
        r.status = status;
        r.body = "{\"detail\":\"" + text + "\"}";
        respond(r, 11, false);
    }

    void respond(const HttpResponse& r, unsigned version, bool keep_alive) {
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version);
        // Header names in lower case, as uvicorn writes them.
        res->set("date", http_date());
        res->set("server", kServerName);
        for (const auto& [k, v] : r.headers) res->set(k, v);
        res->set("content-length", std::to_string(r.body.size()));
        if (!r.content_type.empty()) res->set("content-type", r.content_type);
        if (!keep_alive) res->set("connection", "close");
        res->body() = r.body;
        m_stream.expires_after(m_srv->opt.http_timeout);
        http::async_write(m_stream, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
            if (ec) return;
            if (!keep_alive) return self->shutdown();
            self->read();
        });
    }

    void shutdown() {
        beast::error_code ec;
        m_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    }

    std::shared_ptr<Server::Impl> m_srv;
    beast::tcp_stream m_stream;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
};

void Server::Impl::accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped) return;
        if (!ec) {
            if (self->live >= self->opt.max_connections) {
                beast::error_code ignored;
                socket.close(ignored);  // full: refused at once, never queued
            } else {
                std::make_shared<HttpConn>(self, std::move(socket))->read();
            }
        }
        self->accept();
    });
}

void Server::Impl::schedule_tick() {
    timer.expires_after(opt.tick);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->stopped) return;
        self->apply(self->app.tick(now_us()));
        self->schedule_tick();
    });
}

void Server::Impl::apply(const Effects& fx) {
    for (const auto& [id, text] : fx.send) {
        auto it = sockets.find(id);
        if (it == sockets.end()) continue;
        if (auto c = it->second.lock()) c->send(text);
    }
    for (const auto& [id, code] : fx.close) {
        auto it = sockets.find(id);
        if (it == sockets.end()) continue;
        if (auto c = it->second.lock()) c->close(code);
    }
}

Server::Server(asio::io_context& io, ServerOptions options, HistoryStore* store, Rng& rng)
    : m_impl(std::make_shared<Impl>(io, std::move(options), store, rng)) {
    tcp::endpoint ep(asio::ip::make_address(m_impl->opt.host), m_impl->opt.port);
    m_impl->acceptor.open(ep.protocol());
    m_impl->acceptor.set_option(asio::socket_base::reuse_address(true));
    m_impl->acceptor.bind(ep);
    m_impl->acceptor.listen(asio::socket_base::max_listen_connections);
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return m_impl->acceptor.local_endpoint().port(); }

void Server::start() {
    m_impl->accept();
    m_impl->schedule_tick();
}

void Server::stop() {
    if (m_impl->stopped) return;
    m_impl->stopped = true;
    beast::error_code ec;
    m_impl->acceptor.close(ec);
    m_impl->timer.cancel();
    for (auto& [id, weak] : m_impl->sockets)
        if (auto c = weak.lock()) c->abort();
}

App& Server::app() { return m_impl->app; }

std::size_t Server::connections() const { return m_impl->live; }

}  // namespace msglab::csmp
