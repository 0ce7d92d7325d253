// An SP-SimpleChat client connection (POSIX socket, blocking with deadlines):
// what `msglab connect spchat`, the checks behind the scenarios, the tests
// and the benchmark use. Frames go out as the original client writes them
// (json.dumps separators, UTF-8 kept); frames in are bounded like the
// server's.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "spchat/wire.hpp"

namespace msglab::spchat {

class Client {
public:
    Client() = default;
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;

    // Throws std::runtime_error naming the address and the reason.
    void connect(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);
    bool connected() const { return m_fd >= 0; }
    int fd() const { return m_fd; }

    // Throws std::runtime_error when the connection is gone.
    void send(const Json& message);
    void send_raw(ByteView bytes);

    enum class Status { message, timeout, closed, bad_frame };
    struct Received {
        Status status = Status::timeout;
        Json message;
        std::string detail;  // why, for closed and bad_frame
    };
    // The next message, waiting at most `timeout`.
    Received receive(std::chrono::milliseconds timeout);
    // Reads what the socket has now without waiting; messages are queued for
    // receive(). False when the connection closed.
    bool pump();
    bool has_queued() const { return !m_queue.empty(); }
    // Waits for the first message whose type is `type` (others are dropped);
    // nullopt on timeout or close.
    std::optional<Json> expect(const std::string& type, std::chrono::milliseconds timeout);

    void close();
    void set_max_frame(std::uint64_t max) { m_reader = FrameReader(max); }

private:
    bool fill(int wait_ms);

    int m_fd = -1;
    FrameReader m_reader{4 * kDefaultMaxFrame};
    std::deque<Received> m_queue;
    bool m_eof = false;
    std::string m_eof_reason;
};

// Convenience for checks and tests: HELLO and the server's answer.
// Returns the INFO/ERROR text, or nullopt when nothing came.
std::optional<Json> hello(Client& c, const std::string& nick, std::chrono::milliseconds timeout);

}  // namespace msglab::spchat
