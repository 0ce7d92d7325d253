#pragma once

#include <string>

#include "core/bytes.hpp"

namespace msglab::cli {

// Text for a terminal: printable ASCII and UTF-8 as is, control bytes escaped.
inline std::string printable(ByteView data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size());
    for (std::uint8_t c : data) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c != 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

}  // namespace msglab::cli
