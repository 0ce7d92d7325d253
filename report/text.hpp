// Text from a hunt made safe to show. Findings quote attacker-controlled bytes
// (evidence, plaintexts, commands), so every string passes through here on its
// way into a report: repaired to valid UTF-8, made visible, then escaped for
// the one output language it lands in.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"

namespace msglab::report {

// Valid UTF-8: each byte that does not start a well-formed sequence (overlong
// forms, surrogates and values past U+10FFFF included) becomes U+FFFD.
// `replaced`, when given, receives how many bytes were replaced.
std::string repair_utf8(std::string_view s, std::size_t* replaced = nullptr);
// The offset of the first byte of `s` that starts no well-formed UTF-8
// sequence; s.size() when all of `s` is valid UTF-8.
std::size_t first_invalid_utf8(std::string_view s);

// Valid UTF-8 `s` with what a reader could not see, or that would change how
// the rest reads, written as escapes: C0 and C1 controls other than tab and
// newline, DEL, the bidirectional overrides (the "Trojan Source" characters)
// and the noncharacters XML forbids.
std::string visible(std::string_view s);

// A plaintext for one line of a diagram: UTF-8 text as is, anything else as
// \xNN, backslash doubled so escapes stay unambiguous, at most `max_chars`
// characters (then an ellipsis).
std::string preview(ByteView data, std::size_t max_chars);

// Like `visible`, cut to at most `max_chars` characters (then an ellipsis).
std::string shorten(std::string_view s, std::size_t max_chars);

// For HTML text and attribute values.
std::string html_escape(std::string_view s);
// For XML attribute values (newlines and tabs as character references, so
// they survive attribute normalisation) or, with `attribute` false, text.
std::string xml_escape(std::string_view s, bool attribute = true);

// The classic dump: offset, 16 bytes in hex, printable ASCII.
std::string hex_dump(ByteView data);

// Seconds with a fixed number of decimals, whatever the locale.
std::string fixed(double value, int decimals);

// "8, 9, 12" (with sep ", ").
std::string join(const std::vector<std::uint64_t>& numbers, std::string_view sep);

// `s` as one POSIX shell word: as is when that is safe, else single-quoted.
std::string shell_word(std::string_view s);

}  // namespace msglab::report
