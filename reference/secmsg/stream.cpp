#include "secmsg/stream.hpp"

#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"
#include "secmsg/session.hpp"

namespace msglab::secmsg {

namespace {

bool all_zero(ByteView b) {
    for (std::uint8_t x : b)
        if (x) return false;
    return true;
}

class Codec final : public StreamCodec {
public:
    explicit Codec(const KeyLog* keys) : m_keylog(keys) {}

    Result<std::size_t, ParseError> frame(Peer, ByteView buffered) override {
        return frame_length(buffered, Limits{kDecodeMaxPayload});
    }

    DecodedMessage decode(Peer, ByteView message) override {
        DecodedMessage d;
        auto parsed = parse_packet(message, Limits{kDecodeMaxPayload});
        if (!parsed) {
            d.type = "MALFORMED";
            d.anomalies.push_back(parsed.error().to_string());
            return d;
        }
        const Packet& p = *parsed;
        d.type = message_type_name(p.type);
        d.timestamp = p.timestamp;
        d.fields.push_back({"secmsg.length", std::to_string(p.payload.size())});
        d.fields.push_back({"secmsg.original_hash", short_hex(p.original_hash, 8)});
        d.fields.push_back({"secmsg.timestamp", utc_text(p.timestamp)});
        if (p.type == MessageType::handshake_request) {
            m_session_id.assign(p.original_hash.begin(), p.original_hash.begin() + 8);
            m_keys.reset();
            if (m_keylog) m_keys = keys_from_keylog(*m_keylog, m_session_id);
        }
        if (!m_session_id.empty()) d.session_id = hex(m_session_id);
        if (is_handshake(p.type)) {
            d.fields.push_back({"secmsg.dh_public", short_hex(p.payload)});
            if (!crypto::dh14::public_value_ok(p.payload))
                d.anomalies.push_back("weak DH public value (0, 1, p-1 or not below p)");
            if (crypto::sha256(p.payload) != p.original_hash)
                d.anomalies.push_back("original_hash is not SHA-256 of the public value");
            if (!all_zero(p.hmac)) d.anomalies.push_back("non-zero HMAC on a handshake packet");
            return d;
        }
        d.authenticated = true;
        d.fields.push_back({"secmsg.hmac", short_hex(p.hmac, 8)});
        if (all_zero(p.hmac)) d.anomalies.push_back("zero HMAC on a REGULAR packet");
        if (p.payload.size() > Limits{}.max_payload) d.anomalies.push_back("payload over the 64 KiB endpoint bound");
        if (m_keys) {
            Opened o = open_regular(*m_keys, p);
            if (!o.hmac_ok) d.anomalies.push_back("HMAC mismatch");
            if (!o.hash_ok) d.anomalies.push_back("plaintext hash mismatch");
            d.plaintext = std::move(o.plaintext);
        }
        return d;
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        if (m.size() < kOverheadBytes) return std::nullopt;
        if (field == "secmsg.magic") return FieldSpan{0, 6};
        if (field == "secmsg.type") return FieldSpan{6, 1};
        if (field == "secmsg.length") return FieldSpan{7, 4};
        if (field == "secmsg.original_hash") return FieldSpan{11, 32};
        if (field == "secmsg.timestamp") return FieldSpan{43, 8};
        if (field == "secmsg.payload") return FieldSpan{kHeaderBytes, m.size() - kOverheadBytes};
        if (field == "secmsg.hmac") return FieldSpan{m.size() - kMacBytes, kMacBytes};
        return std::nullopt;
    }

private:
    const KeyLog* m_keylog;
    Bytes m_session_id;
    std::optional<Keys> m_keys;
};

class Client final : public LiveClient {
public:
    Client(const Clock& clock, Rng& rng) : m_clock(clock), m_session(Role::initiator, config(), clock, rng) {}

    std::vector<Bytes> start() override { return m_session.start().packets; }

    Fed feed(ByteView data) override {
        Fed fed;
        m_buffer.insert(m_buffer.end(), data.begin(), data.end());
        // Split into packets here as well, to hand the raw packets back.
        for (;;) {
            auto len = frame_length(m_buffer, Limits{kDecodeMaxPayload});
            if (!len) {
                fed.closed = len.error().to_string();
                m_buffer.clear();
                break;
            }
            if (*len == 0 || m_buffer.size() < *len) break;
            Bytes packet(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
            m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
            Output out = m_session.feed(packet);
            for (auto& p : out.packets) fed.to_send.push_back(std::move(p));
            for (auto& e : out.events) {
                if (e.kind == Event::Kind::established) fed.established = true;
                if (e.kind == Event::Kind::closed) fed.closed = std::string(reject_name(*e.reason)) + ": " + e.detail;
            }
            fed.messages.push_back(std::move(packet));
            if (fed.closed) break;
        }
        return fed;
    }

    bool established() const override { return m_session.established(); }

    Bytes seal(ByteView plaintext, std::optional<std::uint64_t> timestamp) override {
        const Keys& k = *m_session.keys();
        return seal_regular_wire(k, SegmsgCipher(k.master), plaintext, timestamp.value_or(m_clock.unix_seconds()));
    }

    std::optional<Bytes> refresh(ByteView message) const override {
        auto parsed = parse_packet(message, Limits{kDecodeMaxPayload});
        if (!parsed) return std::nullopt;
        Packet p = std::move(*parsed);
        if (is_handshake(p.type)) {
            // original_hash is SHA-256 of the public value; the HMAC field
            // stays as it is (zeros from a clean sender), nothing checks it.
            p.original_hash = crypto::sha256(p.payload);
            return serialize(p);
        }
        if (!m_session.keys()) return std::nullopt;
        const Keys& k = *m_session.keys();
        Bytes plaintext = SegmsgCipher(k.master).ctr(p.payload);
        p.original_hash = crypto::sha256(plaintext);
        Bytes wire = serialize(p);
        crypto::Digest mac = crypto::hmac_sha256(k.hmac_key, signed_part(wire));
        std::copy(mac.begin(), mac.end(), wire.end() - static_cast<std::ptrdiff_t>(kMacBytes));
        return wire;
    }

    std::optional<KeyLogEntry> keylog_entry() const override {
        if (!m_session.keys()) return std::nullopt;
        const auto& master = m_session.keys()->master;
        return KeyLogEntry{kKeyLogLabel, m_session.session_id(), Bytes(master.begin(), master.end())};
    }

private:
    static SessionConfig config() {
        SessionConfig c;
        // The replayer reads whatever the target sends and judges it later.
        c.limits.max_payload = kDecodeMaxPayload;
        c.plants.enable(plant::accept_reflection);
        c.plants.enable(plant::no_freshness);
        return c;
    }
    const Clock& m_clock;
    Session m_session;
    Bytes m_buffer;
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys) { return std::make_unique<Codec>(keys); }
std::unique_ptr<LiveClient> make_live_client(const Clock& clock, Rng& rng) {
    return std::make_unique<Client>(clock, rng);
}

bool detect(ByteView b) {
    std::size_t n = std::min<std::size_t>(b.size(), kMagic.size());
    if (n < 4) return false;
    if (!std::equal(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n), kMagic.begin())) return false;
    return b.size() < 7 || (b[6] >= 1 && b[6] <= 3);
}

}  // namespace msglab::secmsg
