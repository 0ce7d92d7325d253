// A connected socket's peer as a person reads it: "127.0.0.1:40000",
// "[::1]:40000", or "?" once the socket is gone.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace msglab {

inline std::string peer_text(const boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) return "?";
    std::string addr = ep.address().to_string();
    if (ep.address().is_v6()) addr = "[" + addr + "]";
    return addr + ":" + std::to_string(ep.port());
}

}  // namespace msglab
