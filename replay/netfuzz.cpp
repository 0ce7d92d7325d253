#include "replay/netfuzz.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "replay/mutate.hpp"
#include "replay/tcp_connection.hpp"

namespace msglab::replay {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

const char* reaction_name(Reaction r) {
    switch (r) {
        case Reaction::answered: return "answered";
        case Reaction::silent: return "silent";
        case Reaction::closed: return "closed";
        case Reaction::reset: return "reset";
        case Reaction::not_sent: return "not sent";
    }
    return "?";
}

void Coverage::add(const std::string& from, const std::string& input, const std::string& to,
                   const std::string& output, bool expected) {
    ++visits[to];
    for (auto& e : edges)
        if (e.from == from && e.input == input && e.to == to) {
            ++e.count;
            ++e.outputs[output];
            return;
        }
    CoverageEdge e{from, input, to, 1, {{output, 1}}, expected};
    edges.push_back(std::move(e));
}

void Coverage::retract(const std::string& from, const std::string& input, const std::string& to,
                       const std::string& output) {
    if (auto v = visits.find(to); v != visits.end() && v->second) --v->second;
    for (auto e = edges.begin(); e != edges.end(); ++e)
        if (e->from == from && e->input == input && e->to == to) {
            if (auto o = e->outputs.find(output); o != e->outputs.end() && --o->second == 0) e->outputs.erase(o);
            if (--e->count == 0) edges.erase(e);
            return;
        }
}

std::size_t Coverage::states_reached(const SessionModel& model) const {
    std::size_t n = 0;
    for (const auto& s : model.states)
        if (auto it = visits.find(s); it != visits.end() && it->second > 0) ++n;
    return n;
}

bool Coverage::reached(const SessionModel& model, const SessionModel::Transition& t) const {
    for (const auto& e : edges) {
        if (e.from != t.from || !SessionModel::matches(t.input, e.input)) continue;
        if (t.to != "*" && t.to != e.to) continue;
        auto best = model.expected(e.from, e.input);
        if (std::find(best.begin(), best.end(), &t) != best.end()) return true;
    }
    return false;
}

std::size_t Coverage::transitions_reached(const SessionModel& model) const {
    std::size_t n = 0;
    for (const auto& t : model.transitions)
        if (reached(model, t)) ++n;
    return n;
}

std::size_t Coverage::unexpected() const {
    std::size_t n = 0;
    for (const auto& e : edges)
        if (!e.expected) ++n;
    return n;
}

namespace {

// ---------------------------------------------------------------- the plan

std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Independent streams for the plan, each step and each key pair of one
// iteration, so what one step draws never shifts another: a reproducer
// replays the same choices even where the target answers differently.
std::uint64_t derive(std::uint64_t seed, std::uint64_t iteration, std::uint64_t what, std::uint64_t which = 0) {
    return splitmix(splitmix(splitmix(seed) ^ iteration) ^ (what << 32 | which));
}
constexpr std::uint64_t kPlanStream = 1, kStepStream = 2, kKeyStream = 3;

enum class Kind { handshake, data, hold, release, repeat, reflect, foreign, rehandshake, reconnect, close };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::handshake: return "handshake";
        case Kind::data: return "data";
        case Kind::hold: return "hold";
        case Kind::release: return "release";
        case Kind::repeat: return "repeat";
        case Kind::reflect: return "reflect";
        case Kind::foreign: return "foreign";
        case Kind::rehandshake: return "rehandshake";
        case Kind::reconnect: return "reconnect";
        case Kind::close: return "close";
    }
    return "?";
}

bool sends_message(Kind k) { return k != Kind::hold && k != Kind::reconnect && k != Kind::close; }

// Byte mutations; their parameters are drawn when the step's bytes exist.
enum class Mut { flip, length, type, timestamp_far, timestamp_near, key_share, mac, field, truncate, havoc, append };

struct PlanStep {
    Kind kind = Kind::data;
    std::size_t id = 0;   // stable while probes are inserted
    std::size_t ref = 0;  // repeat and release: the id of the step they take their bytes from
    std::vector<Mut> muts;
    bool split = false;
    std::size_t payload = 0;  // data and hold: plaintext size
    bool probe = false;       // inserted by the plan: replay, reflection, reorder, ...
};

// Weights by what the step carries: a handshake has a key share and no MAC,
// a data message a MAC and no key share.
Mut draw_mut(Rng& rng, bool handshake) {
    static const std::pair<Mut, int> for_handshake[] = {
        {Mut::flip, 20},          {Mut::length, 10}, {Mut::type, 10}, {Mut::timestamp_far, 10},
        {Mut::timestamp_near, 5}, {Mut::key_share, 20}, {Mut::field, 5}, {Mut::truncate, 10},
        {Mut::havoc, 10},         {Mut::append, 6},
    };
    static const std::pair<Mut, int> for_data[] = {
        {Mut::flip, 22},          {Mut::length, 12}, {Mut::type, 8},   {Mut::timestamp_far, 10},
        {Mut::timestamp_near, 6}, {Mut::mac, 12},    {Mut::field, 8},  {Mut::truncate, 10},
        {Mut::havoc, 10},         {Mut::append, 6},
    };
    auto pick = [&](const auto& table) {
        int total = 0;
        for (const auto& [m, w] : table) total += w;
        auto r = static_cast<int>(rng.below(static_cast<std::uint64_t>(total)));
        for (const auto& [m, w] : table) {
            if (r < w) return m;
            r -= w;
        }
        return Mut::flip;
    };
    return handshake ? pick(for_handshake) : pick(for_data);
}

std::size_t draw_payload(Rng& rng, const FuzzFields& f) {
    std::size_t max = f.max_payload ? f.max_payload : 4096;
    auto r = rng.below(100);
    if (r < 70) return std::min<std::size_t>(max, 1 + rng.below(64));
    if (r < 85) return std::min<std::size_t>(max, rng.below(1025));
    // Sizes on the edges of blocks, buffers and the endpoint's bound.
    std::vector<std::size_t> edges = {0, 1, 15, 16, 17, 255, 256, 4095, 4096, 4097, max - 1, max};
    edges.insert(edges.end(), f.payload_sizes.begin(), f.payload_sizes.end());
    edges.erase(std::remove_if(edges.begin(), edges.end(), [&](std::size_t s) { return s > max; }), edges.end());
    return edges[rng.below(edges.size())];
}

using Plan = std::vector<PlanStep>;

// One iteration's plan, from the seed alone.
Plan make_plan(std::uint64_t seed, std::uint64_t iteration, const FuzzFields& fields) {
    DeterministicRng rng(derive(seed, iteration, kPlanStream));
    Plan p;
    std::size_t next_id = 0;
    auto step = [&](Kind k) {
        PlanStep s;
        s.kind = k;
        s.id = next_id++;
        if (k == Kind::data || k == Kind::hold) s.payload = draw_payload(rng, fields);
        return s;
    };
    p.push_back(step(Kind::handshake));
    std::size_t data = 1 + rng.below(4);
    for (std::size_t i = 0; i < data; ++i) p.push_back(step(Kind::data));
    // One iteration in ten stays clean: the model's plain path and a check
    // that the target still serves a well-behaved peer.
    if (rng.below(10) != 0) {
        std::size_t probes = rng.below(3);
        for (std::size_t k = 0; k < probes; ++k) {
            auto r = rng.below(6);
            auto insert_after = [&](std::size_t pos, PlanStep s) {
                std::size_t at = pos + 1 + rng.below(p.size() - pos);
                s.probe = true;
                p.insert(p.begin() + static_cast<std::ptrdiff_t>(at), s);
            };
            if (r == 0) {  // a replay of an earlier data message
                std::vector<std::size_t> ds;
                for (std::size_t i = 0; i < p.size(); ++i)
                    if (p[i].kind == Kind::data) ds.push_back(i);
                std::size_t d = ds[rng.below(ds.size())];
                PlanStep s = step(Kind::repeat);
                s.ref = p[d].id;
                insert_after(d, s);
            } else if (r == 1) {  // the target's own message sent back
                insert_after(1, step(Kind::reflect));
            } else if (r == 2) {  // the handshake again, same key share
                PlanStep s = step(Kind::repeat);
                s.ref = p[0].id;
                insert_after(0, s);
            } else if (r == 3) {  // a second handshake with a new key share
                insert_after(0, step(Kind::rehandshake));
            } else if (r == 4) {  // two data messages sent in the other order
                std::vector<std::size_t> ds;
                for (std::size_t i = 0; i + 1 < p.size(); ++i)
                    if (p[i].kind == Kind::data && p[i + 1].kind == Kind::data) ds.push_back(i);
                if (ds.empty()) continue;
                std::size_t d = ds[rng.below(ds.size())];
                p[d].kind = Kind::hold;
                p[d].probe = true;
                PlanStep s = step(Kind::release);
                s.ref = p[d].id;
                s.probe = true;
                p.insert(p.begin() + static_cast<std::ptrdiff_t>(d + 2), s);
            } else {  // a reconnect: a new session, and a message of the old one in it
                std::size_t at = p.size();
                p.push_back(step(Kind::reconnect));
                p.push_back(step(Kind::handshake));
                p.push_back(step(Kind::data));
                PlanStep f = step(Kind::foreign);
                f.probe = true;
                std::size_t pos = at + 1 + rng.below(p.size() - at);
                p.insert(p.begin() + static_cast<std::ptrdiff_t>(pos), f);
            }
        }
        std::size_t muts = probes == 0 ? 1 + (rng.below(3) == 0) : rng.below(2);
        std::vector<std::size_t> targets;
        for (std::size_t i = 0; i < p.size(); ++i)
            if (sends_message(p[i].kind)) targets.push_back(i);
        for (std::size_t k = 0; k < muts; ++k) {
            PlanStep& t = p[targets[rng.below(targets.size())]];
            t.muts.push_back(draw_mut(rng, t.kind == Kind::handshake || t.kind == Kind::rehandshake));
        }
        for (std::size_t i : targets)
            if (rng.below(100) < 6) p[i].split = true;
    }
    p.push_back(step(Kind::close));
    return p;
}

// ------------------------------------------------------------ a connection

struct Conn {
    std::unique_ptr<TcpConnection> tcp;
    std::unique_ptr<StreamCodec> codec;  // frames and names what the target sends
    std::unique_ptr<DeterministicRng> key_rng;
    std::unique_ptr<LiveClient> live;  // after key_rng: it holds a reference to it
    std::string state;
    Bytes inbox;  // the target's bytes not yet a whole message
    bool desync = false;     // the target holds part of a message of ours
    bool keys_ours = true;   // false once the target may have keys derived from a share we changed
    Bytes our_key_share;
    Bytes target_latest;     // the target's latest authenticated message
    std::vector<Bytes> clean_sent;  // authenticated messages sent unchanged
    std::set<Bytes> seen;           // every whole message sent or received
    std::optional<std::size_t> last_step;  // the latest step played, in the iteration's records
    std::vector<std::string> pending;  // findings judged on silence, confirmed by a later answer
    std::string session_id;
};

// What a step sends before its mutations.
struct Material {
    Bytes bytes;
    bool authenticated = false;
    std::string provenance;  // the class it carries from where it came: replay, reflection, ...
    std::string origin;
    std::vector<Bytes> extra;  // further handshake messages, sent unchanged after it
    LiveClient* refresher = nullptr;
};

// What the steps of one iteration leave for the later ones, by plan step id.
struct IterationState {
    std::map<std::size_t, Bytes> sent;         // as written
    std::map<std::size_t, std::string> inputs;  // as the model names them
    std::map<std::size_t, bool> authenticated;
    std::map<std::size_t, std::size_t> positions;
    std::map<std::size_t, Bytes> held;  // sealed, to be sent later (reordering)
    std::vector<Bytes> earlier;         // authenticated messages of earlier connections
    std::unique_ptr<DeterministicRng> spare_rng;
    std::unique_ptr<LiveClient> spare;  // the second handshake's client; after its generator
};

struct Effects {
    bool changed = false;
    bool refreshed = false;
    bool huge_length = false;
    std::string semantic;  // weak-key or stale, when that is all the step's mutations did
};

std::string be_hex(std::uint64_t v, std::size_t width) {
    Bytes b(width, 0);
    for (std::size_t i = 0; i < width && i < 8; ++i) b[width - 1 - i] = static_cast<std::uint8_t>(v >> (8 * i));
    return hex(b);
}

std::uint64_t be_value(ByteView b) {
    std::uint64_t v = 0;
    for (std::size_t i = b.size() > 8 ? b.size() - 8 : 0; i < b.size(); ++i) v = v << 8 | b[i];
    return v;
}

constexpr std::uint64_t kHugeLength = 1u << 20;  // a message over 1 MiB is no chat message
constexpr std::uint64_t kDay = 86400;

class Campaign {
public:
    Campaign(const NetFuzzOptions& o, const ProtocolInfo& p) : m_o(o), m_p(p), m_model(p.session_model) {
        if (m_model.empty() || !p.make_live_client || !p.make_codec)
            throw std::invalid_argument("protocol " + p.id + " has no session model for network fuzzing yet");
        m_codec = p.make_codec(nullptr);
        for (const auto& f : p.field_paths) m_fields.push_back(f);
    }

    NetFuzzResult run(const NetFuzzProgress& progress, const std::atomic<bool>* stop);
    NetFuzzResult reproduce(const std::string& file, std::ostream* log);

private:
    IterationRecord run_iteration(std::uint64_t index, std::ostream* log);
    std::unique_ptr<Conn> connect(IterationRecord& rec, std::uint64_t it, std::size_t position, std::size_t number);
    std::optional<Material> materialize(const PlanStep& s, Conn& c, std::uint64_t it, std::size_t position,
                                        IterationState& state, std::string& why);
    Effects mutate(Bytes& b, const std::vector<Mut>& muts, const Material& m, Rng& rng, std::vector<std::string>& log,
                   const std::set<Bytes>& seen);
    std::string label(const Conn& c, const Bytes& b, const Material& m, const Effects& e, bool& trailing) const;
    void play(Conn& c, StepRecord& r, std::uint64_t it, bool close);
    bool allowed(const std::string& from, const std::string& input, const std::string& to,
                 const std::vector<std::string>& answers) const;
    void late_close(Conn& c, StepRecord& last, bool reset);
    void close_step(Conn& c, IterationRecord& rec, std::uint64_t it, std::size_t position);
    void message_step(Conn& c, IterationRecord& rec, IterationState& st, const PlanStep& s, std::uint64_t it,
                      std::size_t pos, bool last);
    bool foreign_key_share(const Conn& c, const Bytes& sent) const;
    bool closed_late(Conn& c, IterationRecord& rec);
    struct Seen {
        std::vector<std::string> types;
        bool closed = false, reset = false;
    };
    void observe(Conn& c, double wait, Steady::time_point since, Seen& seen, bool measure);
    void finding(const std::string& code, Conn& c, const StepRecord& r, std::uint64_t it, bool firm);
    void confirm_pending(Conn& c, const StepRecord& r);
    std::optional<std::string> alive(int attempts);
    void crashed(const std::string& why, std::uint64_t last_iteration);
    void write_reproducer(const std::string& name, const std::string& code,
                          const std::vector<IterationRecord>& iterations, std::string& path_out);
    double quiet() const;
    double patience() const { return std::max(1.0, 3 * m_o.reply_timeout); }

    const NetFuzzOptions& m_o;
    const ProtocolInfo& m_p;
    const SessionModel& m_model;
    std::unique_ptr<StreamCodec> m_codec;  // for the fuzzer's own messages
    std::vector<std::string> m_fields;
    NetFuzzResult m_r;
    std::deque<double> m_latencies;
    std::deque<IterationRecord> m_since_alive;  // iterations since the target was last seen alive
    std::vector<std::string> m_new_codes;        // first seen in the running iteration
    std::string m_suspect;                       // why the target should be checked now
    std::uint64_t m_seed = 0;
};

double Campaign::quiet() const {
    // Silence is only a reaction after waiting long enough for the others:
    // a few times the slowest recent reaction, within the reply timeout.
    if (m_latencies.empty()) return m_o.reply_timeout;
    double slowest = *std::max_element(m_latencies.begin(), m_latencies.end());
    return std::clamp(4 * slowest, 0.05, m_o.reply_timeout);
}

std::unique_ptr<Conn> Campaign::connect(IterationRecord& rec, std::uint64_t it, std::size_t position,
                                        std::size_t number) {
    auto c = std::make_unique<Conn>();
    c->codec = m_p.make_codec(nullptr);
    c->state = m_model.initial;
    c->key_rng = std::make_unique<DeterministicRng>(derive(m_seed, it, kKeyStream, number));
    ++m_r.coverage.visits[m_model.initial];
    StepRecord r;
    r.position = position;
    r.kind = "connect";
    r.origin = number == 0 ? "a fresh connection" : "a new connection in the same iteration";
    r.input = "connect";
    r.from = c->state;
    try {
        c->tcp = std::make_unique<TcpConnection>(m_o.target, m_o.connect_timeout);
    } catch (const ConnectError& e) {
        r.reaction = Reaction::not_sent;
        r.note = e.what();
        r.to = c->state;
        m_suspect = std::string("a connection failed: ") + e.what();
        rec.steps.push_back(std::move(r));
        return c;
    }
    ++m_r.stats.connections;
    auto next = m_model.expected(c->state, "connect");
    r.to = next.empty() ? c->state : next.front()->to;
    r.reaction = Reaction::answered;
    r.output = "accepted";
    r.expected = !next.empty();
    m_r.coverage.add(r.from, r.input, r.to, r.output, r.expected);
    c->state = r.to;
    rec.steps.push_back(std::move(r));
    return c;
}

std::optional<Material> Campaign::materialize(const PlanStep& s, Conn& c, std::uint64_t it, std::size_t position,
                                              IterationState& st, std::string& why) {
    Material m;
    m.refresher = c.live.get();
    DeterministicRng rng(derive(m_seed, it, kStepStream, position) ^ 0x5eed);
    bool no_session = !c.live || !c.live->established();
    auto seal_new = [&](std::size_t size) -> std::optional<Bytes> {
        if (no_session) {
            why = "no session to seal it in";
            return std::nullopt;
        }
        if (!c.keys_ours) {
            why = "the target may hold keys from a key share we changed";
            return std::nullopt;
        }
        std::string text = "msglab netfuzz " + std::to_string(it) + "." + std::to_string(position) + " ";
        if (text.size() > size) text.clear();
        while (text.size() < size) text += static_cast<char>('a' + rng.below(26));
        // A message equal to one already on this connection would be a
        // replay or a reflection by accident (short texts in one second, or
        // an echo under a shared keystream): move it to a later second, as a
        // careful sender does.
        Bytes b = c.live->seal(as_bytes(text), std::nullopt);
        for (std::uint64_t later = 1; c.seen.count(b); ++later)
            b = c.live->seal(as_bytes(text), SystemClock::instance().unix_seconds() + later);
        return b;
    };
    auto foreign = [&](const std::string& what) -> std::optional<Material> {
        if (st.earlier.empty()) {
            why = "no earlier connection to take a message from";
            return std::nullopt;
        }
        m.bytes = st.earlier[rng.below(st.earlier.size())];
        m.authenticated = true;
        m.provenance = "replay";
        m.origin = what;
        return m;
    };
    switch (s.kind) {
        case Kind::handshake: {
            c.live = m_p.make_live_client(SystemClock::instance(), *c.key_rng);
            m.refresher = c.live.get();
            auto msgs = c.live->start();
            if (msgs.empty()) {
                why = "the protocol's client sends nothing first";
                return std::nullopt;
            }
            m.bytes = msgs.front();
            m.extra.assign(msgs.begin() + 1, msgs.end());
            m.origin = "the handshake";
            if (!m_p.fuzz_fields.key_share.empty())
                if (auto span = m_codec->locate(m.bytes, m_p.fuzz_fields.key_share))
                    c.our_key_share.assign(m.bytes.begin() + static_cast<std::ptrdiff_t>(span->offset),
                                           m.bytes.begin() + static_cast<std::ptrdiff_t>(span->offset + span->length));
            break;
        }
        case Kind::data:
        case Kind::hold: {
            auto b = seal_new(s.payload);
            if (!b) {
                if (s.kind == Kind::data && no_session && !c.desync)
                    return foreign("a message of the earlier connection (no session of its own yet)");
                return std::nullopt;
            }
            m.bytes = std::move(*b);
            m.authenticated = true;
            m.origin = std::to_string(s.payload) + "-byte message sealed in the session";
            if (s.kind == Kind::hold) {
                st.held[s.id] = m.bytes;
                why = "sealed now, sent after the next message (reordered)";
                return std::nullopt;
            }
            break;
        }
        case Kind::release: {
            auto h = st.held.find(s.ref);
            if (h == st.held.end()) {
                why = "the held message was never sealed";
                return std::nullopt;
            }
            m.bytes = h->second;
            m.authenticated = true;
            m.origin = "a message sealed before the previous one (reordered)";
            break;
        }
        case Kind::repeat: {
            auto b = st.sent.find(s.ref);
            if (b == st.sent.end()) {
                why = "the step it copies was not sent";
                return std::nullopt;
            }
            m.bytes = b->second;
            m.authenticated = st.authenticated.at(s.ref);
            const std::string& in = st.inputs.at(s.ref);
            // A copy keeps the class of what it copies; a plain
            // authenticated message sent again is a replay.
            auto bang = in.find('!');
            if (bang != std::string::npos)
                m.provenance = in.substr(bang + 1);
            else if (m.authenticated)
                m.provenance = "replay";
            m.origin = "a copy of step #" + std::to_string(st.positions.at(s.ref)) + " (" + in + ")";
            break;
        }
        case Kind::reflect:
            if (c.target_latest.empty()) {
                why = "the target has sent nothing to reflect";
                return std::nullopt;
            }
            m.bytes = c.target_latest;
            m.authenticated = true;
            m.provenance = "reflection";
            m.origin = "the target's latest message, sent back";
            break;
        case Kind::foreign:
            return foreign("a message of the earlier connection");
        case Kind::rehandshake: {
            st.spare.reset();
            st.spare_rng = std::make_unique<DeterministicRng>(derive(m_seed, it, kKeyStream, 1000 + position));
            st.spare = m_p.make_live_client(SystemClock::instance(), *st.spare_rng);
            auto msgs = st.spare->start();
            if (msgs.empty()) {
                why = "the protocol's client sends nothing first";
                return std::nullopt;
            }
            m.bytes = msgs.front();
            m.refresher = st.spare.get();
            m.origin = "a second handshake with a new key share";
            break;
        }
        case Kind::reconnect:
        case Kind::close:
            return std::nullopt;
    }
    if (m.authenticated == false && s.kind != Kind::repeat)
        m.authenticated = m_codec->decode(Peer::client, m.bytes).authenticated;
    return m;
}

Effects Campaign::mutate(Bytes& b, const std::vector<Mut>& muts, const Material& m, Rng& rng,
                         std::vector<std::string>& log, const std::set<Bytes>& seen) {
    Effects e;
    const Bytes original = b;
    const FuzzFields& ff = m_p.fuzz_fields;
    bool refresh = false, plain = false;
    std::set<std::string> semantic;
    auto located = [&](const std::string& field) -> std::optional<FieldSpan> {
        if (field.empty()) return std::nullopt;
        auto span = m_codec->locate(b, field);
        if (!span || span->length == 0 || span->offset + span->length > b.size()) return std::nullopt;
        return span;
    };
    // Through the replay mutation engine, so each line reads as a --mutate spec.
    auto apply = [&](MutationSpec spec) {
        spec.index = 0;
        std::vector<PlannedMessage> one(1);
        one[0].bytes = b;
        one[0].authenticated = m.authenticated;
        auto done = apply_mutation(spec, one, {}, *m_codec, rng);
        if (!done) return false;
        b = std::move(one[0].bytes);
        log.push_back(spec.text);
        return true;
    };
    auto set = [&](const std::string& field, const std::string& value_hex) {
        MutationSpec s;
        s.op = MutationSpec::Op::set;
        s.field = field;
        s.value = unhex(value_hex);
        s.text = "set:field=" + field + ",value=" + value_hex;
        return apply(s);
    };
    auto flip = [&]() {
        std::vector<std::pair<std::string, FieldSpan>> fields;
        for (const auto& f : m_fields)
            if (auto span = located(f)) fields.emplace_back(f, *span);
        if (fields.empty()) {
            if (b.empty()) return false;
            std::size_t bit = rng.below(b.size() * 8);
            b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
            log.push_back("flip:offset=" + std::to_string(bit / 8) + ",bit=" + std::to_string(bit % 8));
            return true;
        }
        auto& [name, span] = fields[rng.below(fields.size())];
        MutationSpec s;
        s.op = MutationSpec::Op::flip;
        s.field = name;
        s.bit = rng.below(span.length * 8);
        s.text = "flip:field=" + name + ",bit=" + std::to_string(*s.bit);
        return apply(s);
    };
    std::uint64_t now = SystemClock::instance().unix_seconds();
    for (Mut mut : muts) {
        bool done = false;
        switch (mut) {
            case Mut::flip:
                break;
            case Mut::length:
                if (auto span = located(ff.length)) {
                    std::uint64_t cur = be_value(ByteView(b).subspan(span->offset, span->length));
                    const std::uint64_t values[] = {0, cur ? cur - 1 : 1, cur + 1, cur * 2 + 1, kHugeLength + 1,
                                                    0x7fffffff, 0xffffffff};
                    std::uint64_t v = values[rng.below(std::size(values))];
                    if (span->length < 8) v &= (std::uint64_t{1} << (8 * span->length)) - 1;
                    done = set(ff.length, be_hex(v, span->length));
                    if (done && v > kHugeLength) e.huge_length = true;
                }
                plain = true;
                break;
            case Mut::type:
                if (auto span = located(ff.type)) {
                    // The type of another message on this connection, either
                    // side's (type confusion); the small codes where type
                    // enumerations live; codes far outside them.
                    std::set<std::uint64_t> values = {0, 1, 2, 3, 4, 0x80, 0xff, rng.below(256)};
                    for (const auto& other : seen) {
                        auto o = m_codec->locate(other, ff.type);
                        if (o && o->length == span->length && o->offset + o->length <= other.size())
                            values.insert(be_value(ByteView(other).subspan(o->offset, o->length)));
                    }
                    done = set(ff.type, be_hex(*std::next(values.begin(), static_cast<std::ptrdiff_t>(
                                                          rng.below(values.size()))),
                                               span->length));
                }
                plain = true;
                break;
            case Mut::timestamp_far:
                if (auto span = located(ff.timestamp)) {
                    const std::uint64_t values[] = {0, now - 30 * kDay - rng.below(365 * kDay), now + 30 * kDay + rng.below(365 * kDay),
                                                    ~std::uint64_t{0}};
                    done = set(ff.timestamp, be_hex(values[rng.below(std::size(values))], span->length));
                    if (done) {
                        refresh = true;
                        semantic.insert("stale");
                    }
                }
                break;
            case Mut::timestamp_near:
                if (auto span = located(ff.timestamp)) {
                    std::uint64_t cur = be_value(ByteView(b).subspan(span->offset, span->length));
                    std::uint64_t delta = 1 + rng.below(120);
                    done = set(ff.timestamp, be_hex(rng.below(2) ? cur + delta : cur - delta, span->length));
                }
                plain = true;
                break;
            case Mut::key_share:
                if (!m.authenticated && !ff.weak_key_shares.empty())
                    if (auto span = located(ff.key_share)) {
                        const Bytes& weak = ff.weak_key_shares[rng.below(ff.weak_key_shares.size())];
                        if (weak.size() == span->length) {
                            done = set(ff.key_share, hex(weak));
                            if (done) {
                                refresh = true;
                                semantic.insert("weak-key");
                            }
                        }
                    }
                if (!done) plain = true;
                break;
            case Mut::mac:
                if (auto span = located(ff.mac)) {
                    Bytes v = rng.below(2) ? Bytes(span->length, 0) : rng.bytes(span->length);
                    done = set(ff.mac, hex(v));
                }
                plain = true;
                break;
            case Mut::field: {
                std::vector<std::pair<std::string, FieldSpan>> fields;
                for (const auto& f : m_fields)
                    if (auto span = located(f); span && span->length <= 4096) fields.emplace_back(f, *span);
                if (!fields.empty()) {
                    auto& [name, span] = fields[rng.below(fields.size())];
                    auto r = rng.below(3);
                    Bytes v = r == 0 ? Bytes(span.length, 0) : r == 1 ? Bytes(span.length, 0xff) : rng.bytes(span.length);
                    done = set(name, hex(v));
                }
                plain = true;
                break;
            }
            case Mut::truncate:
                if (b.size() > 1) {
                    MutationSpec s;
                    s.op = MutationSpec::Op::truncate;
                    s.length = 1 + rng.below(b.size() - 1);
                    s.text = "truncate:length=" + std::to_string(*s.length);
                    done = apply(s);
                }
                plain = true;
                break;
            case Mut::havoc: {
                // Keep a prefix, so the random tail gets past the magic and type checks.
                std::size_t keep = rng.below(b.size() + 1);
                std::size_t tail = 1 + rng.below(std::min<std::size_t>(2 * b.size() + 16, 4096));
                Bytes t = rng.bytes(tail);
                b.resize(keep);
                b.insert(b.end(), t.begin(), t.end());
                log.push_back("havoc:keep=" + std::to_string(keep) + ",tail=" + hex(t));
                done = true;
                plain = true;
                break;
            }
            case Mut::append: {
                // More in the same write: the message again (a duplicate in
                // one segment) or junk. A peer that delimits by length must
                // take the first and then judge the rest.
                Bytes t = rng.below(2) ? b : rng.bytes(1 + rng.below(64));
                b.insert(b.end(), t.begin(), t.end());
                log.push_back("append:bytes=" + hex(t));
                done = true;
                plain = true;
                break;
            }
        }
        if (!done) {
            flip();
            plain = true;
        }
    }
    if (refresh) {
        std::optional<Bytes> fresh = m.refresher ? m.refresher->refresh(b) : std::nullopt;
        if (fresh) {
            b = std::move(*fresh);
            e.refreshed = true;
            log.push_back("refresh");
        }
    }
    e.changed = b != original;
    if (!plain && semantic.size() == 1 && e.refreshed) e.semantic = *semantic.begin();
    return e;
}

std::string Campaign::label(const Conn& c, const Bytes& b, const Material& m, const Effects& e, bool& trailing) const {
    trailing = false;
    if (c.desync) return "desync";
    if (e.huge_length) return "huge-length";
    auto len = m_codec->frame(Peer::client, b);
    if (!len) return "malformed";
    if (*len == 0 || *len > b.size()) return "partial";
    trailing = *len < b.size();
    std::string type = m_codec->decode(Peer::client, ByteView(b).first(*len)).type;
    if (type == "MALFORMED") return "malformed";
    if (trailing && *len == m.bytes.size() && std::equal(m.bytes.begin(), m.bytes.end(), b.begin()))
        return type + "!trailing";
    if (e.changed) {
        if (!e.semantic.empty()) return type + "!" + e.semantic;
        return type + (m.authenticated && !e.refreshed ? "!tampered" : "!mutated");
    }
    if (!m.provenance.empty()) return type + "!" + m.provenance;
    return type;
}

void Campaign::observe(Conn& c, double wait, Steady::time_point since, Seen& seen, bool measure) {
    // Done as soon as the target's bytes are whole messages.
    auto whole = [&](const Bytes& got) {
        if (got.empty()) return false;
        Bytes all = c.inbox;
        all.insert(all.end(), got.begin(), got.end());
        std::size_t pos = 0;
        while (pos < all.size()) {
            auto len = c.codec->frame(Peer::server, ByteView(all).subspan(pos));
            if (!len) return true;  // unframable: nothing more to wait for
            if (*len == 0 || *len > all.size() - pos) return false;
            pos += *len;
        }
        return true;
    };
    Bytes got = c.tcp->receive(wait, whole);
    if (measure && (!got.empty() || c.tcp->closed())) {
        m_latencies.push_back(std::chrono::duration<double>(Steady::now() - since).count());
        if (m_latencies.size() > 64) m_latencies.pop_front();
    }
    if (!got.empty()) {
        c.inbox.insert(c.inbox.end(), got.begin(), got.end());
        std::size_t pos = 0;
        while (pos < c.inbox.size()) {
            auto len = c.codec->frame(Peer::server, ByteView(c.inbox).subspan(pos));
            if (!len) {
                seen.types.push_back("MALFORMED");
                pos = c.inbox.size();
                break;
            }
            if (*len == 0 || *len > c.inbox.size() - pos) break;
            ByteView msg = ByteView(c.inbox).subspan(pos, *len);
            DecodedMessage d = c.codec->decode(Peer::server, msg);
            seen.types.push_back(d.type);
            c.seen.insert(Bytes(msg.begin(), msg.end()));
            if (d.authenticated) c.target_latest.assign(msg.begin(), msg.end());
            pos += *len;
        }
        c.inbox.erase(c.inbox.begin(), c.inbox.begin() + static_cast<std::ptrdiff_t>(pos));
        if (c.live) {
            auto fed = c.live->feed(got);
            for (const auto& b : fed.to_send) c.tcp->send(b);
            if (c.session_id.empty())
                if (auto k = c.live->keylog_entry()) c.session_id = hex(k->session_id);
        }
    }
    seen.closed = c.tcp->closed();
    seen.reset = c.tcp->end() == TcpConnection::End::reset;
}

bool Campaign::allowed(const std::string& from, const std::string& input, const std::string& to,
                       const std::vector<std::string>& answers) const {
    for (const auto* t : m_model.expected(from, input))
        if ((t->to == to || t->to == "*") &&
            // A refusal (a transition with a finding) allows no answer.
            (t->answer.empty() ? t->finding.empty() || answers.empty()
                               : std::find(answers.begin(), answers.end(), t->answer) != answers.end()))
            return true;
    return false;
}

void Campaign::late_close(Conn& c, StepRecord& last, bool reset) {
    // The close answers the step before: move that step's transition.
    m_r.coverage.retract(last.from, last.input, last.to, last.output);
    auto& st = m_r.stats;
    if (last.reaction == Reaction::silent && st.silent) --st.silent;
    ++(reset ? st.reset : st.closed);
    last.output = (last.output == "silent" ? "" : last.output + " ") + (reset ? "RST" : "FIN");
    last.reaction = reset ? Reaction::reset : Reaction::closed;
    last.to = m_model.closed;
    last.expected = allowed(last.from, last.input, last.to, last.answers);
    last.note += std::string(last.note.empty() ? "" : "; ") + "the close came after the wait";
    m_r.coverage.add(last.from, last.input, last.to, last.output, last.expected);
    c.state = m_model.closed;
}

bool Campaign::closed_late(Conn& c, IterationRecord& rec) {
    // A close that came after the previous step's wait belongs to that step.
    if (c.tcp->closed()) return true;
    Seen late;
    observe(c, 0, Steady::now(), late, false);
    if (!late.closed) return false;
    if (c.last_step)
        late_close(c, rec.steps[*c.last_step], late.reset);
    else
        c.state = m_model.closed;
    return true;
}

void Campaign::play(Conn& c, StepRecord& r, std::uint64_t it, bool close) {
    r.from = c.state;
    auto cands = m_model.expected(c.state, r.input);
    // What the model allows decides how long silence must last to count.
    bool silence_ok = cands.empty();
    for (const auto* t : cands)
        if (t->answer.empty() && (t->to == c.state || t->to == "*")) silence_ok = true;
    Steady::time_point sent_at;
    if (close) {
        c.tcp->shutdown_write();
        sent_at = Steady::now();
    } else {
        std::size_t off = 0;
        for (std::size_t i = 0; i < r.writes.size(); ++i) {
            if (i) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // separate segments
            c.tcp->send(ByteView(r.bytes).subspan(off, r.writes[i]));
            off += r.writes[i];
        }
        sent_at = Steady::now();
    }
    ++m_r.stats.steps;
    Seen seen;
    // Where the model also allows a close, a late one shows up at the next
    // step at worst; quiet() is several times the slowest recent reaction.
    observe(c, silence_ok ? quiet() : m_o.reply_timeout, sent_at, seen, true);

    auto judge = [&](std::string& to) {
        if (seen.closed) {
            to = m_model.closed;
        } else {
            to = c.state;
            bool found = false;
            // An answer names the state it belongs to in the model.
            for (const auto* t : cands)
                if (!found && !t->answer.empty() && t->to != "*" &&
                    std::find(seen.types.begin(), seen.types.end(), t->answer) != seen.types.end()) {
                    to = t->to;
                    found = true;
                }
            for (const auto& t : m_model.transitions)
                if (!found && !t.answer.empty() && t.to != "*" &&
                    std::find(seen.types.begin(), seen.types.end(), t.answer) != seen.types.end()) {
                    to = t.to;
                    found = true;
                }
        }
        return allowed(r.from, r.input, to, seen.types);
    };
    std::string to;
    bool in_model = judge(to);
    if (!in_model && !seen.closed) {
        // Before calling it a deviation, give the target time to do what the
        // model says: a loaded machine can be slow to close.
        bool known = false;
        for (const auto* t : cands)
            for (const auto& f : m_r.findings)
                if (!t->finding.empty() && f.finding.code == t->finding && f.finding.confidence == Confidence::firm)
                    known = true;
        if (!known) {
            observe(c, patience(), sent_at, seen, false);
            in_model = judge(to);
        }
    }
    r.answers = seen.types;
    for (const auto& t : seen.types) r.output += (r.output.empty() ? "" : "+") + t;
    if (seen.closed) r.output += std::string(r.output.empty() ? "" : " ") + (seen.reset ? "RST" : "FIN");
    if (r.output.empty()) r.output = "silent";
    r.reaction = seen.reset    ? Reaction::reset
                 : seen.closed ? Reaction::closed
                 : !seen.types.empty() ? Reaction::answered
                                       : Reaction::silent;
    r.to = to;
    r.expected = in_model;
    auto& st = m_r.stats;
    if (!seen.types.empty()) ++st.answered;
    if (seen.reset)
        ++st.reset;
    else if (seen.closed)
        ++st.closed;
    else if (seen.types.empty())
        ++st.silent;
    bool answer_due = false;
    for (const auto* t : cands)
        if (!t->answer.empty()) answer_due = true;
    if (answer_due && !silence_ok && !seen.closed && seen.types.empty()) {
        ++st.unanswered;
        r.note = "no answer where one was due";
        m_suspect = "iteration " + std::to_string(it) + ": no answer to " + r.input;
    }
    if (seen.reset) m_suspect = "iteration " + std::to_string(it) + ": reset after " + r.input;
    m_r.coverage.add(r.from, r.input, r.to, r.output, r.expected);

    if (!seen.types.empty() && !seen.closed) confirm_pending(c, r);
    // A refusal the target did not make: it kept the connection open, or it
    // answered before closing (SLMP answers its one request and closes).
    if (!in_model && (!seen.closed || !seen.types.empty()))
        for (const auto* t : cands)
            if (t->to == m_model.closed && !t->finding.empty()) {
                bool firm = !seen.types.empty();
                finding(t->finding, c, r, it, firm);
                if (!firm) c.pending.push_back(t->finding);
                r.note = t->finding + ": a clean " + m_model.role + " closes here";
            }
    c.state = to;
}

void Campaign::finding(const std::string& code, Conn& c, const StepRecord& r, std::uint64_t it, bool firm) {
    std::ostringstream detail;
    detail << "iteration " << it << ", step #" << r.position << " (" << r.kind << ": " << r.origin;
    for (const auto& m : r.mutations) detail << "; " << m;
    detail << ") sent " << r.input << " in state " << r.from << "; the target "
           << (r.answers.empty() ? std::string("stayed silent and kept the connection open")
                                 : "answered " + r.output + " and kept the connection open")
           << "; a clean " << m_model.role << " closes the connection";
    for (auto& f : m_r.findings)
        if (f.finding.code == code) {
            ++f.count;
            if (firm && f.finding.confidence != Confidence::firm) {
                // A firm sighting replaces a tentative one, reproducer and all.
                f.finding.confidence = Confidence::firm;
                f.finding.evidence.detail = detail.str();
                f.finding.evidence.bytes_hex = hex(ByteView(r.bytes).first(std::min<std::size_t>(64, r.bytes.size())));
                f.finding.session_id = c.session_id;
                m_new_codes.push_back(code);
            }
            return;
        }
    Finding f = Finding::make(code, m_p.id, m_o.target.to_string(), "fuzz");
    f.confidence = firm ? Confidence::firm : Confidence::tentative;
    f.session_id = c.session_id;
    f.evidence.bytes_hex = hex(ByteView(r.bytes).first(std::min<std::size_t>(64, r.bytes.size())));
    f.evidence.detail = detail.str();
    m_r.findings.push_back({std::move(f), 1});
    m_new_codes.push_back(code);
}

void Campaign::confirm_pending(Conn& c, const StepRecord& r) {
    for (const auto& code : c.pending)
        for (auto& f : m_r.findings)
            if (f.finding.code == code && f.finding.confidence == Confidence::tentative) {
                f.finding.confidence = Confidence::firm;
                f.finding.evidence.detail += "; later in that session the target answered " + r.input + " (step #" +
                                             std::to_string(r.position) + "), so the session survived it";
            }
    c.pending.clear();
}

// Pieces of 1 to 3 writes, cut at random.
std::vector<std::size_t> split_writes(std::size_t size, Rng& rng, std::string& text) {
    std::set<std::size_t> cuts;
    std::size_t pieces = 2 + rng.below(2);
    while (cuts.size() + 1 < pieces && cuts.size() + 1 < size) cuts.insert(1 + rng.below(size - 1));
    std::vector<std::size_t> writes;
    std::size_t prev = 0;
    text = "split:at=";
    for (std::size_t cut : cuts) {
        writes.push_back(cut - prev);
        text += (prev ? "," : "") + std::to_string(cut);
        prev = cut;
    }
    writes.push_back(size - prev);
    return writes;
}

void log_iteration(const IterationRecord& rec, std::ostream& log) {
    for (const auto& r : rec.steps) {
        log << "  iteration " << rec.index << " #" << r.position << " " << r.kind;
        if (!r.input.empty()) log << "  " << r.input;
        if (!r.bytes.empty()) log << "  " << r.bytes.size() << " B";
        for (const auto& mu : r.mutations) log << "  [" << (mu.size() > 60 ? mu.substr(0, 60) + "..." : mu) << "]";
        if (r.reaction == Reaction::not_sent)
            log << "  -> not sent (" << r.note << ")\n";
        else
            log << "  " << r.from << " -> " << r.to << " (" << r.output << ")" << (r.expected ? "" : "  UNEXPECTED")
                << (r.note.empty() ? "" : "  " + r.note) << "\n";
    }
}

void Campaign::close_step(Conn& c, IterationRecord& rec, std::uint64_t it, std::size_t position) {
    StepRecord r;
    r.position = position;
    r.kind = "close";
    r.origin = "the client's orderly close";
    r.input = "close";
    if (c.tcp && !c.tcp->closed()) closed_late(c, rec);
    r.from = r.to = c.state;
    if (!c.tcp || c.tcp->closed()) {
        r.reaction = Reaction::not_sent;
        r.note = "the connection is already closed";
        ++m_r.stats.not_sent;
    } else {
        play(c, r, it, true);
    }
    rec.steps.push_back(std::move(r));
}

// Whether a message the target took changed its keys to ones we do not know:
// a handshake message carrying a key share other than ours.
bool Campaign::foreign_key_share(const Conn& c, const Bytes& sent) const {
    if (c.our_key_share.empty() || m_p.fuzz_fields.key_share.empty()) return false;
    auto span = m_codec->locate(sent, m_p.fuzz_fields.key_share);
    if (!span || span->length != c.our_key_share.size() || span->offset + span->length > sent.size()) return false;
    return !std::equal(c.our_key_share.begin(), c.our_key_share.end(),
                       sent.begin() + static_cast<std::ptrdiff_t>(span->offset));
}

void Campaign::message_step(Conn& c, IterationRecord& rec, IterationState& st, const PlanStep& s, std::uint64_t it,
                            std::size_t pos, bool last) {
    StepRecord r;
    r.position = pos;
    r.kind = kind_name(s.kind);
    r.mutated = s.probe || !s.muts.empty() || s.split;
    auto not_sent = [&](std::string why) {
        r.from = r.to = c.state;
        r.reaction = Reaction::not_sent;
        r.note = std::move(why);
        if (s.kind != Kind::hold) ++m_r.stats.not_sent;
        rec.steps.push_back(std::move(r));
    };
    if (!c.tcp || c.state == m_model.closed || closed_late(c, rec)) return not_sent("the connection is closed");
    std::string why;
    auto m = materialize(s, c, it, pos, st, why);
    if (!m) return not_sent(why);
    r.origin = m->origin;
    DeterministicRng rng(derive(m_seed, it, kStepStream, pos));
    Bytes bytes = m->bytes;
    Effects e = mutate(bytes, s.muts, *m, rng, r.mutations, c.seen);
    r.writes = {bytes.size()};
    if (s.split && bytes.size() > 1) {
        std::string text;
        r.writes = split_writes(bytes.size(), rng, text);
        r.mutations.push_back(text);
    }
    bool trailing = false;
    r.input = label(c, bytes, *m, e, trailing);
    r.bytes = std::move(bytes);
    play(c, r, it, false);
    for (const auto& extra : m->extra) c.tcp->send(extra);

    if (r.mutated) {
        auto& at = m_r.stats.mutated_at;
        if (at.size() <= pos) at.resize(pos + 1, 0);
        ++at[pos];
        ++m_r.stats.mutated_steps;
        if (!last) ++m_r.stats.mutated_before_last;
    }
    c.seen.insert(r.bytes);
    c.last_step = rec.steps.size();
    st.sent[s.id] = r.bytes;
    st.inputs[s.id] = r.input;
    st.authenticated[s.id] = m->authenticated;
    st.positions[s.id] = pos;
    bool open = !c.tcp->closed();
    if (!e.changed && m->authenticated && m->provenance.empty()) c.clean_sent.push_back(r.bytes);
    // The target now holds part of a message of ours, or junk.
    if (open && (r.input == "partial" || r.input == "malformed" || trailing)) c.desync = true;
    bool first_handshake = s.kind == Kind::handshake && !e.changed;
    if (open && !m->authenticated && !first_handshake && foreign_key_share(c, r.bytes)) c.keys_ours = false;
    rec.steps.push_back(std::move(r));
}

IterationRecord Campaign::run_iteration(std::uint64_t it, std::ostream* log) {
    Plan plan = make_plan(m_seed, it, m_p.fuzz_fields);
    IterationRecord rec;
    rec.index = it;
    std::size_t last_message = 0;
    for (std::size_t i = 0; i < plan.size(); ++i)
        if (sends_message(plan[i].kind)) last_message = i;
    IterationState st;
    std::size_t connections = 0;
    auto c = connect(rec, it, 0, connections++);
    for (std::size_t pos = 0; pos < plan.size(); ++pos) {
        const PlanStep& s = plan[pos];
        if (s.kind == Kind::close || s.kind == Kind::reconnect) {
            close_step(*c, rec, it, pos);
            st.earlier.insert(st.earlier.end(), c->clean_sent.begin(), c->clean_sent.end());
            if (s.kind == Kind::reconnect) c = connect(rec, it, pos, connections++);
            continue;
        }
        message_step(*c, rec, st, s, it, pos, pos == last_message);
    }
    if (log) log_iteration(rec, *log);
    ++m_r.stats.iterations;
    return rec;
}

std::optional<std::string> Campaign::alive(int attempts) {
    ++m_r.stats.liveness_checks;
    std::string why;
    double wait = std::max(2.0, 10 * m_o.reply_timeout);
    for (int a = 0; a < attempts; ++a) {
        if (a) std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::unique_ptr<TcpConnection> tcp;
        try {
            tcp = std::make_unique<TcpConnection>(m_o.target, std::min(m_o.connect_timeout, 3.0));
        } catch (const ConnectError& e) {
            why = e.kind == ConnectError::Kind::refused ? "connection refused" : e.what();
            continue;
        }
        DeterministicRng rng(derive(m_seed, ~std::uint64_t{0}, kKeyStream, m_r.stats.liveness_checks));
        auto live = m_p.make_live_client(SystemClock::instance(), rng);
        for (const auto& b : live->start()) tcp->send(b);
        auto until = Steady::now() + std::chrono::duration<double>(wait);
        while (!live->established() && !tcp->closed() && Steady::now() < until) {
            Bytes got = tcp->receive(0.05, [](const Bytes& g) { return !g.empty(); });
            if (got.empty()) continue;
            auto fed = live->feed(got);
            for (const auto& b : fed.to_send) tcp->send(b);
            if (fed.closed) break;
        }
        if (live->established()) return std::nullopt;
        if (tcp->closed()) {
            why = "it accepts connections but closes them during a valid handshake";
        } else {
            std::ostringstream w;
            w << "it accepts connections but did not answer a valid handshake within " << std::setprecision(2) << wait
              << " s (a hang)";
            why = w.str();
        }
    }
    return why;
}

void Campaign::write_reproducer(const std::string& name, const std::string& code,
                                const std::vector<IterationRecord>& iterations, std::string& path_out) {
    if (m_o.out_dir.empty()) return;
    fs::path dir = fs::absolute(fs::path(m_o.out_dir) / "repro");
    fs::create_directories(dir);
    fs::path path = dir / (name + ".json");
    json j;
    j["msglab"] = "netfuzz-reproducer";
    j["protocol"] = m_p.id;
    j["target"] = m_o.target.to_string();
    j["seed"] = m_seed;
    j["finding"] = code;
    j["reproduce"] = m_o.command + " --reproduce " + path.string();
    json its = json::array();
    for (const auto& rec : iterations) {
        json steps = json::array();
        for (const auto& r : rec.steps) {
            json s = {{"position", r.position}, {"kind", r.kind},     {"origin", r.origin},
                      {"input", r.input},       {"mutations", r.mutations}, {"bytes", hex(r.bytes)},
                      {"writes", r.writes},     {"reaction", reaction_name(r.reaction)},
                      {"output", r.output},     {"from", r.from},      {"to", r.to},
                      {"expected", r.expected}};
            if (!r.note.empty()) s["note"] = r.note;
            steps.push_back(std::move(s));
        }
        its.push_back({{"iteration", rec.index}, {"steps", std::move(steps)}});
    }
    j["iterations"] = std::move(its);
    std::ofstream out(path);
    out << j.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
    if (!out) throw std::runtime_error("cannot write " + path.string());
    path_out = path.string();
    m_r.reproducers.push_back(path_out);
}

void Campaign::crashed(const std::string& why, std::uint64_t last_iteration) {
    ++m_r.stats.crashes;
    m_r.target_alive = false;
    std::vector<IterationRecord> window(m_since_alive.begin(), m_since_alive.end());
    std::uint64_t first = window.empty() ? last_iteration : window.front().index;
    std::ostringstream detail;
    detail << "after iteration " << last_iteration << " the target no longer works: " << why;
    if (first == last_iteration)
        detail << "; it completed a valid handshake just before that iteration";
    else
        detail << "; it last completed a valid handshake before iteration " << first << " (the reproducer holds iterations "
               << first << " to " << last_iteration << ")";
    std::string path;
    write_reproducer("CRASH-" + std::to_string(m_r.stats.crashes), "CRASH", window, path);
    for (auto& f : m_r.findings)
        if (f.finding.code == "CRASH") {
            ++f.count;
            return;
        }
    Finding f = Finding::make("CRASH", m_p.id, m_o.target.to_string(), "fuzz");
    f.confidence = Confidence::firm;
    f.evidence.detail = detail.str();
    if (!window.empty()) {
        const auto& steps = window.back().steps;
        for (auto it = steps.rbegin(); it != steps.rend(); ++it)
            if (!it->bytes.empty()) {
                f.evidence.bytes_hex = hex(ByteView(it->bytes).first(std::min<std::size_t>(64, it->bytes.size())));
                break;
            }
    }
    f.evidence.reproducer = path;
    if (!path.empty()) f.reproduce = m_o.command + " --reproduce " + path;
    m_r.findings.push_back({std::move(f), 1});
}

NetFuzzResult Campaign::run(const NetFuzzProgress& progress, const std::atomic<bool>* stop) {
    m_seed = m_o.seed;
    if (auto why = alive(1)) {
        if (*why == "connection refused") throw TargetUnreachable("no endpoint at " + m_o.target.to_string() + ": " + *why);
        throw TargetUnreachable(m_o.target.to_string() + " does not work as a " + m_p.id + " " + m_model.role + ": " +
                                *why);
    }
    auto start = Steady::now();
    auto last_check = start, last_progress = start;
    auto elapsed = [&] { return std::chrono::duration<double>(Steady::now() - start).count(); };
    for (std::uint64_t it = 0;; ++it) {
        if (stop && stop->load()) {
            m_r.stop_reason = "interrupted";
            break;
        }
        if (elapsed() >= m_o.seconds) {
            m_r.stop_reason = "time";
            break;
        }
        if (m_o.iterations && it >= *m_o.iterations) {
            m_r.stop_reason = "iterations";
            break;
        }
        m_suspect.clear();
        m_new_codes.clear();
        IterationRecord rec = run_iteration(it, nullptr);
        m_since_alive.push_back(rec);
        if (m_since_alive.size() > 64) m_since_alive.pop_front();
        for (const auto& code : m_new_codes)
            for (auto& f : m_r.findings)
                if (f.finding.code == code) {
                    std::string path;
                    write_reproducer(code, code, {rec}, path);
                    f.finding.evidence.reproducer = path;
                    if (!path.empty()) f.finding.reproduce = m_o.command + " --reproduce " + path;
                }
        if (!m_suspect.empty() || Steady::now() - last_check >= std::chrono::seconds(1)) {
            last_check = Steady::now();
            if (auto why = alive(2)) {
                crashed(*why, it);
                if (m_o.stop_on_crash) {
                    m_r.stop_reason = "the target went down (--stop-on-crash)";
                    break;
                }
                // A supervisor may restart it: wait, then carry on or stop.
                auto until = Steady::now() + std::chrono::duration<double>(m_o.restart_wait);
                bool back = false;
                while (!back && Steady::now() < until && !(stop && stop->load())) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(500));
                    back = !alive(1);
                }
                if (!back) {
                    std::ostringstream w;
                    w << "the target went down and did not come back within " << m_o.restart_wait << " s";
                    m_r.stop_reason = w.str();
                    break;
                }
                ++m_r.stats.restarts;
                m_r.target_alive = true;
            }
            m_since_alive.clear();
        }
        if (progress && Steady::now() - last_progress >= std::chrono::milliseconds(250)) {
            last_progress = Steady::now();
            m_r.stats.seconds = elapsed();
            progress(m_r);
        }
    }
    if (m_r.target_alive && !m_since_alive.empty()) {
        // The last iterations get their check too.
        if (auto why = alive(2)) crashed(*why, m_since_alive.back().index);
    }
    m_r.stats.seconds = elapsed();
    if (progress) progress(m_r);
    return std::move(m_r);
}

NetFuzzResult Campaign::reproduce(const std::string& file, std::ostream* log) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("msglab", "") != "netfuzz-reproducer")
        throw std::runtime_error(file + " is not a msglab fuzz reproducer");
    if (j.value("protocol", "") != m_p.id)
        throw std::runtime_error(file + " is for protocol " + j.value("protocol", "?") + ", not " + m_p.id);
    m_seed = j.at("seed").get<std::uint64_t>();
    std::vector<std::uint64_t> its;
    for (const auto& i : j.at("iterations")) its.push_back(i.at("iteration").get<std::uint64_t>());
    if (auto why = alive(1)) {
        if (*why == "connection refused") throw TargetUnreachable("no endpoint at " + m_o.target.to_string() + ": " + *why);
        throw TargetUnreachable(m_o.target.to_string() + " does not work as a " + m_p.id + " " + m_model.role + ": " +
                                *why);
    }
    auto start = Steady::now();
    // A check after every iteration names the one that brings the target down.
    for (auto it : its) {
        m_new_codes.clear();
        m_since_alive.clear();
        m_since_alive.push_back(run_iteration(it, log));
        if (auto why = alive(2)) {
            crashed(*why, it);
            if (log) *log << "  the target went down after iteration " << it << ": " << *why << "\n";
            break;
        }
    }
    m_r.stats.seconds = std::chrono::duration<double>(Steady::now() - start).count();
    m_r.stop_reason = "reproducer done";
    return std::move(m_r);
}

// A quoted DOT string; "\n" sequences in it stay line breaks.
std::string dot_id(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string outputs_text(const CoverageEdge& e) {
    std::string s;
    for (const auto& [out, n] : e.outputs)
        s += (s.empty() ? "" : ", ") + out + (e.outputs.size() > 1 ? " " + std::to_string(n) : "");
    return s;
}

}  // namespace

NetFuzzResult run_netfuzz(const NetFuzzOptions& options, const ProtocolInfo& protocol,
                          const NetFuzzProgress& progress, const std::atomic<bool>* stop) {
    return Campaign(options, protocol).run(progress, stop);
}

NetFuzzResult reproduce_netfuzz(const NetFuzzOptions& options, const ProtocolInfo& protocol, const std::string& file,
                                std::ostream* log) {
    return Campaign(options, protocol).reproduce(file, log);
}

std::string state_graph_dot(const ProtocolInfo& protocol, const Coverage& coverage, const std::string& caption) {
    const SessionModel& model = protocol.session_model;
    std::ostringstream d;
    d << "// msglab fuzz --target: the " << protocol.id << " " << model.role
      << "'s session machine as the client saw it.\n"
         "// Edges: input / output (count). Black: in the clean model; red: not in it;\n"
         "// dashed grey: in the clean model, never reached. Render: dot -Tsvg state-graph.dot -o state-graph.svg\n";
    d << "digraph " << dot_id(protocol.id + " " + model.role) << " {\n"
      << "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
      << "  edge [fontname=\"Helvetica\", fontsize=10];\n";
    if (!caption.empty()) d << "  labelloc=t;\n  label=" << dot_id(caption) << ";\n";
    for (const auto& s : model.states) {
        auto it = coverage.visits.find(s);
        std::uint64_t n = it == coverage.visits.end() ? 0 : it->second;
        d << "  " << dot_id(s) << " [label=" << dot_id(s + "\\n" + std::to_string(n));
        if (s == model.closed) d << ", peripheries=2";
        if (n == 0) d << ", style=\"rounded,dashed\", color=grey, fontcolor=grey";
        d << "];\n";
    }
    for (const auto& e : coverage.edges) {
        d << "  " << dot_id(e.from) << " -> " << dot_id(e.to) << " [label="
          << dot_id(e.input + "\\n/ " + outputs_text(e) + " (" + std::to_string(e.count) + ")");
        if (!e.expected) d << ", color=red, fontcolor=red, penwidth=2";
        d << "];\n";
    }
    for (const auto& t : model.transitions) {
        if (t.to == "*" || coverage.reached(model, t)) continue;
        std::string label = t.input + (t.answer.empty() ? "" : "\\n/ " + t.answer);
        d << "  " << dot_id(t.from) << " -> " << dot_id(t.to) << " [label=" << dot_id(label)
          << ", style=dashed, color=grey, fontcolor=grey];\n";
    }
    d << "}\n";
    return d.str();
}

std::string coverage_table(const SessionModel& model, const Coverage& coverage) {
    std::ostringstream t;
    t << "state coverage: " << coverage.states_reached(model) << "/" << model.states.size() << " states, "
      << coverage.transitions_reached(model) << "/" << model.transitions.size() << " model transitions, "
      << coverage.unexpected() << " unexpected\n";
    t << "  " << std::left << std::setw(20) << "STATE" << "VISITS\n";
    for (const auto& s : model.states) {
        auto it = coverage.visits.find(s);
        t << "  " << std::setw(20) << s << (it == coverage.visits.end() ? 0 : it->second) << "\n";
    }
    std::size_t width = 12;
    auto text = [](const std::string& mark, const std::string& from, const std::string& input, const std::string& to) {
        return mark + from + " --" + input + "--> " + to;
    };
    for (const auto& e : coverage.edges) width = std::max(width, text("[UNEXPECTED] ", e.from, e.input, e.to).size() + 2);
    for (const auto& tr : model.transitions)
        width = std::max(width, text("[unreached] ", tr.from, tr.input, tr.to).size() + 2);
    t << "  " << std::setw(static_cast<int>(width)) << "TRANSITION" << std::setw(9) << "COUNT" << "OUTPUTS\n";
    auto row = [&](const std::string& mark, const std::string& from, const std::string& input, const std::string& to,
                   const std::string& count, const std::string& outputs) {
        t << "  " << std::setw(static_cast<int>(width)) << text(mark, from, input, to) << std::setw(9) << count
          << outputs << "\n";
    };
    for (const auto& e : coverage.edges) row(e.expected ? "" : "[UNEXPECTED] ", e.from, e.input, e.to, std::to_string(e.count), outputs_text(e));
    for (const auto& tr : model.transitions)
        if (!coverage.reached(model, tr)) row("[unreached] ", tr.from, tr.input, tr.to, "0", "");
    return t.str();
}

void write_netfuzz_outputs(const NetFuzzOptions& o, const ProtocolInfo& protocol, const NetFuzzResult& r) {
    fs::path dir(o.out_dir);
    fs::create_directories(dir);
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream out(dir / name);
        out << text;
        if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
    };
    {
        std::ostringstream lines;
        FindingWriter w(lines);
        for (const auto& f : r.findings) w.write(f.finding);
        write("findings.jsonl", lines.str());
    }
    const SessionModel& model = protocol.session_model;
    const auto& s = r.stats;
    write("state-graph.dot",
          state_graph_dot(protocol, r.coverage,
                          protocol.id + " " + model.role + " at " + o.target.to_string() + ", seed " +
                              std::to_string(o.seed) + ": " + std::to_string(s.iterations) + " iterations, " +
                              std::to_string(s.steps) + " steps"));
    json states = json::object();
    for (const auto& st : model.states) {
        auto it = r.coverage.visits.find(st);
        states[st] = it == r.coverage.visits.end() ? 0 : it->second;
    }
    json edges = json::array(), unreached = json::array();
    for (const auto& e : r.coverage.edges)
        edges.push_back({{"from", e.from}, {"input", e.input}, {"to", e.to}, {"count", e.count},
                         {"outputs", e.outputs}, {"expected", e.expected}});
    for (const auto& t : model.transitions)
        if (!r.coverage.reached(model, t)) unreached.push_back({{"from", t.from}, {"input", t.input}, {"to", t.to}});
    json findings = json::array();
    for (const auto& f : r.findings)
        findings.push_back({{"code", f.finding.code},
                            {"count", f.count},
                            {"confidence", confidence_name(f.finding.confidence)},
                            {"detail", f.finding.evidence.detail},
                            {"reproducer", f.finding.evidence.reproducer}});
    json j = {
        {"protocol", protocol.id},
        {"target", o.target.to_string()},
        {"seed", o.seed},
        {"seconds", s.seconds},
        {"iterations", s.iterations},
        {"iterations_per_second", s.seconds > 0 ? static_cast<double>(s.iterations) / s.seconds : 0.0},
        {"steps", s.steps},
        {"connections", s.connections},
        {"mutated_steps", s.mutated_steps},
        {"mutated_steps_by_position", s.mutated_at},
        {"mutated_before_last", s.mutated_before_last},
        {"reactions",
         {{"answered", s.answered},
          {"silent", s.silent},
          {"closed", s.closed},
          {"reset", s.reset},
          {"unanswered", s.unanswered},
          {"not_sent", s.not_sent}}},
        {"liveness_checks", s.liveness_checks},
        {"crashes", s.crashes},
        {"restarts", s.restarts},
        {"coverage",
         {{"role", model.role},
          {"states", states},
          {"states_reached", r.coverage.states_reached(model)},
          {"states_total", model.states.size()},
          {"transitions_reached", r.coverage.transitions_reached(model)},
          {"transitions_total", model.transitions.size()},
          {"unexpected", r.coverage.unexpected()},
          {"transitions", edges},
          {"unreached", unreached}}},
        {"findings", findings},
        {"reproducers", r.reproducers},
        {"stop_reason", r.stop_reason},
        {"target_alive", r.target_alive},
    };
    write("netfuzz-summary.json", j.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

}  // namespace msglab::replay
