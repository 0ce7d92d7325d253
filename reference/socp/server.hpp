// The SOCP reference server on Boost.Beast: one WebSocket port for users and
// servers (any path), permessage-deflate, outbound links to introducers and
// peers, and a timer for heartbeats and redials. One io_context thread; the
// logic is App's (app.hpp), this file moves text messages.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "socp/app.hpp"

namespace msglab::socp {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = kDefaultPort;  // 0: any free port
    // The address other servers are told to dial; default host:bound port.
    std::string advertise_host;
    AppConfig app;  // app.self is filled in from the bound address
    std::size_t max_connections = 10'000;
    std::size_t max_queued_frames = 4'096;  // per link; a reader that falls behind is closed
    std::chrono::milliseconds dial_timeout{5'000};
    std::chrono::milliseconds tick{100};
    bool permessage_deflate = true;
    // The server's log lines (joins, links, deaths); may be empty.
    std::function<void(const std::string&)> on_log;
};

class Server {
public:
    // Binds and listens at once; throws boost::system::system_error.
    Server(boost::asio::io_context& io, ServerOptions options, crypto::RsaPrivateKey key, std::string id, Rng& rng);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    void start();
    // Thread-safe: stops accepting, closes every link.
    void stop();
    // Only from the io_context's thread (or while it is not running).
    App& app();
    std::size_t connections() const;

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

// Unix time in milliseconds, the clock every SOCP endpoint of msglab uses.
std::int64_t now_ms();

}  // namespace msglab::socp
