// The CSMP reference server on Boost.Beast: HTTP/1.1 with keep-alive, and
// WebSocket on /ws/chat and /ws/call with permessage-deflate. One
// io_context thread; the logic is App's (app.hpp), this file moves bytes.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "csmp/app.hpp"

namespace msglab::csmp {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = kDefaultPort;  // 0: any free port
    AppConfig app;
    std::size_t max_connections = 20'000;
    std::size_t max_body = 64 * 1024;           // HTTP request bodies
    std::size_t max_ws_message = 64 * 1024;     // one WebSocket message, after inflating
    std::size_t max_queued_frames = 4'096;      // per socket; a reader that falls behind is closed
    std::chrono::seconds http_timeout{30};      // a request must arrive whole within this
    bool permessage_deflate = true;
    std::chrono::milliseconds tick{250};        // call timers
};

class Server {
public:
    // Binds at once; throws std::system_error when the address is taken.
    Server(boost::asio::io_context& io, ServerOptions options, HistoryStore* store, Rng& rng);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    void start();
    void stop();
    App& app();
    std::size_t connections() const;

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace msglab::csmp
