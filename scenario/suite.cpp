#include "scenario/suite.hpp"

#include <filesystem>
#include <map>

namespace msglab::scenario {

nlohmann::json scenario_row(const RunResult& r, const std::string& label, const std::string& trace) {
    nlohmann::json j = {{"id", label},
                        {"title", r.trace.title},
                        {"protocol", r.trace.protocol},
                        {"outcome", outcome_name(r.outcome)},
                        {"finding", r.trace.finding},
                        {"severity", severity_name(r.trace.severity)},
                        {"cwe", r.trace.cwe},
                        {"duration_s", r.seconds},
                        {"message", r.message},
                        {"covers", r.trace.covers},
                        {"trace", trace}};
    if (r.failed_step) j["failed_step"] = r.failed_step;
    return j;
}

std::optional<Scenario> library_sanity(const std::string& library_root, const std::string& protocol) {
    for (const auto& f : scenario_files((std::filesystem::path(library_root) / protocol).string())) {
        try {
            Scenario s = load_scenario(f);
            if (s.sanity) return s;
        } catch (const ScenarioError&) {
            // `msglab scenario check` reports broken library files.
        }
    }
    return std::nullopt;
}

SuiteRun run_suite(const std::vector<Scenario>& scenarios, const RunOptions& options, const std::string& library_root,
                   bool add_sanity, const std::function<void(const RunResult&, const std::string& label)>& on_result) {
    std::map<std::string, Scenario> sanity;
    std::vector<const Scenario*> body;
    for (const auto& s : scenarios) {
        if (s.sanity) sanity.emplace(s.protocol, s);
        else body.push_back(&s);
    }
    if (add_sanity)
        for (const auto* s : body)
            if (!sanity.count(s->protocol))
                if (auto found = library_sanity(library_root, s->protocol)) sanity.emplace(s->protocol, *found);

    SuiteRun run;
    auto one = [&](const Scenario& s, const std::string& label) {
        run.results.push_back(run_scenario(s, options));
        run.labels.push_back(label);
        if (on_result) on_result(run.results.back(), label);
        return run.results.back().outcome;
    };
    for (const auto& [protocol, s] : sanity) {
        if (one(s, s.id) == Outcome::pass) continue;
        const RunResult& r = run.results.back();
        run.unreachable = r.unreachable;
        run.unhealthy = !r.unreachable;
        run.stop_reason = r.unreachable ? "no endpoint at " + options.target.to_string() + " (" + r.message +
                                              "): nothing was tested"
                                        : options.target.to_string() + " fails the " + protocol + " sanity scenario (" +
                                              r.message + "): the other scenarios would mean nothing";
        return run;
    }
    for (const auto* s : body) one(*s, s->id);
    for (const auto& [protocol, s] : sanity) {
        if (one(s, s.id + "-end") != Outcome::pass) {
            run.healthy_at_end = false;
            run.stop_reason = "the target no longer passes the " + protocol +
                              " sanity scenario after the run: a scenario may have crashed or wedged it";
        }
    }
    return run;
}

}  // namespace msglab::scenario
