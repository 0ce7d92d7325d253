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
#include "library_checks.hpp"
#include "spchat_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;
namespace fs = std::filesystem;

TEST_CASE("SP-SimpleChat's library covers every plant and design finding and round-trips", "[scenario][spchat]") {
    check_library_shape("spchat", 9);
}

TEST_CASE("Against the clean SP-SimpleChat server every plant scenario passes and design findings are XFAIL",
          "[scenario][spchat]") {
    check_outcomes("spchat", run_on_one_server<SpchatServer>("spchat"), nullptr);
}

TEST_CASE("Each SP-SimpleChat plant's scenarios FAIL against it, and only they", "[scenario][spchat]") {
    for (const auto* plant : Registry::builtin().plants_of("spchat"))
        check_outcomes("spchat", run_on_one_server<SpchatServer>("spchat"), plant);
}

TEST_CASE("A hunt of the clean SP-SimpleChat server finds only its design findings, every plant is detected",
          "[hunt][spchat]") {
    check_hunts<SpchatServer>("spchat");
}
