#include "signal/app.hpp"

#include <algorithm>

#include "core/crypto.hpp"
#include "signal/events.hpp"

namespace msglab::signal {

namespace {

std::optional<Bytes> b64(const Json& v) {
    if (!v.is_string()) return std::nullopt;
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > kMaxCipherText) return std::nullopt;
    return crypto::base64_decode(s, crypto::Base64Alphabet::standard, crypto::Base64Padding::required);
}

const Json* member(const Json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

std::string str(const Json* v) { return v && v->is_string() ? v->get<std::string>() : std::string(); }

}  // namespace

bool username_ok(const std::string& name) {
    if (name.empty() || name.size() > kMaxUsername) return false;
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f) return false;
    return valid_utf8(name);
}

bool b64_of_size(const Json& v, std::size_t n) {
    auto raw = b64(v);
    return raw && raw->size() == n;
}

App::App(AppConfig config, Directory& directory) : m_config(std::move(config)), m_directory(directory) {}

void App::connected(const std::string& sid, const std::string& remote) { m_remote[sid] = remote; }

std::string App::user_of(const std::string& sid) const {
    auto it = m_user.find(sid);
    return it == m_user.end() ? std::string() : it->second;
}

std::string App::sid_of(const std::string& username) const {
    auto it = m_sid.find(username);
    return it == m_sid.end() ? std::string() : it->second;
}

std::vector<std::string> App::online() const { return m_order; }

void App::ack(std::vector<Action>& out, const std::string& sid, std::optional<std::uint64_t> request, Json args) {
    if (!request) return;
    Action a;
    a.kind = Action::Kind::ack;
    a.sid = sid;
    a.request = *request;
    a.args = std::move(args);
    out.push_back(std::move(a));
}

void App::refuse(std::vector<Action>& out, const std::string& sid, std::optional<std::uint64_t> request,
                 const std::string& name, const std::string& why) {
    Action l;
    l.kind = Action::Kind::log;
    l.sid = sid;
    l.text = name + " refused: " + why;
    out.push_back(std::move(l));
    ack(out, sid, request, Json::array({false}));
}

std::vector<Action> App::event(const std::string& sid, const std::string& name, const Json& args,
                               std::optional<std::uint64_t> request) {
    std::vector<Action> out;
    if (!m_remote.count(sid)) return out;  // not connected (a late packet)
    if (name == "register_user") {
        on_register(out, sid, args, request);
    } else if (name == "request_users") {
        Json list = Json::array();
        for (const auto& u : m_order) list.push_back(u);
        ack(out, sid, request, Json::array({list}));
    } else if (name == "request_prekey") {
        on_prekey(out, sid, args, request);
    } else if (name == "x3dh_message" || name == "ratchet_msg") {
        on_relay(out, sid, name, args, request);
    } else if (name == "pongi" && m_config.plants.has(plant::debug_broadcast)) {
        for (const auto& [s, remote] : m_remote) {
            Action e;
            e.kind = Action::Kind::emit;
            e.sid = s;
            e.event = "pingi";
            e.args = Json::array({"sankalp"});
            out.push_back(std::move(e));
        }
        ack(out, sid, request, Json::array({true}));
    } else {
        // As python-socketio: an event without a handler is not acked.
        Action l;
        l.kind = Action::Kind::log;
        l.sid = sid;
        l.text = "event " + name.substr(0, 64) + " has no handler";
        out.push_back(std::move(l));
    }
    return out;
}

void App::on_register(std::vector<Action>& out, const std::string& sid, const Json& args,
                      std::optional<std::uint64_t> request) {
    const Json* arg = args.is_array() && !args.empty() ? &args[0] : nullptr;
    if (!arg || !arg->is_object()) return refuse(out, sid, request, "register_user", "the argument is not an object");
    const Json* u = member(*arg, "username");
    if (!u || !u->is_string() || !username_ok(u->get<std::string>()))
        return refuse(out, sid, request, "register_user", "username missing, empty, over 64 bytes or not printable");
    for (const char* k : {"ik", "sik", "spk"}) {
        const Json* v = member(*arg, k);
        if (!v || !b64_of_size(*v, 32))
            return refuse(out, sid, request, "register_user", std::string(k) + " is not base64 of 32 bytes");
    }
    const Json* sig = member(*arg, "spk_sig");
    if (!sig || !b64_of_size(*sig, 64))
        return refuse(out, sid, request, "register_user", "spk_sig is not base64 of 64 bytes");

    KeyRecord rec{u->get<std::string>(), str(member(*arg, "ik")), str(member(*arg, "sik")), str(member(*arg, "spk")),
                  str(member(*arg, "spk_sig"))};
    const bool overwrite = m_config.plants.has(plant::register_overwrite);
    auto mine = m_user.find(sid);
    auto holder = m_sid.find(rec.username);
    if (!overwrite) {
        if (mine != m_user.end() && mine->second != rec.username)
            return refuse(out, sid, request, "register_user",
                          "this connection is already registered as " + mine->second);
        if (holder != m_sid.end() && holder->second != sid)
            return refuse(out, sid, request, "register_user", rec.username + " is online on another connection");
    }
    std::optional<KeyRecord> old;
    try {
        old = m_directory.find(rec.username);
    } catch (const DirectoryError& e) {
        return refuse(out, sid, request, "register_user", e.what());
    }
    if (!overwrite && old && !(*old == rec)) {
        if (old->sik != rec.sik)
            return refuse(out, sid, request, "register_user",
                          rec.username + " is bound to another signing key (SIK)");
        auto sik = *b64(Json(rec.sik));
        auto spk = *b64(Json(rec.spk));
        auto sg = *b64(Json(rec.spk_sign));
        if (!crypto::ed25519_verify(sik, spk, sg))
            return refuse(out, sid, request, "register_user",
                          "a new signed prekey for " + rec.username + " whose signature does not verify");
    }
    if (!old && m_directory.size() >= m_config.max_directory)
        return refuse(out, sid, request, "register_user", "the directory is full");
    if (holder == m_sid.end() && m_order.size() >= m_config.max_users_online && mine == m_user.end())
        return refuse(out, sid, request, "register_user", "too many users online");
    try {
        if (!old || !(*old == rec)) m_directory.put(rec);
    } catch (const DirectoryError& e) {
        return refuse(out, sid, request, "register_user", e.what());
    }
    if (holder != m_sid.end() && holder->second != sid) {
        // Only under the plant: the name's live mapping moves to this socket.
        Action l;
        l.kind = Action::Kind::log;
        l.sid = sid;
        l.text = "register_user " + rec.username + " taken over from connection " + holder->second;
        out.push_back(std::move(l));
        m_order.erase(std::remove(m_order.begin(), m_order.end(), rec.username), m_order.end());
    }
    if (mine != m_user.end() && mine->second != rec.username) {
        // Under the plant a socket may switch names: the old one goes offline.
        if (sid_of(mine->second) == sid) {
            m_sid.erase(mine->second);
            m_order.erase(std::remove(m_order.begin(), m_order.end(), mine->second), m_order.end());
        }
    }
    m_user[sid] = rec.username;
    if (sid_of(rec.username) != sid || std::find(m_order.begin(), m_order.end(), rec.username) == m_order.end()) {
        m_sid[rec.username] = sid;
        if (std::find(m_order.begin(), m_order.end(), rec.username) == m_order.end()) m_order.push_back(rec.username);
    }
    Action l;
    l.kind = Action::Kind::log;
    l.sid = sid;
    l.text = "register_user " + rec.username + (old ? (*old == rec ? " (same keys)" : " (keys replaced)") : " (new)");
    out.push_back(std::move(l));
    ack(out, sid, request, Json::array({true}));
}

void App::on_prekey(std::vector<Action>& out, const std::string& sid, const Json& args,
                    std::optional<std::uint64_t> request) {
    const Json* arg = args.is_array() && !args.empty() ? &args[0] : nullptr;
    const Json* u = arg ? member(*arg, "username") : nullptr;
    std::optional<KeyRecord> rec;
    if (u && u->is_string() && u->get_ref<const std::string&>().size() <= kMaxUsername) {
        try {
            rec = m_directory.find(u->get<std::string>());
        } catch (const DirectoryError& e) {
            return refuse(out, sid, request, "request_prekey", e.what());
        }
    }
    if (!rec) return ack(out, sid, request, Json::array({false, Json::object()}));
    Json bundle = Json::object();
    bundle["ik"] = rec->ik;
    bundle["sik"] = rec->sik;
    bundle["spk"] = rec->spk;
    bundle["spk_sign"] = rec->spk_sign;
    ack(out, sid, request, Json::array({true, bundle}));
}

void App::on_relay(std::vector<Action>& out, const std::string& sid, const std::string& name, const Json& args,
                   std::optional<std::uint64_t> request) {
    const Json* arg = args.is_array() && !args.empty() ? &args[0] : nullptr;
    if (!arg || !arg->is_object()) return refuse(out, sid, request, name, "the argument is not an object");
    const Json* to = member(*arg, "username");
    const Json* from = member(*arg, "from");
    if (!to || !to->is_string() || to->get_ref<const std::string&>().size() > kMaxUsername)
        return refuse(out, sid, request, name, "username (the recipient) missing or over 64 bytes");
    if (!from || !from->is_string())
        return refuse(out, sid, request, name, "from missing");
    const Json* cipher = member(*arg, "cipher");
    if (cipher && cipher->is_string() && cipher->get_ref<const std::string&>().size() > kMaxCipherText)
        return refuse(out, sid, request, name, "cipher over its bound");
    if (!m_config.plants.has(plant::from_spoof)) {
        auto me = user_of(sid);
        if (me.empty()) return refuse(out, sid, request, name, "the connection has not registered a username");
        if (from->get<std::string>() != me)
            return refuse(out, sid, request, name,
                          "from \"" + from->get<std::string>().substr(0, kMaxUsername) + "\" is not the connection's user " + me);
    }
    auto target = sid_of(to->get<std::string>());
    if (target.empty()) {
        Action l;
        l.kind = Action::Kind::log;
        l.sid = sid;
        l.text = name + " to " + to->get<std::string>() + ": not online";
        out.push_back(std::move(l));
        return ack(out, sid, request, Json::array({false}));
    }
    std::uint64_t token = m_next_token++;
    m_relays[token] = Relay{sid, request, name, to->get<std::string>()};
    Action r;
    r.kind = Action::Kind::relay;
    r.sid = target;
    r.token = token;
    r.event = name;
    r.args = Json::array({*arg});
    out.push_back(std::move(r));
}

std::vector<Action> App::relay_answered(std::uint64_t token, const std::optional<Json>& ack_args) {
    std::vector<Action> out;
    auto it = m_relays.find(token);
    if (it == m_relays.end()) return out;
    Relay r = std::move(it->second);
    m_relays.erase(it);
    if (!ack_args || !ack_args->is_array()) {
        Action l;
        l.kind = Action::Kind::log;
        l.sid = r.from_sid;
        l.text = r.event + " to " + r.to + ": no answer from the recipient";
        out.push_back(std::move(l));
        ack(out, r.from_sid, r.request, Json::array({false}));
        return out;
    }
    // The recipient's answer goes back as it came (python-socketio returns
    // call()'s value from the handler).
    ack(out, r.from_sid, r.request, *ack_args);
    return out;
}

std::vector<Action> App::disconnected(const std::string& sid) {
    std::vector<Action> out;
    m_remote.erase(sid);
    auto it = m_user.find(sid);
    if (it == m_user.end()) return out;
    auto name = it->second;
    m_user.erase(it);
    if (sid_of(name) == sid) {
        m_sid.erase(name);
        m_order.erase(std::remove(m_order.begin(), m_order.end(), name), m_order.end());
        Action l;
        l.kind = Action::Kind::log;
        l.sid = sid;
        l.text = name + " went offline";
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace msglab::signal
