// Stateful SLMP: a sans-I/O server and client, driven through the key
// exchange and any sequence of keys, tokens, raw bytes, segmentations,
// quiet gaps, ends of input and clock jumps decoded from the input. Request
// tokens are sealed under the server's live session key, so the fuzzer gets
// behind the MAC check without any bypass; what the server must answer to
// each of them is known and checked.
//
// Plants are off unless named in MSGLAB_FUZZ_PLANTS (comma-separated ids, or
// "all"; `msglab fuzz --plant` sets it). The first input byte then switches
// each named plant on or off for the run (bit i: kPlants[i]), so a campaign
// hunts the planted flaws too (slmp.unit-overflow is a heap overflow under
// ASan).
//
// Ops (first byte % 8), then arguments. `how` says how a unit is written:
// 0 one write, 1..127 writes of that many bytes (at most 16 writes), 128 + c
// two writes cut at c/128 of it.
//   0 client key to the server: variant, how (variant % 4: the client's PEM,
//     with CRLF line ends, without its final newline, another client's PEM)
//   1 token to the server: flags, len16, fill, dt, how. Plaintext (flags % 4):
//     0 a request of user "msglab" whose message is len % 2048 bytes of fill,
//     1 the same with a wrong authentication token, 2 the next len % 2048
//     input bytes as they are, 3 a correct request from a user of the next
//     fill % 32 input bytes with a message of the next len % 2048 input bytes.
//     Flags: 4 seal under another key than the session's; 8 strip the '='
//     padding; 16 hold it back, to go out in the same write as the next
//     unit. Stamped now + (int8)dt * 8 s.
//   2 raw bytes to the server: len8, bytes
//   3 raw bytes to the client: len8, bytes
//   4 a quiet gap: arg (bit 0 the server's idle(), bit 1 the client's)
//   5 the server's end of input
//   6 clock: arg & 0x7f times 16 s forward, backward with the high bit
//   7 the server's unsent units to the client: how
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "fuzz_common.hpp"
#include "slmp/codec.hpp"
#include "slmp/session.hpp"

using namespace msglab;
using namespace msglab::slmp;

namespace {

const char* const kPlants[] = {plant::static_server_key, plant::no_ttl, plant::serial_server,
                               plant::crash_on_bad_input, plant::unit_overflow};
constexpr int kPlantCount = 5;
constexpr std::uint64_t kStart = 1700000000;
constexpr std::size_t kMaxSegments = 16;

// Seeded afresh for every run, so a run depends on its input alone (and a
// crash reproduces from its input). Its state is dropped at the end of a run,
// so that a run frees what it allocates (libFuzzer looks for leaks, at some
// cost, in every run that does not).
class RunRng final : public Rng {
public:
    explicit RunRng(std::uint64_t seed) : m_seed(seed) {}
    void reset() { m_inner = std::make_unique<DeterministicRng>(m_seed); }
    void drop() { m_inner.reset(); }
    void fill(std::span<std::uint8_t> out) override {
        if (!m_inner) reset();
        m_inner->fill(out);
    }
    Botan::RandomNumberGenerator& botan() override {
        if (!m_inner) reset();
        return m_inner->botan();
    }

private:
    std::uint64_t m_seed;
    std::unique_ptr<DeterministicRng> m_inner;
};

ManualClock g_clock(kStart);
// The server's and the client's generators: the client, whenever it is
// made, has the same key.
RunRng g_server_rng(0x5e55), g_client_rng(0xc11e);

// The server process's one key pair (slmp.static-server-key) and another
// client's, made once.
const crypto::P256PrivateKey& static_key() {
    static const crypto::P256PrivateKey k = [] {
        DeterministicRng r(0x57a7);
        return crypto::P256PrivateKey::generate(r);
    }();
    return k;
}
const Bytes& other_client_pem() {
    static const Bytes pem = [] {
        DeterministicRng r(0x07e5);
        return to_bytes(crypto::P256PrivateKey::generate(r).public_key().pem());
    }();
    return pem;
}
// The client's PEM: the same in every run.
const Bytes& client_pem() {
    static const Bytes pem = [] {
        g_client_rng.reset();
        Bytes b = ClientSession({}, g_clock, g_client_rng).start();
        g_client_rng.drop();
        return b;
    }();
    return pem;
}

// A server that has taken one of the op 0 keys in one write as the first
// thing on its connection, and what it answered, per plant set and key
// variant: key generation and ECDH cost more than everything else in a run,
// and most runs start so. Segmented keys and keys after other bytes take the
// real path.
const std::pair<ServerSession, Output>& keyed_server(const ServerConfig& config, std::uint8_t plants,
                                                     std::uint8_t variant, ByteView pem) {
    static std::map<int, std::unique_ptr<std::pair<ServerSession, Output>>> cache;
    auto& slot = cache[plants * 4 + variant];
    if (!slot) {
        g_server_rng.reset();
        ServerSession s(config, g_clock, g_server_rng, &static_key());
        Output out = s.feed(pem);
        slot = std::make_unique<std::pair<ServerSession, Output>>(std::move(s), std::move(out));
        g_server_rng.drop();
    }
    return *slot;
}

const fernet::Key& wrong_key() {
    static const fernet::Key k = *fernet::Key::from_bytes(Bytes(32, 0xa5));
    return k;
}

std::vector<ByteView> segments(ByteView unit, std::uint8_t how) {
    std::vector<ByteView> out;
    if (unit.empty()) return out;
    if (how == 0) {
        out.push_back(unit);
    } else if (how < 128) {
        // At most kMaxSegments writes: a session frames its whole buffer
        // again on every write, so a long unit in one-byte writes costs the
        // square of its length.
        std::size_t step = std::max<std::size_t>(how, (unit.size() + kMaxSegments - 1) / kMaxSegments);
        for (std::size_t at = 0; at < unit.size(); at += step)
            out.push_back(unit.subspan(at, std::min(step, unit.size() - at)));
    } else {
        std::size_t cut = unit.size() * (how - 128u) / 128u;
        if (cut > 0) out.push_back(unit.first(cut));
        out.push_back(unit.subspan(cut));
    }
    return out;
}

bool empty(const Output& o) { return o.units.empty() && o.received.empty() && o.events.empty() && !o.close && !o.fatal; }

std::string text(ByteView b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// What the server must do with a token sealed under its session key that
// arrives alone at a server waiting for a request with nothing buffered.
struct Expected {
    bool waits = false;            // no event: a token without its padding is not whole yet
    std::optional<Reject> reason;  // else nullopt: a request event for user and message
    std::string user, message;
};

class Run {
public:
    explicit Run(std::uint8_t plants) : m_plants(plants) {
        for (int i = 0; i < kPlantCount; ++i)
            if (plants & (1 << i)) m_config.plants.enable(kPlants[i]);
        m_server.emplace(m_config, g_clock, g_server_rng, &static_key());
    }

    void op(Reader& in) {
        std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0: {
                std::uint8_t variant = in.u8(), how = in.u8();
                std::string pem = text(client_pem());
                switch (variant % 4) {
                    case 0: break;
                    case 1: {
                        std::string crlf;
                        for (char c : pem) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
                        pem = crlf;
                        break;
                    }
                    case 2: pem.pop_back(); break;
                    case 3: pem = text(other_client_pem()); break;
                }
                to_server(as_bytes(pem), how, std::nullopt, variant % 4);
                break;
            }
            case 1: token(in); break;
            case 2: to_server(in.bytes(std::min<std::size_t>(in.u8(), in.remaining())), 0, std::nullopt); break;
            case 3: {
                ByteView raw = in.bytes(std::min<std::size_t>(in.u8(), in.remaining()));
                if (!raw.empty()) to_client(raw, 0);
                break;
            }
            case 4: {
                std::uint8_t arg = in.u8();
                if (arg & 1) {
                    bool was = closed();
                    server_output(m_server->idle(), was);
                }
                if (arg & 2) {
                    bool was = client().state() == State::closed;
                    client_output(client().idle(), was);
                }
                break;
            }
            case 5: {
                bool was = closed();
                std::size_t buffered = m_server->buffered();
                Output out = m_server->end_of_input("the peer closed");
                server_output(out, was);
                // Whatever it ends in, the session is over.
                FUZZ_CHECK(m_server->state() == State::closed);
                if (!was) {
                    FUZZ_CHECK(out.close);
                    if (buffered == 0) FUZZ_CHECK(out.events.size() == 1 && !out.events[0].reason);
                }
                break;
            }
            case 6: {
                std::uint8_t arg = in.u8();
                std::uint64_t step = (arg & 0x7fu) * 16ull;
                if (arg & 0x80) g_clock.set(g_clock.unix_seconds() - std::min(step, g_clock.unix_seconds()));
                else g_clock.advance(step);
                break;
            }
            case 7: {
                std::uint8_t how = in.u8();
                Bytes all;
                for (const auto& u : m_unsent) all.insert(all.end(), u.begin(), u.end());
                m_unsent.clear();
                if (!all.empty()) to_client(all, how);
                break;
            }
        }
    }

private:
    bool planted(const char* id) const { return m_config.plants.has(id); }

    // Made when first needed: most runs never talk to the client.
    ClientSession& client() {
        if (!m_client) {
            g_client_rng.reset();
            m_client.emplace(ClientConfig{}, g_clock, g_client_rng);
            FUZZ_CHECK(m_client->start() == client_pem());
        }
        return *m_client;
    }
    bool closed() const { return m_server->state() == State::closed; }

    void token(Reader& in) {
        std::uint8_t flags = in.u8();
        std::size_t len = in.be16() % 2048;
        std::uint8_t fill = in.u8();
        auto dt = static_cast<std::int8_t>(in.u8());
        std::uint8_t how = in.u8();
        Request r{auth_token(kDefaultUser, m_config.secret), kDefaultUser, {}};
        Bytes plaintext;
        switch (flags % 4) {
            case 0:
            case 1:
                r.message.assign(len, static_cast<char>(fill));
                if (flags % 4 == 1) r.token = auth_token(kDefaultUser, "not the secret");
                plaintext = to_bytes(request_text(r));
                break;
            case 2: {
                ByteView raw = in.bytes(std::min(len, in.remaining()));
                plaintext.assign(raw.begin(), raw.end());
                break;
            }
            case 3: {
                r.user = text(in.bytes(std::min<std::size_t>(fill % 32, in.remaining())));
                r.message = text(in.bytes(std::min(len, in.remaining())));
                r.token = auth_token(r.user, m_config.secret);
                plaintext = to_bytes(request_text(r));
                break;
            }
        }
        std::uint64_t now = g_clock.unix_seconds();
        std::uint64_t ts = now + static_cast<std::uint64_t>(static_cast<std::int64_t>(dt) * 8);
        bool session_key = !(flags & 4) && m_server->key();
        Bytes iv(16, 0);
        iv[0] = static_cast<std::uint8_t>(m_tokens++);
        iv[1] = flags;
        std::string t = fernet::encrypt(session_key ? *m_server->key() : wrong_key(), plaintext, ts, iv);
        if (flags & 8) t.erase(t.find_last_not_of('=') + 1);

        // A request the server may act on: under its key, three fields of
        // UTF-8, and the right authentication token.
        auto parsed = parse_request(plaintext);
        bool valid = session_key && parsed &&
                     parsed->token == auth_token(parsed->user, m_config.secret);
        if (valid) m_valid.emplace_back(parsed->user, parsed->message);

        if (flags & 16) {
            m_hold.insert(m_hold.end(), t.begin(), t.end());
            return;
        }
        std::optional<Expected> expected;
        if (session_key && m_hold.empty() && m_server->state() == State::awaiting_request &&
            m_server->buffered() == 0) {
            Expected e;
            bool ttl = !planted(plant::no_ttl);
            if (t.size() % 4 != 0) e.waits = true;
            else if (planted(plant::unit_overflow) && t.size() > kOriginalUnitBytes) e.reason = Reject::unit_overflow;
            else if (ttl && ts + m_config.ttl < now) e.reason = Reject::expired;
            else if (ttl && ts > now + m_config.max_clock_skew) e.reason = Reject::from_future;
            else if (!parsed) e.reason = Reject::bad_request;
            else if (!valid) e.reason = Reject::bad_auth;
            else e.user = parsed->user, e.message = parsed->message;
            expected = e;
        }
        to_server(as_bytes(t), how, expected);
    }

    void to_server(ByteView unit, std::uint8_t how, const std::optional<Expected>& expected,
                   std::optional<std::uint8_t> key_variant = std::nullopt) {
        Bytes bytes = std::move(m_hold);
        m_hold.clear();
        bytes.insert(bytes.end(), unit.begin(), unit.end());
        std::vector<Event> events;
        if (key_variant && m_fed == 0 && m_server->state() == State::awaiting_key && how == 0 &&
            bytes.size() == unit.size()) {
            const auto& [server, out] = keyed_server(m_config, m_plants, *key_variant, bytes);
            m_server.emplace(server);
            m_fed += bytes.size();
            server_output(out, false);
            return;
        }
        for (ByteView seg : segments(bytes, how)) {
            bool was = closed();
            m_fed += seg.size();
            Output out = m_server->feed(seg);
            server_output(out, was);
            events.insert(events.end(), out.events.begin(), out.events.end());
        }
        if (expected) {
            // Exactly the one outcome the token calls for.
            if (expected->waits) {
                FUZZ_CHECK(events.empty() && m_server->state() == State::awaiting_request);
                return;
            }
            FUZZ_CHECK(events.size() == 1);
            const Event& e = events[0];
            if (expected->reason) {
                FUZZ_CHECK(e.kind == Event::Kind::closed && e.reason == expected->reason);
            } else {
                FUZZ_CHECK(e.kind == Event::Kind::request && e.user == expected->user && e.message == expected->message);
            }
            FUZZ_CHECK(closed());
        }
    }

    void to_client(ByteView bytes, std::uint8_t how) {
        for (ByteView seg : segments(bytes, how)) {
            bool was = client().state() == State::closed;
            client_output(client().feed(seg), was);
        }
    }

    void server_output(const Output& out, bool was_closed) {
        // A closed session says and sends nothing more.
        if (was_closed) {
            FUZZ_CHECK(empty(out));
            return;
        }
        if (out.fatal) FUZZ_CHECK(planted(plant::crash_on_bad_input) && out.close);
        if (out.close) FUZZ_CHECK(closed() && m_server->buffered() == 0);
        std::size_t taken = 0;
        for (const auto& u : out.received) {
            FUZZ_CHECK(unit_kind(u).has_value());
            taken += u.size();
        }
        m_taken += taken;
        FUZZ_CHECK(m_taken <= m_fed);
        std::size_t unit = 0;
        for (const auto& e : out.events) {
            switch (e.kind) {
                case Event::Kind::key_exchanged: {
                    // The server's key answers, in the original's layout.
                    FUZZ_CHECK(m_server->key() && unit < out.units.size());
                    // (Parsed once per distinct key: most runs answer with the same one.)
                    static Bytes last_parsed;
                    if (out.units[unit] != last_parsed) {
                        auto k = parse_key(out.units[unit]);
                        FUZZ_CHECK(k && k->key && k->original_layout);
                        last_parsed = out.units[unit];
                    }
                    if (planted(plant::static_server_key))
                        FUZZ_CHECK(out.units[unit] == to_bytes(static_key().public_key().pem()));
                    FUZZ_CHECK(e.detail == hex(m_server->session_id()));
                    ++unit;
                    break;
                }
                case Event::Kind::request: {
                    // Only a token sealed under the session key with the
                    // right authentication token gets here...
                    FUZZ_CHECK(std::find(m_valid.begin(), m_valid.end(), std::make_pair(e.user, e.message)) != m_valid.end());
                    FUZZ_CHECK(out.close && closed() && unit < out.units.size());
                    // ...and its reply opens under the session key.
                    fernet::VerifyOptions o;
                    o.check_future = false;
                    auto opened = fernet::decrypt(*m_server->key(), text(out.units[unit]), 0, o);
                    FUZZ_CHECK(opened && text(*opened) == kReplyPrefix + e.message);
                    m_replies.push_back(text(*opened));
                    ++unit;
                    break;
                }
                case Event::Kind::reply: FUZZ_CHECK(false); break;
                case Event::Kind::closed:
                    FUZZ_CHECK(out.close && closed());
                    if (e.reason == Reject::unit_overflow) FUZZ_CHECK(planted(plant::unit_overflow));
                    break;
            }
        }
        FUZZ_CHECK(unit == out.units.size());
        m_unsent.insert(m_unsent.end(), out.units.begin(), out.units.end());
    }

    void client_output(const Output& out, bool was_closed) {
        if (was_closed) {
            FUZZ_CHECK(empty(out));
            return;
        }
        FUZZ_CHECK(out.units.empty() && !out.fatal);
        for (const auto& e : out.events) {
            switch (e.kind) {
                case Event::Kind::key_exchanged:
                    FUZZ_CHECK(m_client->key() && m_client->state() != State::awaiting_key);
                    // Both ends of one exchange hold one key.
                    if (m_server->key() && m_server->session_id() == m_client->session_id())
                        FUZZ_CHECK(m_client->key()->raw() == m_server->key()->raw());
                    break;
                case Event::Kind::reply:
                    // Nobody but the server seals under a key the client holds.
                    FUZZ_CHECK(std::find(m_replies.begin(), m_replies.end(), e.message) != m_replies.end());
                    FUZZ_CHECK(out.close && m_client->state() == State::closed);
                    break;
                case Event::Kind::request: FUZZ_CHECK(false); break;
                case Event::Kind::closed: FUZZ_CHECK(out.close && m_client->state() == State::closed); break;
            }
        }
    }

    std::uint8_t m_plants;
    ServerConfig m_config;
    std::optional<ClientSession> m_client;
    std::optional<ServerSession> m_server;
    unsigned m_tokens = 0;
    Bytes m_hold;
    std::vector<Bytes> m_unsent;
    std::vector<std::pair<std::string, std::string>> m_valid;
    std::vector<std::string> m_replies;
    std::size_t m_fed = 0, m_taken = 0;
};

}  // namespace

// Botan keeps secure buffers in a locked-memory pool whose bookkeeping grows
// and shrinks across runs: libFuzzer then sees runs with more allocations
// than frees and runs them again to look for leaks. Without the pool, those
// buffers also come from the (ASan-checked) heap.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("BOTAN_MLOCK_POOL_SIZE", "0", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    Reader in(ByteView(data, size));
    static const std::uint8_t allowed = plants_from_env(kPlants, kPlantCount, "SLMP");
    std::uint8_t plants = in.u8() & allowed;
    g_clock.set(kStart);
    g_server_rng.reset();
    {
        Run run(plants);
        for (int steps = 0; steps < 48 && in.remaining() > 0; ++steps) run.op(in);
    }
    g_server_rng.drop();
    g_client_rng.drop();
    return 0;
}
