#include "spchat/client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace msglab::spchat {

using Clock = std::chrono::steady_clock;

Client::~Client() { close(); }

Client::Client(Client&& o) noexcept
    : m_fd(o.m_fd), m_reader(std::move(o.m_reader)), m_queue(std::move(o.m_queue)), m_eof(o.m_eof),
      m_eof_reason(std::move(o.m_eof_reason)) {
    o.m_fd = -1;
}

Client& Client::operator=(Client&& o) noexcept {
    if (this != &o) {
        close();
        m_fd = o.m_fd;
        o.m_fd = -1;
        m_reader = std::move(o.m_reader);
        m_queue = std::move(o.m_queue);
        m_eof = o.m_eof;
        m_eof_reason = std::move(o.m_eof_reason);
    }
    return *this;
}

void Client::close() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
}

void Client::connect(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
    close();
    m_eof = false;
    m_queue.clear();
    const std::string where = host + ":" + std::to_string(port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0)
        throw std::runtime_error(where + ": " + gai_strerror(e));
    std::string last = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int flags = ::fcntl(fd, F_GETFL, 0);
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int pr = ::poll(&p, 1, static_cast<int>(timeout.count()));
            if (pr == 1) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                errno = err;
            } else {
                rc = -1;
                if (pr == 0) errno = ETIMEDOUT;
            }
        }
        if (rc == 0) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            m_fd = fd;
            break;
        }
        last = std::strerror(errno ? errno : ETIMEDOUT);
        ::close(fd);
    }
    ::freeaddrinfo(res);
    if (m_fd < 0) throw std::runtime_error("cannot connect to " + where + ": " + last);
}

void Client::send_raw(ByteView bytes) {
    if (m_fd < 0) throw std::runtime_error("not connected");
    std::size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(m_fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // The server reads slowly: wait for room, reading what it sends
            // meanwhile so that neither side blocks on a full buffer.
            pollfd p{m_fd, POLLOUT | POLLIN, 0};
            if (::poll(&p, 1, 30'000) <= 0) throw std::runtime_error("send: the server stopped reading for 30 s");
            if (p.revents & POLLIN) fill(0);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
}

void Client::send(const Json& message) { send_raw(client_frame(message)); }

bool Client::fill(int wait_ms) {
    if (m_fd < 0 || m_eof) return false;
    pollfd p{m_fd, POLLIN, 0};
    int rc = ::poll(&p, 1, wait_ms);
    if (rc <= 0) return true;
    std::uint8_t buf[65536];
    for (;;) {
        ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n > 0) {
            m_reader.push(ByteView(buf, static_cast<std::size_t>(n)));
            if (static_cast<std::size_t>(n) < sizeof buf) break;
            continue;
        }
        if (n == 0) {
            m_eof = true;
            m_eof_reason = "the server closed the connection";
            break;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        m_eof = true;
        m_eof_reason = std::strerror(errno);
        break;
    }
    std::string body;
    for (;;) {
        auto st = m_reader.next(body);
        if (st == FrameReader::Status::need_more) break;
        Received r;
        if (st == FrameReader::Status::too_large) {
            r.status = Status::bad_frame;
            r.detail = "the server announced a frame of " + std::to_string(m_reader.announced()) + " bytes";
            m_queue.push_back(std::move(r));
            m_eof = true;
            m_eof_reason = "stopped reading after an oversized frame";
            break;
        }
        auto m = parse(body);
        if (!m) {
            r.status = Status::bad_frame;
            r.detail = "a frame that is not a JSON object with a string \"type\"";
        } else {
            r.status = Status::message;
            r.message = std::move(*m);
        }
        m_queue.push_back(std::move(r));
    }
    return !m_eof;
}

bool Client::pump() { return fill(0); }

Client::Received Client::receive(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (!m_queue.empty()) {
            Received r = std::move(m_queue.front());
            m_queue.pop_front();
            return r;
        }
        if (m_eof || m_fd < 0) {
            Received r;
            r.status = Status::closed;
            r.detail = m_fd < 0 ? "not connected" : m_eof_reason;
            return r;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return Received{};
        fill(static_cast<int>(left));
    }
}

std::optional<Json> Client::expect(const std::string& type, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() < 0) return std::nullopt;
        Received r = receive(left);
        if (r.status == Status::timeout || r.status == Status::closed) return std::nullopt;
        if (r.status == Status::message && r.message["type"] == type) return r.message;
    }
}

std::optional<Json> hello(Client& c, const std::string& nick, std::chrono::milliseconds timeout) {
    Json j;
    j["type"] = "HELLO";
    j["nick"] = nick;
    c.send(j);
    auto r = c.receive(timeout);
    if (r.status != Client::Status::message) return std::nullopt;
    return r.message;
}

}  // namespace msglab::spchat
