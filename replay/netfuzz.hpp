// The network fuzzer: a campaign against a live endpoint (`msglab fuzz
// --protocol P --target HOST:PORT`).
//
// Each iteration opens a fresh connection, runs the handshake through the
// protocol's live client and plays a plan of steps: the handshake, data
// messages sealed in the live session, perhaps a replayed, reflected or
// reordered message, a second handshake or a reconnect, then a close. One or
// more steps at any position, the handshake included, are mutated: bit flips,
// field-aware values (length, type, timestamp, weak key shares, MAC),
// truncation, random tails, writes split in pieces. After each step the
// target's reaction is recorded (answered, silent, FIN, RST) and its state
// inferred from the protocol's session model (ProtocolInfo::session_model),
// so coverage is counted in states and transitions of that machine, and a
// target that keeps a connection open after a message a clean peer must
// refuse yields the model's finding. Between iterations the fuzzer checks the
// target still completes a valid handshake; one that stops accepting or
// answering is a CRASH, with the iterations since it was last seen alive
// written as a reproducer.
//
// Every choice comes from the seed: iteration N of seed S is the same plan
// and the same mutations whenever it runs, which is what a reproducer replays.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/findings.hpp"
#include "core/registry.hpp"

namespace msglab::replay {

struct NetFuzzOptions {
    HostPort target;
    double seconds = 60;                      // campaign length
    std::optional<std::uint64_t> iterations;  // stop after this many as well
    std::uint64_t seed = 0;
    double reply_timeout = 0.3;  // longest wait for the target's reaction to one step
    double connect_timeout = 5;
    bool stop_on_crash = false;
    double restart_wait = 10;  // how long a target that went down may take to come back
    std::string out_dir;       // reproducers go to out_dir/repro/; none when empty
    std::string command;       // "msglab fuzz --protocol P --target H:P": the base of reproduce commands
};

enum class Reaction { answered, silent, closed, reset, not_sent };
const char* reaction_name(Reaction r);

// One step of an iteration, as sent and as the target took it.
struct StepRecord {
    std::size_t position = 0;  // in the iteration's plan
    std::string kind;          // connect, handshake, data, hold, release, repeat, reflect, foreign, rehandshake, close
    std::string origin;        // what the step is, in words
    std::string input;         // the session model's input ("REGULAR_MESSAGE!replay")
    std::vector<std::string> mutations;  // in `msglab replay --mutate` syntax where it has one
    Bytes bytes;                         // exactly what was written
    std::vector<std::size_t> writes;     // sizes of the writes when split
    Reaction reaction = Reaction::not_sent;
    std::vector<std::string> answers;  // types of the messages the target sent
    std::string output;                // "HANDSHAKE_RESPONSE", "silent", "FIN", "RST", ...
    std::string from, to;              // the target's state before and after
    bool expected = true;              // (from, input, to) is in the clean model
    bool mutated = false;              // changed, or a plan probe (replay, reflection, reorder, ...)
    std::string note;                  // why it was not sent; what was judged
};

struct IterationRecord {
    std::uint64_t index = 0;
    std::vector<StepRecord> steps;
};

struct CoverageEdge {
    std::string from, input, to;
    std::uint64_t count = 0;
    std::map<std::string, std::uint64_t> outputs;
    bool expected = true;  // in the clean model
};

struct Coverage {
    std::map<std::string, std::uint64_t> visits;  // times the target was seen in each state
    std::vector<CoverageEdge> edges;              // observed transitions, first seen first

    void add(const std::string& from, const std::string& input, const std::string& to, const std::string& output,
             bool expected);
    // Takes back one add(): a reaction that turned out to be another.
    void retract(const std::string& from, const std::string& input, const std::string& to, const std::string& output);
    std::size_t states_reached(const SessionModel& model) const;
    // Clean-model transitions that some observed transition took.
    bool reached(const SessionModel& model, const SessionModel::Transition& t) const;
    std::size_t transitions_reached(const SessionModel& model) const;
    std::size_t unexpected() const;
};

struct NetFuzzStats {
    std::uint64_t iterations = 0;
    std::uint64_t steps = 0;  // messages and closes sent
    std::uint64_t connections = 0;
    std::uint64_t mutated_steps = 0;
    std::vector<std::uint64_t> mutated_at;  // mutated steps by plan position (0 is the handshake)
    std::uint64_t mutated_before_last = 0;  // mutated steps that were not the plan's last message
    std::uint64_t answered = 0, silent = 0, closed = 0, reset = 0, not_sent = 0;
    std::uint64_t unanswered = 0;  // silent where the model says an answer is due
    std::uint64_t liveness_checks = 0, crashes = 0, restarts = 0;
    double seconds = 0;
};

struct FuzzFinding {
    Finding finding;
    std::uint64_t count = 1;  // times it was seen; the finding is the first, or the first firm one
};

struct NetFuzzResult {
    NetFuzzStats stats;
    Coverage coverage;
    std::vector<FuzzFinding> findings;  // one per code
    std::vector<std::string> reproducers;
    std::string stop_reason;
    bool target_alive = true;
};

// The target could not be reached, or did not complete a valid handshake,
// before anything was sent: "no endpoint at 127.0.0.1:1: connection refused".
struct TargetUnreachable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Sees the campaign so far; it may set the stop flag.
using NetFuzzProgress = std::function<void(const NetFuzzResult& so_far)>;

// Runs a campaign until options.seconds or options.iterations, `*stop`, or a
// target that went down (and did not come back). Calls `progress` about four
// times a second. Throws TargetUnreachable, and std::invalid_argument for a
// protocol without a session model or a live client.
NetFuzzResult run_netfuzz(const NetFuzzOptions& options, const ProtocolInfo& protocol,
                          const NetFuzzProgress& progress = {}, const std::atomic<bool>* stop = nullptr);

// Runs again the iterations a reproducer file names, with its seed, against
// options.target, then checks the target is still alive. One line per step
// goes to `log`. Throws std::runtime_error for an unreadable file.
NetFuzzResult reproduce_netfuzz(const NetFuzzOptions& options, const ProtocolInfo& protocol, const std::string& file,
                                std::ostream* log = nullptr);

// The state graph in Graphviz DOT: states as nodes, observed transitions as
// edges labelled "input / output (count)"; clean-model states and transitions
// never reached dashed grey, transitions outside the clean model red. The
// caption, when given, is drawn above the graph.
std::string state_graph_dot(const ProtocolInfo& protocol, const Coverage& coverage, const std::string& caption = {});
// The coverage summary as a text table.
std::string coverage_table(const SessionModel& model, const Coverage& coverage);
// findings.jsonl, netfuzz-summary.json and state-graph.dot in options.out_dir.
void write_netfuzz_outputs(const NetFuzzOptions& options, const ProtocolInfo& protocol, const NetFuzzResult& result);

}  // namespace msglab::replay
