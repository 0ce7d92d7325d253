#include "replay/replayer.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace msglab::replay {

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::answered: return "answered";
        case Verdict::silent: return "silent";
        case Verdict::closed: return "closed";
        case Verdict::not_sent: return "not sent";
    }
    return "?";
}

namespace {

using Steady = std::chrono::steady_clock;

// A blocking TCP connection with bounded waits.
class Connection {
public:
    Connection(const HostPort& target, double timeout) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &res);
        if (rc != 0) throw std::runtime_error("cannot resolve " + target.host + ": " + gai_strerror(rc));
        std::string last = "no address";
        for (addrinfo* ai = res; ai && m_fd < 0; ai = ai->ai_next) {
            int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) continue;
            if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
                last = std::strerror(errno);
                ::close(fd);
                continue;
            }
            pollfd p{fd, POLLOUT, 0};
            int n = poll(&p, 1, static_cast<int>(timeout * 1000));
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (n <= 0 || err != 0) {
                last = n <= 0 ? "timed out" : std::strerror(err);
                ::close(fd);
                continue;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            m_fd = fd;
        }
        freeaddrinfo(res);
        if (m_fd < 0) throw std::runtime_error("cannot connect to " + target.to_string() + ": " + last);
    }
    ~Connection() {
        if (m_fd >= 0) ::close(m_fd);
    }

    bool closed() const { return m_closed; }

    // One message in one write (as the originals read one message per recv).
    bool send(ByteView data) {
        std::size_t off = 0;
        while (off < data.size() && !m_closed) {
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
            m_closed = true;
        }
        return !m_closed;
    }

    // Reads for `seconds`, or until `done` says enough; returns what came.
    template <class Done>
    Bytes receive(double seconds, Done done) {
        Bytes got;
        auto until = Steady::now() + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(seconds));
        std::uint8_t buf[16384];
        while (!m_closed) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now()).count();
            if (left <= 0 || done(got)) break;
            pollfd p{m_fd, POLLIN, 0};
            int n = poll(&p, 1, static_cast<int>(left));
            if (n <= 0) continue;
            ssize_t r = ::recv(m_fd, buf, sizeof buf, 0);
            if (r > 0) {
                got.insert(got.end(), buf, buf + r);
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                m_closed = true;
            }
        }
        return got;
    }

private:
    int m_fd = -1;
    bool m_closed = false;
};

std::string frames_text(const ExtractedMessage& m) {
    return m.first_frame == m.last_frame ? "frame " + std::to_string(m.first_frame)
                                         : "frames " + std::to_string(m.first_frame) + "-" +
                                               std::to_string(m.last_frame);
}

}  // namespace

ReplayResult run_replay(const ReplayOptions& o, const Registry& registry) {
    ReplayResult result;
    ExtractOptions eo;
    eo.protocol = o.protocol;
    eo.keylog = o.keylog;
    std::vector<StreamProblem> problems;
    auto all = extract_file(o.pcap, registry, eo, &problems);
    if (all.empty()) throw std::runtime_error("no messages of a known protocol in " + o.pcap);
    std::uint64_t stream = o.stream.value_or(all.front().stream);
    std::vector<ExtractedMessage> msgs;
    for (auto& m : all)
        if (m.stream == stream) msgs.push_back(std::move(m));
    if (msgs.empty()) throw std::runtime_error("stream " + std::to_string(stream) + " has no messages of a known protocol");
    result.stream = stream;
    result.protocol = msgs.front().protocol;
    const ProtocolInfo* proto = registry.protocol(result.protocol);
    for (const auto& m : msgs)
        if (!m.decoded.session_id.empty()) result.session_id = m.decoded.session_id;

    DeterministicRng rng(o.seed);
    std::unique_ptr<StreamCodec> codec = proto->make_codec(o.keylog);
    std::unique_ptr<LiveClient> live;
    if (o.rewrap) {
        if (!proto->make_live_client) throw std::runtime_error(proto->id + " has no re-wrapping client");
        live = proto->make_live_client(SystemClock::instance(), SystemRng::instance());
    }

    // The plan: the client's messages, as captured or re-sealed later.
    std::vector<PlannedMessage> plan, reflections;
    std::vector<const ExtractedMessage*> reseal;  // plan index -> captured message to re-seal
    std::size_t client_index = 0;
    for (const auto& m : msgs) {
        PlannedMessage p;
        p.bytes = m.bytes;
        p.authenticated = m.decoded.authenticated;
        p.frames = {m.first_frame, m.last_frame};
        if (m.from == Peer::server) {
            p.origin = "captured server message (" + frames_text(m) + ")";
            reflections.push_back(std::move(p));
            continue;
        }
        p.captured_index = client_index++;
        p.origin = "captured #" + std::to_string(*p.captured_index) + " " + m.decoded.type + " (" + frames_text(m) + ")";
        if (o.rewrap) {
            if (!m.decoded.authenticated) continue;  // the live client runs its own handshake
            if (!m.decoded.plaintext)
                throw std::runtime_error("--rewrap needs the session's key: no key log line for session " +
                                         (m.decoded.session_id.empty() ? std::string("?") : m.decoded.session_id) +
                                         (o.keylog ? "" : " (give --keylog)"));
            p.origin = "re-sealed #" + std::to_string(*p.captured_index) + " " + m.decoded.type + " (" + frames_text(m) + ")";
            reseal.push_back(&m);
        } else if (p.authenticated) {
            p.probe = Probe::replay;
        }
        plan.push_back(std::move(p));
    }
    if (o.rewrap) reflections.clear();  // in a fresh session only live reflections mean anything

    Connection conn(o.target, o.connect_timeout);

    auto count_messages = [&](ByteView bytes, std::vector<std::string>* types) {
        // Whole server messages in what arrived, decoded for the record.
        std::size_t n = 0, pos = 0;
        while (pos < bytes.size()) {
            auto len = codec->frame(Peer::server, bytes.subspan(pos));
            if (!len || *len == 0 || *len > bytes.size() - pos) break;
            if (types) types->push_back(codec->decode(Peer::server, bytes.subspan(pos, *len)).type);
            pos += *len;
            ++n;
        }
        return n;
    };

    Bytes last_from_target;
    if (live) {
        // Fresh handshake, then re-seal each captured plaintext with its captured timestamp.
        for (const auto& b : live->start()) conn.send(b);
        auto until = Steady::now() + std::chrono::duration<double>(o.connect_timeout);
        while (!live->established() && !conn.closed() && Steady::now() < until) {
            Bytes got = conn.receive(0.05, [](const Bytes& g) { return !g.empty(); });
            if (got.empty()) continue;
            auto fed = live->feed(got);
            for (const auto& b : fed.to_send) conn.send(b);
            if (fed.closed) throw std::runtime_error("the target's handshake failed: " + *fed.closed);
        }
        if (!live->established())
            throw std::runtime_error(conn.closed() ? "the target closed the connection during the handshake"
                                                   : "no handshake from the target within the timeout");
        result.live_key = live->keylog_entry();
        std::uint64_t now = SystemClock::instance().unix_seconds();
        std::size_t r = 0;
        for (auto& p : plan) {
            const ExtractedMessage& m = *reseal[r++];
            p.bytes = live->seal(*m.decoded.plaintext, m.decoded.timestamp);
            if (m.decoded.timestamp && *m.decoded.timestamp + 300 < now) p.probe = Probe::stale;
        }
    }

    for (const auto& spec : o.mutations) {
        auto done = apply_mutation(spec, plan, reflections, *codec, rng);
        if (!done) throw std::runtime_error("--mutate " + spec.text + ": " + done.error());
        result.mutation_log.push_back(*done);
    }

    for (auto& p : plan) {
        MessageOutcome out;
        out.message = p;
        if (conn.closed()) {
            result.outcomes.push_back(std::move(out));
            continue;
        }
        if (p.live_reflection) {
            if (last_from_target.empty()) {
                out.message.origin += " (the target had sent nothing to reflect)";
                result.outcomes.push_back(std::move(out));
                continue;
            }
            out.message.bytes = last_from_target;
        }
        conn.send(out.message.bytes);
        Bytes got = conn.receive(o.wait_seconds, [](const Bytes&) { return false; });
        if (live && !got.empty()) live->feed(got);
        out.replies = count_messages(got, &out.reply_types);
        if (!got.empty()) {
            // The target's latest whole message, for a live reflection.
            std::size_t pos = 0;
            while (pos < got.size()) {
                auto len = codec->frame(Peer::server, ByteView(got).subspan(pos));
                if (!len || *len == 0 || *len > got.size() - pos) break;
                last_from_target.assign(got.begin() + static_cast<std::ptrdiff_t>(pos),
                                        got.begin() + static_cast<std::ptrdiff_t>(pos + *len));
                pos += *len;
            }
        }
        out.verdict = conn.closed() ? Verdict::closed : got.empty() ? Verdict::silent : Verdict::answered;
        result.outcomes.push_back(std::move(out));
    }
    result.target_closed = conn.closed();

    // Findings: a probe the target took without closing the connection.
    for (const auto& out : result.outcomes) {
        if (out.verdict != Verdict::answered && out.verdict != Verdict::silent) continue;
        const char* code = nullptr;
        switch (out.message.probe) {
            case Probe::replay: code = "REPLAY_ACCEPTED"; break;
            case Probe::reflection: code = "REFLECTION_ACCEPTED"; break;
            case Probe::tamper: code = out.message.authenticated ? "MAC_NOT_VERIFIED" : nullptr; break;
            case Probe::stale: code = "STALE_MESSAGE_ACCEPTED"; break;
            case Probe::none: break;
        }
        if (!code) continue;
        Finding f = Finding::make(code, result.protocol, o.target.to_string(), "replay");
        f.confidence = out.verdict == Verdict::answered ? Confidence::firm : Confidence::tentative;
        f.session_id = result.session_id;
        f.evidence.pcap = o.pcap;
        for (auto fr : out.message.frames)
            if (f.evidence.frames.empty() || f.evidence.frames.back() != fr) f.evidence.frames.push_back(fr);
        f.evidence.bytes_hex = hex(ByteView(out.message.bytes).first(std::min<std::size_t>(64, out.message.bytes.size())));
        f.evidence.detail = out.message.origin + ": the target " +
                            (out.verdict == Verdict::answered ? "answered (" + std::to_string(out.replies) + " message(s))"
                                                              : std::string("stayed silent and kept the connection open"));
        f.reproduce = o.command_line;
        result.findings.push_back(std::move(f));
    }
    return result;
}

}  // namespace msglab::replay
