// The pieces of `msglab fuzz` (libFuzzer mode) that do not need a terminal:
// the target catalogue, reading libFuzzer's status lines and sanitizer
// reports, crash signatures for de-duplication, and running a child process
// while reading its output line by line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace msglab::cli::fuzz {

struct TargetInfo {
    std::string name;         // secmsg_session: binary <name>_fuzzer, corpus/<name>, dicts/<name>.dict
    std::string protocol;     // for findings: "secmsg", or "core" for shared parsers
    bool stateful = false;
    std::string description;
    // The executions per second `make bench` holds it to: 10,000 for wire
    // parsers, 1,000 for stateful targets and whole-document parsers.
    std::uint64_t goal_exec_per_sec = 10000;
};
const std::vector<TargetInfo>& targets();
const TargetInfo* find_target(std::string_view name);

// libFuzzer's progress, from its status lines in plain and fork mode:
//   #1293  NEW    cov: 1519 ft: 5279 corp: 133/1774b lim: 18 exec/s: 4000 rss: 73Mb ...
//   #8960: cov: 3477 ft: 5238 corp: 143 exec/s 1975 oom/timeout/crash: 0/0/1 time: 3s job: 2 ...
struct Status {
    std::uint64_t executions = 0;
    std::uint64_t exec_per_sec = 0;
    std::uint64_t coverage = 0;  // covered edges ("cov")
    std::uint64_t features = 0;  // "ft"
    std::uint64_t corpus = 0;    // inputs in the corpus
    std::uint64_t ooms = 0, timeouts = 0, crashes = 0;  // fork mode's counters
};
// Updates `status` from one line; false (and no change) when the line is not
// a status line.
bool parse_status_line(std::string_view line, Status& status);

// What a sanitizer, libFuzzer or an invariant check said about one crash.
struct CrashReport {
    std::string kind;                 // "heap-buffer-overflow", "undefined-behavior", "timeout", ...
    std::string summary;              // the SUMMARY line, or the first error line
    std::vector<std::string> frames;  // "msglab::secmsg::Session::handle_packet session.cpp:129"
    // kind and the top project frames: equal signatures are one bug.
    std::string signature() const;
    bool empty() const { return kind.empty(); }
};
// Reads the first report in `log` (a reproducer run's output). Frames from
// the sanitizer runtime, libFuzzer and the C library are left out.
CrashReport parse_crash_report(std::string_view log);

// Artifact files libFuzzer wrote with -artifact_prefix (crash-, leak-,
// timeout-, oom-), sorted by name.
std::vector<std::string> list_artifacts(const std::string& dir);

// Runs `argv` with `env` added to the environment, stdout and stderr merged,
// calling `on_line` for each line as it comes. Kills the child's process
// group after `limit`. Returns the exit status (128+signal when killed by a
// signal) and sets `*timed_out` when the limit killed it. Throws
// std::runtime_error when the program cannot be started.
int run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                std::chrono::seconds limit, const std::function<void(const std::string&)>& on_line,
                bool* timed_out = nullptr);

// Set from a SIGINT handler: run_process passes the interrupt on to the
// child's process group (which the terminal does not reach) and lets it
// finish for a few seconds.
std::atomic<bool>& interrupted();

// A shell command line for `argv` (and `env`), to show or to reproduce with.
std::string shell_command(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});

}  // namespace msglab::cli::fuzz
