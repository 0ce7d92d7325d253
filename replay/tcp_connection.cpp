#include "replay/tcp_connection.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace msglab::replay {

TcpConnection::TcpConnection(const HostPort& target, double timeout) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &res);
    if (rc != 0)
        throw ConnectError(ConnectError::Kind::resolve, "cannot resolve " + target.host + ": " + gai_strerror(rc));
    std::string last = "no address";
    ConnectError::Kind kind = ConnectError::Kind::other;
    for (addrinfo* ai = res; ai && m_fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int err = 0;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                err = errno;
            } else {
                pollfd p{fd, POLLOUT, 0};
                int n = poll(&p, 1, static_cast<int>(timeout * 1000));
                socklen_t len = sizeof err;
                if (n <= 0)
                    err = ETIMEDOUT;
                else
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
        }
        if (err != 0) {
            last = err == ETIMEDOUT ? "timed out" : std::strerror(err);
            kind = err == ECONNREFUSED ? ConnectError::Kind::refused
                   : err == ETIMEDOUT  ? ConnectError::Kind::timeout
                                       : ConnectError::Kind::other;
            ::close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        m_fd = fd;
    }
    freeaddrinfo(res);
    if (m_fd < 0) throw ConnectError(kind, "cannot connect to " + target.to_string() + ": " + last);
}

TcpConnection::~TcpConnection() {
    if (m_fd >= 0) ::close(m_fd);
}

bool TcpConnection::send(ByteView data) {
    std::size_t off = 0;
    while (off < data.size() && !closed()) {
        ssize_t n = ::send(m_fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{m_fd, POLLOUT, 0};
            if (poll(&p, 1, 5000) <= 0) return false;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        m_end = End::reset;
    }
    return !closed();
}

void TcpConnection::shutdown_write() {
    if (m_fd >= 0) ::shutdown(m_fd, SHUT_WR);
}

void TcpConnection::read_some(Bytes& into, int wait_ms) {
    pollfd p{m_fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return;
    std::uint8_t buf[16384];
    ssize_t r = ::recv(m_fd, buf, sizeof buf, 0);
    if (r > 0)
        into.insert(into.end(), buf, buf + r);
    else if (r == 0)
        m_end = End::fin;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        m_end = End::reset;
}

}  // namespace msglab::replay
