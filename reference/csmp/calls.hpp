// CSMP's call signalling (PROTOCOLS.md section 1.5) as an explicit state
// machine, sans-I/O: events in, messages to identities out.
//
//   initiated --callee reached--> ringing --answer--> connected --end--> ended
//   initiated --callee offline--> missed
//   ringing --reject--> rejected      ringing --ring timeout--> missed
//   ringing --end (either party)--> ended
//   connected --no signalling for the call timeout--> ended
//
// Only the two parties may send offers, answers, candidates or ends for a
// call, always to the other party; anything else gets an error message back.
// The original keeps no such state (anyone may answer or end any call id);
// the plant csmp.call-hijack restores that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace msglab::csmp {

using Json = nlohmann::ordered_json;

enum class CallState { initiated, ringing, connected, ended, rejected, missed };
const char* call_state_name(CallState s);

struct Call {
    std::string id;
    std::string caller;
    std::string callee;
    std::string call_type;
    CallState state = CallState::initiated;
    std::uint64_t started_ms = 0;   // call:init
    std::uint64_t updated_ms = 0;   // last signalling event
    std::uint64_t ended_ms = 0;     // 0 while live
};

// One message for one identity's call socket.
struct CallOut {
    std::string to;
    Json message;
};

struct CallConfig {
    std::uint64_t ring_timeout_ms = 30'000;
    std::uint64_t idle_timeout_ms = 4 * 3600 * 1000ull;  // a connected call with no signalling
    std::size_t max_live_calls = 10'000;
    std::size_t max_records = 10'000;  // finished calls kept for the history routes
    std::size_t max_live_per_identity = 8;
    // The original: no party checks, unknown call ids relayed anyway.
    bool any_party = false;
};

class CallBook {
public:
    using IdSource = std::function<std::string()>;
    using Online = std::function<bool(const std::string& identity)>;

    CallBook(CallConfig config, IdSource new_id, Online online);

    // One event from `from`'s call socket (a parsed JSON object). Returns
    // what to send, to whom; an error for the sender when the event is
    // refused. Never throws on any JSON.
    std::vector<CallOut> event(const std::string& from, const Json& message, std::uint64_t now_ms);
    // Calls whose timers ran out: ringing ones become missed, idle connected
    // ones ended; both parties are told.
    std::vector<CallOut> tick(std::uint64_t now_ms);
    // The identity's call socket went away: its ringing and connected calls
    // end and the other party is told.
    std::vector<CallOut> offline(const std::string& identity, std::uint64_t now_ms);

    const Call* find(const std::string& id) const;
    std::size_t live() const { return m_live.size(); }
    // The identity's calls, live and finished, newest first, at most `limit`.
    std::vector<Call> history(const std::string& identity, std::size_t limit) const;

private:
    std::vector<CallOut> init(const std::string& from, const Json& m, std::uint64_t now);
    std::vector<CallOut> relay(const std::string& from, const std::string& type, const Json& m, std::uint64_t now);
    void finish(Call& c, CallState state, std::uint64_t now);
    std::size_t live_of(const std::string& identity) const;

    CallConfig m_config;
    IdSource m_new_id;
    Online m_online;
    std::map<std::string, Call> m_live;
    std::deque<Call> m_records;  // finished, oldest first
};

Json error_message(const std::string& detail, const std::string& code);

}  // namespace msglab::csmp
