// SLMP's scenario library and hunts against in-process reference servers,
// clean and with each plant: each plant's scenarios FAIL against it and PASS
// against the clean server; the design findings are XFAIL everywhere; a hunt
// of the clean server shows only the design findings and each plant is
// detected. Also the steps SLMP needs: stall (one peer holds a connection)
// and alive (the target must still accept connections).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/registry.hpp"
#include "echo_server.hpp"
#include "scenario/hunt.hpp"
#include "scenario/runner.hpp"
#include "library_checks.hpp"
#include "slmp_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;
namespace fs = std::filesystem;

namespace {

const fs::path kSlmpLibrary = fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "slmp";

// Each scenario against a server of its own (the crash plant leaves a dead
// server behind).
std::map<std::string, RunResult> run_each(const std::vector<std::string>& plants) {
    std::map<std::string, RunResult> out;
    for (const auto& s : load_library("slmp")) {
        SlmpServer server(plants);
        RunOptions o;
        o.target = server.target();
        out[s.id] = run_scenario(s, o);
    }
    return out;
}

std::map<std::string, std::set<std::string>> by_code(const HuntResult& r) {
    std::map<std::string, std::set<std::string>> m;
    for (const auto& f : r.findings) m[f.code].insert(f.technique);
    return m;
}

HuntResult hunt(const HostPort& target, const fs::path& out) {
    HuntOptions o;
    o.protocol = "slmp";
    o.target = target;
    o.out = out.string();
    o.fuzz_seconds = 2;
    o.library_root = (fs::path(MSGLAB_SOURCE_DIR) / "scenarios").string();
    return run_hunt(o);
}

}  // namespace

TEST_CASE("SLMP's library covers every plant and design finding and round-trips", "[scenario][slmp]") {
    check_library_shape("slmp", 10);
}

TEST_CASE("Against the clean SLMP server every plant scenario passes and design findings are XFAIL", "[scenario][slmp]") {
    check_outcomes("slmp", run_each, nullptr);
}

TEST_CASE("Each SLMP plant's scenarios FAIL against it, and only they", "[scenario][slmp]") {
    for (const auto* plant : Registry::builtin().plants_of("slmp"))
        if (in_process_plant_ok(plant->id)) check_outcomes("slmp", run_each, plant);
}

TEST_CASE("alive: a target that died after accepting is a FAIL, one never there is unreachable", "[scenario][slmp]") {
    Scenario s = load_scenario((kSlmpLibrary / "bad-key.yaml").string());
    SlmpServer crashing({"slmp.crash-on-bad-input"});
    RunOptions o;
    o.target = crashing.target();
    RunResult r = run_scenario(s, o);
    CHECK(crashing.died);
    CHECK(r.outcome == Outcome::fail);
    CHECK(r.message.find("(alive, line") != std::string::npos);
    CHECK(r.message.find("now refuses them") != std::string::npos);
    REQUIRE(r.finding);
    CHECK(r.finding->code == "ENDPOINT_DIES_ON_BAD_INPUT");

    o.target = {"127.0.0.1", 1};
    RunResult dead = run_scenario(s, o);
    CHECK(dead.outcome == Outcome::error);
    CHECK(dead.unreachable);
}

TEST_CASE("stall holds a side connection for the whole scenario", "[scenario][slmp]") {
    Scenario s = load_scenario((kSlmpLibrary / "stalled-client.yaml").string());
    SlmpServer serial({"slmp.serial-server"});
    RunOptions o;
    o.target = serial.target();
    RunResult r = run_scenario(s, o);
    CHECK(r.outcome == Outcome::fail);
    CHECK(r.message.find("got silence") != std::string::npos);
    // The trace records the stalled connection and its opening bytes (a PEM key).
    std::string trace = to_yaml(r.trace);
    CHECK(trace.find("stalled: 127.0.0.1:") != std::string::npos);
    CHECK(trace.find("sent: 2d2d2d2d2d424547494e") != std::string::npos);
    // Once the scenario is over the stalled connection is gone and the serial server serves again.
    Scenario sanity = load_scenario((kSlmpLibrary / "sanity.yaml").string());
    CHECK(run_scenario(sanity, o).outcome == Outcome::pass);
}

TEST_CASE("A hunt of the clean SLMP server finds only SLMP's design findings", "[hunt][slmp]") {
    SlmpServer clean;
    TempDir tmp;
    HuntResult r = hunt(clean.target(), tmp.path());
    REQUIRE(r.stop_reason.empty());
    const auto& design = Registry::builtin().protocol("slmp")->design_findings;
    auto codes = by_code(r);
    for (const auto& [code, techniques] : codes) {
        INFO(code);
        CHECK(std::count(design.begin(), design.end(), code) == 1);
    }
    for (const auto& code : design) CHECK(codes[code].count("scenario") == 1);
    CHECK(fs::exists(tmp / "traces" / "slmp-sanity.yaml"));
    CHECK(fs::exists(tmp / "netfuzz" / "state-graph.dot"));
}

TEST_CASE("A hunt detects every SLMP plant", "[hunt][slmp]") {
    for (const auto* plant : Registry::builtin().plants_of("slmp")) {
        if (!in_process_plant_ok(plant->id)) continue;
        SlmpServer planted({plant->id});
        TempDir tmp;
        HuntResult r = hunt(planted.target(), tmp.path());
        auto codes = by_code(r);
        INFO(plant->id);
        bool detected = false;
        for (const auto& code : plant->detected_by) detected |= !codes[code].empty();
        CHECK(detected);
        if (plant->id == "slmp.static-server-key") {
            // Seen by the scenarios, by replaying the recorded session as it
            // was, and, when capturing works here, in the capture.
            CHECK(codes["STATIC_KEY_REUSE"].count("scenario") == 1);
            CHECK(codes["REPLAY_ACCEPTED"].count("replay") == 1);
            if (geteuid() == 0) CHECK(codes["STATIC_KEY_REUSE"].count("capture") == 1);
        }
    }
}
