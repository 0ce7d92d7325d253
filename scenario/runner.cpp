#include "scenario/runner.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <thread>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "replay/tcp_connection.hpp"
#include "report/text.hpp"

namespace msglab::scenario {

namespace {

using Clock = std::chrono::steady_clock;

// The target did something a correct endpoint does not: the scenario FAILs.
struct Mismatch {
    std::string what;
};
// The scenario could not be carried out: ERROR.
struct StepError {
    std::string what;
    bool unreachable = false;
};

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

// "REGULAR" names "REGULAR_MESSAGE"; a full name matches itself.
bool type_matches(const std::string& wanted, const std::string& got) {
    std::string w = upper(wanted), g = upper(got);
    return g == w || g.rfind(w + "_", 0) == 0;
}

struct Received {
    Bytes bytes;
    DecodedMessage decoded;
    double at_ms = 0;
};

class Run {
public:
    Run(const Scenario& s, const RunOptions& o, const ProtocolInfo& p, RunResult& r)
        : m_s(s), m_o(o), m_p(p), m_r(r), m_start(Clock::now()) {}

    void step(Step& st) {
        YAML::Node trace(YAML::NodeType::Map);
        trace["at_ms"] = elapsed_ms();
        try {
            act(st, trace);
        } catch (...) {
            st.trace = trace;  // the trace shows what the failing step saw
            throw;
        }
        st.trace = trace;
    }

private:
    void act(Step& st, YAML::Node& trace) {
        switch (st.kind) {
            case Step::Kind::connect: connect(st, trace); break;
            case Step::Kind::reconnect:
                drop();
                connect(st, trace);
                break;
            case Step::Kind::close:
                drop();
                trace["closed"] = true;
                break;
            case Step::Kind::alive:
                drop();
                try {
                    connect(st, trace);
                } catch (const StepError& e) {
                    if (!m_connected_once) throw;
                    throw Mismatch{"the target accepted connections before and now refuses them (it died?): " + e.what};
                }
                break;
            case Step::Kind::stall: stall(st, trace); break;
            case Step::Kind::probe: probe(st, trace); break;
            case Step::Kind::handshake: handshake(st, trace); break;
            case Step::Kind::send: send_bytes(build(st), st.as, trace); break;
            case Step::Kind::replay: send_bytes(named(st.ref), st.as, trace); break;
            case Step::Kind::tamper: {
                Bytes b = named(st.ref);
                FieldSpan span = locate(b, st.field);
                if (st.set) {
                    Bytes v = resolve(*st.set, span.length, st.field, b);
                    std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(span.offset));
                } else {
                    for (std::size_t i = 0; i < span.length; ++i) b[span.offset + i] ^= (*st.xor_mask)[i % st.xor_mask->size()];
                }
                send_bytes(b, st.as, trace);
                break;
            }
            case Step::Kind::expect: expect(st, trace); break;
            case Step::Kind::wait:
                // Without a connection (after a close) there is nothing to read: just wait.
                if (!m_conn || m_conn->closed())
                    std::this_thread::sleep_for(std::chrono::milliseconds(st.ms));
                else
                    pump(st.ms / 1000.0, [] { return false; });
                trace["waited_ms"] = st.ms;
                break;
        }
    }

    double elapsed_ms() const {
        return std::chrono::duration<double, std::milli>(Clock::now() - m_start).count();
    }

    void need_connection() {
        if (!m_conn) throw StepError{"no connection: add a 'connect' step first"};
    }

    void connect(const Step& st, YAML::Node& trace) {
        double timeout = st.timeout_ms ? *st.timeout_ms / 1000.0 : m_o.connect_timeout;
        try {
            m_conn = std::make_unique<replay::TcpConnection>(m_o.target, timeout);
        } catch (const replay::ConnectError& e) {
            throw StepError{e.what(), !m_connected_once};
        }
        m_connected_once = true;
        m_codec = m_p.make_codec(&m_keys);
        m_client = m_p.make_live_client ? m_p.make_live_client(m_clock, m_rng) : nullptr;
        m_inbuf.clear();
        m_inbox.clear();
        m_request.clear();
        trace["connected"] = m_o.target.to_string();
    }

    void drop() {
        m_conn.reset();
        m_inbuf.clear();
        m_inbox.clear();
    }

    // Reads for up to `seconds`, until `done()` holds or the peer closes,
    // framing what comes into whole messages.
    template <class Done>
    void pump(double seconds, Done done) {
        auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
        while (m_conn && !m_conn->closed() && !done()) {
            double left = std::chrono::duration<double>(until - Clock::now()).count();
            if (left <= 0) break;
            Bytes got = m_conn->receive(left, [](const Bytes& b) { return !b.empty(); });
            if (got.empty()) continue;
            if (m_client) {
                auto fed = m_client->feed(got);
                for (const auto& b : fed.to_send) send_raw(b);
            }
            m_inbuf.insert(m_inbuf.end(), got.begin(), got.end());
            frame();
        }
        if (m_conn && m_conn->closed()) frame();
    }

    void frame() {
        while (!m_inbuf.empty()) {
            auto len = m_codec->frame(Peer::server, m_inbuf);
            std::size_t take;
            if (!len) {
                take = m_inbuf.size();  // cannot resynchronise: the rest is one unframed message
            } else if (*len == 0 || *len > m_inbuf.size()) {
                return;
            } else {
                take = *len;
            }
            Received r;
            r.bytes.assign(m_inbuf.begin(), m_inbuf.begin() + static_cast<std::ptrdiff_t>(take));
            r.decoded = m_codec->decode(Peer::server, r.bytes);
            if (!len) r.decoded.type = "UNFRAMED";
            r.at_ms = elapsed_ms();
            m_inbuf.erase(m_inbuf.begin(), m_inbuf.begin() + static_cast<std::ptrdiff_t>(take));
            m_inbox.push_back(std::move(r));
        }
    }

    // Returns the message's decoded type.
    std::string send_raw(const Bytes& b) {
        need_connection();
        std::string type = m_codec->decode(Peer::client, b).type;  // the codec follows the session both ways
        if (!m_conn->send(b)) throw Mismatch{"the target closed the connection before this step could send"};
        return type;
    }

    // The type of a message we might send, without touching the session's codec.
    std::string type_of(const Bytes& b) const { return m_p.make_codec(nullptr)->decode(Peer::client, b).type; }

    void send_bytes(const Bytes& b, const std::string& as, YAML::Node& trace) {
        need_connection();
        if (m_conn->closed())
            throw Mismatch{std::string("the target had already ") +
                           (m_conn->end() == replay::TcpConnection::End::reset ? "reset" : "closed") +
                           " the connection"};
        trace["type"] = send_raw(b);
        trace["sent"] = hex(b);
        if (!as.empty()) m_named[as] = b;
    }

    void handshake(const Step& st, YAML::Node& trace) {
        need_connection();
        if (!m_client) throw StepError{"protocol " + m_p.id + " has no live client for handshakes"};
        YAML::Node sent(YAML::NodeType::Sequence);
        for (const auto& b : m_client->start()) {
            if (m_request.empty()) m_request = b;
            if (!st.as.empty() && !m_named.count(st.as)) m_named[st.as] = b;
            send_raw(b);
            sent.push_back(hex(b));
        }
        trace["sent"] = sent;
        double timeout = (st.timeout_ms ? *st.timeout_ms : std::max(m_s.timeout_ms, 3000u)) / 1000.0;
        pump(timeout, [&] { return m_client->established(); });
        if (!m_client->established()) {
            std::string why = m_conn->closed() ? "the target closed the connection" : "no answer in time";
            throw StepError{"handshake did not complete: " + why};
        }
        // The live session's key, so the codec decrypts what the target sends.
        if (auto entry = m_client->keylog_entry()) {
            m_keys.add(*entry);
            if (m_o.keylog) m_o.keylog->write(entry->label, entry->session_id, entry->secret);
            if (!m_request.empty()) m_codec->decode(Peer::client, m_request);
        }
        // The handshake's own answers are not left for the next expect.
        YAML::Node got(YAML::NodeType::Sequence);
        for (const auto& r : m_inbox) got.push_back(r.decoded.type);
        m_inbox.clear();
        trace["received"] = got;
        trace["established"] = true;
    }

    // A named check of the protocol's, run against the target on its own
    // connections.
    void probe(const Step& st, YAML::Node& trace) {
        auto it = std::find_if(m_p.probes.begin(), m_p.probes.end(), [&](const Probe& p) { return p.name == st.type; });
        if (it == m_p.probes.end()) {
            std::string names;
            for (const auto& p : m_p.probes) names += (names.empty() ? "" : ", ") + p.name;
            throw StepError{"protocol " + m_p.id + " has no check '" + st.type + "'" +
                            (names.empty() ? "" : " (it has: " + names + ")")};
        }
        ProbeContext ctx;
        ctx.target = m_o.target;
        ctx.timeout = std::chrono::milliseconds(st.timeout_ms ? *st.timeout_ms : std::max(m_s.timeout_ms, 3000u));
        ctx.server_files = m_o.server_files;
        ProbeResult r = it->run(ctx);
        trace["check"] = st.type;
        trace["observed"] = report::preview(to_bytes(r.observed), 400);
        if (!r.evidence.empty()) {
            YAML::Node ev(YAML::NodeType::Map);
            for (const auto& [k, v] : r.evidence) ev[k] = report::preview(to_bytes(v), 400);
            trace["evidence"] = ev;
        }
        switch (r.verdict) {
            case ProbeResult::Verdict::held: m_connected_once = true; return;
            case ProbeResult::Verdict::broken: m_connected_once = true; throw Mismatch{r.observed};
            case ProbeResult::Verdict::unreachable: throw StepError{r.observed, !m_connected_once};
            case ProbeResult::Verdict::error: throw StepError{"check " + st.type + ": " + r.observed};
        }
    }

    // A side connection that sends the protocol's opening message (or the
    // given bytes) and then nothing, held open until the scenario ends.
    void stall(const Step& st, YAML::Node& trace) {
        double timeout = st.timeout_ms ? *st.timeout_ms / 1000.0 : m_o.connect_timeout;
        std::unique_ptr<replay::TcpConnection> side;
        try {
            side = std::make_unique<replay::TcpConnection>(m_o.target, timeout);
        } catch (const replay::ConnectError& e) {
            throw StepError{e.what(), !m_connected_once};
        }
        m_connected_once = true;
        Bytes b;
        if (st.raw) {
            b = *st.raw;
        } else {
            if (!m_p.make_live_client) throw StepError{"protocol " + m_p.id + " has no live client for an opening message"};
            auto opening = m_p.make_live_client(m_clock, m_rng)->start();
            if (!opening.empty()) b = opening[0];
        }
        if (!b.empty() && !side->send(b)) throw StepError{"the target closed the stalled connection at once"};
        trace["stalled"] = m_o.target.to_string();
        trace["sent"] = hex(b);
        m_stalled.push_back(std::move(side));
    }

    const Bytes& named(const std::string& name) const {
        auto it = m_named.find(name);
        if (it == m_named.end()) throw StepError{"no message named '" + name + "' was sent or received"};
        return it->second;
    }

    FieldSpan locate(ByteView b, const std::string& field) const {
        auto span = m_codec->locate(b, field);
        if (!span) throw StepError{"field '" + field + "' is not in that message (see 'msglab protocols -v')"};
        if (span->offset + span->length > b.size()) throw StepError{"field '" + field + "' runs past the message"};
        return *span;
    }

    // `message`: the message the value goes into or is compared with.
    Bytes resolve(const Value& v, std::size_t width, const std::string& field, const Bytes& message) {
        Bytes out;
        switch (v.kind) {
            case Value::Kind::hex: out = v.bytes; break;
            case Value::Kind::text: out = to_bytes(v.text); break;
            case Value::Kind::zeros: out.assign(width, 0); break;
            case Value::Kind::integer: {
                out.assign(width, 0);
                std::uint64_t n = v.integer;
                for (std::size_t i = 0; i < width && i < 8; ++i, n >>= 8) out[width - 1 - i] = static_cast<std::uint8_t>(n);
                if (width < 8 && (v.integer >> (8 * width)) != 0)
                    throw StepError{"value " + std::to_string(v.integer) + " does not fit " + field};
                break;
            }
            case Value::Kind::sha256: {
                auto d = crypto::sha256(to_bytes(v.text));
                out.assign(d.begin(), d.end());
                break;
            }
            case Value::Kind::sha256_of: {
                FieldSpan span = locate(message, v.field);
                auto d = crypto::sha256(ByteView(message.data() + span.offset, span.length));
                out.assign(d.begin(), d.end());
                break;
            }
            case Value::Kind::same_as: {
                const Bytes& other = named(v.step);
                FieldSpan span = locate(other, v.field);
                out.assign(other.begin() + static_cast<std::ptrdiff_t>(span.offset),
                           other.begin() + static_cast<std::ptrdiff_t>(span.offset + span.length));
                break;
            }
            case Value::Kind::std_cipher: {
                auto entry = m_client ? m_client->keylog_entry() : std::nullopt;
                if (!entry || entry->secret.size() < 16) throw StepError{"aes128_ctr needs an established session"};
                Bytes key(entry->secret.begin(), entry->secret.begin() + 16);
                out = crypto::aes_ctr(key, Bytes(16, 0), to_bytes(v.text));
                break;
            }
        }
        if (out.size() != width)
            throw StepError{"value for " + field + " is " + std::to_string(out.size()) + " bytes; the field has " +
                            std::to_string(width)};
        return out;
    }

    Bytes build(const Step& st) {
        if (st.raw) return with_fields(*st.raw, st);
        // The protocol's opening message comes from a fresh client, so it can
        // be sent at any point (a late handshake); anything else is data
        // sealed in the live session.
        if (!m_client) throw StepError{"protocol " + m_p.id + " has no live client to build messages"};
        auto fresh = m_p.make_live_client(m_clock, m_rng);
        auto opening = fresh->start();
        if (!opening.empty() && type_matches(st.type, type_of(opening[0]))) {
            if (m_request.empty()) m_request = opening[0];
            return with_fields(opening[0], st);
        }
        if (!m_client->established())
            throw StepError{"cannot send " + st.type + " before the handshake (add a 'handshake' step)"};
        std::string text = st.text ? *st.text : std::string(st.size.value_or(5), 'A');
        if (!st.text && !st.size) text = "hello";
        std::optional<std::uint64_t> ts;
        if (st.timestamp) ts = static_cast<std::uint64_t>(*st.timestamp);
        if (st.age) ts = m_clock.unix_seconds() - std::min(*st.age, m_clock.unix_seconds());
        Bytes b;
        try {
            b = m_client->seal(to_bytes(text), ts);
        } catch (const std::exception& e) {
            throw StepError{std::string("cannot seal a message: ") + e.what()};
        }
        std::string built = type_of(b);
        if (!type_matches(st.type, built))
            throw StepError{"protocol " + m_p.id + " builds " + built + " messages, not " + st.type};
        return with_fields(b, st);
    }

    Bytes with_fields(Bytes b, const Step& st) {
        for (const auto& f : st.fields) {
            FieldSpan span = locate(b, f.field);
            Bytes v = resolve(f.value, span.length, f.field, b);
            std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(span.offset));
        }
        return b;
    }

    std::string describe(const Received& r) const {
        std::string s = r.decoded.type + " (" + std::to_string(r.bytes.size()) + " bytes)";
        return s;
    }

    bool matches(const Reaction& want, const Received& r, std::string& why) {
        if (want.kind == Reaction::Kind::error) {
            if (upper(r.decoded.type).find("ERROR") == std::string::npos) return false;
        } else if (!type_matches(want.type, r.decoded.type)) {
            return false;
        }
        if (!want.contains.empty()) {
            bool found = r.decoded.plaintext && to_string(*r.decoded.plaintext).find(want.contains) != std::string::npos;
            for (const auto& f : r.decoded.fields) found |= f.value.find(want.contains) != std::string::npos;
            if (!found) {
                why = r.decoded.type + " without '" + want.contains + "'";
                return false;
            }
        }
        if (!want.field.empty()) {
            FieldSpan span = locate(r.bytes, want.field);
            Bytes got(r.bytes.begin() + static_cast<std::ptrdiff_t>(span.offset),
                      r.bytes.begin() + static_cast<std::ptrdiff_t>(span.offset + span.length));
            if (want.equals) {
                Bytes v = resolve(*want.equals, span.length, want.field, r.bytes);
                if (got != v) {
                    why = r.decoded.type + " with " + want.field + " = " + hex(got).substr(0, 64) + ", not the expected " +
                          hex(v).substr(0, 64);
                    return false;
                }
            }
            if (want.differs) {
                Bytes v = resolve(*want.differs, span.length, want.field, r.bytes);
                if (got == v) {
                    why = r.decoded.type + " with " + want.field + " equal to " + hex(v).substr(0, 64);
                    return false;
                }
            }
        }
        return true;
    }

    void expect(const Step& st, YAML::Node& trace) {
        need_connection();
        unsigned timeout = st.timeout_ms.value_or(m_s.timeout_ms);
        bool wants_silence = std::any_of(st.any.begin(), st.any.end(), [](const Reaction& r) { return r.kind == Reaction::Kind::silence; });
        // Wait for a message or a close (silence is waiting the whole time).
        pump(timeout / 1000.0, [&] { return !m_inbox.empty(); });
        YAML::Node got(YAML::NodeType::Map);
        std::string observed, why;
        for (std::size_t i = 0; i < st.any.size(); ++i) {
            const Reaction& want = st.any[i];
            bool ok = false;
            switch (want.kind) {
                case Reaction::Kind::message:
                case Reaction::Kind::error:
                    ok = !m_inbox.empty() && matches(want, m_inbox.front(), why);
                    break;
                case Reaction::Kind::close: ok = m_inbox.empty() && m_conn->closed(); break;
                case Reaction::Kind::silence: ok = m_inbox.empty() && !m_conn->closed(); break;
            }
            if (ok) {
                got["matched"] = static_cast<int>(i);
                break;
            }
        }
        if (!m_inbox.empty()) {
            const Received& r = m_inbox.front();
            observed = describe(r);
            got["message"] = r.decoded.type;
            got["bytes"] = hex(r.bytes);
            if (r.decoded.plaintext) got["plaintext"] = report::preview(*r.decoded.plaintext, 200);
            if (!st.as.empty()) m_named[st.as] = r.bytes;
            m_inbox.pop_front();
        } else if (m_conn->closed()) {
            bool reset = m_conn->end() == replay::TcpConnection::End::reset;
            observed = reset ? "a reset" : "a close";
            got["close"] = reset ? "reset" : "fin";
        } else {
            observed = "silence for " + std::to_string(timeout) + " ms";
            got["silence"] = true;
        }
        trace["observed"] = got;
        if (!got["matched"]) {
            std::string wanted;
            for (const auto& w : st.any) {
                if (!wanted.empty()) wanted += " or ";
                switch (w.kind) {
                    case Reaction::Kind::message: wanted += w.type; break;
                    case Reaction::Kind::error: wanted += "an error"; break;
                    case Reaction::Kind::close: wanted += "a close"; break;
                    case Reaction::Kind::silence: wanted += "silence"; break;
                }
            }
            throw Mismatch{"expected " + wanted + "; got " + (why.empty() ? observed : why)};
        }
        (void)wants_silence;
    }

    const Scenario& m_s;
    const RunOptions& m_o;
    const ProtocolInfo& m_p;
    RunResult& m_r;
    Clock::time_point m_start;
    SystemClock m_clock;
    SystemRng m_rng;
    KeyLog m_keys;
    std::unique_ptr<replay::TcpConnection> m_conn;
    std::vector<std::unique_ptr<replay::TcpConnection>> m_stalled;
    std::unique_ptr<StreamCodec> m_codec;
    std::unique_ptr<LiveClient> m_client;
    Bytes m_inbuf, m_request;
    std::deque<Received> m_inbox;
    std::map<std::string, Bytes> m_named;
    bool m_connected_once = false;
};

}  // namespace

RunResult run_scenario(const Scenario& s, const RunOptions& o, const Registry& registry) {
    RunResult r;
    r.trace = s;
    auto start = Clock::now();
    const ProtocolInfo* p = registry.protocol(s.protocol);
    bool failed = false;
    if (!p) {
        r.message = "unknown protocol '" + s.protocol + "'";
    } else {
        Run run(s, o, *p, r);
        std::size_t i = 0;
        try {
            for (; i < r.trace.steps.size(); ++i) run.step(r.trace.steps[i]);
            r.outcome = Outcome::pass;
        } catch (const Mismatch& m) {
            failed = true;
            r.message = m.what;
        } catch (const StepError& e) {
            r.outcome = Outcome::error;
            r.message = e.what;
            r.unreachable = e.unreachable;
        } catch (const std::exception& e) {
            r.outcome = Outcome::error;
            r.message = e.what();
        }
        if (i < r.trace.steps.size()) {
            r.failed_step = static_cast<int>(i + 1);
            r.message = "step " + std::to_string(i + 1) + " (" + step_name(r.trace.steps[i].kind) +
                        ", line " + std::to_string(r.trace.steps[i].line) + "): " + r.message;
            r.trace.steps.resize(i + 1);  // the trace ends where the run did
        }
    }
    if (failed) r.outcome = s.xfail ? Outcome::xfail : Outcome::fail;
    else if (r.outcome == Outcome::pass && s.xfail) r.outcome = Outcome::xpass;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();

    YAML::Node result(YAML::NodeType::Map);
    result["outcome"] = outcome_name(r.outcome);
    result["target"] = o.target.to_string();
    if (!r.message.empty()) result["message"] = r.message;
    result["seconds"] = r.seconds;
    r.trace.result = result;

    if (r.outcome == Outcome::fail || r.outcome == Outcome::xfail) {
        Finding f = Finding::make(s.finding, s.protocol, o.target.to_string(), "scenario");
        f.severity = s.severity;
        f.cwe = s.cwe;
        f.title = s.title;
        f.evidence.detail = "scenario " + s.id + ": " + r.message;
        f.reproduce = "msglab scenario run " + (s.source.empty() ? s.id + ".yaml" : s.source) + " --target " +
                      o.target.to_string();
        f.time = utc_timestamp_now();
        r.finding = std::move(f);
    }
    return r;
}

}  // namespace msglab::scenario
