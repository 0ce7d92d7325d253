#include "slmp/endpoint.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <deque>

#include "core/peer_text.hpp"

namespace msglab::slmp {

namespace asio = boost::asio;
using asio::ip::tcp;

// How long a finished connection keeps reading (and discarding) after its
// last write, so that unread bytes from the peer do not turn the close into
// a reset that could destroy the reply.
constexpr std::chrono::milliseconds kLinger{1000};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(tcp::socket socket, std::uint64_t id, Server& server)
        : m_socket(std::move(socket)),
          m_server(&server),
          m_session(server.m_options.session, *server.m_options.clock, *server.m_options.rng,
                    server.m_static_key ? &*server.m_static_key : nullptr, server.m_options.keylog),
          m_id(id),
          m_deadline(m_socket.get_executor()),
          m_gap(m_socket.get_executor()),
          m_peer(peer_text(m_socket)) {}

    ~Connection() {
        if (m_server) m_server->gone(m_id);
    }

    void start() {
        boost::system::error_code ec;
        m_socket.set_option(tcp::no_delay(true), ec);
        auto self = shared_from_this();
        // The original waits forever; so does the serial plant.
        if (!m_session_plants().has(plant::serial_server)) {
            m_deadline.expires_after(m_server->m_options.deadline);
            m_deadline.async_wait([self](boost::system::error_code e) {
                if (e || self->m_done) return;
                auto s = std::to_string(self->m_server ? self->m_server->m_options.deadline.count() : 0);
                Output out = self->m_session.end_of_input("no complete exchange within " + s + " ms");
                self->process(out);
                self->finish("deadline: no complete exchange in time");
            });
        }
        read();
    }

    void finish(const std::string& reason) {
        if (m_closed) return;
        m_closed = true;
        m_deadline.cancel();
        m_gap.cancel();
        boost::system::error_code ec;
        m_socket.shutdown(tcp::socket::shutdown_both, ec);
        m_socket.close(ec);
        if (!m_reported && m_server && m_server->m_options.callbacks.on_closed)
            m_server->m_options.callbacks.on_closed(m_peer, reason);
        m_reported = true;
    }

private:
    const PlantSet& m_session_plants() const { return m_server->m_options.session.plants; }

    void read() {
        auto self = shared_from_this();
        m_socket.async_read_some(asio::buffer(m_buf), [self](boost::system::error_code ec, std::size_t n) {
            if (self->m_closed) return;
            if (ec) {
                if (self->m_done) return self->finish("");
                Output out = self->m_session.end_of_input(ec == asio::error::eof ? "the peer closed" : ec.message());
                self->process(out);
                self->finish(self->m_reason.empty() ? (ec == asio::error::eof ? "the peer closed before the exchange ended"
                                                                              : ec.message())
                                                    : self->m_reason);
                return;
            }
            if (!self->m_done) {
                Output out = self->m_session.feed(ByteView(self->m_buf.data(), n));
                self->process(out);
                if (!self->m_done && self->m_session.waiting_in_unit()) self->arm_gap();
            }
            if (!self->m_closed) self->read();
        });
    }

    void arm_gap() {
        auto self = shared_from_this();
        m_gap.expires_after(kUnitGap);
        m_gap.async_wait([self](boost::system::error_code e) {
            if (e || self->m_done || self->m_closed) return;
            Output out = self->m_session.idle();
            self->process(out);
        });
    }

    void process(Output& out) {
        if (!m_server) return;
        const auto& cb = m_server->m_options.callbacks;
        for (auto& u : out.units) m_queue.push_back(std::move(u));
        for (const auto& e : out.events) {
            switch (e.kind) {
                case Event::Kind::key_exchanged:
                    if (cb.on_key_exchanged) cb.on_key_exchanged(m_peer, e.detail);
                    break;
                case Event::Kind::request:
                    if (cb.on_request) cb.on_request(m_peer, e.user, e.message);
                    break;
                case Event::Kind::reply: break;
                case Event::Kind::closed:
                    if (e.reason) m_reason = std::string(reject_name(*e.reason)) + ": " + e.detail;
                    break;
            }
        }
        if (out.close) m_done = true;
        if (out.fatal) {
            // The server stops accepting before this connection's close can
            // tell the peer anything; then this connection goes, then the rest.
            Server* server = m_server;
            server->stop_accepting();
            finish(m_reason);
            server->fatal(m_reason);
            return;
        }
        if (!m_writing) write_next();
    }

    void write_next() {
        if (m_closed) return;
        if (m_queue.empty()) {
            m_writing = false;
            if (m_done) linger();
            return;
        }
        m_writing = true;
        auto self = shared_from_this();
        asio::async_write(m_socket, asio::buffer(m_queue.front()), [self](boost::system::error_code ec, std::size_t) {
            if (self->m_closed) return;
            if (ec) return self->finish("write failed: " + ec.message());
            self->m_queue.pop_front();
            self->write_next();
        });
    }

    // All written: send our FIN, keep reading until the peer's or a short
    // time, then close.
    void linger() {
        if (m_lingering) return;
        m_lingering = true;
        m_deadline.cancel();
        m_gap.cancel();
        if (m_server && !m_reported && m_server->m_options.callbacks.on_closed)
            m_server->m_options.callbacks.on_closed(m_peer, m_reason);
        m_reported = true;
        boost::system::error_code ec;
        m_socket.shutdown(tcp::socket::shutdown_send, ec);
        auto self = shared_from_this();
        m_gap.expires_after(kLinger);
        m_gap.async_wait([self](boost::system::error_code e) {
            if (!e) self->finish("");
        });
    }

    tcp::socket m_socket;
    Server* m_server;
    ServerSession m_session;
    std::uint64_t m_id;
    asio::steady_timer m_deadline, m_gap;
    std::string m_peer;
    std::array<std::uint8_t, 16384> m_buf{};
    std::deque<Bytes> m_queue;
    std::string m_reason;
    bool m_writing = false, m_done = false, m_closed = false, m_lingering = false, m_reported = false;

    friend class Server;
};

Server::Server(asio::io_context& io, const tcp::endpoint& listen, Options options)
    : m_io(io), m_acceptor(io), m_options(std::move(options)) {
    if (m_options.session.plants.has(plant::static_server_key))
        m_static_key.emplace(crypto::P256PrivateKey::generate(*m_options.rng));
    m_acceptor.open(listen.protocol());
    m_acceptor.set_option(tcp::acceptor::reuse_address(true));
    m_acceptor.bind(listen);
    // The original's backlog is 5; the clean server takes what the system allows.
    m_acceptor.listen(asio::socket_base::max_listen_connections);
    accept();
}

Server::~Server() {
    for (auto& [id, weak] : m_connections)
        if (auto c = weak.lock()) c->m_server = nullptr;
}

void Server::accept() {
    if (m_accepting || !m_acceptor.is_open()) return;
    m_accepting = true;
    m_acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        m_accepting = false;
        if (ec == asio::error::operation_aborted || !m_acceptor.is_open()) return;
        if (!ec) {
            if (m_count.load() >= m_options.max_connections) {
                if (m_options.callbacks.on_closed)
                    m_options.callbacks.on_closed(peer_text(socket), "refused: connection limit reached");
                boost::system::error_code ignored;
                socket.close(ignored);
            } else {
                std::uint64_t id = m_next_id++;
                ++m_count;
                auto c = std::make_shared<Connection>(std::move(socket), id, *this);
                m_connections[id] = c;
                c->start();
                // The serial plant takes the next client only when this one is gone.
                if (m_options.session.plants.has(plant::serial_server)) return;
            }
        }
        accept();
    });
}

void Server::gone(std::uint64_t id) {
    m_connections.erase(id);
    --m_count;
    if (m_options.session.plants.has(plant::serial_server) && !m_stopped) accept();
}

void Server::stop_accepting() {
    m_stopped = true;
    boost::system::error_code ec;
    m_acceptor.close(ec);
}

void Server::stop_now() {
    stop_accepting();
    auto all = m_connections;
    for (auto& [id, weak] : all)
        if (auto c = weak.lock()) c->finish("server stopping");
}

void Server::fatal(const std::string& reason) {
    if (m_fatal) return;
    m_fatal = true;
    stop_now();
    if (m_options.callbacks.on_fatal) m_options.callbacks.on_fatal(reason);
}

void Server::stop() {
    asio::post(m_io, [this] { stop_now(); });
}

// ---------------------------------------------------------------- client

ExchangeResult exchange(const std::string& host, std::uint16_t port, const ClientConfig& config, std::string_view message,
                        std::chrono::milliseconds timeout, KeyLogWriter* keylog, const Clock& clock, Rng& rng) {
    ExchangeResult r;
    asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
        r.error = "cannot resolve " + host + ": " + ec.message();
        return r;
    }
    auto until = std::chrono::steady_clock::now() + timeout;
    auto left_ms = [&] {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        return static_cast<int>(std::max<long long>(0, left.count()));
    };
    // Each address in turn, the connect bounded by the timeout too.
    ec = asio::error::host_not_found;
    for (const auto& entry : endpoints) {
        socket.close(ec);
        socket.open(entry.endpoint().protocol(), ec);
        if (ec) continue;
        socket.non_blocking(true, ec);
        // ::connect, not socket.connect: Asio's synchronous connect waits
        // without a limit whatever the socket's mode.
        ec = {};
        if (::connect(socket.native_handle(), entry.endpoint().data(), entry.endpoint().size()) != 0)
            ec = boost::system::error_code(errno, boost::system::system_category());
        if (ec == asio::error::would_block || ec == asio::error::in_progress) {
            pollfd p{socket.native_handle(), POLLOUT, 0};
            if (::poll(&p, 1, left_ms()) <= 0) {
                ec = asio::error::timed_out;
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
            ec = boost::system::error_code(err, boost::system::system_category());
        }
        if (!ec) break;
    }
    if (ec) {
        r.error = "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message();
        return r;
    }
    socket.non_blocking(false, ec);
    socket.set_option(tcp::no_delay(true), ec);
    ClientSession session(config, clock, rng, keylog);
    auto write = [&](const Bytes& b) {
        asio::write(socket, asio::buffer(b), ec);
        return !ec;
    };
    if (!write(session.start())) {
        r.error = "write failed: " + ec.message();
        return r;
    }
    std::array<std::uint8_t, 16384> buf{};
    auto handle = [&](const Output& out) {
        for (const auto& e : out.events) {
            switch (e.kind) {
                case Event::Kind::key_exchanged:
                    r.session_id = e.detail;
                    if (!write(session.request(message))) r.error = "write failed: " + ec.message();
                    break;
                case Event::Kind::reply:
                    r.ok = true;
                    r.reply = e.message;
                    break;
                case Event::Kind::closed:
                    if (e.reason) r.error = std::string(reject_name(*e.reason)) + ": " + e.detail;
                    break;
                case Event::Kind::request: break;
            }
        }
    };
    while (!r.ok && r.error.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.error = session.established() ? "no reply within the timeout (the server refused the request?)"
                                            : "no key from the server within the timeout";
            break;
        }
        pollfd p{socket.native_handle(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(std::min(left, kUnitGap).count()));
        if (n == 0) {
            handle(session.idle());
            continue;
        }
        std::size_t got = socket.read_some(asio::buffer(buf), ec);
        if (ec) {
            handle(session.idle());
            if (!r.ok && r.error.empty())
                r.error = ec == asio::error::eof ? (session.established() ? "the server closed the connection without a "
                                                                            "reply (it refused the request)"
                                                                          : "the server closed the connection before "
                                                                            "sending its key")
                                                 : ec.message();
            break;
        }
        handle(session.feed(ByteView(buf.data(), got)));
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return r;
}

}  // namespace msglab::slmp
