// SLMP endpoints: the server on Boost.Asio, and a client exchange.
//
// The server serves many connections at once on one thread, each a
// ServerSession with a deadline for the whole exchange. Bad input closes that
// connection only, unless the slmp.crash-on-bad-input plant makes it fatal;
// slmp.serial-server accepts the next connection only when the current one
// is over and drops the deadline, as the original.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "slmp/session.hpp"

namespace msglab::slmp {

// The quiet gap after which a whole-length token that does not verify is
// judged (SLMP cannot tell a bad token from one still arriving).
constexpr std::chrono::milliseconds kUnitGap{250};

class Connection;

class Server {
public:
    struct Callbacks {
        std::function<void(const std::string& peer, const std::string& session_id)> on_key_exchanged;
        std::function<void(const std::string& peer, const std::string& user, const std::string& message)> on_request;
        // `reason` is empty for an exchange that ended normally.
        std::function<void(const std::string& peer, const std::string& reason)> on_closed;
        // slmp.crash-on-bad-input: the server has stopped serving; the
        // command exits the process, as the original dies.
        std::function<void(const std::string& reason)> on_fatal;
    };
    struct Options {
        ServerConfig session;
        KeyLogWriter* keylog = nullptr;
        const Clock* clock = &SystemClock::instance();
        Rng* rng = &SystemRng::instance();
        std::chrono::milliseconds deadline{10000};  // for the whole exchange
        std::size_t max_connections = 10000;
        Callbacks callbacks;
    };

    // Binds and listens at once; throws boost::system::system_error.
    Server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& listen, Options options);
    ~Server();

    std::uint16_t port() const { return m_acceptor.local_endpoint().port(); }
    // Thread-safe: stops accepting and closes every connection.
    void stop();
    std::size_t connections() const { return m_count.load(); }
    bool stopped() const { return m_stopped.load(); }

private:
    void accept();
    void gone(std::uint64_t id);
    void stop_accepting();
    void stop_now();
    void fatal(const std::string& reason);

    boost::asio::io_context& m_io;
    boost::asio::ip::tcp::acceptor m_acceptor;
    Options m_options;
    std::optional<crypto::P256PrivateKey> m_static_key;  // slmp.static-server-key
    std::map<std::uint64_t, std::weak_ptr<Connection>> m_connections;
    std::uint64_t m_next_id = 1;
    std::atomic<std::size_t> m_count{0};
    std::atomic<bool> m_stopped{false};
    bool m_accepting = false;
    bool m_fatal = false;

    friend class Connection;
};

struct ExchangeResult {
    bool ok = false;
    std::string reply;       // the server's plaintext ("Message received: ...")
    std::string error;       // why it failed
    std::string session_id;  // hex, as in the key log
};

// One SLMP exchange as a client: connect, keys, the request, the reply.
ExchangeResult exchange(const std::string& host, std::uint16_t port, const ClientConfig& config, std::string_view message,
                        std::chrono::milliseconds timeout, KeyLogWriter* keylog = nullptr,
                        const Clock& clock = SystemClock::instance(), Rng& rng = SystemRng::instance());

}  // namespace msglab::slmp
