#include "csmp/calls.hpp"

#include <algorithm>

namespace msglab::csmp {

namespace {

constexpr std::size_t kMaxIdentity = 256;
constexpr std::size_t kMaxCallType = 32;

const std::string* string_at(const Json& m, const char* key, std::size_t max) {
    auto it = m.find(key);
    if (it == m.end() || !it->is_string()) return nullptr;
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > max) return nullptr;
    return &s;
}

Json end_message(const std::string& call_id, const char* reason) {
    Json j;
    j["type"] = "call:end";
    j["call_id"] = call_id;
    if (reason) j["reason"] = reason;
    return j;
}

}  // namespace

const char* call_state_name(CallState s) {
    switch (s) {
        case CallState::initiated: return "initiated";
        case CallState::ringing: return "ringing";
        case CallState::connected: return "connected";
        case CallState::ended: return "ended";
        case CallState::rejected: return "rejected";
        case CallState::missed: return "missed";
    }
    return "?";
}

Json error_message(const std::string& detail, const std::string& code) {
    Json j;
    j["type"] = "error";
    j["code"] = code;
    j["detail"] = detail;
    return j;
}

CallBook::CallBook(CallConfig config, IdSource new_id, Online online)
    : m_config(config), m_new_id(std::move(new_id)), m_online(std::move(online)) {}

const Call* CallBook::find(const std::string& id) const {
    auto it = m_live.find(id);
    if (it != m_live.end()) return &it->second;
    for (auto r = m_records.rbegin(); r != m_records.rend(); ++r)
        if (r->id == id) return &*r;
    return nullptr;
}

std::size_t CallBook::live_of(const std::string& identity) const {
    std::size_t n = 0;
    for (const auto& [id, c] : m_live) n += c.caller == identity || c.callee == identity;
    return n;
}

void CallBook::finish(Call& c, CallState state, std::uint64_t now) {
    c.state = state;
    c.updated_ms = now;
    c.ended_ms = now;
    Call done = c;
    m_live.erase(done.id);  // `c` is gone from here on
    m_records.push_back(std::move(done));
    while (m_records.size() > m_config.max_records) m_records.pop_front();
}

std::vector<CallOut> CallBook::event(const std::string& from, const Json& m, std::uint64_t now) {
    if (!m.is_object()) return {{from, error_message("a call event is a JSON object", "bad_event")}};
    auto t = m.find("type");
    if (t == m.end() || !t->is_string()) return {{from, error_message("a call event needs a string 'type'", "bad_event")}};
    const auto& type = t->get_ref<const std::string&>();
    if (type == "call:init") return init(from, m, now);
    if (type == "call:offer" || type == "call:answer" || type == "call:ice" || type == "call:end" ||
        type == "call:reject")
        return relay(from, type, m, now);
    return {{from, error_message("unknown call event type", "unknown_type")}};
}

std::vector<CallOut> CallBook::init(const std::string& from, const Json& m, std::uint64_t now) {
    const std::string* to = string_at(m, "to", kMaxIdentity);
    if (!to) return {{from, error_message("call:init needs 'to', a non-empty string", "bad_event")}};
    std::string call_type = "voice";
    if (m.contains("call_type")) {
        const std::string* ct = string_at(m, "call_type", kMaxCallType);
        if (!ct) return {{from, error_message("'call_type' must be a short string", "bad_event")}};
        call_type = *ct;
    }
    if (!m_config.any_party) {
        if (*to == from) return {{from, error_message("a call needs another party", "bad_event")}};
        if (m_live.size() >= m_config.max_live_calls || live_of(from) >= m_config.max_live_per_identity)
            return {{from, error_message("too many calls in progress", "busy")}};
    } else if (m_live.size() >= m_config.max_live_calls) {
        // Even the original's behaviour gets a memory bound here.
        return {{from, error_message("too many calls in progress", "busy")}};
    }
    Call c;
    c.id = m_new_id();
    c.caller = from;
    c.callee = *to;
    c.call_type = call_type;
    c.started_ms = c.updated_ms = now;
    std::vector<CallOut> out;
    bool reached = m_online(*to);
    if (reached) {
        c.state = CallState::ringing;
        Json incoming;
        incoming["type"] = "call:incoming";
        incoming["call_id"] = c.id;
        incoming["from"] = from;
        incoming["call_type"] = call_type;
        out.push_back({*to, std::move(incoming)});
    }
    Json ack;
    ack["type"] = "call:ack";
    ack["call_id"] = c.id;
    ack["to"] = *to;
    ack["call_type"] = call_type;
    out.push_back({from, std::move(ack)});
    auto [it, inserted] = m_live.emplace(c.id, c);
    if (!inserted) return {{from, error_message("call id collision", "internal")}};
    if (!reached) {
        finish(it->second, CallState::missed, now);
        out.push_back({from, end_message(c.id, "missed")});
    }
    return out;
}

std::vector<CallOut> CallBook::relay(const std::string& from, const std::string& type, const Json& m,
                                     std::uint64_t now) {
    const std::string* to = string_at(m, "to", kMaxIdentity);
    if (!to) return {{from, error_message(type + " needs 'to', a non-empty string", "bad_event")}};
    const std::string* call_id = string_at(m, "call_id", kMaxIdentity);
    bool is_ice = type == "call:ice";
    if (!call_id && !is_ice) return {{from, error_message(type + " needs 'call_id'", "bad_event")}};
    const char* body_key = type == "call:offer" || type == "call:answer" ? "sdp" : is_ice ? "candidate" : nullptr;
    if (body_key && !m.contains(body_key))
        return {{from, error_message(type + " needs '" + body_key + "'", "bad_event")}};

    Call* call = nullptr;
    if (call_id) {
        auto it = m_live.find(*call_id);
        if (it != m_live.end()) call = &it->second;
    } else {
        // The original's candidates carry no call id: the newest live call
        // between the two.
        for (auto& [id, c] : m_live)
            if (((c.caller == from && c.callee == *to) || (c.callee == from && c.caller == *to)) &&
                (!call || c.started_ms >= call->started_ms))
                call = &c;
    }

    if (!m_config.any_party) {
        if (!call) return {{from, error_message("no such call in progress", "unknown_call")}};
        if (from != call->caller && from != call->callee)
            return {{from, error_message("only the call's parties may signal it", "not_a_party")}};
        const std::string& other = from == call->caller ? call->callee : call->caller;
        if (*to != other) return {{from, error_message("'to' must be the other party of the call", "wrong_peer")}};
        if (type == "call:reject" && (from != call->callee || call->state != CallState::ringing))
            return {{from, error_message("only the callee may reject a ringing call", "bad_state")}};
    }

    std::vector<CallOut> out;
    if (type == "call:offer") {
        Json j;
        j["type"] = type;
        j["call_id"] = call ? call->id : *call_id;
        j["sdp"] = m.at("sdp");
        j["from"] = from;
        out.push_back({*to, std::move(j)});
    } else if (type == "call:answer") {
        if (call) call->state = CallState::connected;
        Json j;
        j["type"] = type;
        j["call_id"] = call ? call->id : *call_id;
        j["sdp"] = m.at("sdp");
        out.push_back({*to, std::move(j)});
    } else if (is_ice) {
        Json j;
        j["type"] = type;
        j["candidate"] = m.at("candidate");
        out.push_back({*to, std::move(j)});
    } else if (type == "call:end") {
        std::string id = call ? call->id : *call_id;
        if (call) finish(*call, CallState::ended, now), call = nullptr;
        out.push_back({*to, end_message(id, nullptr)});
    } else {  // call:reject
        std::string id = call ? call->id : *call_id;
        if (call) finish(*call, CallState::rejected, now), call = nullptr;
        Json j;
        j["type"] = type;
        j["call_id"] = id;
        out.push_back({*to, std::move(j)});
    }
    if (call) call->updated_ms = now;
    return out;
}

std::vector<CallOut> CallBook::tick(std::uint64_t now) {
    std::vector<CallOut> out;
    std::vector<std::string> missed, idle;
    for (const auto& [id, c] : m_live) {
        if (c.state == CallState::ringing && now - c.started_ms >= m_config.ring_timeout_ms) missed.push_back(id);
        if (c.state == CallState::connected && now - c.updated_ms >= m_config.idle_timeout_ms) idle.push_back(id);
    }
    for (const auto& id : missed) {
        Call& c = m_live.at(id);
        out.push_back({c.caller, end_message(id, "missed")});
        out.push_back({c.callee, end_message(id, "missed")});
        finish(c, CallState::missed, now);
    }
    for (const auto& id : idle) {
        Call& c = m_live.at(id);
        out.push_back({c.caller, end_message(id, "timeout")});
        out.push_back({c.callee, end_message(id, "timeout")});
        finish(c, CallState::ended, now);
    }
    return out;
}

std::vector<CallOut> CallBook::offline(const std::string& identity, std::uint64_t now) {
    std::vector<CallOut> out;
    std::vector<std::string> ids;
    for (const auto& [id, c] : m_live)
        if (c.caller == identity || c.callee == identity) ids.push_back(id);
    for (const auto& id : ids) {
        Call& c = m_live.at(id);
        const std::string& other = c.caller == identity ? c.callee : c.caller;
        out.push_back({other, end_message(id, "peer_offline")});
        finish(c, c.state == CallState::ringing ? CallState::missed : CallState::ended, now);
    }
    return out;
}

std::vector<Call> CallBook::history(const std::string& identity, std::size_t limit) const {
    std::vector<Call> out;
    for (const auto& [id, c] : m_live)
        if (c.caller == identity || c.callee == identity) out.push_back(c);
    for (auto r = m_records.rbegin(); r != m_records.rend(); ++r)
        if (r->caller == identity || r->callee == identity) out.push_back(*r);
    std::stable_sort(out.begin(), out.end(), [](const Call& a, const Call& b) { return a.started_ms > b.started_ms; });
    if (out.size() > limit) out.resize(limit);
    return out;
}

}  // namespace msglab::csmp
