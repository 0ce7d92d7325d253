#include "socp/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <map>
#include <optional>

namespace msglab::socp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {
constexpr const char* kServerName = "msglab-socp";
}

class WsLink;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o) : io(io), opt(std::move(o)), acceptor(io), timer(io) {}

    void accept();
    void schedule_tick();
    void apply(Effects fx);
    void dial(const Dial& d);
    void log(const std::string& line) const {
        if (opt.on_log) opt.on_log(line);
    }

    asio::io_context& io;
    ServerOptions opt;
    std::optional<App> app;
    tcp::acceptor acceptor;
    asio::steady_timer timer;
    bool stopped = false;
    std::size_t live = 0;
    LinkId next_id = 1;
    std::map<LinkId, std::weak_ptr<WsLink>> links;
};

// One WebSocket, accepted or dialled.
class WsLink : public std::enable_shared_from_this<WsLink> {
public:
    WsLink(std::shared_ptr<Server::Impl> srv, tcp::socket socket)
        : m_srv(std::move(srv)), m_ws(std::move(socket)), m_resolver(m_srv->io) {
        ++m_srv->live;
    }
    WsLink(std::shared_ptr<Server::Impl> srv, Dial dial)
        : m_srv(std::move(srv)), m_ws(m_srv->io), m_resolver(m_srv->io), m_dial(std::move(dial)) {
        ++m_srv->live;
    }
    ~WsLink() { --m_srv->live; }

    void configure() {
        websocket::permessage_deflate pmd;
        pmd.server_enable = m_srv->opt.permessage_deflate;
        pmd.client_enable = m_srv->opt.permessage_deflate;
        m_ws.set_option(pmd);
        m_ws.read_message_max(m_srv->opt.app.limits.max_message);
    }

    void accept() {
        configure();
        beast::get_lowest_layer(m_ws).expires_after(std::chrono::seconds(10));
        m_ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(beast::http::field::server, kServerName); }));
        m_ws.async_accept([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->m_srv->stopped) return;
            self->opened(std::nullopt);
        });
    }

    void connect() {
        configure();
        m_resolver.async_resolve(m_dial->to.host, std::to_string(m_dial->to.port),
                                 [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                                     if (ec) return self->failed();
                                     beast::get_lowest_layer(self->m_ws).expires_after(self->m_srv->opt.dial_timeout);
                                     beast::get_lowest_layer(self->m_ws)
                                         .async_connect(r, [self](beast::error_code ec2, const tcp::endpoint&) {
                                             if (ec2) return self->failed();
                                             self->handshake();
                                         });
                                 });
    }

    void send(const Text& text) {
        if (m_closing || !m_open) return;
        if (m_queue.size() >= m_srv->opt.max_queued_frames) return close();  // a reader too slow
        m_queue.push_back(text);
        if (!m_writing) write_next();
    }

    void close() {
        if (m_closing) return;
        m_closing = true;
        if (!m_writing) do_close();
    }

    void abort() {
        beast::error_code ec;
        beast::get_lowest_layer(m_ws).socket().close(ec);
    }

private:
    void handshake() {
        m_ws.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(beast::http::field::user_agent, kServerName); }));
        m_ws.async_handshake(m_dial->to.host + ":" + std::to_string(m_dial->to.port), "/",
                             [self = shared_from_this()](beast::error_code ec) {
                                 if (ec) return self->failed();
                                 self->opened(self->m_dial->token);
                             });
    }

    void failed() {
        if (m_srv->stopped || !m_dial) return;
        m_srv->apply(m_srv->app->dial_failed(m_dial->token, now_ms()));
    }

    void opened(std::optional<std::uint64_t> token) {
        if (m_srv->stopped) return abort();
        beast::get_lowest_layer(m_ws).expires_never();
        // Native pings keep NAT and proxies awake; the dead-server rule is
        // the protocol's HEARTBEAT.
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::seconds(10);
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        m_ws.set_option(t);
        m_id = m_srv->next_id++;
        m_open = true;
        m_srv->links[m_id] = weak_from_this();
        m_srv->apply(m_srv->app->opened(m_id, token, now_ms()));
        read();
    }

    void read() {
        m_ws.async_read(m_buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == websocket::error::message_too_big && m_open && !m_closing) {
            m_srv->apply(m_srv->app->refused(m_id, "message over " + std::to_string(m_srv->opt.app.limits.max_message) +
                                                       " bytes",
                                             now_ms()));
            return gone();
        }
        if (ec) return gone();
        if (!m_ws.got_text()) {
            m_buffer.consume(m_buffer.size());
            if (!m_closing) m_srv->apply(m_srv->app->refused(m_id, "binary message: SOCP is text only", now_ms()));
            return read();
        }
        std::string text = beast::buffers_to_string(m_buffer.data());
        m_buffer.consume(m_buffer.size());
        if (!m_closing && !m_srv->stopped) m_srv->apply(m_srv->app->message(m_id, text, now_ms()));
        read();
    }

    void write_next() {
        m_writing = true;
        m_ws.text(true);
        m_ws.async_write(asio::buffer(*m_queue.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
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
        beast::get_lowest_layer(m_ws).expires_after(std::chrono::seconds(5));
        m_ws.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
    }

    void gone() {
        if (!m_open) return;
        m_open = false;
        m_srv->links.erase(m_id);
        if (!m_srv->stopped) m_srv->apply(m_srv->app->closed(m_id, now_ms()));
    }

    std::shared_ptr<Server::Impl> m_srv;
    websocket::stream<beast::tcp_stream> m_ws;
    tcp::resolver m_resolver;
    std::optional<Dial> m_dial;
    beast::flat_buffer m_buffer;
    std::deque<Text> m_queue;
    LinkId m_id = 0;
    bool m_open = false, m_writing = false, m_closing = false, m_close_sent = false;
};

void Server::Impl::accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped) return;
        if (!ec) {
            if (self->live >= self->opt.max_connections) {
                beast::error_code ignored;
                socket.close(ignored);  // full: refused at once, never queued
            } else {
                std::make_shared<WsLink>(self, std::move(socket))->accept();
            }
        }
        self->accept();
    });
}

void Server::Impl::dial(const Dial& d) { std::make_shared<WsLink>(shared_from_this(), d)->connect(); }

void Server::Impl::schedule_tick() {
    timer.expires_after(opt.tick);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->stopped) return;
        self->apply(self->app->tick(now_ms()));
        self->schedule_tick();
    });
}

void Server::Impl::apply(Effects fx) {
    for (const auto& line : fx.log) log(line);
    for (const auto& [id, text] : fx.send) {
        auto it = links.find(id);
        if (it == links.end()) continue;
        if (auto c = it->second.lock()) c->send(text);
    }
    for (LinkId id : fx.close) {
        auto it = links.find(id);
        if (it == links.end()) continue;
        if (auto c = it->second.lock()) c->close();
    }
    for (const auto& d : fx.dial) dial(d);
}

Server::Server(asio::io_context& io, ServerOptions options, crypto::RsaPrivateKey key, std::string id, Rng& rng)
    : m_impl(std::make_shared<Impl>(io, std::move(options))) {
    tcp::endpoint ep(asio::ip::make_address(m_impl->opt.host), m_impl->opt.port);
    m_impl->acceptor.open(ep.protocol());
    m_impl->acceptor.set_option(asio::socket_base::reuse_address(true));
    m_impl->acceptor.bind(ep);
    m_impl->acceptor.listen(asio::socket_base::max_listen_connections);
    AppConfig config = m_impl->opt.app;
    config.self.host = m_impl->opt.advertise_host.empty() ? m_impl->opt.host : m_impl->opt.advertise_host;
    config.self.port = port();
    m_impl->app.emplace(std::move(config), std::move(key), std::move(id), rng);
}

Server::~Server() {
    m_impl->stopped = true;
    beast::error_code ec;
    m_impl->acceptor.close(ec);
    m_impl->timer.cancel();
}

std::uint16_t Server::port() const { return m_impl->acceptor.local_endpoint().port(); }

void Server::start() {
    auto impl = m_impl;
    asio::post(impl->io, [impl] {
        if (impl->stopped) return;
        impl->accept();
        impl->apply(impl->app->start(now_ms()));
        impl->schedule_tick();
    });
}

void Server::stop() {
    auto impl = m_impl;
    asio::post(impl->io, [impl] {
        impl->stopped = true;
        beast::error_code ec;
        impl->acceptor.close(ec);
        impl->timer.cancel();
        auto all = impl->links;
        for (auto& [id, weak] : all)
            if (auto c = weak.lock()) c->abort();
    });
}

App& Server::app() { return *m_impl->app; }

std::size_t Server::connections() const { return m_impl->live; }

}  // namespace msglab::socp
