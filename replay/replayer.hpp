// The L7 replayer: plays the client side of a captured session to a live
// target over a fresh connection, with mutations, and judges each answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/findings.hpp"
#include "core/registry.hpp"
#include "replay/extract.hpp"
#include "replay/mutate.hpp"

namespace msglab::replay {

struct ReplayOptions {
    std::string pcap;
    HostPort target;
    std::optional<std::uint64_t> stream;  // default: the first stream of a known protocol
    std::optional<std::string> protocol;
    std::vector<MutationSpec> mutations;
    std::uint64_t seed = 0;
    // Run a fresh handshake and re-seal the captured plaintexts (read with
    // the key log) in the new session, keeping their captured timestamps.
    bool rewrap = false;
    const KeyLog* keylog = nullptr;
    double wait_seconds = 0.3;     // how long to watch the target after each message
    double connect_timeout = 5.0;
    std::string command_line;      // for the findings' reproduce field
};

enum class Verdict { answered, silent, closed, not_sent };
const char* verdict_name(Verdict v);

struct MessageOutcome {
    PlannedMessage message;
    Verdict verdict = Verdict::not_sent;
    std::size_t replies = 0;              // whole messages the target sent back
    std::vector<std::string> reply_types; // their decoded types
};

struct ReplayResult {
    std::string protocol;
    std::uint64_t stream = 0;
    std::string session_id;  // of the captured session
    std::vector<std::string> mutation_log;
    std::vector<MessageOutcome> outcomes;
    std::vector<Finding> findings;
    std::optional<KeyLogEntry> live_key;  // the fresh session's key (with rewrap)
    bool target_closed = false;
};

// Throws std::runtime_error for what stops the replay before it starts (an
// unreadable capture, no such stream, no key for --rewrap, an unreachable
// target, a mutation that does not apply).
ReplayResult run_replay(const ReplayOptions& options, const Registry& registry);

}  // namespace msglab::replay
