// Running a set of scenarios the way every front end does: the protocol's
// sanity scenario first (a dead or broken target stops the run and says so)
// and last (a target crashed or wedged by the run shows), the rest between.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "scenario/runner.hpp"

namespace msglab::scenario {

struct SuiteRun {
    std::vector<RunResult> results;    // in run order
    std::vector<std::string> labels;   // the id, "-end" appended for the closing sanity run
    bool unreachable = false;          // the first sanity run could not connect: nothing was tested
    bool unhealthy = false;            // the first sanity run failed: nothing else was run
    bool healthy_at_end = true;
    std::string stop_reason;           // why the run stopped early, in words
};

// One result as a row of run.json's "scenarios" (the report's input; see
// report/model.hpp). `label` names the run (the id, "-end" for the closing
// sanity run); `trace` is the trace file, relative to the run's folder.
nlohmann::json scenario_row(const RunResult& r, const std::string& label, const std::string& trace);

// The sanity scenario of `protocol` from `library_root/<protocol>/`, if any.
std::optional<Scenario> library_sanity(const std::string& library_root, const std::string& protocol);

// `on_result` sees each result as it comes (for progress).
SuiteRun run_suite(const std::vector<Scenario>& scenarios, const RunOptions& options, const std::string& library_root,
                   bool add_sanity, const std::function<void(const RunResult&, const std::string& label)>& on_result);

}  // namespace msglab::scenario
