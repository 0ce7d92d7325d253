#include "replay/extract.hpp"

#include <deque>

namespace msglab::replay {

struct MessageExtractor::Stream {
    Address client, server;
    bool decided = false;
    const ProtocolInfo* protocol = nullptr;
    std::unique_ptr<StreamCodec> codec;
    struct Side {
        Bytes buffer;
        std::uint64_t consumed = 0;  // stream offset of buffer[0]
        // (stream offset of a segment's first byte, its frame): the frames
        // a message's bytes came from.
        std::deque<std::pair<std::uint64_t, FrameInfo>> segments;
        bool broken = false;
    } side[2];
    std::uint64_t index = 0;
};

MessageExtractor::MessageExtractor(const Registry& registry, ExtractOptions options,
                                   std::function<void(const ExtractedMessage&)> on_message,
                                   std::function<void(const StreamProblem&)> on_problem)
    : m_registry(registry),
      m_options(std::move(options)),
      m_on_message(std::move(on_message)),
      m_on_problem(std::move(on_problem)) {}

MessageExtractor::~MessageExtractor() = default;

void MessageExtractor::on_stream_open(std::uint64_t stream, const Address& client, const Address& server,
                                      const FrameInfo&) {
    auto s = std::make_unique<Stream>();
    s->client = client;
    s->server = server;
    m_streams[stream] = std::move(s);
}

const ProtocolInfo* MessageExtractor::choose(const Stream& s, ByteView first) const {
    if (m_options.protocol) return m_registry.protocol(*m_options.protocol);
    for (const auto& p : m_registry.protocols())
        if (p.detect && p.make_codec && p.detect(first)) return &p;
    for (const auto& p : m_registry.protocols())
        if (p.make_codec && (s.server.port == p.default_port || s.client.port == p.default_port)) return &p;
    return nullptr;
}

void MessageExtractor::on_data(std::uint64_t stream, Direction dir, ByteView data, const FrameInfo& frame) {
    auto it = m_streams.find(stream);
    if (it == m_streams.end()) return;
    Stream& s = *it->second;
    auto& side = s.side[static_cast<int>(dir)];
    if (side.broken) return;
    if (s.decided && !s.protocol) return;
    side.segments.emplace_back(side.consumed + side.buffer.size(), frame);
    side.buffer.insert(side.buffer.end(), data.begin(), data.end());
    if (!s.decided) {
        // Heuristics look at the first few bytes; wait for them.
        if (side.buffer.size() < 8 && !m_options.protocol) return;
        s.decided = true;
        s.protocol = choose(s, side.buffer);
        if (!s.protocol) {
            s.side[0] = {};
            s.side[1] = {};
            return;
        }
        ++m_matched;
        s.codec = s.protocol->make_codec(m_options.keylog);
        // Bytes the other side sent before the decision wait in its buffer.
        auto other = dir == Direction::client_to_server ? Direction::server_to_client : Direction::client_to_server;
        if (!s.side[static_cast<int>(other)].buffer.empty()) cut(s, stream, other, frame);
    }
    cut(s, stream, dir, frame);
}

void MessageExtractor::cut(Stream& s, std::uint64_t stream, Direction dir, const FrameInfo& frame) {
    auto& side = s.side[static_cast<int>(dir)];
    Peer from = dir == Direction::client_to_server ? Peer::client : Peer::server;
    std::size_t pos = 0;
    while (pos < side.buffer.size()) {
        ByteView rest(side.buffer.data() + pos, side.buffer.size() - pos);
        auto len = s.codec->frame(from, rest);
        if (!len) {
            if (m_on_problem)
                m_on_problem({stream, from, frame.frame,
                              s.protocol->id + " framing failed at stream offset " +
                                  std::to_string(side.consumed + pos) + ": " + len.error().to_string() +
                                  "; the rest of this direction is not decoded"});
            side.broken = true;
            side.buffer.clear();
            side.segments.clear();
            return;
        }
        if (*len == 0 || rest.size() < *len) break;
        std::uint64_t start = side.consumed + pos, end = start + *len - 1;
        ExtractedMessage m;
        m.stream = stream;
        m.from = from;
        m.src = from == Peer::client ? s.client : s.server;
        m.dst = from == Peer::client ? s.server : s.client;
        m.protocol = s.protocol->id;
        m.index = s.index++;
        for (const auto& [offset, f] : side.segments) {
            if (offset <= start) m.first_frame = f.frame;
            if (offset <= end) {
                m.last_frame = f.frame;
                m.time = f.time();
            }
        }
        ByteView bytes = rest.first(*len);
        if (m_options.decode) m.decoded = s.codec->decode(from, bytes);
        m.bytes.assign(bytes.begin(), bytes.end());
        ++m_messages;
        m_on_message(m);
        pos += *len;
        while (side.segments.size() > 1 && side.segments[1].first <= side.consumed + pos) side.segments.pop_front();
    }
    side.buffer.erase(side.buffer.begin(), side.buffer.begin() + static_cast<std::ptrdiff_t>(pos));
    side.consumed += pos;
}

void MessageExtractor::on_gap(std::uint64_t stream, Direction dir, std::uint64_t missing, const FrameInfo& frame) {
    auto it = m_streams.find(stream);
    if (it == m_streams.end()) return;
    Stream& s = *it->second;
    auto& side = s.side[static_cast<int>(dir)];
    Peer from = dir == Direction::client_to_server ? Peer::client : Peer::server;
    if (m_on_problem && !side.broken)
        m_on_problem({stream, from, frame.frame,
                      std::to_string(missing) + " bytes missing from the capture (a gap); the rest of this direction "
                                                "is not decoded"});
    side.broken = true;
    side.buffer.clear();
    side.segments.clear();
}

void MessageExtractor::on_stream_close(std::uint64_t stream, const FrameInfo& frame) {
    auto it = m_streams.find(stream);
    if (it == m_streams.end()) return;
    Stream& s = *it->second;
    for (int d = 0; d < 2; ++d) {
        if (s.protocol && !s.side[d].broken && !s.side[d].buffer.empty() && m_on_problem)
            m_on_problem({stream, d == 0 ? Peer::client : Peer::server, frame.frame,
                          std::to_string(s.side[d].buffer.size()) +
                              " bytes at the end of the stream are not a whole message"});
    }
    m_streams.erase(it);
}

std::vector<ExtractedMessage> extract_file(const std::string& path, const Registry& registry,
                                           const ExtractOptions& options, std::vector<StreamProblem>* problems,
                                           std::optional<std::uint64_t> only_stream) {
    std::vector<ExtractedMessage> out;
    MessageExtractor ex(
        registry, options,
        [&](const ExtractedMessage& m) {
            if (!only_stream || m.stream == *only_stream) out.push_back(m);
        },
        [&](const StreamProblem& p) {
            if (problems && (!only_stream || p.stream == *only_stream)) problems->push_back(p);
        });
    TcpReassembler r(ex);
    reassemble_file(path, r);
    return out;
}

}  // namespace msglab::replay
