// host:port parsing for every command that takes an address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace msglab {

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    std::string to_string() const;
};

// Accepts "host:port", "[v6]:port", and, with a default port, "host" alone.
// Returns nullopt with `error` set when the text is not an address.
std::optional<HostPort> parse_host_port(std::string_view text, std::optional<std::uint16_t> default_port,
                                        std::string& error);

}  // namespace msglab
