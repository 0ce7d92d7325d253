// SecMsg endpoints: a session bound to a TCP socket (Boost.Asio).
//
// The server accepts many peers at once on one thread; each connection is an
// independent session. Bad input from a peer closes that connection with a
// logged reason and nobody else notices. Each packet goes out in its own
// write with TCP_NODELAY, because the original reads one packet per recv().
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "secmsg/session.hpp"

namespace msglab::secmsg {

struct LinkCallbacks {
    std::function<void(std::uint64_t id, const std::string& peer)> on_established;
    std::function<void(std::uint64_t id, const std::string& peer, ByteView plaintext)> on_message;
    // `reason` is empty for an orderly close by the peer.
    std::function<void(std::uint64_t id, const std::string& peer, const std::string& reason)> on_closed;
};

struct EndpointOptions {
    SessionConfig session;
    KeyLogWriter* keylog = nullptr;
    const Clock* clock = &SystemClock::instance();
    Rng* rng = &SystemRng::instance();
    // A peer that has not finished the handshake by then is dropped.
    std::chrono::milliseconds handshake_timeout{30000};
    LinkCallbacks callbacks;
};

class Link;

class Server {
public:
    struct Options : EndpointOptions {
        bool echo = false;  // send every received message back
        std::size_t max_connections = 10000;
    };

    // Binds and listens at once; throws boost::system::system_error.
    Server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& listen, Options options);
    ~Server();

    std::uint16_t port() const { return m_acceptor.local_endpoint().port(); }
    // Thread-safe; ignored when the connection is gone or not yet keyed.
    void send(std::uint64_t id, Bytes plaintext);
    // Thread-safe: stops accepting and closes every connection.
    void stop();
    std::size_t connections() const { return m_count.load(); }

private:
    void accept();

    boost::asio::io_context& m_io;
    boost::asio::ip::tcp::acceptor m_acceptor;
    Options m_options;
    std::map<std::uint64_t, std::weak_ptr<Link>> m_links;
    std::uint64_t m_next_id = 1;
    std::atomic<std::size_t> m_count{0};
};

class Client {
public:
    explicit Client(boost::asio::io_context& io, EndpointOptions options);
    ~Client();

    // Resolves and connects asynchronously, then sends HANDSHAKE_REQUEST.
    // Connection failures are reported through on_closed.
    void connect(const std::string& host, std::uint16_t port);
    // Thread-safe. Messages sent before the handshake completes wait for it.
    void send(Bytes plaintext);
    void close();

private:
    boost::asio::io_context& m_io;
    EndpointOptions m_options;
    boost::asio::ip::tcp::resolver m_resolver;
    std::shared_ptr<Link> m_link;
    std::vector<Bytes> m_pending;
};

}  // namespace msglab::secmsg
