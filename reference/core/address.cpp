#include "core/address.hpp"

#include <charconv>

namespace msglab {

std::string HostPort::to_string() const {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::optional<std::uint16_t> default_port,
                                        std::string& error) {
    HostPort hp;
    std::string_view port_text;
    if (text.empty()) {
        error = "empty address";
        return std::nullopt;
    }
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            error = "missing ']' in '" + std::string(text) + "'";
            return std::nullopt;
        }
        hp.host = std::string(text.substr(1, close - 1));
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                error = "expected ':' after ']' in '" + std::string(text) + "'";
                return std::nullopt;
            }
            port_text = rest.substr(1);
        }
    } else {
        auto colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon) {
            error = "IPv6 addresses need brackets: [" + std::string(text) + "]:PORT";
            return std::nullopt;
        }
        hp.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) port_text = text.substr(colon + 1);
    }
    if (hp.host.empty()) hp.host = "127.0.0.1";
    if (port_text.empty()) {
        if (!default_port) {
            error = "missing port in '" + std::string(text) + "' (use HOST:PORT)";
            return std::nullopt;
        }
        hp.port = *default_port;
        return hp;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
        error = "bad port '" + std::string(port_text) + "' (0 to 65535)";
        return std::nullopt;
    }
    hp.port = static_cast<std::uint16_t>(value);
    return hp;
}

}  // namespace msglab
