// The Signal-style chat's scenario library (probe steps) and hunts against
// in-process relays with their echo bot, clean and with each plant: each
// plant's scenarios FAIL against it and PASS against the clean server; the
// design findings are XFAIL everywhere; a hunt of the clean server shows
// only the design findings and every plant is detected.
#include <catch2/catch.hpp>

#include "core/registry.hpp"
#include "library_checks.hpp"
#include "signal_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;

TEST_CASE("Signal's library covers every plant and design finding and round-trips", "[scenario][signal]") {
    check_library_shape("signal", 9);
}

TEST_CASE("Against the clean Signal server every plant scenario passes and design findings are XFAIL",
          "[scenario][signal]") {
    check_outcomes("signal", run_on_one_server<SignalServer>("signal"), nullptr);
}

TEST_CASE("Each Signal plant's scenarios FAIL against it, and only they", "[scenario][signal]") {
    for (const auto* plant : Registry::builtin().plants_of("signal"))
        check_outcomes("signal", run_on_one_server<SignalServer>("signal"), plant);
}
