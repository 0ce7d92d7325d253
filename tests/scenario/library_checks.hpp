// What every protocol's scenario library is checked for, against in-process
// reference servers: it covers each plant and design finding once, has one
// sanity scenario and round-trips; against the clean server every plant
// scenario passes and the design findings are XFAIL; against each plant the
// scenarios that cover it FAIL with one of its findings, and only they.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/registry.hpp"
#include "support.hpp"
#include "scenario/hunt.hpp"
#include "scenario/runner.hpp"
#include "scenario/scenario.hpp"

namespace msglab::test {

inline std::vector<scenario::Scenario> load_library(const std::string& protocol) {
    std::vector<scenario::Scenario> out;
    auto dir = std::filesystem::path(MSGLAB_SOURCE_DIR) / "scenarios" / protocol;
    for (const auto& f : scenario::scenario_files(dir.string())) out.push_back(scenario::load_scenario(f));
    return out;
}

inline void check_library_shape(const std::string& protocol, std::size_t at_least) {
    auto lib = load_library(protocol);
    REQUIRE(lib.size() >= at_least);
    std::set<std::string> covered;
    int sanity = 0;
    for (const auto& s : lib) {
        CHECK(s.protocol == protocol);
        covered.insert(s.covers.begin(), s.covers.end());
        sanity += s.sanity;
        std::string once = scenario::to_yaml(s);
        CHECK(scenario::to_yaml(scenario::parse_scenario(once, s.source)) == once);
    }
    CHECK(sanity == 1);
    const Registry& reg = Registry::builtin();
    for (const auto* p : reg.plants_of(protocol)) CHECK(covered.count(p->id) == 1);
    for (const auto& code : reg.protocol(protocol)->design_findings) CHECK(covered.count(code) == 1);
}

// Results by scenario id, for the endpoint with `plants`.
using RunLibrary = std::function<std::map<std::string, scenario::RunResult>(const std::vector<std::string>& plants)>;

// `plant` null: the clean endpoint.
inline void check_outcomes(const std::string& protocol, const RunLibrary& run, const PlantInfo* plant) {
    using scenario::Outcome;
    std::vector<std::string> plants;
    if (plant) plants.push_back(plant->id);
    auto results = run(plants);
    for (const auto& s : load_library(protocol)) {
        const auto& r = results[s.id];
        bool targets_it = plant && std::count(s.covers.begin(), s.covers.end(), plant->id) != 0;
        INFO((plant ? plant->id : std::string("clean")) << " / " << s.id << ": " << r.message);
        if (s.xfail) CHECK(r.outcome == Outcome::xfail);
        else CHECK(r.outcome == (targets_it ? Outcome::fail : Outcome::pass));
        if (targets_it) {
            REQUIRE(r.finding);
            CHECK(std::count(plant->detected_by.begin(), plant->detected_by.end(), r.finding->code) == 1);
        }
    }
}

// The whole library against one server of type `Server` built from the
// plants; `files` gives its files to the checks that read them.
template <class Server>
RunLibrary run_on_one_server(const std::string& protocol) {
    return [protocol](const std::vector<std::string>& plants) {
        Server server(plants);
        std::map<std::string, scenario::RunResult> out;
        for (const auto& s : load_library(protocol)) {
            scenario::RunOptions o;
            o.target = server.target();
            if constexpr (requires { server.files(); }) o.server_files = server.files();
            out[s.id] = scenario::run_scenario(s, o);
        }
        return out;
    };
}

// Hunts of a `Server` built clean and with each plant: the clean one shows
// exactly the protocol's design findings, every plant is detected.
template <class Server>
void check_hunts(const std::string& protocol) {
    auto hunt = [&](const Server& s, const std::filesystem::path& out) {
        scenario::HuntOptions o;
        o.protocol = protocol;
        o.target = s.target();
        o.out = out.string();
        o.fuzz_seconds = 1;
        if constexpr (requires { s.files(); }) o.server_files = s.files();
        o.library_root = (std::filesystem::path(MSGLAB_SOURCE_DIR) / "scenarios").string();
        return scenario::run_hunt(o);
    };
    {
        Server clean;
        TempDir tmp;
        scenario::HuntResult r = hunt(clean, tmp.path());
        REQUIRE(r.stop_reason.empty());
        const auto& design = Registry::builtin().protocol(protocol)->design_findings;
        std::set<std::string> codes;
        for (const auto& f : r.findings) codes.insert(f.code);
        CHECK(codes == std::set<std::string>(design.begin(), design.end()));
    }
    for (const auto* plant : Registry::builtin().plants_of(protocol)) {
        Server planted({plant->id});
        TempDir tmp;
        scenario::HuntResult r = hunt(planted, tmp.path());
        INFO(plant->id);
        bool detected = false;
        for (const auto& f : r.findings)
            detected |= std::count(plant->detected_by.begin(), plant->detected_by.end(), f.code) != 0;
        CHECK(detected);
    }
}

}  // namespace msglab::test
