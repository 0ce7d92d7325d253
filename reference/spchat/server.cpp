#include "spchat/server.hpp"

#include <array>
#include <atomic>
#include <deque>

#include "core/peer_text.hpp"

namespace msglab::spchat {

namespace asio = boost::asio;
using asio::ip::tcp;

class Conn;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o)
        : io(io), options(std::move(o)), acceptor(io), app(options.app) {}

    void accept();
    void apply(const Effects& fx);
    void emit(const std::string& peer, const std::string& what) {
        if (options.on_event) options.on_event(peer, what);
    }

    asio::io_context& io;
    ServerOptions options;
    tcp::acceptor acceptor;
    App app;
    std::map<ConnId, std::weak_ptr<Conn>> conns;
    ConnId next_id = 1;
    std::atomic<std::size_t> count{0};
    bool stopped = false;
};

class Conn : public std::enable_shared_from_this<Conn> {
public:
    Conn(tcp::socket s, ConnId id, std::shared_ptr<Server::Impl> server)
        : m_socket(std::move(s)),
          m_id(id),
          m_server(std::move(server)),
          m_reader(m_server->app.max_frame()),
          m_timer(m_socket.get_executor()),
          m_peer(peer_text(m_socket)) {}

    const std::string& peer() const { return m_peer; }

    void start() {
        boost::system::error_code ec;
        m_socket.set_option(tcp::no_delay(true), ec);
        m_server->app.opened(m_id);
        m_server->emit(m_peer, "connected");
        arm();
        read();
    }

    // Queues a frame; a reader too far behind is dropped.
    void send(const SharedBytes& bytes) {
        if (m_closed || m_closing) return;
        m_queued += bytes->size();
        if (m_queued > m_server->options.max_queued_bytes) {
            m_server->emit(m_peer, "closed: reads too slowly (" + std::to_string(m_queued) + " bytes queued)");
            close_now();
            return;
        }
        m_queue.push_back(bytes);
        if (!m_writing) write_next();
    }

    // Closes once what is queued is written.
    void close_after_write() {
        if (m_closed) return;
        m_closing = true;
        if (!m_writing) write_next();
    }

    void close_now() {
        if (m_closed) return;
        m_closed = true;
        m_timer.cancel();
        boost::system::error_code ec;
        m_socket.shutdown(tcp::socket::shutdown_both, ec);
        m_socket.close(ec);
        m_queue.clear();
        gone();
    }

private:
    void gone() {
        if (m_gone) return;
        m_gone = true;
        auto server = m_server;
        server->conns.erase(m_id);
        server->count = server->conns.size();
        Effects fx = server->app.closed(m_id);
        server->apply(fx);
        server->emit(m_peer, "disconnected");
    }

    void arm() {
        if (m_closed) return;
        const bool partial = m_reader.buffered() > 0;
        // Under spchat.unbounded-frame the original waits for its bytes forever.
        if (partial && m_server->app.max_frame() == kMaxLengthPrefix) {
            m_timer.cancel();
            return;
        }
        m_timer.expires_after(partial ? m_server->options.frame_timeout : m_server->options.idle_timeout);
        auto self = shared_from_this();
        m_timer.async_wait([self, partial](boost::system::error_code ec) {
            if (ec || self->m_closed) return;
            self->m_server->emit(self->m_peer, partial ? "closed: a frame did not arrive whole in time"
                                                       : "closed: idle");
            self->close_now();
        });
    }

    void read() {
        if (m_closed || m_closing) return;
        auto self = shared_from_this();
        m_socket.async_read_some(asio::buffer(m_buf), [self](boost::system::error_code ec, std::size_t n) {
            if (self->m_closed) return;
            if (ec) {
                self->close_now();
                return;
            }
            self->m_reader.push(ByteView(self->m_buf.data(), n));
            self->drain();
            self->arm();
            self->read();
        });
    }

    void drain() {
        std::string body;
        while (!m_closed && !m_closing) {
            auto st = m_reader.next(body);
            if (st == FrameReader::Status::need_more) return;
            if (st == FrameReader::Status::too_large) {
                m_server->emit(m_peer, "refused a frame of " + std::to_string(m_reader.announced()) + " bytes");
                m_server->apply(m_server->app.oversized(m_id, m_reader.announced()));
                return;
            }
            m_server->apply(m_server->app.frame(m_id, body));
        }
    }

    void write_next() {
        if (m_closed) return;
        if (m_queue.empty()) {
            m_writing = false;
            if (m_closing) close_now();
            return;
        }
        m_writing = true;
        auto self = shared_from_this();
        SharedBytes front = m_queue.front();
        asio::async_write(m_socket, asio::buffer(*front), [self, front](boost::system::error_code ec, std::size_t) {
            if (self->m_closed) return;
            if (ec) {
                self->close_now();
                return;
            }
            self->m_queued -= front->size();
            self->m_queue.pop_front();
            self->write_next();
        });
    }

    tcp::socket m_socket;
    ConnId m_id;
    std::shared_ptr<Server::Impl> m_server;
    FrameReader m_reader;
    asio::steady_timer m_timer;
    std::string m_peer;
    std::array<std::uint8_t, 64 * 1024> m_buf{};
    std::deque<SharedBytes> m_queue;
    std::size_t m_queued = 0;
    bool m_writing = false, m_closing = false, m_closed = false, m_gone = false;
};

void Server::Impl::apply(const Effects& fx) {
    for (const auto& [id, bytes] : fx.send) {
        auto it = conns.find(id);
        if (it == conns.end()) continue;
        if (auto c = it->second.lock()) c->send(bytes);
    }
    for (ConnId id : fx.close) {
        auto it = conns.find(id);
        if (it == conns.end()) continue;
        if (auto c = it->second.lock()) c->close_after_write();
    }
}

void Server::Impl::accept() {
    if (stopped) return;
    auto self = shared_from_this();
    acceptor.async_accept([self](boost::system::error_code ec, tcp::socket socket) {
        if (self->stopped) return;
        if (!ec) {
            if (self->conns.size() >= self->options.max_connections) {
                // Told why, then closed.
                Json j;
                j["type"] = "ERROR";
                j["text"] = "server full";
                Bytes b = server_frame(j);
                boost::system::error_code e;
                socket.non_blocking(true, e);
                socket.write_some(asio::buffer(b), e);
                socket.close(e);
            } else {
                const ConnId id = self->next_id++;
                auto c = std::make_shared<Conn>(std::move(socket), id, self);
                self->conns[id] = c;
                self->count = self->conns.size();
                c->start();
            }
        } else if (ec == asio::error::operation_aborted) {
            return;
        }
        self->accept();
    });
}

Server::Server(asio::io_context& io, ServerOptions options) : m_impl(std::make_shared<Impl>(io, std::move(options))) {
    auto& a = m_impl->acceptor;
    tcp::endpoint ep(asio::ip::make_address(m_impl->options.host), m_impl->options.port);
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep);
    a.listen(asio::socket_base::max_listen_connections);
}

Server::~Server() {
    boost::system::error_code ec;
    m_impl->stopped = true;
    m_impl->acceptor.close(ec);
}

std::uint16_t Server::port() const { return m_impl->acceptor.local_endpoint().port(); }

void Server::start() { m_impl->accept(); }

void Server::stop() {
    auto impl = m_impl;
    asio::post(impl->io, [impl] {
        impl->stopped = true;
        boost::system::error_code ec;
        impl->acceptor.close(ec);
        auto all = impl->conns;
        for (auto& [id, weak] : all)
            if (auto c = weak.lock()) c->close_now();
    });
}

App& Server::app() { return m_impl->app; }

std::size_t Server::connections() const { return m_impl->count.load(); }

}  // namespace msglab::spchat
