// What a report is made from: the folder `msglab hunt` writes.
//
//   findings.jsonl  one finding per line (core/findings.hpp)
//   run.json        what ran: target, protocol, plants, techniques, scenarios
//   capture.pcap    the traffic (evidence.pcap names it, relative to the folder)
//   keys.log        the key log, so plaintexts can be shown
//
// Every file is optional, but a folder needs findings.jsonl or run.json to be
// one. Damage in a file is reported as a problem and the rest is used.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/findings.hpp"
#include "report/capture.hpp"

namespace msglab::report {

enum class Outcome { pass, fail, xfail, xpass, error };
const char* outcome_name(Outcome o);  // "PASS", "FAIL", ...
std::optional<Outcome> parse_outcome(std::string_view s);

struct TechniqueCount {
    std::string name;
    std::optional<std::uint64_t> runs;
    std::uint64_t findings = 0;
};

struct ScenarioResult {
    std::string id;
    std::string title;
    Outcome outcome = Outcome::error;
    std::string finding;  // the code it tests for
    std::optional<Severity> severity;
    int cwe = 0;
    std::optional<double> duration_s;
    std::string message;  // why it ended as it did
    std::string trace;    // a file in the folder
};

// run.json; every field optional.
struct RunInfo {
    std::string tool, version, protocol, target, command;
    std::string started;  // ISO 8601 UTC, as the hunt wrote it
    std::optional<double> duration_s;
    std::vector<std::string> plants;
    std::vector<TechniqueCount> techniques;
    std::vector<ScenarioResult> scenarios;
};

struct ReportFinding {
    std::string id;  // "F1", "F2", ... in report order
    Finding finding;
    SessionDiagram diagram;
    std::map<std::uint64_t, ByteRegion> regions;  // evidence frames in the capture file
};

struct Report {
    RunInfo run;
    bool has_run = false;
    bool has_findings_file = false;
    std::vector<ReportFinding> findings;  // by severity (critical first), then code, then file order
    std::vector<std::string> problems;    // damage in the input, one line each
    std::string capture;                  // "capture.pcap" when the folder has one
    std::string keylog;                   // "keys.log" when the folder has one
    std::size_t keylog_secrets = 0;

    // The capture a finding's evidence is in: the one it names, else the
    // folder's when it gives frames or a session to look for; "" for none.
    std::string capture_of(const Finding& f) const;
    // From run.json, else derived from the findings.
    std::string protocol() const;
    std::string target() const;
    // run.json's technique counts, else the findings' techniques with no run counts.
    std::vector<TechniqueCount> techniques() const;
    std::size_t count(Severity s) const;
};

// An input that cannot make a report (no such folder, nothing to report).
struct LoadError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Reads the folder, sorts the findings and draws each one's session from the
// capture. Throws LoadError.
Report load_report(const std::filesystem::path& dir);

}  // namespace msglab::report
