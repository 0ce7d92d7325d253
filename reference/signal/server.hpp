// The Signal-style relay and key directory server (`msglab serve signal`):
// App's logic (app.hpp) over the Socket.IO server (sio_server.hpp), keys in
// a SQLite file (directory.hpp). One io_context thread runs everything.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "signal/app.hpp"
#include "signal/sio_server.hpp"

namespace msglab::signal {

struct ServerOptions {
    SioServerOptions sio;  // host, port (default 8080), pings, bounds
    AppConfig app;
    std::string db_path = "signal-keys.db";  // ":memory:" for none
    // How long a relayed x3dh_message or ratchet_msg waits for the
    // recipient's ack (python-socketio's call default).
    std::chrono::milliseconds relay_timeout{60'000};
    // Log lines: connections, registrations, relays (never contents).
    std::function<void(const std::string&)> on_log;
};

class Server {
public:
    // Opens the directory and binds. Throws DirectoryError or
    // boost::system::system_error.
    Server(boost::asio::io_context& io, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    void start();
    void stop();  // thread-safe
    // Io thread only, or while the io_context is not running.
    App& app();
    Directory& directory();

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace msglab::signal
