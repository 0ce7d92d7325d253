// CSMP's scenario library (probe steps) and hunts against in-process
// reference servers, clean and with each plant: each plant's scenarios FAIL
// against it and PASS against the clean server; the design findings are
// XFAIL everywhere; a hunt of the clean server shows only the design
// findings and every plant is detected.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "core/registry.hpp"
#include "csmp_server.hpp"
#include "library_checks.hpp"
#include "scenario/hunt.hpp"
#include "scenario/runner.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;
namespace fs = std::filesystem;

namespace {

const fs::path kCsmpLibrary = fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "csmp";

}  // namespace

TEST_CASE("CSMP's library covers every plant and design finding and round-trips", "[scenario][csmp]") {
    check_library_shape("csmp", 10);
}

TEST_CASE("Against the clean CSMP server every plant scenario passes and design findings are XFAIL",
          "[scenario][csmp]") {
    check_outcomes("csmp", run_on_one_server<CsmpServer>("csmp"), nullptr);
}

TEST_CASE("Each CSMP plant's scenarios FAIL against it, and only they", "[scenario][csmp]") {
    for (const auto* plant : Registry::builtin().plants_of("csmp"))
        check_outcomes("csmp", run_on_one_server<CsmpServer>("csmp"), plant);
}

TEST_CASE("probe steps: the trace records the check and its evidence, a missing file or check is an ERROR",
          "[scenario][csmp]") {
    CsmpServer planted({"csmp.room-no-acl"});
    RunOptions o;
    o.target = planted.target();
    RunResult r = run_scenario(load_scenario((kCsmpLibrary / "room-acl.yaml").string()), o);
    CHECK(r.outcome == Outcome::fail);
    std::string trace = to_yaml(r.trace);
    CHECK(trace.find("check: room-acl") != std::string::npos);
    CHECK(trace.find("GET /history: 200") != std::string::npos);
    // The at-rest check needs the server's database.
    r = run_scenario(load_scenario((kCsmpLibrary / "at-rest-key.yaml").string()), o);
    CHECK(r.outcome == Outcome::error);
    CHECK(r.message.find("needs the server's database file") != std::string::npos);
    Scenario unknown = parse_scenario("id: x\ntitle: t\nprotocol: csmp\nfinding: HARDCODED_KEY\nsteps:\n  - probe: {check: nope}\n");
    r = run_scenario(unknown, o);
    CHECK(r.outcome == Outcome::error);
    CHECK(r.message.find("protocol csmp has no check 'nope' (it has: health,") != std::string::npos);
    o.target = {"127.0.0.1", 1};
    r = run_scenario(load_scenario((kCsmpLibrary / "sanity.yaml").string()), o);
    CHECK(r.outcome == Outcome::error);
    CHECK(r.unreachable);
}

TEST_CASE("A hunt of the clean CSMP server finds only its design findings, every plant is detected",
          "[hunt][csmp]") {
    check_hunts<CsmpServer>("csmp");
}
