#include "spchat/stream.hpp"

#include <map>

#include "spchat/app.hpp"
#include "spchat/files.hpp"
#include "spchat/wire.hpp"

namespace msglab::spchat {

namespace {

std::uint64_t be32(ByteView b) {
    return (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) | (std::uint64_t{b[2]} << 8) | b[3];
}

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// The span of the string value of `"key"` in JSON text (the characters
// between its quotes), for in-place mutation; nullopt when the key is absent
// or its value is not a string.
std::optional<FieldSpan> string_value(std::string_view json, std::string_view key, std::size_t base) {
    const std::string quoted = "\"" + std::string(key) + "\"";
    std::size_t at = 0;
    while ((at = json.find(quoted, at)) != std::string_view::npos) {
        std::size_t i = at + quoted.size();
        auto skip = [&] {
            while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) ++i;
        };
        skip();
        if (i < json.size() && json[i] == ':') {
            ++i;
            skip();
            if (i < json.size() && json[i] == '"') {
                std::size_t start = ++i;
                while (i < json.size() && json[i] != '"') i += json[i] == '\\' ? 2 : 1;
                if (i < json.size()) return FieldSpan{base + start, i - start};
            }
            return std::nullopt;
        }
        at += quoted.size();
    }
    return std::nullopt;
}

class Codec final : public StreamCodec {
public:
    Result<std::size_t, ParseError> frame(Peer, ByteView b) override {
        if (b.size() < 4) return std::size_t{0};
        const std::uint64_t n = be32(b);
        if (n > kDecodeMaxFrame)
            return unexpected(ParseError{ParseErrc::length_over_limit, 0,
                                         "length prefix " + std::to_string(n) + " is over decode's bound of " +
                                             std::to_string(kDecodeMaxFrame)});
        if (b.size() - 4 < n) return std::size_t{0};
        return static_cast<std::size_t>(4 + n);
    }

    DecodedMessage decode(Peer from, ByteView message) override {
        DecodedMessage d;
        if (message.size() < 4) {
            d.type = "MALFORMED";
            d.anomalies.push_back("shorter than a length prefix");
            return d;
        }
        const std::uint64_t n = be32(message);
        d.fields.push_back({"spchat.length", std::to_string(n)});
        if (n > kDefaultMaxFrame) d.anomalies.push_back("frame of " + std::to_string(n) + " bytes: over the clean bound of 1 MiB");
        auto m = parse(text(message.subspan(4)));
        if (!m) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not a JSON object with a string \"type\"");
            return d;
        }
        const Json& j = *m;
        d.type = j["type"].get<std::string>();
        d.fields.push_back({"spchat.type", d.type});
        if (d.type.empty()) {
            // Every decoded message has a type to show and match on; the
            // server answers this one "Unknown type: ".
            d.type = "MALFORMED";
            d.anomalies.push_back("an empty \"type\"");
        } else if (!known_type(d.type)) {
            d.anomalies.push_back("unknown type");
        }
        auto add = [&](const char* key, const char* name) {
            if (auto v = string_field(j, key)) d.fields.push_back({name, *v});
        };
        add("nick", "spchat.nick");
        add("room", "spchat.room");
        add("text", "spchat.text");
        add("from", "spchat.from");
        add("to", "spchat.to");
        if (auto it = j.find("members"); it != j.end() && it->is_array()) {
            std::string list;
            for (const auto& e : *it)
                if (e.is_string()) list += (list.empty() ? "" : ", ") + e.get<std::string>();
            d.fields.push_back({"spchat.members", list});
        }
        if (from == Peer::client && d.type == "HELLO") {
            std::string nick = lower(strip(string_field(j, "nick").value_or("")));
            if (!nick.empty()) m_nick = nick;
        }
        if (d.type == "MSG") {
            const std::string t = strip(string_field(j, "text").value_or(""));
            if (from == Peer::client && upper(t) == kMagicText)
                d.anomalies.push_back("the magic trigger text \"BACKDOOR\"");
            if (from == Peer::server && string_field(j, "nick") == std::string("server") && t == kMagicReply)
                d.anomalies.push_back("the hidden reply to the magic trigger");
        }
        if (d.type.rfind("FILE_", 0) == 0) file(from, j, d);
        return d;
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        if (m.size() < 4) return std::nullopt;
        if (field == "spchat.length") return FieldSpan{0, 4};
        if (field.rfind("spchat.", 0) != 0) return std::nullopt;
        return string_value(text(m.subspan(4)), field.substr(7), 4);
    }

private:
    void file(Peer from, const Json& j, DecodedMessage& d) {
        auto pl = j.find("payload");
        if (pl == j.end() || !pl->is_object()) {
            d.anomalies.push_back("no payload");
            return;
        }
        const std::string id = string_field(*pl, "file_id").value_or("");
        d.fields.push_back({"spchat.file_id", id});
        if (from == Peer::client && !m_nick.empty()) {
            const std::string claimed = lower(strip(string_field(j, "from").value_or("")));
            if (claimed != m_nick)
                d.anomalies.push_back("\"from\" is '" + claimed + "' but this connection said HELLO as '" + m_nick + "'");
        }
        if (d.type == "FILE_START") {
            auto offer = read_offer(j);
            if (!offer) {
                d.anomalies.push_back("malformed FILE_START payload");
                return;
            }
            d.fields.push_back({"spchat.name", offer->first.name});
            d.fields.push_back({"spchat.size", std::to_string(offer->first.size)});
            d.fields.push_back({"spchat.sha256", offer->first.sha256});
            d.fields.push_back({"spchat.mode", offer->first.mode});
            d.anomalies.push_back("file keys derive from an all-zero session key and this nonce: anyone who sees this "
                                  "frame reads the file");
            if (m_files.size() >= 4096) m_files.erase(m_files.begin());
            m_files[id] = file_key(zero_session_key(), offer->second);
            return;
        }
        if (d.type == "FILE_CHUNK") {
            if (auto it = pl->find("index"); it != pl->end() && it->is_number_unsigned())
                d.fields.push_back({"spchat.index", std::to_string(it->get<std::uint64_t>())});
            auto k = m_files.find(id);
            if (k == m_files.end()) return;  // its FILE_START is not in this stream
            auto nonce = from_b64url(string_field(*pl, "nonce_b64").value_or(""));
            auto ct = from_b64url(string_field(*pl, "ciphertext").value_or(""));
            auto tag = from_b64url(string_field(*pl, "tag_b64").value_or(""));
            if (!nonce || nonce->empty() || !ct || !tag || tag->size() != 16) {
                d.anomalies.push_back("malformed chunk encoding");
                return;
            }
            ct->insert(ct->end(), tag->begin(), tag->end());
            auto plain = open_chunk(k->second, *nonce, *ct);
            if (!plain) {
                d.anomalies.push_back("chunk tag does not verify");
                return;
            }
            d.plaintext = std::move(*plain);
            d.authenticated = true;
        }
    }

    std::string m_nick;
    std::map<std::string, Bytes> m_files;  // file_id -> file key
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog*) { return std::make_unique<Codec>(); }

bool detect(ByteView b) {
    if (b.size() < 6) return false;
    const std::uint64_t n = be32(b);
    if (n < 2 || n > kDecodeMaxFrame || b[4] != '{') return false;
    std::string_view body = text(b.subspan(4, std::min<std::size_t>(b.size() - 4, n)));
    if (b.size() - 4 >= n) {
        auto m = parse(body);
        return m && known_type((*m)["type"].get<std::string>());
    }
    auto span = string_value(body, "type", 0);
    return span && known_type(body.substr(span->offset, span->length));
}

}  // namespace msglab::spchat
