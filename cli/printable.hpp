#pragma once

#include <string>

#include "core/bytes.hpp"

namespace msglab::cli {

// Text for a terminal: printable ASCII and valid UTF-8 as is; control bytes and
// bytes that are not part of a valid UTF-8 sequence escaped as \xNN.
inline std::string printable(ByteView data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size());
    auto escape = [&](std::uint8_t c) {
        out += "\\x";
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    };
    for (std::size_t i = 0; i < data.size();) {
        const std::uint8_t c = data[i];
        if (c == '\\') {
            out += "\\\\";
            ++i;
        } else if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
            ++i;
        } else if (c >= 0xc2 && c <= 0xf4) {
            // A whole, shortest-form UTF-8 sequence goes out as it is; any
            // other byte at or above 0x80 is escaped.
            const std::size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            bool ok = i + n <= data.size();
            for (std::size_t k = 1; ok && k < n; ++k) ok = (data[i + k] & 0xc0) == 0x80;
            if (ok && n == 3) {
                const std::uint8_t d = data[i + 1];
                ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);  // overlong, surrogates
            }
            if (ok && n == 4) {
                const std::uint8_t d = data[i + 1];
                ok = !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);  // overlong, above U+10FFFF
            }
            if (ok) {
                out.append(reinterpret_cast<const char*>(data.data() + i), n);
                i += n;
            } else {
                escape(c);
                ++i;
            }
        } else {
            escape(c);
            ++i;
        }
    }
    return out;
}

}  // namespace msglab::cli
