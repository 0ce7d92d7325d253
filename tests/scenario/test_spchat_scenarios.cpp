// SP-SimpleChat's scenario library (probe steps) and hunts against
// in-process reference servers, clean and with each plant: each plant's
// scenarios FAIL against it and PASS against the clean server; the design
// findings are XFAIL everywhere; a hunt of the clean server shows only the
// design findings and every plant is detected.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "core/registry.hpp"
#include "scenario/hunt.hpp"
#include "scenario/runner.hpp"
#include "spchat_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;
namespace fs = std::filesystem;

namespace {

const fs::path kLibrary = fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "spchat";

std::vector<Scenario> library() {
    std::vector<Scenario> out;
    for (const auto& f : scenario_files(kLibrary.string())) out.push_back(load_scenario(f));
    return out;
}

std::map<std::string, RunResult> run_all(const std::vector<std::string>& plants) {
    SpchatServer server(plants);
    std::map<std::string, RunResult> out;
    for (const auto& s : library()) {
        RunOptions o;
        o.target = server.target();
        out[s.id] = run_scenario(s, o);
    }
    return out;
}

}  // namespace

TEST_CASE("SP-SimpleChat's library covers every plant and design finding and round-trips", "[scenario][spchat]") {
    auto lib = library();
    REQUIRE(lib.size() >= 9);
    std::set<std::string> covered;
    int sanity = 0;
    for (const auto& s : lib) {
        CHECK(s.protocol == "spchat");
        covered.insert(s.covers.begin(), s.covers.end());
        sanity += s.sanity;
        std::string once = to_yaml(s);
        CHECK(to_yaml(parse_scenario(once, s.source)) == once);
    }
    CHECK(sanity == 1);
    const Registry& reg = Registry::builtin();
    for (const auto* p : reg.plants_of("spchat")) CHECK(covered.count(p->id) == 1);
    for (const auto& code : reg.protocol("spchat")->design_findings) CHECK(covered.count(code) == 1);
}

TEST_CASE("Against the clean SP-SimpleChat server every plant scenario passes and design findings are XFAIL",
          "[scenario][spchat]") {
    auto results = run_all({});
    for (const auto& s : library()) {
        INFO(s.id << ": " << results[s.id].message);
        CHECK(results[s.id].outcome == (s.xfail ? Outcome::xfail : Outcome::pass));
    }
}

TEST_CASE("Each SP-SimpleChat plant's scenarios FAIL against it, and only they", "[scenario][spchat]") {
    for (const auto* plant : Registry::builtin().plants_of("spchat")) {
        auto results = run_all({plant->id});
        for (const auto& s : library()) {
            bool targets_it = std::count(s.covers.begin(), s.covers.end(), plant->id) != 0;
            INFO(plant->id << " / " << s.id << ": " << results[s.id].message);
            if (s.xfail) CHECK(results[s.id].outcome == Outcome::xfail);
            else CHECK(results[s.id].outcome == (targets_it ? Outcome::fail : Outcome::pass));
            if (targets_it) {
                REQUIRE(results[s.id].finding);
                CHECK(std::count(plant->detected_by.begin(), plant->detected_by.end(), results[s.id].finding->code) == 1);
            }
        }
    }
}

TEST_CASE("A hunt of the clean SP-SimpleChat server finds only its design findings, every plant is detected",
          "[hunt][spchat]") {
    auto hunt = [](const SpchatServer& s, const fs::path& out) {
        HuntOptions o;
        o.protocol = "spchat";
        o.target = s.target();
        o.out = out.string();
        o.fuzz_seconds = 1;
        o.library_root = (fs::path(MSGLAB_SOURCE_DIR) / "scenarios").string();
        return run_hunt(o);
    };
    {
        SpchatServer clean;
        TempDir tmp;
        HuntResult r = hunt(clean, tmp.path());
        REQUIRE(r.stop_reason.empty());
        const auto& design = Registry::builtin().protocol("spchat")->design_findings;
        std::set<std::string> codes;
        for (const auto& f : r.findings) codes.insert(f.code);
        CHECK(codes == std::set<std::string>(design.begin(), design.end()));
    }
    for (const auto* plant : Registry::builtin().plants_of("spchat")) {
        SpchatServer planted({plant->id});
        TempDir tmp;
        HuntResult r = hunt(planted, tmp.path());
        INFO(plant->id);
        bool detected = false;
        for (const auto& f : r.findings)
            detected |= std::count(plant->detected_by.begin(), plant->detected_by.end(), f.code) != 0;
        CHECK(detected);
    }
}
