// SOCP's scenario library (probe steps) and hunts against in-process
// reference servers, clean and with each plant: each plant's scenarios FAIL
// against it and PASS against the clean server; the design findings are
// XFAIL everywhere; a hunt of the clean server shows only the design
// findings and every plant is detected.
#include <catch2/catch.hpp>

#include "core/registry.hpp"
#include "library_checks.hpp"
#include "socp_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;

TEST_CASE("SOCP's library covers every plant and design finding and round-trips", "[scenario][socp]") {
    check_library_shape("socp", 11);
}

TEST_CASE("Against the clean SOCP server every plant scenario passes and design findings are XFAIL",
          "[scenario][socp]") {
    check_outcomes("socp", run_on_one_server<SocpServer>("socp"), nullptr);
}

TEST_CASE("Each SOCP plant's scenarios FAIL against it, and only they", "[scenario][socp]") {
    for (const auto* plant : Registry::builtin().plants_of("socp"))
        check_outcomes("socp", run_on_one_server<SocpServer>("socp"), plant);
}

// The hunts (clean: only the design findings; every plant detected) run in
// the SOCP audit test (test_hunt.cpp) against real `msglab serve socp`
// processes; running them here as well would only double the RSA work.
