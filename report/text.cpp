#include "report/text.hpp"

#include <cctype>
#include <cstdio>
#include <cstring>

namespace msglab::report {

namespace {

constexpr char kDigits[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD
constexpr std::string_view kEllipsis = "\xe2\x80\xa6";     // U+2026

bool continuation(unsigned char c, unsigned char lo = 0x80, unsigned char hi = 0xbf) { return c >= lo && c <= hi; }

// The length of the well-formed sequence (RFC 3629, table 3-7 of Unicode) at
// s[i], with its code point; 0 when the byte there starts none.
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp) {
    auto at = [&](std::size_t k) -> unsigned char { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    unsigned char b0 = at(0);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf && continuation(at(1))) {
        cp = (char32_t(b0 & 0x1f) << 6) | (at(1) & 0x3f);
        return 2;
    }
    if (b0 >= 0xe0 && b0 <= 0xef) {
        unsigned char lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
        if (!continuation(at(1), lo, hi) || !continuation(at(2))) return 0;
        cp = (char32_t(b0 & 0x0f) << 12) | (char32_t(at(1) & 0x3f) << 6) | (at(2) & 0x3f);
        return 3;
    }
    if (b0 >= 0xf0 && b0 <= 0xf4) {
        unsigned char lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
        if (!continuation(at(1), lo, hi) || !continuation(at(2)) || !continuation(at(3))) return 0;
        cp = (char32_t(b0 & 0x07) << 18) | (char32_t(at(1) & 0x3f) << 12) | (char32_t(at(2) & 0x3f) << 6) |
             (at(3) & 0x3f);
        return 4;
    }
    return 0;
}

bool hidden(char32_t cp) {
    return (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfffe || cp == 0xffff;
}

// \xNN for a byte (or an ASCII control), \uNNNN for a code point.
void append_escape(std::string& out, char32_t cp, bool byte = false) {
    if (byte || cp < 0x80) {
        out += "\\x";
        out.push_back(kDigits[cp >> 4]);
        out.push_back(kDigits[cp & 15]);
        return;
    }
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kDigits[(cp >> shift) & 15]);
}

// Calls `emit(text, cp)` for each character of valid UTF-8 `s`, in order.
template <typename F>
void each_char(std::string_view s, F emit) {
    std::size_t i = 0;
    while (i < s.size()) {
        char32_t cp = 0;
        std::size_t n = decode(s, i, cp);
        emit(s.substr(i, n), cp);
        i += n;
    }
}

}  // namespace

std::string repair_utf8(std::string_view s, std::size_t* replaced) {
    std::string out;
    out.reserve(s.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        std::size_t n = decode(s, i, cp);
        if (n == 0) {
            out += kReplacement;
            ++bad;
            ++i;
            continue;
        }
        out.append(s, i, n);
        i += n;
    }
    if (replaced) *replaced = bad;
    return out;
}

std::size_t first_invalid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        std::size_t n = decode(s, i, cp);
        if (n == 0) return i;
        i += n;
    }
    return s.size();
}

std::string visible(std::string_view s) {
    std::string repaired = repair_utf8(s);
    std::string out;
    out.reserve(repaired.size());
    each_char(repaired, [&](std::string_view text, char32_t cp) {
        if (hidden(cp))
            append_escape(out, cp);
        else
            out += text;
    });
    return out;
}

std::string shorten(std::string_view s, std::size_t max_chars) {
    std::string out;
    std::size_t chars = 0;
    bool cut = false;
    each_char(visible(s), [&](std::string_view text, char32_t cp) {
        if (cut) return;
        if (chars == max_chars) {
            cut = true;
            return;
        }
        ++chars;
        out += cp == '\n' || cp == '\t' ? std::string_view(" ") : text;
    });
    if (cut) out += kEllipsis;
    return out;
}

std::string preview(ByteView data, std::size_t max_chars) {
    std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
    std::string out;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size();) {
        if (chars == max_chars) return out + std::string(kEllipsis);
        ++chars;
        char32_t cp = 0;
        std::size_t n = decode(s, i, cp);
        if (n == 0) {
            append_escape(out, static_cast<unsigned char>(s[i]), true);
            ++i;
            continue;
        }
        if (cp == '\\')
            out += "\\\\";
        else if (cp == '\n')
            out += "\\n";
        else if (cp == '\t')
            out += "\\t";
        else if (hidden(cp))
            append_escape(out, cp);
        else
            out.append(s, i, n);
        i += n;
    }
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

std::string xml_escape(std::string_view s, bool attribute) {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            case '\n': out += attribute ? "&#10;" : "\n"; break;
            case '\t': out += attribute ? "&#9;" : "\t"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

std::string hex_dump(ByteView data) {
    std::string out;
    for (std::size_t row = 0; row < data.size(); row += 16) {
        char offset[24];
        std::snprintf(offset, sizeof offset, "%04zx  ", row);
        out += offset;
        std::string ascii;
        for (std::size_t k = 0; k < 16; ++k) {
            if (k == 8) out += ' ';
            if (row + k < data.size()) {
                std::uint8_t b = data[row + k];
                out.push_back(kDigits[b >> 4]);
                out.push_back(kDigits[b & 15]);
                out += ' ';
                ascii.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '.');
            } else {
                out += "   ";
            }
        }
        out += " |" + ascii + "|\n";
    }
    return out;
}

std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

std::string join(const std::vector<std::uint64_t>& numbers, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        if (i) out += sep;
        out += std::to_string(numbers[i]);
    }
    return out;
}

std::string shell_word(std::string_view s) {
    bool plain = !s.empty();
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && (c == '\0' || !std::strchr("._/-+=:,@%", c))) plain = false;
    if (plain) return std::string(s);
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace msglab::report
