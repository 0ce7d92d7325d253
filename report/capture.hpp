// What the reports take from a hunt's capture: the message sequence of the
// session behind each finding, and where its evidence frames lie in the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/findings.hpp"
#include "core/keylog.hpp"
#include "core/stream_codec.hpp"

namespace msglab::report {

// A diagram shows at most this many messages, the ones nearest the evidence.
constexpr std::size_t kMaxDiagramMessages = 40;
// Plaintext previews are cut to this many characters.
constexpr std::size_t kPreviewChars = 48;

struct DiagramMessage {
    std::uint64_t index = 0;  // position in its stream, both directions, from 0
    std::uint64_t first_frame = 0, last_frame = 0;
    double offset = 0;        // seconds since the stream's first message
    Peer from = Peer::client;
    std::string type;
    std::size_t length = 0;
    std::optional<std::string> preview;  // the plaintext, display-safe, when the key log opens it
    std::vector<std::string> anomalies;
    bool evidence = false;
};

// The session a finding happened in, as a client and a server lifeline.
struct SessionDiagram {
    std::string unavailable;  // why there is no diagram; empty when there is one
    std::string note;         // what the reader should know about a partial diagram
    std::uint64_t stream = 0; // numbered as tshark's tcp.stream
    std::string protocol;
    std::string client, server;  // addresses
    std::string session_id;
    std::uint64_t total = 0;               // messages in the stream
    std::vector<DiagramMessage> messages;  // those shown, in stream order

    bool available() const { return unavailable.empty(); }
    std::uint64_t left_out() const { return total - messages.size(); }
};

// Which of a stream's `total` messages to show: all when they fit, else the
// `max` nearest to the evidence messages (ties go to the earlier one), else
// the first `max` when there is no evidence. Sorted.
std::vector<std::uint64_t> choose_window(std::uint64_t total, const std::vector<std::uint64_t>& evidence,
                                         std::size_t max = kMaxDiagramMessages);

// One diagram per finding, in order: the TCP stream of `pcap` holding the
// finding's evidence frames, else the one whose session id is the finding's.
// `keylog` may be null. Reads the capture twice, streaming, so memory stays
// bounded by the diagrams whatever the capture's size. A capture that cannot
// be read makes every diagram unavailable, saying why.
std::vector<SessionDiagram> session_diagrams(const std::filesystem::path& pcap, const std::vector<const Finding*>& findings,
                                             const KeyLog* keylog);

// Where a frame's bytes lie in its capture file.
struct ByteRegion {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

// The regions of `frames` (numbered from 1) in a classic pcap file; empty for
// pcapng or a file that cannot be read, and without frames the file lacks.
std::map<std::uint64_t, ByteRegion> frame_regions(const std::filesystem::path& pcap,
                                                  const std::vector<std::uint64_t>& frames);

}  // namespace msglab::report
