// Runs a scenario against a live target over TCP and judges the outcome.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/address.hpp"
#include "core/findings.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "scenario/scenario.hpp"

namespace msglab::scenario {

struct RunOptions {
    HostPort target;
    double connect_timeout = 3.0;
    std::string command_line;          // for the findings' reproduce field
    KeyLogWriter* keylog = nullptr;    // live sessions' keys, so the capture can be decoded
    // Files the target server writes, by key (ProtocolInfo::server_files),
    // for checks that look at them.
    std::map<std::string, std::string> server_files;
};

struct RunResult {
    Outcome outcome = Outcome::error;
    std::string message;       // why, in words ("step 5 (expect): expected close; got REGULAR_MESSAGE")
    int failed_step = 0;       // 1-based; 0 when every step ran
    bool unreachable = false;  // the target refused or dropped the first connection
    double seconds = 0;
    Scenario trace;            // the scenario with every step's record under `trace:`
    std::optional<Finding> finding;  // on FAIL and XFAIL
};

RunResult run_scenario(const Scenario& s, const RunOptions& options, const Registry& registry = Registry::builtin());

}  // namespace msglab::scenario
