// The SP-SimpleChat reference server on Boost.Asio: one io_context thread,
// any number of connections, the logic in App (app.hpp). This file cuts
// frames and moves bytes, with a bound on what waits to be written to a slow
// reader, a deadline for a frame that has started to arrive, and an idle
// timeout.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "spchat/app.hpp"

namespace msglab::spchat {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = kDefaultPort;  // 0: any free port
    AppConfig app;
    std::size_t max_connections = 10'000;
    std::size_t max_queued_bytes = 32 * 1024 * 1024;  // per connection; a reader that falls behind is closed
    std::chrono::milliseconds frame_timeout{30'000};  // a started frame must arrive whole within this
    std::chrono::milliseconds idle_timeout{300'000};  // no bytes at all (the original client pings every 20 s)
    // Events for the command's log; may be empty.
    std::function<void(const std::string& peer, const std::string& what)> on_event;
};

class Server {
public:
    // Binds and listens at once; throws boost::system::system_error.
    Server(boost::asio::io_context& io, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    void start();
    // Thread-safe: stops accepting and closes every connection.
    void stop();
    // Only from the io_context's thread.
    App& app();
    std::size_t connections() const;

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace msglab::spchat
