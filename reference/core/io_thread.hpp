// An Asio io_context running on its own thread, for tests, benchmarks and
// tools that drive endpoints from another thread.
//
// Endpoints must be destroyed after the thread stops and before the
// io_context goes: declare the IoThread first, the endpoints next, and a
// StopOnExit for the thread last.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio.hpp>

#include <thread>

namespace msglab {

class IoThread {
public:
    boost::asio::io_context io;

    IoThread() : m_thread([this] { io.run(); }) {}
    ~IoThread() { stop(); }
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    // Idempotent: stops the loop and joins the thread; the io_context lives on.
    void stop() {
        if (!m_thread.joinable()) return;
        m_guard.reset();
        io.stop();
        m_thread.join();
    }

private:
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_guard =
        boost::asio::make_work_guard(io);
    std::thread m_thread;
};

struct StopOnExit {
    IoThread& loop;
    ~StopOnExit() { loop.stop(); }
};

}  // namespace msglab
