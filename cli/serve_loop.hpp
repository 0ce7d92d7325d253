// The loop of `msglab serve <protocol>`: runs the endpoint's io_context until
// Ctrl-C, SIGTERM, --duration seconds, or stop(); the endpoint's own stop
// runs first, once.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <csignal>
#include <functional>

namespace msglab::cli {

class ServeLoop {
public:
    ServeLoop(boost::asio::io_context& io, const boost::program_options::variables_map& vm,
              std::function<void()> stop_endpoint)
        : m_io(io), m_signals(io, SIGINT, SIGTERM), m_timer(io), m_stop_endpoint(std::move(stop_endpoint)) {
        m_signals.async_wait([this](boost::system::error_code e, int) {
            if (!e) stop_now();
        });
        if (vm.count("duration")) {
            m_timer.expires_after(std::chrono::milliseconds(static_cast<long>(vm["duration"].as<double>() * 1000)));
            m_timer.async_wait([this](boost::system::error_code e) {
                if (!e) stop_now();
            });
        }
    }

    // From any thread or handler.
    void stop() {
        boost::asio::post(m_io, [this] { stop_now(); });
    }
    void run() { m_io.run(); }

private:
    void stop_now() {
        if (m_stopped) return;
        m_stopped = true;
        if (m_stop_endpoint) m_stop_endpoint();
        m_signals.cancel();
        m_timer.cancel();
        m_io.stop();
    }

    boost::asio::io_context& m_io;
    boost::asio::signal_set m_signals;
    boost::asio::steady_timer m_timer;
    std::function<void()> m_stop_endpoint;
    bool m_stopped = false;
};

}  // namespace msglab::cli
