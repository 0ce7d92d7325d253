// A blocking TCP client connection with bounded waits, shared by the replayer
// and the network fuzzer. It tells how the peer ended the connection: an
// orderly close (FIN) is not the same reaction as a reset (RST).
#pragma once

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "core/address.hpp"
#include "core/bytes.hpp"

namespace msglab::replay {

struct ConnectError : std::runtime_error {
    enum class Kind { resolve, refused, timeout, other };
    ConnectError(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
    Kind kind;
};

class TcpConnection {
public:
    // Connects with TCP_NODELAY. Throws ConnectError ("cannot connect to
    // HOST:PORT: Connection refused", "cannot resolve HOST: ...").
    TcpConnection(const HostPort& target, double timeout_seconds);
    ~TcpConnection();
    TcpConnection(const TcpConnection&) = delete;
    TcpConnection& operator=(const TcpConnection&) = delete;

    enum class End { open, fin, reset };
    // How the peer's side ended: still open, an orderly close, or a reset
    // (an RST, or a write the peer's stack refused).
    End end() const { return m_end; }
    bool closed() const { return m_end != End::open; }

    // All of `data`, in one write where the kernel takes it whole: the
    // originals read one message per recv(). False when the peer is gone.
    bool send(ByteView data);
    // Half-closes our side: the peer reads end-of-stream, we can still read.
    void shutdown_write();

    // Reads for up to `seconds`, until `done(bytes so far)` holds or the peer
    // closes; returns what came.
    template <class Done>
    Bytes receive(double seconds, Done done) {
        Bytes got;
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
        // At least one look, so a zero wait still collects what has arrived.
        while (!closed() && !done(got)) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            read_some(got, static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count())));
            if (left.count() <= 0) break;
        }
        return got;
    }

private:
    // Waits up to `wait_ms` for bytes or a close; appends what it read.
    void read_some(Bytes& into, int wait_ms);

    int m_fd = -1;
    End m_end = End::open;
};

}  // namespace msglab::replay
