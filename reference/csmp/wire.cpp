#include "csmp/wire.hpp"

#include <nlohmann/json.hpp>

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <new>
#include <stdexcept>

#include <botan/hash.h>

#include "core/crypto.hpp"

namespace msglab::csmp {

namespace {

using ChunkWalk = HttpFramer::ChunkWalk;

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

ParseError error(ParseErrc code, std::size_t offset, std::string detail) {
    return ParseError{code, offset, std::move(detail)};
}

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return true;
        default:
            return false;
    }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ows(char c) { return c == ' ' || c == '\t'; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool all_tchar(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// Visible ASCII, as a request target allows.
bool target_char(unsigned char c) { return c >= 0x21 && c <= 0x7e; }
// HT, SP, VCHAR, obs-text: a field value or a reason phrase.
bool field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Splits a comma-separated list into trimmed, non-empty elements.
std::vector<std::string_view> split_list(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        std::size_t comma = s.find(',', pos);
        if (comma == std::string_view::npos) comma = s.size();
        auto item = trim_ows(s.substr(pos, comma - pos));
        if (!item.empty()) out.push_back(item);
        pos = comma + 1;
    }
    return out;
}

// The version in "HTTP/d.d" (exactly that shape).
bool parse_version(std::string_view v, HttpMessage& m) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7])) return false;
    m.version_major = v[5] - '0';
    m.version_minor = v[7] - '0';
    return true;
}

// The path of a request target: origin-form up to '?', the path of an
// absolute-form target, "*" for asterisk-form, the target itself otherwise.
std::string target_path(std::string_view before_query) {
    if (before_query.empty() || before_query[0] == '/' || before_query == "*") return std::string(before_query);
    std::size_t scheme = before_query.find("://");
    if (scheme == std::string_view::npos) return std::string(before_query);
    std::size_t slash = before_query.find('/', scheme + 3);
    return slash == std::string_view::npos ? std::string("/") : std::string(before_query.substr(slash));
}

std::optional<ParseError> parse_request_line(std::string_view line, HttpMessage& m) {
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || !all_tchar(line.substr(0, sp1)))
        return error(ParseErrc::bad_magic, 0, "a request starts with a method token and a space");
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos)
        return error(ParseErrc::bad_value, sp1, "the request line has no space after its target");
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.empty()) return error(ParseErrc::bad_value, sp1 + 1, "empty request target");
    for (std::size_t i = 0; i < target.size(); ++i)
        if (!target_char(static_cast<unsigned char>(target[i])))
            return error(ParseErrc::bad_value, sp1 + 1 + i, "a request target holds only visible ASCII");
    if (!parse_version(line.substr(sp2 + 1), m))
        return error(ParseErrc::bad_value, sp2 + 1, "the request line does not end in HTTP/<digit>.<digit>");
    m.method = std::string(line.substr(0, sp1));
    m.target = std::string(target);
    m.target_offset = sp1 + 1;
    std::size_t q = target.find('?');
    m.path = target_path(target.substr(0, q));
    if (q != std::string_view::npos) {
        m.query = std::string(target.substr(q + 1));
        m.query_offset = m.target_offset + q + 1;
    }
    return std::nullopt;
}

std::optional<ParseError> parse_status_line(std::string_view line, HttpMessage& m) {
    if (line.substr(0, 5) != "HTTP/") return error(ParseErrc::bad_magic, 0, "a response starts with \"HTTP/\"");
    if (line.size() < 12 || !parse_version(line.substr(0, 8), m) || line[8] != ' ')
        return error(ParseErrc::bad_value, 0, "the status line does not start with HTTP/<digit>.<digit> and a space");
    if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) || line[9] == '0')
        return error(ParseErrc::bad_value, 9, "the status code is not three digits from 100");
    if (line.size() > 12 && line[12] != ' ')
        return error(ParseErrc::bad_value, 12, "no space between the status code and the reason");
    std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    for (std::size_t i = 0; i < reason.size(); ++i)
        if (!field_char(static_cast<unsigned char>(reason[i])))
            return error(ParseErrc::bad_value, 13 + i, "a control character in the reason phrase");
    m.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    m.reason = std::string(reason);
    return std::nullopt;
}

// The bytes of a start line so far can still begin a valid one.
std::optional<ParseError> check_start_prefix(std::string_view partial, HttpKind kind) {
    if (kind == HttpKind::response) {
        static constexpr std::string_view lead = "HTTP/";
        std::size_t n = std::min(partial.size(), lead.size());
        if (partial.substr(0, n) != lead.substr(0, n))
            return error(ParseErrc::bad_magic, 0, "a response starts with \"HTTP/\"");
        return std::nullopt;
    }
    std::size_t sp = partial.find(' ');
    std::string_view method = partial.substr(0, sp);
    for (std::size_t i = 0; i < method.size(); ++i)
        if (!is_tchar(static_cast<unsigned char>(method[i])) && method[i] != '\r')
            return error(ParseErrc::bad_magic, i, "a request starts with a method token");
    if (sp == 0) return error(ParseErrc::bad_magic, 0, "a request starts with a method token");
    if (sp == std::string_view::npos) return std::nullopt;
    std::string_view rest = partial.substr(sp + 1);
    std::size_t sp2 = rest.find(' ');
    std::string_view target = rest.substr(0, sp2);
    for (std::size_t i = 0; i < target.size(); ++i)
        if (!target_char(static_cast<unsigned char>(target[i])) && target[i] != '\r')
            return error(ParseErrc::bad_value, sp + 1 + i, "a request target holds only visible ASCII");
    if (sp2 == std::string_view::npos) return std::nullopt;
    static constexpr std::string_view version = "HTTP/";
    std::string_view v = rest.substr(sp2 + 1);
    std::size_t n = std::min(v.size(), version.size());
    if (v.substr(0, n) != version.substr(0, n))
        return error(ParseErrc::bad_value, sp + 2 + sp2, "the request line does not end in HTTP/<digit>.<digit>");
    return std::nullopt;
}

// One field line ("name: value") at `offset` in the message.
std::optional<ParseError> parse_field_line(std::string_view line, std::size_t offset, std::vector<HttpHeader>& out) {
    if (is_ows(line.front()))
        return error(ParseErrc::bad_value, offset, "a field line starts with whitespace (obsolete line folding)");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return error(ParseErrc::bad_value, offset, "a field line has no ':'");
    std::string_view name = line.substr(0, colon);
    if (name.empty()) return error(ParseErrc::bad_value, offset, "a field with an empty name");
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!is_tchar(static_cast<unsigned char>(name[i])))
            return error(ParseErrc::bad_value, offset + i,
                         is_ows(name[i]) ? "whitespace between a field name and ':'" : "a field name is not a token");
    std::string_view raw = line.substr(colon + 1);
    for (std::size_t i = 0; i < raw.size(); ++i)
        if (!field_char(static_cast<unsigned char>(raw[i])))
            return error(ParseErrc::bad_value, offset + colon + 1 + i, "a control character in a field value");
    std::size_t lead = 0;
    while (lead < raw.size() && is_ows(raw[lead])) ++lead;
    out.push_back({std::string(name), std::string(trim_ows(raw)), offset + colon + 1 + lead});
    return std::nullopt;
}

// Field lines from `pos` to the blank line: the end of the blank line, 0
// while more bytes are needed, or an error. `first_line_is_start` makes the
// first line a start line (the head); otherwise these are trailers. The
// section may take at most `max_bytes` from `pos`.
Result<std::size_t, ParseError> parse_lines(std::string_view s, std::size_t pos, std::size_t max_bytes, HttpKind kind,
                                            bool first_line_is_start, HttpMessage& m,
                                            std::vector<HttpHeader>& fields) {
    const std::size_t start = pos;
    const std::size_t window_end = std::min(s.size(), start + max_bytes);
    bool first = first_line_is_start;
    for (;;) {
        std::size_t nl = s.substr(0, window_end).find('\n', pos);
        if (nl == std::string_view::npos) {
            std::string_view partial = s.substr(pos, window_end - pos);
            if (first) {
                if (auto e = check_start_prefix(partial, kind)) {
                    e->offset += pos;
                    return unexpected(*e);
                }
            }
            std::size_t cr = partial.find('\r');
            if (cr != std::string_view::npos && cr + 1 < partial.size())
                return unexpected(error(ParseErrc::bad_value, pos + cr, "a CR not followed by LF"));
            if (s.size() - start >= max_bytes)
                return unexpected(error(ParseErrc::length_over_limit, start + max_bytes,
                                        (first_line_is_start ? "the head is over " : "the trailer section is over ") +
                                            std::to_string(max_bytes) + " bytes"));
            return std::size_t{0};
        }
        if (nl == pos || s[nl - 1] != '\r') return unexpected(error(ParseErrc::bad_value, nl, "a line ends in a bare LF"));
        std::string_view line = s.substr(pos, nl - 1 - pos);
        if (auto cr = line.find('\r'); cr != std::string_view::npos)
            return unexpected(error(ParseErrc::bad_value, pos + cr, "a CR not followed by LF"));
        if (first) {
            auto e = kind == HttpKind::request ? parse_request_line(line, m) : parse_status_line(line, m);
            if (e) {
                e->offset += pos;
                return unexpected(*e);
            }
            m.target_offset += pos;
            if (!m.query.empty()) m.query_offset += pos;
            first = false;
        } else if (line.empty()) {
            return nl + 1;
        } else {
            if (fields.size() >= kMaxHttpHeaders)
                return unexpected(error(ParseErrc::length_over_limit, pos,
                                        "more than " + std::to_string(kMaxHttpHeaders) + " field lines"));
            if (auto e = parse_field_line(line, pos, fields)) return unexpected(*e);
        }
        pos = nl + 1;
    }
}

// Content-Length: every line and list element the same decimal number.
Result<std::size_t, ParseError> content_length(const HttpMessage& m) {
    std::optional<std::string_view> seen;
    std::size_t offset = 0;
    for (const auto& h : m.headers) {
        if (!iequals(h.name, "content-length")) continue;
        auto items = split_list(h.value);
        if (items.empty()) return unexpected(error(ParseErrc::bad_value, h.value_offset, "an empty Content-Length"));
        for (auto item : items) {
            if (seen && *seen != item)
                return unexpected(error(ParseErrc::bad_value, h.value_offset, "Content-Length values disagree"));
            seen = item;
            offset = h.value_offset;
        }
    }
    std::size_t n = 0;
    for (char c : *seen) {
        if (!is_digit(c))
            return unexpected(error(ParseErrc::bad_value, offset, "Content-Length is not a decimal number"));
        n = n * 10 + static_cast<std::size_t>(c - '0');
        if (n > kMaxHttpBody)
            return unexpected(error(ParseErrc::length_over_limit, offset,
                                    "Content-Length over " + std::to_string(kMaxHttpBody) + " bytes"));
    }
    return n;
}

Result<BodyFraming, ParseError> body_framing(const HttpMessage& m, std::string_view request_method) {
    if (m.kind == HttpKind::response &&
        (m.status / 100 == 1 || m.status == 204 || m.status == 304 || iequals(request_method, "HEAD")))
        return BodyFraming::none;
    bool has_te = m.header_count("transfer-encoding") > 0, has_cl = m.header_count("content-length") > 0;
    if (has_te) {
        if (has_cl)
            return unexpected(error(ParseErrc::bad_value, 0, "both Transfer-Encoding and Content-Length"));
        std::vector<std::string> codings;
        for (const auto& h : m.headers) {
            if (!iequals(h.name, "transfer-encoding")) continue;
            for (auto item : split_list(h.value)) {
                auto name = trim_ows(item.substr(0, item.find(';')));
                if (!all_tchar(name))
                    return unexpected(error(ParseErrc::bad_value, h.value_offset, "a transfer coding is not a token"));
                std::string lower;
                for (char c : name) lower += ascii_lower(c);
                codings.push_back(lower);
            }
        }
        if (codings.empty()) return unexpected(error(ParseErrc::bad_value, 0, "an empty Transfer-Encoding"));
        for (std::size_t i = 0; i + 1 < codings.size(); ++i)
            if (codings[i] == "chunked")
                return unexpected(error(ParseErrc::bad_value, 0, "chunked is not the last transfer coding"));
        if (codings.back() == "chunked") return BodyFraming::chunked;
        if (m.kind == HttpKind::request)
            return unexpected(error(ParseErrc::bad_value, 0, "a request's last transfer coding is not chunked"));
        return BodyFraming::until_close;
    }
    if (has_cl) return BodyFraming::length;
    return m.kind == HttpKind::request ? BodyFraming::none : BodyFraming::until_close;
}

// The chunked body, from `walk.pos` (the next chunk-size line): the
// message's end, 0 while more bytes are needed, or an error. `walk` advances
// past every whole chunk, so a later call on more of the same bytes resumes
// there. Appends the data to `body` when it is not null.
Result<std::size_t, ParseError> parse_chunked(std::string_view s, std::size_t body_start, ChunkWalk& walk,
                                              HttpMessage& m, Bytes* body) {
    for (;;) {
        std::size_t pos = walk.pos;
        std::size_t limit = std::min(s.size(), pos + kMaxChunkLine + 2);
        std::size_t nl = s.substr(0, limit).find('\n', pos);
        if (nl == std::string_view::npos) {
            std::string_view partial = s.substr(pos, limit - pos);
            if (!partial.empty() && hex_digit(partial[0]) < 0)
                return unexpected(error(ParseErrc::bad_value, pos, "a chunk does not start with its hex size"));
            if (s.size() - pos >= kMaxChunkLine + 2)
                return unexpected(error(ParseErrc::length_over_limit, pos,
                                        "a chunk-size line over " + std::to_string(kMaxChunkLine) + " bytes"));
            return std::size_t{0};
        }
        if (nl == pos || s[nl - 1] != '\r')
            return unexpected(error(ParseErrc::bad_value, nl, "a chunk-size line ends in a bare LF"));
        std::string_view line = s.substr(pos, nl - 1 - pos);
        std::size_t i = 0, size = 0;
        while (i < line.size() && hex_digit(line[i]) >= 0) {
            size = size * 16 + static_cast<std::size_t>(hex_digit(line[i]));
            if (size > kMaxHttpBody)
                return unexpected(error(ParseErrc::length_over_limit, pos,
                                        "a chunk over " + std::to_string(kMaxHttpBody) + " bytes"));
            ++i;
        }
        if (i == 0) return unexpected(error(ParseErrc::bad_value, pos, "a chunk does not start with its hex size"));
        std::string_view ext = trim_ows(line.substr(i));
        if (!ext.empty() && ext[0] != ';')
            return unexpected(error(ParseErrc::bad_value, pos + i, "junk after a chunk size"));
        for (std::size_t k = 0; k < ext.size(); ++k)
            if (!field_char(static_cast<unsigned char>(ext[k])))
                return unexpected(error(ParseErrc::bad_value, pos + i, "a control character in a chunk extension"));
        if (walk.chunks + 1 > kMaxChunks)
            return unexpected(error(ParseErrc::length_over_limit, pos,
                                    "more than " + std::to_string(kMaxChunks) + " chunks"));
        std::size_t data = nl + 1;
        if (size == 0) {
            HttpMessage ignored;
            std::vector<HttpHeader> trailers;
            auto end = parse_lines(s, data, kMaxHttpHead, m.kind, false, ignored, trailers);
            if (!end) return end;
            if (*end == 0) return std::size_t{0};
            if (*end - body_start > kMaxChunkedBytes)
                return unexpected(error(ParseErrc::length_over_limit, body_start,
                                        "a chunked body over " + std::to_string(kMaxChunkedBytes) + " bytes"));
            m.trailers = std::move(trailers);
            return *end;
        }
        if (walk.total + size > kMaxHttpBody)
            return unexpected(error(ParseErrc::length_over_limit, data,
                                    "a chunked body decodes to over " + std::to_string(kMaxHttpBody) + " bytes"));
        if (data + size + 2 - body_start > kMaxChunkedBytes)
            return unexpected(error(ParseErrc::length_over_limit, body_start,
                                    "a chunked body over " + std::to_string(kMaxChunkedBytes) + " bytes"));
        if (s.size() > data + size && s[data + size] != '\r')
            return unexpected(error(ParseErrc::bad_value, data + size, "chunk data not followed by CRLF"));
        if (s.size() < data + size + 2) return std::size_t{0};
        if (s[data + size + 1] != '\n')
            return unexpected(error(ParseErrc::bad_value, data + size + 1, "chunk data not followed by CRLF"));
        if (body) body->insert(body->end(), s.begin() + static_cast<std::ptrdiff_t>(data),
                               s.begin() + static_cast<std::ptrdiff_t>(data + size));
        walk.total += size;
        walk.chunks += 1;
        walk.pos = data + size + 2;
    }
}

// The head at the front of `s` and how its body is delimited: the head's
// length, 0 while more bytes are needed, or an error. Sets `content_length`
// for a Content-Length body.
Result<std::size_t, ParseError> parse_head(std::string_view s, HttpKind kind, std::string_view request_method,
                                           HttpMessage& m, std::size_t& content_length_out) {
    m = HttpMessage{};
    m.kind = kind;
    if (s.empty()) return std::size_t{0};
    auto head = parse_lines(s, 0, kMaxHttpHead, kind, true, m, m.headers);
    if (!head || *head == 0) return head;
    m.head_length = *head;
    auto framing = body_framing(m, request_method);
    if (!framing) return unexpected(framing.error());
    m.framing = *framing;
    content_length_out = 0;
    if (m.framing == BodyFraming::length) {
        auto n = content_length(m);
        if (!n) return unexpected(n.error());
        content_length_out = *n;
    }
    return m.head_length;
}

// Frames (and with `body`, decodes) the message at the front of `buffered`.
Result<std::size_t, ParseError> http_message(ByteView buffered, HttpKind kind, std::string_view request_method,
                                             HttpMessage& m, Bytes* body) {
    std::string_view s = text(buffered);
    std::size_t n = 0;
    auto head = parse_head(s, kind, request_method, m, n);
    if (!head || *head == 0) return head;
    switch (m.framing) {
        case BodyFraming::none:
        case BodyFraming::until_close:
            m.length = m.head_length;
            return m.length;
        case BodyFraming::length:
            if (s.size() - m.head_length < n) return std::size_t{0};
            if (body) body->assign(buffered.begin() + static_cast<std::ptrdiff_t>(m.head_length),
                                   buffered.begin() + static_cast<std::ptrdiff_t>(m.head_length + n));
            m.length = m.head_length + n;
            return m.length;
        case BodyFraming::chunked: {
            ChunkWalk walk{m.head_length, 0, 0};
            auto end = parse_chunked(s, m.head_length, walk, m, body);
            if (!end || *end == 0) return end;
            m.length = *end;
            return m.length;
        }
    }
    return std::size_t{0};
}

}  // namespace

// ---- HTTP -------------------------------------------------------------------------

const char* body_framing_name(BodyFraming f) {
    switch (f) {
        case BodyFraming::none: return "none";
        case BodyFraming::length: return "content-length";
        case BodyFraming::chunked: return "chunked";
        case BodyFraming::until_close: return "until-close";
    }
    return "unknown";
}

const HttpHeader* HttpMessage::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

std::optional<std::string> HttpMessage::header_value(std::string_view name) const {
    if (const HttpHeader* h = header(name)) return h->value;
    return std::nullopt;
}

std::size_t HttpMessage::header_count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(headers.begin(), headers.end(), [&](const HttpHeader& h) { return iequals(h.name, name); }));
}

bool HttpMessage::has_token(std::string_view name, std::string_view token) const {
    for (const auto& h : headers) {
        if (!iequals(h.name, name)) continue;
        for (auto item : split_list(h.value))
            if (iequals(trim_ows(item.substr(0, item.find(';'))), token)) return true;
    }
    return false;
}

bool HttpMessage::websocket_upgrade() const {
    return kind == HttpKind::request && has_token("upgrade", "websocket");
}

Result<std::size_t, ParseError> frame_http(ByteView buffered, HttpKind kind, std::string_view request_method,
                                           HttpMessage* head) {
    HttpMessage local;
    HttpMessage& m = head ? *head : local;
    auto r = http_message(buffered, kind, request_method, m, nullptr);
    if (head && (!r || *r == 0)) *head = HttpMessage{};
    return r;
}

Result<HttpMessage, ParseError> parse_http(ByteView buffered, HttpKind kind, std::string_view request_method) {
    HttpMessage m;
    Bytes body;
    auto r = http_message(buffered, kind, request_method, m, &body);
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(error(ParseErrc::truncated, buffered.size(), "the message is not complete"));
    m.body = std::move(body);
    return m;
}

void HttpFramer::reset() {
    m_active = false;
    m_method.clear();
    m_head = HttpMessage{};
    m_head_bytes.clear();
    m_content_length = 0;
    m_walk = ChunkWalk{};
    m_mark.clear();
}

Result<std::size_t, ParseError> HttpFramer::frame(ByteView buffered, std::string_view request_method,
                                                  HttpMessage* head) {
    if (m_active) {
        bool same = m_method == request_method && buffered.size() >= m_head_bytes.size() &&
                    std::equal(m_head_bytes.begin(), m_head_bytes.end(), buffered.begin());
        if (same && m_head.framing == BodyFraming::chunked) {
            std::size_t at = m_walk.pos;
            same = buffered.size() >= at &&
                   std::equal(m_mark.begin(), m_mark.end(), buffered.begin() + static_cast<std::ptrdiff_t>(at - m_mark.size()));
        }
        if (!same) reset();
    }
    std::string_view s = text(buffered);
    if (!m_active) {
        auto h = parse_head(s, m_kind, request_method, m_head, m_content_length);
        if (!h || *h == 0) {
            reset();
            if (head) *head = HttpMessage{};
            return h;
        }
        m_active = true;
        m_method = std::string(request_method);
        m_head_bytes.assign(buffered.begin(), buffered.begin() + static_cast<std::ptrdiff_t>(*h));
        m_walk = ChunkWalk{*h, 0, 0};
    }
    std::size_t length = 0;
    switch (m_head.framing) {
        case BodyFraming::none:
        case BodyFraming::until_close:
            length = m_head.head_length;
            break;
        case BodyFraming::length:
            if (s.size() - m_head.head_length < m_content_length) {
                if (head) *head = HttpMessage{};
                return std::size_t{0};
            }
            length = m_head.head_length + m_content_length;
            break;
        case BodyFraming::chunked: {
            auto end = parse_chunked(s, m_head.head_length, m_walk, m_head, nullptr);
            if (!end || *end == 0) {
                if (head) *head = HttpMessage{};
                if (!end) {
                    reset();
                    return end;
                }
                // What the walk stood on: checked when the next buffer comes.
                std::size_t keep = std::min<std::size_t>(16, m_walk.pos - m_head.head_length);
                m_mark.assign(buffered.begin() + static_cast<std::ptrdiff_t>(m_walk.pos - keep),
                              buffered.begin() + static_cast<std::ptrdiff_t>(m_walk.pos));
                return end;
            }
            length = *end;
            break;
        }
    }
    m_head.length = length;
    if (head) *head = std::move(m_head);
    reset();
    return length;
}

bool looks_like_http_request(ByteView b) {
    std::size_t i = 0;
    while (i < b.size() && i < 32 && is_tchar(b[i])) ++i;
    return i > 0 && i + 1 < b.size() && b[i] == ' ' && target_char(b[i + 1]);
}

bool looks_like_http_response(ByteView b) { return text(b).substr(0, 7) == "HTTP/1."; }

bool may_become_http_request(ByteView b) {
    std::size_t i = 0;
    while (i < b.size() && i < 32 && is_tchar(b[i])) ++i;
    return i == b.size() || (i > 0 && i + 1 == b.size() && b[i] == ' ');
}

bool may_become_http_response(ByteView b) {
    static constexpr std::string_view lead = "HTTP/1.";
    return b.size() < lead.size() && text(b) == lead.substr(0, b.size());
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

namespace {

// Each name=value pair of a query, as Python's parse_qsl(keep_blank_values=True)
// splits it: on '&', the name before the first '='.
template <class F>
void for_each_pair(std::string_view query, F&& f) {
    std::size_t pos = 0;
    while (pos < query.size()) {
        std::size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view pair = query.substr(pos, amp - pos);
        if (!pair.empty()) {
            std::size_t eq = pair.find('=');
            std::string_view name = pair.substr(0, eq);
            std::size_t voff = eq == std::string_view::npos ? pair.size() : eq + 1;
            f(name, pos + voff, pair.substr(std::min(voff, pair.size())));
        }
        pos = amp + 1;
    }
}

}  // namespace

std::optional<std::string> query_parameter(std::string_view query, std::string_view name) {
    std::optional<std::string> out;
    for_each_pair(query, [&](std::string_view n, std::size_t, std::string_view v) {
        if (percent_decode(n, true) == name) out = percent_decode(v, true);
    });
    return out;
}

std::optional<FieldSpan> query_parameter_span(std::string_view query, std::string_view name) {
    std::optional<FieldSpan> out;
    for_each_pair(query, [&](std::string_view n, std::size_t off, std::string_view v) {
        if (percent_decode(n, true) == name) out = FieldSpan{off, v.size()};
    });
    return out;
}

std::size_t query_parameter_count(std::string_view query, std::string_view name) {
    std::size_t count = 0;
    for_each_pair(query, [&](std::string_view n, std::size_t, std::string_view) {
        if (percent_decode(n, true) == name) ++count;
    });
    return count;
}

// ---- WebSocket frames --------------------------------------------------------------

const char* ws_opcode_name(std::uint8_t opcode) {
    switch (opcode) {
        case ws_opcode::continuation: return "continuation";
        case ws_opcode::text: return "text";
        case ws_opcode::binary: return "binary";
        case ws_opcode::close: return "close";
        case ws_opcode::ping: return "ping";
        case ws_opcode::pong: return "pong";
        default: return "reserved";
    }
}

namespace {

bool known_opcode(std::uint8_t opcode) {
    return opcode <= ws_opcode::binary || (opcode >= ws_opcode::close && opcode <= ws_opcode::pong);
}

struct WsHeader {
    std::size_t header_length = 0;  // 0: more bytes needed
    std::uint64_t payload_length = 0;
};

Result<WsHeader, ParseError> ws_header(ByteView b, std::size_t max_payload) {
    if (b.empty()) return WsHeader{};
    std::uint8_t b0 = b[0], opcode = b0 & 0x0f;
    bool fin = (b0 & 0x80) != 0;
    if (!known_opcode(opcode))
        return unexpected(error(ParseErrc::unknown_type, 0, "reserved opcode 0x" + hex(ByteView(&opcode, 1))));
    if (ws_control(opcode) && !fin) return unexpected(error(ParseErrc::bad_value, 0, "a fragmented control frame"));
    if (b.size() < 2) return WsHeader{};
    std::uint8_t len7 = b[1] & 0x7f;
    bool masked = (b[1] & 0x80) != 0;
    if (ws_control(opcode) && len7 > kMaxWsControlPayload)
        return unexpected(error(ParseErrc::bad_length, 1, "a control frame's payload is over 125 bytes"));
    std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (b.size() < 2 + ext) return WsHeader{};
    std::uint64_t len = len7;
    if (ext == 2) {
        len = static_cast<std::uint64_t>(b[2]) << 8 | b[3];
        if (len < 126) return unexpected(error(ParseErrc::bad_length, 2, "a 16-bit length under 126 (not minimal)"));
    } else if (ext == 8) {
        if (b[2] & 0x80) return unexpected(error(ParseErrc::bad_length, 2, "a 64-bit length with its top bit set"));
        len = 0;
        for (int i = 0; i < 8; ++i) len = len << 8 | b[2 + static_cast<std::size_t>(i)];
        if (len <= 0xffff) return unexpected(error(ParseErrc::bad_length, 2, "a 64-bit length under 65536 (not minimal)"));
    }
    if (len > max_payload)
        return unexpected(error(ParseErrc::length_over_limit, 1,
                                "a frame payload of " + std::to_string(len) + " bytes (over " +
                                    std::to_string(max_payload) + ")"));
    return WsHeader{2 + ext + (masked ? 4u : 0u), len};
}

}  // namespace

Result<std::size_t, ParseError> frame_ws(ByteView buffered, std::size_t max_payload) {
    auto h = ws_header(buffered, max_payload);
    if (!h) return unexpected(h.error());
    if (h->header_length == 0) return std::size_t{0};
    std::size_t total = h->header_length + static_cast<std::size_t>(h->payload_length);
    return buffered.size() < total ? std::size_t{0} : total;
}

Result<WsFrame, ParseError> parse_ws_frame(ByteView buffered, std::size_t max_payload) {
    auto len = frame_ws(buffered, max_payload);
    if (!len) return unexpected(len.error());
    if (*len == 0) return unexpected(error(ParseErrc::truncated, buffered.size(), "the frame is not complete"));
    WsFrame f;
    std::uint8_t b0 = buffered[0], b1 = buffered[1];
    f.fin = (b0 & 0x80) != 0;
    f.rsv1 = (b0 & 0x40) != 0;
    f.rsv2 = (b0 & 0x20) != 0;
    f.rsv3 = (b0 & 0x10) != 0;
    f.opcode = b0 & 0x0f;
    f.masked = (b1 & 0x80) != 0;
    std::size_t len7 = b1 & 0x7f;
    std::size_t at = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    if (f.masked) {
        std::copy(buffered.begin() + static_cast<std::ptrdiff_t>(at), buffered.begin() + static_cast<std::ptrdiff_t>(at + 4),
                  f.mask.begin());
        at += 4;
    }
    f.header_length = at;
    f.payload.assign(buffered.begin() + static_cast<std::ptrdiff_t>(at), buffered.begin() + static_cast<std::ptrdiff_t>(*len));
    if (f.masked) ws_apply_mask(f.payload, f.mask);
    return f;
}

void ws_apply_mask(Bytes& payload, const WsMask& mask) {
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] ^= mask[i & 3];
}

Bytes build_ws_frame(const WsFrame& f) {
    Writer w(f.payload.size() + 14);
    w.u8(static_cast<std::uint8_t>((f.fin ? 0x80 : 0) | (f.rsv1 ? 0x40 : 0) | (f.rsv2 ? 0x20 : 0) | (f.rsv3 ? 0x10 : 0) |
                                   (f.opcode & 0x0f)));
    std::uint8_t m = f.masked ? 0x80 : 0;
    std::size_t n = f.payload.size();
    if (n < 126) {
        w.u8(static_cast<std::uint8_t>(m | n));
    } else if (n <= 0xffff) {
        w.u8(static_cast<std::uint8_t>(m | 126)).be16(static_cast<std::uint16_t>(n));
    } else {
        w.u8(static_cast<std::uint8_t>(m | 127)).be64(n);
    }
    if (f.masked) {
        w.bytes(ByteView(f.mask.data(), f.mask.size()));
        Bytes p = f.payload;
        ws_apply_mask(p, f.mask);
        w.bytes(p);
    } else {
        w.bytes(f.payload);
    }
    return w.take();
}

bool ws_close_code_valid(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

bool valid_utf8(ByteView b) {
    std::size_t i = 0;
    while (i < b.size()) {
        std::uint8_t c = b[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        std::uint32_t cp;
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
        else return false;
        if (b.size() - i <= n) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            if ((b[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b[i + k] & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
        i += n + 1;
    }
    return true;
}

Result<WsClose, ParseError> parse_ws_close(ByteView payload) {
    WsClose c;
    if (payload.empty()) return c;
    if (payload.size() == 1) return unexpected(error(ParseErrc::bad_length, 0, "a close payload of one byte"));
    if (payload.size() > kMaxWsControlPayload)
        return unexpected(error(ParseErrc::bad_length, 0, "a close payload over 125 bytes"));
    std::uint16_t code = static_cast<std::uint16_t>(payload[0] << 8 | payload[1]);
    if (!ws_close_code_valid(code))
        return unexpected(error(ParseErrc::bad_value, 0, "close code " + std::to_string(code) + " may not be sent"));
    ByteView reason = payload.subspan(2);
    if (!valid_utf8(reason)) return unexpected(error(ParseErrc::bad_value, 2, "the close reason is not UTF-8"));
    c.code = code;
    c.reason = to_string(reason);
    return c;
}

void WsAssembler::reset() {
    m_open = false;
    m_message = WsMessage{};
}

Result<std::optional<WsMessage>, ParseError> WsAssembler::add(const WsFrame& f) {
    auto fail = [this](ParseErrc code, std::string detail) -> Result<std::optional<WsMessage>, ParseError> {
        reset();
        return unexpected(error(code, 0, std::move(detail)));
    };
    if (f.rsv2 || f.rsv3) return fail(ParseErrc::bad_value, "RSV2 or RSV3 set, and no extension that uses them was agreed");
    if (ws_control(f.opcode)) {
        if (f.opcode != ws_opcode::close && f.opcode != ws_opcode::ping && f.opcode != ws_opcode::pong)
            return fail(ParseErrc::unknown_type, "a reserved control opcode");
        if (f.rsv1) return fail(ParseErrc::bad_value, "RSV1 on a control frame");
        if (!f.fin) return fail(ParseErrc::bad_value, "a fragmented control frame");
        if (f.payload.size() > kMaxWsControlPayload) return fail(ParseErrc::bad_length, "a control frame over 125 bytes");
        WsMessage c;
        c.opcode = f.opcode;
        c.payload = f.payload;
        return std::optional<WsMessage>(std::move(c));
    }
    if (f.opcode == ws_opcode::continuation) {
        if (!m_open) return fail(ParseErrc::bad_value, "a continuation frame with no message open");
        if (f.rsv1) return fail(ParseErrc::bad_value, "RSV1 on a continuation frame");
        if (f.payload.size() > m_max_bytes - m_message.payload.size())
            return fail(ParseErrc::length_over_limit, "a message over " + std::to_string(m_max_bytes) + " bytes");
        if (m_message.frames >= m_max_frames)
            return fail(ParseErrc::length_over_limit, "a message in more than " + std::to_string(m_max_frames) + " frames");
        m_message.payload.insert(m_message.payload.end(), f.payload.begin(), f.payload.end());
        ++m_message.frames;
        if (!f.fin) return std::optional<WsMessage>();
        WsMessage done = std::move(m_message);
        reset();
        return std::optional<WsMessage>(std::move(done));
    }
    if (f.opcode != ws_opcode::text && f.opcode != ws_opcode::binary)
        return fail(ParseErrc::unknown_type, "a reserved data opcode");
    if (m_open) return fail(ParseErrc::bad_value, "a new data frame while a fragmented message is open");
    if (f.rsv1 && !m_allow_compressed) return fail(ParseErrc::bad_value, "RSV1 set, but permessage-deflate was not agreed");
    if (f.payload.size() > m_max_bytes)
        return fail(ParseErrc::length_over_limit, "a message over " + std::to_string(m_max_bytes) + " bytes");
    WsMessage msg;
    msg.opcode = f.opcode;
    msg.compressed = f.rsv1;
    msg.payload = f.payload;
    if (f.fin) return std::optional<WsMessage>(std::move(msg));
    m_message = std::move(msg);
    m_open = true;
    return std::optional<WsMessage>();
}

// ---- permessage-deflate ------------------------------------------------------------

Result<std::vector<WsExtension>, ParseError> parse_ws_extensions(std::string_view s) {
    constexpr std::size_t kMaxElements = 64, kMaxParams = 64;
    std::vector<WsExtension> out;
    std::size_t pos = 0;
    auto skip_ows = [&] {
        while (pos < s.size() && is_ows(s[pos])) ++pos;
    };
    auto token = [&]() -> std::string_view {
        std::size_t start = pos;
        while (pos < s.size() && is_tchar(static_cast<unsigned char>(s[pos]))) ++pos;
        return s.substr(start, pos - start);
    };
    for (;;) {
        skip_ows();
        if (pos == s.size()) break;
        if (s[pos] == ',') {
            ++pos;
            continue;
        }
        WsExtension e;
        auto name = token();
        if (name.empty()) return unexpected(error(ParseErrc::bad_value, pos, "an extension name is not a token"));
        e.name = std::string(name);
        for (;;) {
            skip_ows();
            if (pos == s.size() || s[pos] == ',') break;
            if (s[pos] != ';') return unexpected(error(ParseErrc::bad_value, pos, "expected ';' or ',' in an extension"));
            ++pos;
            skip_ows();
            auto pname = token();
            if (pname.empty()) return unexpected(error(ParseErrc::bad_value, pos, "a parameter name is not a token"));
            std::optional<std::string> value;
            skip_ows();
            if (pos < s.size() && s[pos] == '=') {
                ++pos;
                skip_ows();
                if (pos < s.size() && s[pos] == '"') {
                    std::string v;
                    ++pos;
                    bool closed = false;
                    while (pos < s.size()) {
                        char c = s[pos++];
                        if (c == '"') {
                            closed = true;
                            break;
                        }
                        if (c == '\\') {
                            if (pos == s.size()) break;
                            c = s[pos++];
                        }
                        if (!field_char(static_cast<unsigned char>(c)))
                            return unexpected(error(ParseErrc::bad_value, pos - 1, "a control character in a quoted value"));
                        v += c;
                    }
                    if (!closed) return unexpected(error(ParseErrc::bad_value, pos, "an unterminated quoted value"));
                    value = std::move(v);
                } else {
                    auto v = token();
                    if (v.empty()) return unexpected(error(ParseErrc::bad_value, pos, "a parameter value is not a token"));
                    value = std::string(v);
                }
            }
            if (e.params.size() >= kMaxParams)
                return unexpected(error(ParseErrc::length_over_limit, pos, "more than 64 parameters in an extension"));
            e.params.emplace_back(std::string(pname), std::move(value));
        }
        if (out.size() >= kMaxElements)
            return unexpected(error(ParseErrc::length_over_limit, pos, "more than 64 extensions"));
        out.push_back(std::move(e));
    }
    return out;
}

Result<DeflateParams, ParseError> parse_deflate_params(const WsExtension& e, DeflateRole role) {
    DeflateParams p;
    bool seen[4] = {false, false, false, false};
    auto bits = [](const std::optional<std::string>& v) -> std::optional<int> {
        if (!v || v->empty() || v->size() > 2 || (*v)[0] == '0') return std::nullopt;
        int n = 0;
        for (char c : *v) {
            if (!is_digit(c)) return std::nullopt;
            n = n * 10 + (c - '0');
        }
        if (n < 8 || n > 15) return std::nullopt;
        return n;
    };
    for (const auto& [name, value] : e.params) {
        int which = name == "server_no_context_takeover"   ? 0
                    : name == "client_no_context_takeover" ? 1
                    : name == "server_max_window_bits"     ? 2
                    : name == "client_max_window_bits"     ? 3
                                                           : -1;
        if (which < 0) return unexpected(error(ParseErrc::bad_value, 0, "unknown permessage-deflate parameter " + name));
        if (seen[which]) return unexpected(error(ParseErrc::bad_value, 0, "permessage-deflate parameter " + name + " twice"));
        seen[which] = true;
        if (which < 2) {
            if (value) return unexpected(error(ParseErrc::bad_value, 0, name + " takes no value"));
            (which == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
            continue;
        }
        if (!value && which == 3 && role == DeflateRole::offer) {
            p.client_max_window_bits = 0;
            continue;
        }
        auto n = bits(value);
        if (!n) return unexpected(error(ParseErrc::bad_value, 0, name + " needs a value from 8 to 15"));
        (which == 2 ? p.server_max_window_bits : p.client_max_window_bits) = *n;
    }
    return p;
}

Result<std::optional<DeflateParams>, ParseError> agreed_deflate(std::string_view value) {
    auto list = parse_ws_extensions(value);
    if (!list) return unexpected(list.error());
    std::optional<DeflateParams> out;
    for (const auto& e : *list) {
        if (!iequals(e.name, "permessage-deflate")) continue;
        if (out) return unexpected(error(ParseErrc::bad_value, 0, "permessage-deflate agreed twice"));
        auto p = parse_deflate_params(e, DeflateRole::response);
        if (!p) return unexpected(p.error());
        out = *p;
    }
    return out;
}

std::string deflate_element(const DeflateParams& p) {
    std::string s = "permessage-deflate";
    if (p.server_no_context_takeover) s += "; server_no_context_takeover";
    if (p.client_no_context_takeover) s += "; client_no_context_takeover";
    if (p.server_max_window_bits) s += "; server_max_window_bits=" + std::to_string(*p.server_max_window_bits);
    if (p.client_max_window_bits) {
        s += "; client_max_window_bits";
        if (*p.client_max_window_bits != 0) s += "=" + std::to_string(*p.client_max_window_bits);
    }
    return s;
}

// The empty stored block a sync flush ends with, which senders remove.
static constexpr std::uint8_t kDeflateTail[4] = {0x00, 0x00, 0xff, 0xff};

struct Inflater::Impl {
    z_stream zs{};
    bool no_context_takeover;
    std::size_t max_output;
    bool broken = false;

    Impl(bool nct, std::size_t max) : no_context_takeover(nct), max_output(max) {
        if (inflateInit2(&zs, -15) != Z_OK) throw std::bad_alloc();
    }
    ~Impl() { inflateEnd(&zs); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
};

Inflater::Inflater(bool no_context_takeover, std::size_t max_output)
    : m_impl(std::make_unique<Impl>(no_context_takeover, max_output)) {}
Inflater::~Inflater() = default;
Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;

bool Inflater::broken() const { return m_impl->broken; }

Result<Bytes, ParseError> Inflater::inflate(ByteView message) {
    Impl& st = *m_impl;
    z_stream& zs = st.zs;
    auto fail = [&](ParseErrc code, std::string detail) -> Result<Bytes, ParseError> {
        // Without context takeover the next message starts afresh; with it,
        // the window this message would have left is unknown.
        inflateReset(&zs);
        if (!st.no_context_takeover) st.broken = true;
        return unexpected(error(code, 0, std::move(detail)));
    };
    if (st.broken)
        return unexpected(error(ParseErrc::bad_value, 0, "the compression context was lost at an earlier message"));
    if (message.size() > (UINT_MAX >> 2)) return fail(ParseErrc::length_over_limit, "a compressed message over 1 GiB");
    Bytes in(message.begin(), message.end());
    in.insert(in.end(), std::begin(kDeflateTail), std::end(kDeflateTail));
    zs.next_in = in.data();
    zs.avail_in = static_cast<uInt>(in.size());
    Bytes out;
    std::size_t produced = 0;
    bool ended = false;
    // data_type as the last call that made progress left it: a call that
    // cannot (Z_BUF_ERROR) clears it.
    int data_type = 0;
    for (;;) {
        if (produced == out.size()) {
            std::size_t grow = std::max<std::size_t>(out.size(), 16 * 1024);
            out.resize(std::min(out.size() + grow, st.max_output + 1));
        }
        zs.next_out = out.data() + produced;
        zs.avail_out = static_cast<uInt>(out.size() - produced);
        int rc = ::inflate(&zs, Z_SYNC_FLUSH);
        produced = out.size() - zs.avail_out;
        if (produced > st.max_output)
            return fail(ParseErrc::length_over_limit,
                        "the message inflates to over " + std::to_string(st.max_output) + " bytes");
        if (rc == Z_STREAM_END) {
            ended = true;
            break;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
        if (rc != Z_OK)
            return fail(ParseErrc::bad_value, std::string("not valid DEFLATE: ") + (zs.msg ? zs.msg : "zlib error"));
        data_type = zs.data_type;
        if (zs.avail_in == 0 && zs.avail_out > 0) break;
    }
    if (ended) {
        // A block with BFINAL set ends the DEFLATE stream; the next message
        // starts a new one (the sender cannot refer back across it).
        inflateReset(&zs);
    } else if (!(data_type & 128)) {
        return fail(ParseErrc::truncated, "the message ends inside a DEFLATE block");
    } else if (st.no_context_takeover) {
        inflateReset(&zs);
    }
    out.resize(produced);
    return out;
}

struct Deflater::Impl {
    z_stream zs{};
    bool no_context_takeover;

    Impl(bool nct, int window_bits, int level) : no_context_takeover(nct) {
        if (window_bits < 8 || window_bits > 15) throw std::invalid_argument("window bits must be 8..15");
        if (level < 0 || level > 9) throw std::invalid_argument("compression level must be 0..9");
        if (deflateInit2(&zs, level, Z_DEFLATED, -std::max(window_bits, 9), 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    ~Impl() { deflateEnd(&zs); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
};

Deflater::Deflater(bool no_context_takeover, int window_bits, int level)
    : m_impl(std::make_unique<Impl>(no_context_takeover, window_bits, level)) {}
Deflater::~Deflater() = default;
Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;

Bytes Deflater::deflate(ByteView message) {
    z_stream& zs = m_impl->zs;
    if (message.size() > (UINT_MAX >> 2)) throw std::length_error("a message over 1 GiB");
    zs.next_in = const_cast<Bytef*>(message.data());  // zlib does not write through next_in
    zs.avail_in = static_cast<uInt>(message.size());
    Bytes out(deflateBound(&zs, static_cast<uLong>(message.size())) + 16);
    std::size_t produced = 0;
    for (;;) {
        zs.next_out = out.data() + produced;
        zs.avail_out = static_cast<uInt>(out.size() - produced);
        int rc = ::deflate(&zs, Z_SYNC_FLUSH);
        produced = out.size() - zs.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
        if (zs.avail_out != 0) break;
        out.resize(out.size() * 2);
    }
    out.resize(produced);
    // A sync flush right after another emits nothing (zlib refuses a
    // duplicate flush); an empty message then goes as 0x00, the first byte
    // of the empty stored block the receiver completes with 00 00 ff ff.
    if (out.empty() && message.empty()) {
        if (m_impl->no_context_takeover) deflateReset(&zs);
        return Bytes{0x00};
    }
    if (out.size() < 4 || !std::equal(std::begin(kDeflateTail), std::end(kDeflateTail), out.end() - 4))
        throw std::logic_error("a sync flush did not end in 00 00 ff ff");
    out.resize(out.size() - 4);
    if (m_impl->no_context_takeover) deflateReset(&zs);
    return out;
}

// ---- The opening handshake ------------------------------------------------------------

std::string websocket_accept(std::string_view key) {
    auto sha1 = Botan::HashFunction::create_or_throw("SHA-1");
    sha1->update(reinterpret_cast<const std::uint8_t*>(key.data()), key.size());
    sha1->update(reinterpret_cast<const std::uint8_t*>(kWsGuid.data()), kWsGuid.size());
    auto digest = sha1->final();
    return crypto::base64_encode(ByteView(digest.data(), digest.size()));
}

bool valid_websocket_key(std::string_view key) {
    if (key.size() != 24) return false;
    auto raw = crypto::base64_decode(key, crypto::Base64Alphabet::standard, crypto::Base64Padding::required);
    return raw && raw->size() == 16;
}

// ---- HttpWsStream ------------------------------------------------------------------

bool HttpWsStream::starts_http(Peer from, ByteView b) {
    return from == Peer::client ? looks_like_http_request(b) : looks_like_http_response(b);
}

Result<std::size_t, ParseError> HttpWsStream::frame(Peer from, ByteView buffered, std::string_view request_method,
                                                    HttpMessage* head_out) {
    const int i = index(from);
    if (head_out) *head_out = HttpMessage{};
    if (buffered.empty()) return std::size_t{0};
    const bool http = starts_http(from, buffered);
    if (m_until_close[i] && !http) return std::min(buffered.size(), kMaxHttpBody);
    if (m_websocket[i] && !http) {
        // Bytes that may still turn out to be an HTTP start line wait, so
        // that how the stream was cut does not change what is framed.
        if (from == Peer::client ? may_become_http_request(buffered) : may_become_http_response(buffered))
            return std::size_t{0};
        return frame_ws(buffered);
    }
    HttpMessage head;
    auto r = m_framer[i].frame(buffered, request_method, &head);
    if (!r && m_websocket[i]) {
        // A frame whose first bytes only look like HTTP (an unmasked client
        // frame can): the upgrade has happened, so try it as one.
        auto w = frame_ws(buffered);
        if (w) return w;
    }
    if (r && *r > 0) {
        learn(from, head);
        if (head_out) *head_out = std::move(head);
    }
    return r;
}

HttpWsStream::Unit HttpWsStream::unit(Peer from, ByteView message) const {
    const int i = index(from);
    const bool http = starts_http(from, message);
    if (m_until_close[i] && !http) return Unit::body;
    if (m_websocket[i] && !http) return Unit::ws;
    return Unit::http;
}

void HttpWsStream::learn(Peer from, const HttpMessage& head) {
    if (from == Peer::client) {
        if (head.websocket_upgrade()) m_websocket[0] = true;
        return;
    }
    if (head.status == 101) m_websocket[1] = true;
    if (head.framing == BodyFraming::until_close) m_until_close[1] = true;
}

// ---- Where JSON values lie -------------------------------------------------------------

namespace {

void skip_json_ws(std::string_view s, std::size_t& i) {
    while (i < s.size() && is_json_ws(s[i])) ++i;
}

// Past the string starting at s[i] == '"'; false when it does not end.
bool skip_json_string(std::string_view s, std::size_t& i) {
    ++i;
    while (i < s.size()) {
        char c = s[i++];
        if (c == '"') return true;
        if (c == '\\') {
            if (i == s.size()) return false;
            ++i;
        }
    }
    return false;
}

JsonSpan span_of(std::string_view s, std::size_t start, std::size_t end) {
    if (s[start] == '"') return {start + 1, end - start - 2, true};
    return {start, end - start, false};
}

}  // namespace

std::optional<std::size_t> json_value_end(std::string_view s, std::size_t i) {
    if (i >= s.size()) return std::nullopt;
    if (s[i] == '"') {
        if (!skip_json_string(s, i)) return std::nullopt;
        return i;
    }
    if (s[i] == '{' || s[i] == '[') {
        std::size_t depth = 0;
        while (i < s.size()) {
            char c = s[i];
            if (c == '"') {
                if (!skip_json_string(s, i)) return std::nullopt;
                continue;
            }
            if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            ++i;
        }
        return std::nullopt;
    }
    std::size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_json_ws(s[i])) ++i;
    if (i == start) return std::nullopt;
    return i;
}

std::optional<std::vector<JsonMemberSpan>> json_object_members(std::string_view s, std::size_t i, std::size_t* end) {
    std::vector<JsonMemberSpan> out;
    skip_json_ws(s, i);
    if (i >= s.size() || s[i] != '{') return std::nullopt;
    ++i;
    skip_json_ws(s, i);
    if (i < s.size() && s[i] == '}') {
        if (end) *end = i + 1;
        return out;
    }
    for (;;) {
        skip_json_ws(s, i);
        if (i >= s.size() || s[i] != '"') return std::nullopt;
        std::size_t key_start = i;
        if (!skip_json_string(s, i)) return std::nullopt;
        std::string_view quoted = s.substr(key_start, i - key_start);
        std::string key;
        if (quoted.find('\\') == std::string_view::npos) {
            key.assign(quoted.substr(1, quoted.size() - 2));
        } else {
            auto k = nlohmann::json::parse(quoted, nullptr, false);
            if (!k.is_string()) return std::nullopt;
            key = k.get<std::string>();
        }
        skip_json_ws(s, i);
        if (i >= s.size() || s[i] != ':') return std::nullopt;
        ++i;
        skip_json_ws(s, i);
        auto value_end = json_value_end(s, i);
        if (!value_end) return std::nullopt;
        out.push_back({std::move(key), span_of(s, i, *value_end)});
        i = *value_end;
        skip_json_ws(s, i);
        if (i >= s.size()) return std::nullopt;
        if (s[i] == ',') {
            ++i;
            continue;
        }
        if (s[i] == '}') {
            if (end) *end = i + 1;
            return out;
        }
        return std::nullopt;
    }
}

std::optional<std::vector<JsonSpan>> json_array_elements(std::string_view s, std::size_t i) {
    std::vector<JsonSpan> out;
    skip_json_ws(s, i);
    if (i >= s.size() || s[i] != '[') return std::nullopt;
    ++i;
    skip_json_ws(s, i);
    if (i < s.size() && s[i] == ']') return out;
    for (;;) {
        skip_json_ws(s, i);
        auto value_end = json_value_end(s, i);
        if (!value_end) return std::nullopt;
        out.push_back(span_of(s, i, *value_end));
        i = *value_end;
        skip_json_ws(s, i);
        if (i >= s.size()) return std::nullopt;
        if (s[i] == ',') {
            ++i;
            continue;
        }
        if (s[i] == ']') return out;
        return std::nullopt;
    }
}

const JsonMemberSpan* last_json_member(const std::vector<JsonMemberSpan>& members, std::string_view key) {
    for (auto it = members.rbegin(); it != members.rend(); ++it)
        if (it->key == key) return &*it;
    return nullptr;
}

}  // namespace msglab::csmp
