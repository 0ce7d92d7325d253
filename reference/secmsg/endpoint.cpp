#include "secmsg/endpoint.hpp"

#include <deque>

#include "core/peer_text.hpp"

namespace msglab::secmsg {

namespace asio = boost::asio;
using asio::ip::tcp;

class Link : public std::enable_shared_from_this<Link> {
public:
    Link(tcp::socket socket, Role role, std::uint64_t id, const EndpointOptions& options, bool echo,
         std::function<void(std::uint64_t)> on_gone)
        : m_socket(std::move(socket)),
          m_session(role, options.session, *options.clock, *options.rng, options.keylog),
          m_id(id),
          m_callbacks(options.callbacks),
          m_timeout(options.handshake_timeout),
          m_echo(echo),
          m_on_gone(std::move(on_gone)),
          m_timer(m_socket.get_executor()),
          m_peer(peer_text(m_socket)) {}

    ~Link() {
        if (m_on_gone) m_on_gone(m_id);
    }

    void start() {
        boost::system::error_code ec;
        m_socket.set_option(tcp::no_delay(true), ec);
        auto self = shared_from_this();
        m_timer.expires_after(m_timeout);
        m_timer.async_wait([self](boost::system::error_code e) {
            if (!e && !self->m_session.established()) self->fail("handshake not completed in time");
        });
        Output out = m_session.start();
        process(out);
        read();
    }

    void send(Bytes plaintext) {
        if (m_closed) return;
        if (!m_session.established()) {
            m_pending.push_back(std::move(plaintext));
            return;
        }
        enqueue(m_session.send(plaintext));
    }

    // Sends what is queued, then closes.
    void close_gracefully() {
        if (m_closed) return;
        m_closing = true;
        if (!m_writing) finish("");
    }

    const std::string& peer() const { return m_peer; }

private:
    void read() {
        auto self = shared_from_this();
        m_socket.async_read_some(asio::buffer(m_buf), [self](boost::system::error_code ec, std::size_t n) {
            if (self->m_closed) return;
            if (ec) {
                if (ec == asio::error::eof || ec == asio::error::connection_reset)
                    self->finish(self->m_session.established() ? "" : "peer closed before the handshake completed");
                else
                    self->finish(ec.message());
                return;
            }
            Output out = self->m_session.feed(ByteView(self->m_buf.data(), n));
            self->process(out);
            if (!self->m_closed) self->read();
        });
    }

    void process(Output& out) {
        for (auto& p : out.packets) enqueue(std::move(p));
        for (auto& e : out.events) {
            if (m_closed) return;
            switch (e.kind) {
                // A later packet of the same read may already have closed the
                // session (the events come in order, the close last): then
                // there is nothing left to send into, and send() would throw.
                case Event::Kind::established:
                    m_timer.cancel();
                    if (m_callbacks.on_established) m_callbacks.on_established(m_id, m_peer);
                    if (m_session.established())
                        for (auto& p : m_pending) enqueue(m_session.send(p));
                    m_pending.clear();
                    break;
                case Event::Kind::message:
                    if (m_callbacks.on_message) m_callbacks.on_message(m_id, m_peer, e.plaintext);
                    if (m_echo && m_session.established()) enqueue(m_session.send(e.plaintext));
                    break;
                case Event::Kind::rekeyed:
                    break;
                case Event::Kind::closed:
                    fail(std::string(reject_name(*e.reason)) + ": " + e.detail);
                    return;
            }
        }
    }

    void enqueue(Bytes packet) {
        if (m_closed) return;
        m_queue.push_back(std::move(packet));
        if (!m_writing) write_next();
    }

    void write_next() {
        if (m_queue.empty()) {
            m_writing = false;
            if (m_closing) finish("");
            return;
        }
        m_writing = true;
        auto self = shared_from_this();
        asio::async_write(m_socket, asio::buffer(m_queue.front()), [self](boost::system::error_code ec, std::size_t) {
            if (self->m_closed) return;
            if (ec) {
                self->finish("write failed: " + ec.message());
                return;
            }
            self->m_queue.pop_front();
            self->write_next();
        });
    }

    void fail(const std::string& reason) { finish(reason.empty() ? "closed" : reason); }

    void finish(const std::string& reason) {
        if (m_closed) return;
        m_closed = true;
        m_timer.cancel();
        boost::system::error_code ec;
        m_socket.shutdown(tcp::socket::shutdown_both, ec);
        m_socket.close(ec);
        if (m_callbacks.on_closed) m_callbacks.on_closed(m_id, m_peer, reason);
    }

    tcp::socket m_socket;
    Session m_session;
    std::uint64_t m_id;
    LinkCallbacks m_callbacks;
    std::chrono::milliseconds m_timeout;
    bool m_echo;
    std::function<void(std::uint64_t)> m_on_gone;
    asio::steady_timer m_timer;
    std::string m_peer;
    std::array<std::uint8_t, 16384> m_buf{};
    std::deque<Bytes> m_queue;
    std::vector<Bytes> m_pending;
    bool m_writing = false;
    bool m_closing = false;
    bool m_closed = false;

    friend class Server;
    friend class Client;
};

Server::Server(asio::io_context& io, const tcp::endpoint& listen, Options options)
    : m_io(io), m_acceptor(io), m_options(std::move(options)) {
    m_acceptor.open(listen.protocol());
    m_acceptor.set_option(tcp::acceptor::reuse_address(true));
    m_acceptor.bind(listen);
    m_acceptor.listen(asio::socket_base::max_listen_connections);
    accept();
}

Server::~Server() {
    // Links can outlive the server inside pending handlers; cut them loose.
    for (auto& [id, weak] : m_links)
        if (auto link = weak.lock()) link->m_on_gone = nullptr;
}

void Server::accept() {
    m_acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !m_acceptor.is_open()) return;
        if (!ec) {
            if (m_count.load() >= m_options.max_connections) {
                if (m_options.callbacks.on_closed)
                    m_options.callbacks.on_closed(0, peer_text(socket), "refused: connection limit reached");
                boost::system::error_code ignored;
                socket.close(ignored);
            } else {
                std::uint64_t id = m_next_id++;
                ++m_count;
                auto link = std::make_shared<Link>(std::move(socket), Role::responder, id, m_options, m_options.echo,
                                                   [this](std::uint64_t gone) {
                                                       m_links.erase(gone);
                                                       --m_count;
                                                   });
                m_links[id] = link;
                link->start();
            }
        }
        // Errors such as EMFILE are transient: keep accepting.
        accept();
    });
}

void Server::send(std::uint64_t id, Bytes plaintext) {
    asio::post(m_io, [this, id, pt = std::move(plaintext)]() mutable {
        auto it = m_links.find(id);
        if (it == m_links.end()) return;
        if (auto link = it->second.lock()) link->send(std::move(pt));
    });
}

void Server::stop() {
    asio::post(m_io, [this] {
        boost::system::error_code ec;
        m_acceptor.close(ec);
        auto links = m_links;
        for (auto& [id, weak] : links)
            if (auto link = weak.lock()) link->finish("server stopping");
    });
}

Client::Client(asio::io_context& io, EndpointOptions options)
    : m_io(io), m_options(std::move(options)), m_resolver(io) {}

Client::~Client() = default;

void Client::connect(const std::string& host, std::uint16_t port) {
    m_resolver.async_resolve(
        host, std::to_string(port), [this, host, port](boost::system::error_code ec, tcp::resolver::results_type results) {
            auto fail = [this, host, port](const std::string& why) {
                if (m_options.callbacks.on_closed)
                    m_options.callbacks.on_closed(0, host + ":" + std::to_string(port), why);
            };
            if (ec) return fail("cannot resolve " + host + ": " + ec.message());
            auto socket = std::make_shared<tcp::socket>(m_io);
            asio::async_connect(*socket, results, [this, socket, fail](boost::system::error_code ec2, const tcp::endpoint&) {
                if (ec2) return fail("cannot connect: " + ec2.message());
                m_link = std::make_shared<Link>(std::move(*socket), Role::initiator, 1, m_options, false, nullptr);
                for (auto& p : m_pending) m_link->m_pending.push_back(std::move(p));
                m_pending.clear();
                m_link->start();
            });
        });
}

void Client::send(Bytes plaintext) {
    asio::post(m_io, [this, pt = std::move(plaintext)]() mutable {
        if (m_link)
            m_link->send(std::move(pt));
        else
            m_pending.push_back(std::move(pt));
    });
}

void Client::close() {
    asio::post(m_io, [this] {
        if (m_link) m_link->close_gracefully();
    });
}

}  // namespace msglab::secmsg
