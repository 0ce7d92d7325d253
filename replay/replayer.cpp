#include "replay/replayer.hpp"

#include <chrono>
#include <stdexcept>

#include "replay/tcp_connection.hpp"

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

    TcpConnection conn(o.target, o.connect_timeout);

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
        // A whole answer counts even when the target closed right after it
        // (SLMP answers its one request and closes).
        out.verdict = out.replies > 0 ? Verdict::answered
                      : conn.closed() ? Verdict::closed
                      : got.empty()   ? Verdict::silent
                                      : Verdict::answered;
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
