#include "socp/app.hpp"

#include <algorithm>

namespace msglab::socp {

namespace {

bool reserved_user(std::string_view id) {
    return id == "*" || id == kPublicGroup || id == kDebugRecipient || id == "system" ||
           id.find(':') != std::string_view::npos;
}

bool printable_id(std::string_view id) {
    return std::all_of(id.begin(), id.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

}  // namespace

App::App(AppConfig config, crypto::RsaPrivateKey key, std::string id, Rng& rng)
    : m_config(std::move(config)),
      m_key(std::move(key)),
      m_pub_text(encode_key(m_key.public_key())),
      m_id(std::move(id)),
      m_rng(rng),
      m_seen(m_config.seen_capacity, m_config.seen_ttl_ms) {}

// ---- helpers -------------------------------------------------------------

Envelope App::envelope(std::string type, std::string to, Json payload, std::int64_t now) const {
    Envelope e;
    e.type = std::move(type);
    e.from = m_id;
    e.to = std::move(to);
    e.ts = now;
    e.payload = std::move(payload);
    return e;
}

Text App::signed_text(Envelope e) const {
    e.sig = sign_payload(m_key, e.payload, m_rng);
    return std::make_shared<const std::string>(encode(e));
}

void App::send(Effects& fx, LinkId link, Text text) const { fx.send.emplace_back(link, std::move(text)); }

void App::to_servers(Effects& fx, const Text& text, std::optional<LinkId> except) const {
    for (const auto& [id, s] : m_servers)
        if (s.link && s.link != except) send(fx, *s.link, text);
}

void App::to_local_users(Effects& fx, const Text& text, const std::string& except) const {
    for (const auto& [id, u] : m_users)
        if (u.link && id != except) send(fx, *u.link, text);
}

void App::error(Effects& fx, LinkId link, const std::string& code, const std::string& detail,
                std::int64_t now) const {
    auto it = m_links.find(link);
    std::string to = it != m_links.end() && !it->second.peer.empty() ? it->second.peer : "*";
    send(fx, link, signed_text(envelope("ERROR", to, Json{{"code", code}, {"detail", detail}}, now)));
}

bool App::key_ok(const crypto::RsaPublicKey& key) const {
    if (m_config.plants.has(plant::weak_rsa)) return key.bits() >= std::min(m_config.weak_key_bits, m_config.min_key_bits);
    return key.bits() >= m_config.min_key_bits;
}

// The transport signature of a frame from a server link: by `from` when it is
// a known server (gossip forwarded unchanged), else by the link's server (a
// relaying server that re-signed, as the cohort implementation does).
bool App::check_sig(const Envelope& e, const Link& link) const {
    if (m_config.plants.has(plant::unsigned_advertise) && e.type == "USER_ADVERTISE") return true;
    if (!e.sig || e.sig->empty()) return false;
    if (m_config.plants.has(plant::any_signature)) return true;
    for (const std::string& who : {e.from, link.peer}) {
        auto it = m_servers.find(who);
        if (it != m_servers.end() && it->second.key && verify_payload(*it->second.key, e.payload, *e.sig)) return true;
    }
    return false;
}

bool App::in_window(const Envelope& e, std::int64_t now) const {
    if (m_config.plants.has(plant::no_dedup)) return true;
    return e.ts >= now - m_config.seen_ttl_ms && e.ts <= now + m_config.seen_ttl_ms;
}

bool App::fresh(const Envelope& e, std::int64_t now) {
    if (m_config.plants.has(plant::no_dedup)) return true;
    return m_seen.insert(message_id(e), now);
}

std::vector<std::string> App::local_users() const {
    std::vector<std::string> out;
    for (const auto& [id, u] : m_users)
        if (u.location == "local") out.push_back(id);
    return out;
}

std::map<std::string, std::string> App::user_locations() const {
    std::map<std::string, std::string> out;
    for (const auto& [id, u] : m_users) out[id] = u.location;
    return out;
}

std::vector<std::string> App::linked_servers() const {
    std::vector<std::string> out;
    for (const auto& [id, s] : m_servers)
        if (s.link) out.push_back(id);
    return out;
}

std::vector<std::string> App::known_servers() const {
    std::vector<std::string> out;
    for (const auto& [id, s] : m_servers) out.push_back(id);
    return out;
}

Json App::advertise_payload(const std::string& user, const User& u) const {
    Json meta = u.meta.is_object() ? u.meta : Json::object();
    meta["pubkey"] = u.key_text;
    return Json{{"user_id", user}, {"server_id", u.location == "local" ? m_id : u.location}, {"meta", meta}};
}

Text App::announcement(std::int64_t now) const {
    return signed_text(envelope("SERVER_ANNOUNCE", "*",
                                Json{{"host", m_config.self.host}, {"port", m_config.self.port}, {"pubkey", m_pub_text}},
                                now));
}

// Every user this node knows, to a new link (a server or a user): USER_ADVERTISE each.
void App::introduce_users(Effects& fx, LinkId link, std::int64_t now) const {
    auto it = m_links.find(link);
    bool to_server = it != m_links.end() && it->second.kind == Kind::server;
    for (const auto& [id, u] : m_users) {
        if (to_server && u.location != "local") continue;  // each server speaks for its own users
        send(fx, link, signed_text(envelope("USER_ADVERTISE", "*", advertise_payload(id, u), now)));
    }
}

// ---- joining and linking -------------------------------------------------

void App::dial(Effects& fx, const Endpoint& to, std::int64_t now, std::optional<std::string> server) {
    std::uint64_t token = m_next_token++;
    m_dial_targets[token] = server.value_or("");
    if (server) {
        auto& s = m_servers[*server];
        s.dialing = token;
    } else {
        m_join_token = token;
        m_join_started = now;
    }
    fx.dial.push_back(Dial{token, to});
}

Effects App::start(std::int64_t now) {
    Effects fx;
    if (m_config.introducers.empty()) {
        m_joined = true;
        fx.log.push_back("server " + m_id + " starts a new mesh (no introducer)");
        return fx;
    }
    m_next_introducer = 0;
    next_introducer(fx, now);
    return fx;
}

void App::next_introducer(Effects& fx, std::int64_t now) {
    if (m_next_introducer >= m_config.introducers.size()) {
        // Every introducer failed: start again from the first after a while.
        m_next_introducer = 0;
        m_join_token.reset();
        m_join_retry_at = now + m_config.redial_max_ms;
        fx.log.push_back("no introducer answered; trying again in " + std::to_string(m_config.redial_max_ms / 1000) +
                         " s");
        return;
    }
    const Endpoint& to = m_config.introducers[m_next_introducer++];
    fx.log.push_back("joining through introducer " + to.text());
    dial(fx, to, now, std::nullopt);
}

Effects App::opened(LinkId id, std::optional<std::uint64_t> token, std::int64_t now) {
    Effects fx;
    Link link;
    link.opened_at = link.last_rx = link.last_hb = now;
    link.outbound = token.has_value();
    link.token = token;
    if (!token) {
        m_links.emplace(id, std::move(link));
        return fx;
    }
    auto target = m_dial_targets.find(*token);
    bool known = target != m_dial_targets.end();
    std::string server = known ? target->second : "";
    if (known) m_dial_targets.erase(target);
    if (server.empty()) {
        // An introducer: ask to join.
        if (!known || m_join_token != token) {  // a join that timed out meanwhile
            m_links.emplace(id, std::move(link));
            retire(fx, id);
            return fx;
        }
        link.joining = true;
        const Endpoint& to = m_config.introducers[m_next_introducer - 1];
        m_links.emplace(id, std::move(link));
        send(fx, id,
             signed_text(envelope("SERVER_HELLO_JOIN", to.text(),
                                  Json{{"host", m_config.self.host}, {"port", m_config.self.port}, {"pubkey", m_pub_text}},
                                  now)));
        return fx;
    }
    auto it = m_servers.find(server);
    if (it == m_servers.end() || it->second.dialing != token || it->second.link) {
        // Forgotten meanwhile, or it dialled us meanwhile: keep that link.
        if (it != m_servers.end() && it->second.dialing == token) it->second.dialing.reset();
        m_links.emplace(id, std::move(link));
        retire(fx, id);
        return fx;
    }
    it->second.dialing.reset();
    link.kind = Kind::server;
    link.peer = server;
    m_links.emplace(id, std::move(link));
    it->second.link = id;
    it->second.lost_at = 0;
    it->second.redial_delay = 0;
    fx.log.push_back("linked to server " + server + " at " + it->second.addr.text());
    send(fx, id, announcement(now));
    introduce_users(fx, id, now);
    return fx;
}

Effects App::dial_failed(std::uint64_t token, std::int64_t now) {
    Effects fx;
    auto target = m_dial_targets.find(token);
    if (target == m_dial_targets.end()) return fx;
    std::string server = target->second;
    m_dial_targets.erase(target);
    if (server.empty()) {
        if (m_join_token == token) {
            fx.log.push_back("introducer " + m_config.introducers[m_next_introducer - 1].text() + " did not answer");
            m_join_token.reset();
            next_introducer(fx, now);
        }
        return fx;
    }
    auto it = m_servers.find(server);
    if (it == m_servers.end() || it->second.dialing != token) return fx;
    it->second.dialing.reset();
    it->second.redial_delay = std::clamp(it->second.redial_delay * 2, m_config.redial_min_ms, m_config.redial_max_ms);
    it->second.next_dial = now + it->second.redial_delay;
    return fx;
}

// A server identified itself on `link` (SERVER_ANNOUNCE, SERVER_HELLO_LINK,
// or an introducer's SERVER_WELCOME): pin its key and make it a server link.
bool App::register_server(Effects& fx, LinkId id, const Envelope& e, std::int64_t now) {
    Link& link = m_links.at(id);
    auto key_text = string_field(e.payload, "pubkey");
    auto decoded = key_text ? decode_key(*key_text, m_config.limits) : std::nullopt;
    if (!decoded) {
        error(fx, id, "BAD_KEY", "no readable RSA public key", now);
        retire(fx, id);
        return false;
    }
    if (!key_ok(decoded->key)) {
        error(fx, id, "BAD_KEY", "RSA-" + std::to_string(decoded->key.bits()) + " key: RSA-" + std::to_string(m_config.min_key_bits) + " is required", now);
        retire(fx, id);
        return false;
    }
    if (e.sig && !e.sig->empty() && !m_config.plants.has(plant::any_signature) &&
        !verify_payload(decoded->key, e.payload, *e.sig)) {
        error(fx, id, "INVALID_SIG", "signature does not verify with the announced key", now);
        retire(fx, id);
        return false;
    }
    if (e.from == m_id || !printable_id(e.from) || m_users.count(e.from)) {
        error(fx, id, "NAME_IN_USE", "server id " + e.from + " is taken", now);
        retire(fx, id);
        return false;
    }
    auto it = m_servers.find(e.from);
    if (it == m_servers.end() && m_servers.size() >= m_config.max_servers) {
        error(fx, id, "TIMEOUT", "too many servers", now);
        retire(fx, id);
        return false;
    }
    Server& s = m_servers[e.from];
    if (s.key && s.key->spki_der() != decoded->key.spki_der()) {
        error(fx, id, "BAD_KEY", "server " + e.from + " is pinned to another key", now);
        retire(fx, id);
        return false;
    }
    s.key = decoded->key;
    s.key_text = *key_text;
    auto host = string_field(e.payload, "host");
    auto port = int_field(e.payload, "port");
    if (host && port && *port > 0 && *port < 65536)
        s.addr = Endpoint{*host, static_cast<std::uint16_t>(*port)};
    if (s.link && *s.link != id) {
        // Two links to one server (both dialled): keep the one dialled by
        // the smaller id, so both ends keep the same link.
        bool we_dialled = link.outbound;
        std::string dialler = we_dialled ? m_id : e.from;
        if (dialler != std::min(m_id, e.from)) {
            link.kind = Kind::server;
            link.peer = e.from;
            retire(fx, id);
            return false;
        }
        retire(fx, *s.link);
    }
    link.kind = Kind::server;
    link.peer = e.from;
    link.last_rx = now;
    s.link = id;
    s.lost_at = 0;
    s.redial_delay = 0;
    if (s.dialing) {
        m_dial_targets.erase(*s.dialing);
        s.dialing.reset();
    }
    return true;
}

void App::on_hello_join(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now) {
    // The introducer's side. The joiner keeps its id unless it is taken.
    Envelope joined = e;
    auto known = m_servers.find(e.from);
    if (known != m_servers.end()) {
        // Taken by a live server, or pinned to another key: a fresh id.
        auto presented = string_field(e.payload, "pubkey");
        auto key = presented ? decode_key(*presented, m_config.limits) : std::nullopt;
        if (known->second.link || (key && known->second.key && key->key.spki_der() != known->second.key->spki_der()))
            joined.from = uuid4(m_rng);
    }
    if (joined.from == m_id || m_users.count(joined.from) || !printable_id(joined.from)) joined.from = uuid4(m_rng);
    if (!register_server(fx, id, joined, now)) return;
    Json servers = Json::array();
    servers.push_back(Json{{"server_id", m_id},
                           {"host", m_config.self.host},
                           {"port", m_config.self.port},
                           {"pubkey", m_pub_text}});
    for (const auto& [sid, s] : m_servers)
        if (sid != joined.from && s.key)
            servers.push_back(Json{{"server_id", sid}, {"host", s.addr.host}, {"port", s.addr.port}, {"pubkey", s.key_text}});
    Json clients = Json::array();
    for (const auto& [uid, u] : m_users)
        clients.push_back(Json{{"user_id", uid},
                               {"server_id", u.location == "local" ? m_id : u.location},
                               {"pubkey", u.key_text}});
    fx.log.push_back("server " + joined.from + " at " + m_servers[joined.from].addr.text() + " joined");
    send(fx, id,
         signed_text(envelope("SERVER_WELCOME", joined.from,
                              Json{{"assigned_id", joined.from},
                                   {"servers", servers},
                                   {"clients", clients},
                                   {"public_version", m_public_version}},
                              now)));
    introduce_users(fx, id, now);
    (void)link;
}

void App::on_welcome(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now) {
    auto assigned = string_field(e.payload, "assigned_id");
    auto servers = e.payload.find("servers");
    if (!assigned || assigned->empty() || assigned->size() > m_config.limits.max_id_bytes ||
        !printable_id(*assigned)) {
        error(fx, id, "UNKNOWN_TYPE", "SERVER_WELCOME without assigned_id", now);
        retire(fx, id);
        return;
    }
    // The introducer's own entry carries its key.
    std::optional<Json> self_entry;
    if (servers != e.payload.end() && servers->is_array())
        for (const auto& s : *servers)
            if (string_field(s, "server_id") == e.from) self_entry = s;
    if (!self_entry) {
        error(fx, id, "BAD_KEY", "SERVER_WELCOME does not list the introducer's key", now);
        retire(fx, id);
        return;
    }
    Envelope intro = e;
    intro.payload = *self_entry;
    intro.sig.reset();  // the welcome's signature is over the welcome, checked below
    if (*assigned != m_id) {
        fx.log.push_back("the introducer assigned id " + *assigned + " (was " + m_id + ")");
        m_id = *assigned;
    }
    link.joining = false;
    if (!register_server(fx, id, intro, now)) return;
    if (!check_sig(e, m_links.at(id))) {
        error(fx, id, "INVALID_SIG", "SERVER_WELCOME signature does not verify", now);
        retire(fx, id);
        m_servers.erase(e.from);
        return;
    }
    m_joined = true;
    m_join_token.reset();
    fx.log.push_back("joined the mesh through " + e.from + " as " + m_id);
    if (auto v = int_field(e.payload, "public_version"); v && *v > 0)
        m_public_version = std::max<std::uint64_t>(m_public_version, static_cast<std::uint64_t>(*v));
    for (const auto& s : *servers) {
        auto sid = string_field(s, "server_id");
        auto host = string_field(s, "host");
        auto port = int_field(s, "port");
        auto key_text = string_field(s, "pubkey");
        if (!sid || *sid == m_id || *sid == e.from || !host || !port || *port <= 0 || *port >= 65536 || !key_text)
            continue;
        auto key = decode_key(*key_text, m_config.limits);
        if (!key || !key_ok(key->key) || m_servers.size() >= m_config.max_servers || !printable_id(*sid)) continue;
        Server& peer = m_servers[*sid];
        if (peer.link) continue;
        peer.addr = Endpoint{*host, static_cast<std::uint16_t>(*port)};
        if (!peer.key) {
            peer.key = key->key;
            peer.key_text = *key_text;
        }
        if (!peer.dialing) dial(fx, peer.addr, now, *sid);
    }
    auto clients = e.payload.find("clients");
    if (clients != e.payload.end() && clients->is_array())
        for (const auto& c : *clients) {
            auto uid = string_field(c, "user_id");
            auto sid = string_field(c, "server_id");
            auto key_text = string_field(c, "pubkey");
            if (!uid || !sid || !key_text || m_users.count(*uid) || m_users.size() >= m_config.max_users) continue;
            if (reserved_user(*uid) || !printable_id(*uid)) continue;
            User u;
            u.location = *sid;
            u.key_text = *key_text;
            if (auto k = decode_key(*key_text, m_config.limits)) u.key = k->key;
            m_users.emplace(*uid, std::move(u));
        }
    send(fx, id, announcement(now));
    introduce_users(fx, id, now);
}

// ---- messages --------------------------------------------------------------

Effects App::message(LinkId id, std::string_view text, std::int64_t now) {
    Effects fx;
    auto it = m_links.find(id);
    if (it == m_links.end()) return fx;
    Link& link = it->second;
    if (link.closing) return fx;  // on its way out: nothing it says counts
    link.last_rx = now;
    auto parsed = parse_envelope(text, m_config.limits);
    if (!parsed) {
        error(fx, id, "UNKNOWN_TYPE", "malformed envelope: " + parsed.error(), now);
        if (link.kind == Kind::unknown) retire(fx, id);
        return fx;
    }
    const Envelope& e = *parsed;
    if (e.type == "CTRL_CLOSE") {
        retire(fx, id);
        return fx;
    }
    switch (link.kind) {
        case Kind::unknown: on_first(fx, id, link, e, now); break;
        case Kind::user: on_user_frame(fx, id, link, e, text, now); break;
        case Kind::server: on_server_frame(fx, id, link, e, text, now); break;
    }
    return fx;
}

Effects App::refused(LinkId id, const std::string& why, std::int64_t now) {
    Effects fx;
    if (!m_links.count(id)) return fx;
    error(fx, id, "UNKNOWN_TYPE", why, now);
    retire(fx, id);
    return fx;
}

void App::on_first(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now) {
    if (e.type == "USER_HELLO") return on_user_hello(fx, id, link, e, now);
    if (e.type == "SERVER_HELLO_JOIN") return on_hello_join(fx, id, link, e, now);
    if (e.type == "SERVER_WELCOME" && link.joining) return on_welcome(fx, id, link, e, now);
    if (e.type == "SERVER_ANNOUNCE" || e.type == "SERVER_HELLO_LINK") {
        if (!register_server(fx, id, e, now)) return;
        fx.log.push_back("server " + e.from + " linked from " + m_servers[e.from].addr.text());
        if (!link.outbound) send(fx, id, announcement(now));
        introduce_users(fx, id, now);
        return;
    }
    error(fx, id, "UNKNOWN_TYPE", "the first message must be USER_HELLO, SERVER_HELLO_JOIN or SERVER_ANNOUNCE", now);
    retire(fx, id);
}

void App::on_user_hello(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now) {
    const std::string& user = e.from;
    if (reserved_user(user) || !printable_id(user) || m_servers.count(user) || user == m_id) {
        error(fx, id, "NAME_IN_USE", "user id " + user + " is reserved", now);
        retire(fx, id);
        return;
    }
    auto key_text = string_field(e.payload, "pubkey");
    if (!key_text) key_text = string_field(e.payload, "enc_pubkey");
    auto decoded = key_text ? decode_key(*key_text, m_config.limits) : std::nullopt;
    if (!decoded) {
        error(fx, id, "BAD_KEY", "no readable RSA public key", now);
        retire(fx, id);
        return;
    }
    if (!key_ok(decoded->key)) {
        error(fx, id, "BAD_KEY", "RSA-" + std::to_string(decoded->key.bits()) + " key: RSA-" + std::to_string(m_config.min_key_bits) + " is required", now);
        retire(fx, id);
        return;
    }
    if (e.sig && !e.sig->empty() && !m_config.plants.has(plant::any_signature) &&
        !verify_payload(decoded->key, e.payload, *e.sig)) {
        error(fx, id, "INVALID_SIG", "USER_HELLO signature does not verify with its key", now);
        retire(fx, id);
        return;
    }
    auto existing = m_users.find(user);
    if (existing != m_users.end()) {
        bool live = existing->second.location == "local" ? existing->second.link.has_value()
                                                         : m_servers.count(existing->second.location) != 0;
        if (live && !m_config.plants.has(plant::dual_login)) {
            error(fx, id, "NAME_IN_USE", "user id " + user + " is logged in", now);
            retire(fx, id);
            return;
        }
    } else if (m_users.size() >= m_config.max_users) {
        error(fx, id, "TIMEOUT", "server full", now);
        retire(fx, id);
        return;
    }
    User& u = m_users[user];
    u.location = "local";
    u.link = id;  // socp.dual-login: the newest login takes the name over
    u.key = decoded->key;
    u.key_text = *key_text;
    auto meta = e.payload.find("meta");
    u.meta = meta != e.payload.end() && meta->is_object() ? *meta : Json::object();
    u.meta.erase("pubkey");
    link.kind = Kind::user;
    link.peer = user;
    fx.log.push_back("user " + user + " logged in");
    send(fx, id, signed_text(envelope("ACK", user, Json{{"msg_ref", "USER_HELLO"}}, now)));
    // The newcomer learns the directory; everyone learns the newcomer.
    for (const auto& [uid, other] : m_users)
        if (uid != user)
            send(fx, id, signed_text(envelope("USER_ADVERTISE", user, advertise_payload(uid, other), now)));
    Text ad = signed_text(envelope("USER_ADVERTISE", "*", advertise_payload(user, u), now));
    m_seen.insert(message_id(parse_envelope(*ad).value()), now);
    to_servers(fx, ad);
    to_local_users(fx, ad);
    admit_public(fx, user, now);
}

void App::admit_public(Effects& fx, const std::string& user, std::int64_t now) {
    Text add = signed_text(envelope("PUBLIC_CHANNEL_ADD", "*",
                                    Json{{"add", Json::array({user})}, {"if_version", m_public_version}}, now));
    ++m_public_version;
    Bytes group = m_rng.bytes(32);
    Json wraps = Json::array();
    for (const auto& [uid, u] : m_users) {
        if (!u.key) continue;
        auto wrapped = encrypt_for(*u.key, group, m_rng);
        if (wrapped) wraps.push_back(Json{{"member_id", uid}, {"wrapped_key", *wrapped}});
    }
    Text updated = signed_text(
        envelope("PUBLIC_CHANNEL_UPDATED", "*", Json{{"version", m_public_version}, {"wraps", wraps}}, now));
    for (const Text& t : {add, updated}) {
        m_seen.insert(message_id(parse_envelope(*t).value()), now);
        to_servers(fx, t);
        to_local_users(fx, t);
    }
}

void App::route(Effects& fx, LinkId from_link, const Envelope& e, const std::string& user, const Text& deliver_text,
                std::int64_t now) {
    auto it = m_users.find(user);
    if (it == m_users.end() || (it->second.location == "local" && !it->second.link)) {
        error(fx, from_link, "USER_NOT_FOUND", "no user " + user, now);
        return;
    }
    const User& u = it->second;
    if (u.location == "local") {
        send(fx, *u.link, deliver_text);
        return;
    }
    auto s = m_servers.find(u.location);
    if (s != m_servers.end() && s->second.link) {
        if (*s->second.link != from_link) send(fx, *s->second.link, deliver_text);
        return;
    }
    // No link to the user's server: every other server forwards it unchanged.
    bool any = false;
    for (const auto& [sid, srv] : m_servers)
        if (srv.link && *srv.link != from_link) {
            send(fx, *srv.link, deliver_text);
            any = true;
        }
    if (!any) error(fx, from_link, "USER_NOT_FOUND", "user " + user + " is on an unreachable server", now);
    (void)e;
}

void App::on_user_frame(Effects& fx, LinkId id, Link& link, const Envelope& e, std::string_view text,
                        std::int64_t now) {
    const std::string& user = link.peer;
    auto self = m_users.find(user);
    if (self == m_users.end() || self->second.link != id) {
        // socp.dual-login: a newer login took the name; this link is mute.
        error(fx, id, "NAME_IN_USE", "this connection no longer holds " + user, now);
        return;
    }
    if (e.type == "USER_HELLO") {
        error(fx, id, "NAME_IN_USE", "already logged in as " + user, now);
        return;
    }
    if (!user_type(e.type)) {
        error(fx, id, "UNKNOWN_TYPE", "unknown or server-only type " + e.type, now);
        return;
    }
    if (e.from != user) {
        error(fx, id, "INVALID_SIG", "from " + e.from + " is not this connection's user " + user, now);
        return;
    }
    if (e.sig && !e.sig->empty() && !m_config.plants.has(plant::any_signature) &&
        !verify_payload(*self->second.key, e.payload, *e.sig)) {
        error(fx, id, "INVALID_SIG", e.type + " signature does not verify with " + user + "'s key", now);
        return;
    }
    if (e.type == "MSG_DIRECT" && e.to == kDebugRecipient && m_config.plants.has(plant::hidden_command))
        return debug_dump(fx, id, e, now);
    if (!in_window(e, now)) {
        // The duplicate cache forgets after seen_ttl: older frames could be
        // replays it no longer knows.
        error(fx, id, "TIMEOUT", "ts " + std::to_string(e.ts) + " is outside the replay window", now);
        return;
    }
    if (!fresh(e, now)) return;  // a duplicate: dropped
    Text verbatim = std::make_shared<const std::string>(text);
    if (e.type == "MSG_DIRECT") {
        auto ct = string_field(e.payload, "ciphertext");
        if (!ct) {
            error(fx, id, "UNKNOWN_TYPE", "MSG_DIRECT without ciphertext", now);
            return;
        }
        Json body{{"ciphertext", *ct},
                  {"sender", user},
                  {"sender_pub", string_field(e.payload, "sender_pub").value_or(self->second.key_text)},
                  {"content_sig", string_field(e.payload, "content_sig").value_or("")}};
        auto target = m_users.find(e.to);
        Text out;
        if (target != m_users.end() && target->second.location == "local") {
            Envelope d = envelope("USER_DELIVER", e.to, body, e.ts);
            out = signed_text(std::move(d));
        } else if (target != m_users.end()) {
            body["user_id"] = e.to;
            Envelope d = envelope("SERVER_DELIVER", target->second.location, body, e.ts);
            out = signed_text(std::move(d));
        }
        if (!out) {
            error(fx, id, "USER_NOT_FOUND", "no user " + e.to, now);
            return;
        }
        route(fx, id, e, e.to, out, now);
        return;
    }
    if (e.type == "MSG_PUBLIC_CHANNEL" || ((e.type == "FILE_START" || e.type == "FILE_CHUNK" || e.type == "FILE_END") &&
                                           (e.to == "*" || e.to == kPublicGroup))) {
        to_local_users(fx, verbatim, user);
        to_servers(fx, verbatim);
        return;
    }
    if (e.type == "FILE_START" || e.type == "FILE_CHUNK" || e.type == "FILE_END") {
        route(fx, id, e, e.to, verbatim, now);
        return;
    }
}

void App::on_server_frame(Effects& fx, LinkId id, Link& link, const Envelope& e, std::string_view text,
                          std::int64_t now) {
    if (e.type == "SERVER_ANNOUNCE" || e.type == "SERVER_HELLO_LINK") {
        if (e.from != link.peer) {
            error(fx, id, "UNKNOWN_TYPE", "a link announces one server", now);
            return;
        }
        register_server(fx, id, e, now);
        return;
    }
    if (e.type == "ACK" || e.type == "ERROR") {
        if (e.type == "ERROR")
            fx.log.push_back("server " + link.peer + " reports " + string_field(e.payload, "code").value_or("?") + ": " +
                             string_field(e.payload, "detail").value_or(""));
        return;
    }
    bool needs_sig = server_signed_type(e.type);
    if (needs_sig && !check_sig(e, link)) {
        error(fx, id, "INVALID_SIG", e.type + " from " + e.from + " has no valid signature", now);
        return;
    }
    if (e.type == "HEARTBEAT") return;
    if (!known_type(e.type)) {
        error(fx, id, "UNKNOWN_TYPE", "unknown type " + e.type, now);
        return;
    }
    if (!in_window(e, now)) {
        fx.log.push_back(e.type + " from " + e.from + " dropped: ts outside the replay window");
        return;
    }
    if (!fresh(e, now)) return;
    Text verbatim = std::make_shared<const std::string>(text);
    if (e.type == "USER_ADVERTISE") {
        auto uid = string_field(e.payload, "user_id");
        auto sid = string_field(e.payload, "server_id");
        if (!uid || !sid || reserved_user(*uid) || !printable_id(*uid) || *sid == m_id) return;
        auto it = m_users.find(*uid);
        if (it != m_users.end() && it->second.location == "local" && it->second.link) {
            fx.log.push_back("ignored USER_ADVERTISE of local user " + *uid + " by " + *sid);
            return;
        }
        if (it == m_users.end() && m_users.size() >= m_config.max_users) return;
        User& u = m_users[*uid];
        u.location = *sid;
        u.link.reset();
        auto meta = e.payload.find("meta");
        if (meta != e.payload.end() && meta->is_object()) {
            u.meta = *meta;
            if (auto key_text = string_field(*meta, "pubkey")) {
                if (auto k = decode_key(*key_text, m_config.limits)) {
                    u.key = k->key;
                    u.key_text = *key_text;
                }
            }
            u.meta.erase("pubkey");
        }
        to_servers(fx, verbatim, id);
        to_local_users(fx, verbatim);
        return;
    }
    if (e.type == "USER_REMOVE") {
        auto uid = string_field(e.payload, "user_id");
        auto sid = string_field(e.payload, "server_id");
        if (!uid || !sid) return;
        auto it = m_users.find(*uid);
        if (it != m_users.end() && it->second.location == *sid) m_users.erase(it);
        to_servers(fx, verbatim, id);
        to_local_users(fx, verbatim);
        return;
    }
    if (e.type == "SERVER_DELIVER") {
        auto uid = string_field(e.payload, "user_id");
        if (!uid) return;
        auto it = m_users.find(*uid);
        if (it != m_users.end() && it->second.location == "local" && it->second.link) {
            Json body = e.payload;
            body.erase("user_id");
            send(fx, *it->second.link, signed_text(envelope("USER_DELIVER", *uid, body, e.ts)));
            return;
        }
        if (it == m_users.end()) {
            error(fx, id, "USER_NOT_FOUND", "no user " + *uid, now);
            return;
        }
        route(fx, id, e, *uid, verbatim, now);  // forwarded unchanged
        return;
    }
    if (e.type == "PUBLIC_CHANNEL_ADD" || e.type == "PUBLIC_CHANNEL_UPDATED" || e.type == "PUBLIC_CHANNEL_KEY_SHARE") {
        if (auto v = int_field(e.payload, "version"); v && *v > 0)
            m_public_version = std::max<std::uint64_t>(m_public_version, static_cast<std::uint64_t>(*v));
        to_servers(fx, verbatim, id);
        to_local_users(fx, verbatim);
        return;
    }
    if (e.type == "MSG_PUBLIC_CHANNEL" || ((e.type == "FILE_START" || e.type == "FILE_CHUNK" || e.type == "FILE_END") &&
                                           (e.to == "*" || e.to == kPublicGroup))) {
        to_servers(fx, verbatim, id);
        to_local_users(fx, verbatim, e.from);
        return;
    }
    if (e.type == "FILE_START" || e.type == "FILE_CHUNK" || e.type == "FILE_END") {
        auto it = m_users.find(e.to);
        if (it == m_users.end()) return;
        route(fx, id, e, e.to, verbatim, now);
        return;
    }
    error(fx, id, "UNKNOWN_TYPE", e.type + " is not a server-to-server type", now);
}

void App::debug_dump(Effects& fx, LinkId id, const Envelope& e, std::int64_t now) const {
    Json users = Json::array();
    for (const auto& [uid, u] : m_users)
        users.push_back(Json{{"user_id", uid}, {"location", u.location}, {"pubkey", u.key_text}});
    Json servers = Json::array();
    for (const auto& [sid, s] : m_servers)
        servers.push_back(Json{{"server_id", sid}, {"host", s.addr.host}, {"port", s.addr.port}, {"linked", s.link.has_value()}});
    send(fx, id,
         signed_text(envelope("ACK", e.from,
                              Json{{"msg_ref", kDebugRecipient}, {"server_id", m_id}, {"users", users}, {"servers", servers}},
                              now)));
}

// ---- links closing, heartbeats, redials -------------------------------------

void App::server_lost(Effects& fx, const std::string& sid, std::int64_t now, const char* why) {
    auto it = m_servers.find(sid);
    if (it == m_servers.end()) return;
    Server& s = it->second;
    s.link.reset();
    s.lost_at = now;
    s.redial_delay = m_config.redial_min_ms;
    s.next_dial = now + s.redial_delay;
    fx.log.push_back("server " + sid + " " + why);
    // Its users are gone with it; local users are told.
    for (auto u = m_users.begin(); u != m_users.end();) {
        if (u->second.location == sid) {
            Text rm = signed_text(envelope("USER_REMOVE", "*", Json{{"user_id", u->first}, {"server_id", sid}}, now));
            to_local_users(fx, rm);
            u = m_users.erase(u);
        } else {
            ++u;
        }
    }
}

void App::drop_link(Effects& fx, LinkId id, std::int64_t now) {
    auto it = m_links.find(id);
    if (it == m_links.end()) return;
    Link link = it->second;
    m_links.erase(it);
    if (link.kind == Kind::user) {
        auto u = m_users.find(link.peer);
        if (u != m_users.end() && u->second.link == id) {
            m_users.erase(u);
            fx.log.push_back("user " + link.peer + " left");
            Text rm = signed_text(envelope("USER_REMOVE", "*", Json{{"user_id", link.peer}, {"server_id", m_id}}, now));
            m_seen.insert(message_id(parse_envelope(*rm).value()), now);
            to_servers(fx, rm);
            to_local_users(fx, rm);
        }
    } else if (link.kind == Kind::server) {
        auto s = m_servers.find(link.peer);
        if (s != m_servers.end() && s->second.link == id) server_lost(fx, link.peer, now, "link closed");
    } else if (link.joining && m_join_token == link.token) {
        m_join_token.reset();
        next_introducer(fx, now);
    }
}

void App::retire(Effects& fx, LinkId id) {
    auto it = m_links.find(id);
    if (it == m_links.end() || it->second.closing) return;
    it->second.closing = true;
    fx.close.push_back(id);
}

Effects App::closed(LinkId id, std::int64_t now) {
    Effects fx;
    drop_link(fx, id, now);
    return fx;
}

Effects App::tick(std::int64_t now) {
    Effects fx;
    std::vector<LinkId> dead;
    for (auto& [id, link] : m_links) {
        if (link.closing) continue;
        if (link.kind == Kind::unknown && !link.joining && now - link.opened_at > m_config.join_timeout_ms &&
            std::find(fx.close.begin(), fx.close.end(), id) == fx.close.end()) {
            retire(fx, id);  // never said who it is
            continue;
        }
        if (link.kind != Kind::server) continue;
        if (now - link.last_rx > m_config.dead_after_ms) {
            dead.push_back(id);
            continue;
        }
        if (now - link.last_hb >= m_config.heartbeat_ms) {
            link.last_hb = now;
            send(fx, id, signed_text(envelope("HEARTBEAT", link.peer, Json::object(), now)));
        }
    }
    for (LinkId id : dead) {
        auto peer = m_links.at(id).peer;
        retire(fx, id);
        server_lost(fx, peer, now, "is dead: no frame within the dead-after time");
    }
    // A join that hangs: try the next introducer.
    if (m_join_token && !m_joined && now - m_join_started > m_config.join_timeout_ms) {
        fx.log.push_back("introducer did not welcome in time");
        for (auto& [id, link] : m_links)
            if (link.joining) retire(fx, id);
        m_dial_targets.erase(*m_join_token);
        m_join_token.reset();
        next_introducer(fx, now);
    }
    if (!m_joined && !m_join_token && m_join_retry_at && now >= m_join_retry_at) {
        m_join_retry_at = 0;
        next_introducer(fx, now);
    }
    // Redial lost servers; forget those gone too long.
    for (auto it = m_servers.begin(); it != m_servers.end();) {
        Server& s = it->second;
        if (!s.link && s.lost_at && now - s.lost_at > m_config.forget_after_ms) {
            fx.log.push_back("forgot server " + it->first);
            if (s.dialing) m_dial_targets.erase(*s.dialing);
            it = m_servers.erase(it);
            continue;
        }
        if (!s.link && !s.dialing && s.addr.port && now >= s.next_dial) dial(fx, s.addr, now, it->first);
        ++it;
    }
    return fx;
}

std::int64_t App::next_due() const {
    std::int64_t due = INT64_MAX;
    for (const auto& [id, link] : m_links)
        if (link.kind == Kind::server)
            due = std::min({due, link.last_hb + m_config.heartbeat_ms, link.last_rx + m_config.dead_after_ms + 1});
    for (const auto& [id, s] : m_servers)
        if (!s.link && !s.dialing && s.addr.port) due = std::min(due, s.next_dial);
    if (m_join_token) due = std::min(due, m_join_started + m_config.join_timeout_ms + 1);
    if (m_join_retry_at) due = std::min(due, m_join_retry_at);
    return due;
}

}  // namespace msglab::socp
