// msglab fuzz --protocol P --target HOST:PORT: fuzzing a live endpoint.
#include <iostream>

#include "cli/cli.hpp"

namespace msglab::cli {

int fuzz_network(const std::string&, const Args&) {
    std::cerr << "msglab fuzz: network mode is not available in this build\n";
    return kFailure;
}

}  // namespace msglab::cli
