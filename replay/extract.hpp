// Messages out of a capture: reassembled TCP streams matched to a protocol
// (forced, by the server port, or by the protocol's heuristic) and cut into
// messages by that protocol's codec.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/registry.hpp"
#include "replay/tcp_reassembly.hpp"

namespace msglab::replay {

struct ExtractedMessage {
    std::uint64_t stream = 0;
    Peer from = Peer::client;
    Address src, dst;
    std::string protocol;
    std::uint64_t first_frame = 0;  // where its first byte arrived
    std::uint64_t last_frame = 0;   // where it was complete
    double time = 0;                // capture time of last_frame
    std::uint64_t index = 0;        // position in its stream, both directions, from 0
    Bytes bytes;
    DecodedMessage decoded;
};

// A stream that could not be decoded (further): why, and where.
struct StreamProblem {
    std::uint64_t stream = 0;
    std::optional<Peer> from;  // the direction concerned, if one
    std::uint64_t frame = 0;
    std::string what;
};

struct ExtractOptions {
    std::optional<std::string> protocol;  // force one protocol for every stream
    const KeyLog* keylog = nullptr;
    bool decode = true;  // false: cut messages only (faster)
};

class MessageExtractor final : public ReassemblyHandler {
public:
    MessageExtractor(const Registry& registry, ExtractOptions options,
                     std::function<void(const ExtractedMessage&)> on_message,
                     std::function<void(const StreamProblem&)> on_problem = {});
    ~MessageExtractor() override;

    void on_stream_open(std::uint64_t stream, const Address& client, const Address& server,
                        const FrameInfo& frame) override;
    void on_data(std::uint64_t stream, Direction dir, ByteView data, const FrameInfo& frame) override;
    void on_gap(std::uint64_t stream, Direction dir, std::uint64_t missing, const FrameInfo& frame) override;
    void on_stream_close(std::uint64_t stream, const FrameInfo& frame) override;

    std::uint64_t messages() const { return m_messages; }
    std::uint64_t streams_matched() const { return m_matched; }

private:
    struct Stream;
    void cut(Stream& s, std::uint64_t stream, Direction dir, const FrameInfo& frame);
    const ProtocolInfo* choose(const Stream& s, ByteView first_client_bytes) const;

    const Registry& m_registry;
    ExtractOptions m_options;
    std::function<void(const ExtractedMessage&)> m_on_message;
    std::function<void(const StreamProblem&)> m_on_problem;
    std::unordered_map<std::uint64_t, std::unique_ptr<Stream>> m_streams;
    std::uint64_t m_messages = 0;
    std::uint64_t m_matched = 0;
};

// Every message of a capture, for callers that want them all in memory
// (replay works on one stream). Problems are appended to `problems`.
std::vector<ExtractedMessage> extract_file(const std::string& path, const Registry& registry,
                                           const ExtractOptions& options, std::vector<StreamProblem>* problems,
                                           std::optional<std::uint64_t> only_stream = std::nullopt);

}  // namespace msglab::replay
