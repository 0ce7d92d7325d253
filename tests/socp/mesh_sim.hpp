// An in-memory network for SOCP server logic (socp::App): servers dial each
// other by address, users attach to a server, every Effects is carried out
// at once and deterministically. Killing a server closes its links as a
// dead process's sockets would; freezing one drops its traffic and stops its
// clock, as a hung process would.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "socp/app.hpp"
#include "socp_support.hpp"

namespace msglab::socp::test {

struct SimUser {
    std::string id;
    std::string key_name;
    std::string server;  // address
    LinkId link = 0;
    bool open = false;
    std::vector<Envelope> inbox;

    std::vector<Envelope> of_type(const std::string& type) const {
        std::vector<Envelope> out;
        for (const auto& e : inbox)
            if (e.type == type) out.push_back(e);
        return out;
    }
    std::optional<Envelope> last(const std::string& type) const {
        auto all = of_type(type);
        if (all.empty()) return std::nullopt;
        return all.back();
    }
};

class Mesh {
public:
    std::int64_t now = 1'800'000'000'000;
    SystemRng rng;
    std::vector<std::string> logs;

    App& add_server(const std::string& name, const std::string& key_name, std::vector<std::string> introducers = {},
                    PlantSet plants = {}) {
        AppConfig c;
        c.self = Endpoint{"10.0.0." + name, 8765};
        for (const auto& i : introducers) c.introducers.push_back(Endpoint{"10.0.0." + i, 8765});
        c.plants = std::move(plants);
        c.heartbeat_ms = 1000;
        c.dead_after_ms = 3000;
        c.redial_min_ms = 200;
        c.redial_max_ms = 1000;
        c.join_timeout_ms = 2000;
        auto app = std::make_unique<App>(c, *crypto::RsaPrivateKey::from_pem(read_text(key_path(key_name))),
                                         "server-" + name + "-" + uuid4(rng).substr(0, 8), rng);
        App& ref = *app;
        m_apps[c.self.text()] = std::move(app);
        m_frozen.erase(c.self.text());
        apply(c.self.text(), ref.start(now));
        run();
        return ref;
    }
    static std::string addr(const std::string& name) { return "10.0.0." + name + ":8765"; }
    App& server(const std::string& name) { return *m_apps.at(addr(name)); }
    bool alive(const std::string& name) const { return m_apps.count(addr(name)) != 0; }

    // The process dies: its sockets close.
    void kill(const std::string& name) {
        std::string a = addr(name);
        std::vector<End> peers;
        for (auto it = m_conns.begin(); it != m_conns.end();) {
            if (it->first.server == a) {
                peers.push_back(it->second);
                it = m_conns.erase(it);
            } else {
                ++it;
            }
        }
        for (const End& p : peers) {
            m_conns.erase(p);
            close_end(p);
        }
        m_apps.erase(a);
        run();
    }
    // The process hangs: nothing in or out, no ticks, sockets stay open.
    void freeze(const std::string& name) { m_frozen.insert(addr(name)); }

    SimUser& connect_user(const std::string& user_id, const std::string& key_name, const std::string& server_name) {
        auto u = std::make_unique<SimUser>();
        u->id = user_id;
        u->key_name = key_name;
        u->server = addr(server_name);
        u->link = m_next_link++;
        u->open = true;
        SimUser& ref = *u;
        m_users.push_back(std::move(u));
        End s{ref.server, ref.link, nullptr};
        End c{"", ref.link, &ref};
        m_conns[s] = c;
        m_conns[c] = s;
        apply(ref.server, m_apps.at(ref.server)->opened(ref.link, std::nullopt, now));
        run();
        return ref;
    }

    Envelope user_envelope(const SimUser& u, std::string type, std::string to, Json payload) {
        Envelope e;
        e.type = std::move(type);
        e.from = u.id;
        e.to = std::move(to);
        e.ts = now;
        e.payload = std::move(payload);
        return e;
    }
    void user_send(SimUser& u, Envelope e, bool sign = true) {
        if (sign) e.sig = sign_payload(key(u.key_name), e.payload, rng);
        user_send_text(u, encode(e));
    }
    void user_send_text(SimUser& u, const std::string& text) {
        if (!u.open) return;
        m_queue.push_back(Pending{End{u.server, u.link, nullptr}, text, false});
        run();
    }
    void hello(SimUser& u, std::optional<std::string> key_text = std::nullopt) {
        std::string k = key_text.value_or(encode_key(key(u.key_name).public_key()));
        user_send(u, user_envelope(u, "USER_HELLO", u.id, Json{{"client", "sim"}, {"pubkey", k}, {"enc_pubkey", k}}));
    }
    SimUser& login(const std::string& user_id, const std::string& key_name, const std::string& server_name) {
        SimUser& u = connect_user(user_id, key_name, server_name);
        hello(u);
        return u;
    }
    void user_close(SimUser& u) {
        if (!u.open) return;
        u.open = false;
        End c{"", u.link, &u};
        End s = m_conns.at(c);
        m_conns.erase(c);
        m_conns.erase(s);
        close_end(s);
        run();
    }
    // A DM as a clean client writes it.
    Envelope dm(const SimUser& from, const SimUser& to, const std::string& text) {
        Envelope e = user_envelope(from, "MSG_DIRECT", to.id, Json::object());
        ByteView b(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
        std::string ct = *encrypt_for(key(to.key_name).public_key(), b, rng);
        e.payload = Json{{"ciphertext", ct},
                         {"sender_pub", encode_key(key(from.key_name).public_key())},
                         {"content_sig", sign_content(key(from.key_name), dm_content(ct, e.from, e.to, e.ts), rng)}};
        return e;
    }
    std::string open_dm(const SimUser& u, const Envelope& deliver) {
        auto plain = decrypt_with(key(u.key_name), string_field(deliver.payload, "ciphertext").value_or(""), rng);
        return plain ? std::string(plain->begin(), plain->end()) : "<does not decrypt>";
    }

    // Advances the clock in steps, ticking every live, unfrozen server.
    void advance(std::int64_t ms, std::int64_t step = 100) {
        for (std::int64_t t = 0; t < ms; t += step) {
            now += step;
            std::vector<std::string> names;
            for (auto& [a, app] : m_apps) names.push_back(a);
            for (const auto& a : names) {
                if (!m_apps.count(a) || m_frozen.count(a)) continue;
                apply(a, m_apps.at(a)->tick(now));
            }
            run();
        }
    }

private:
    struct End {
        std::string server;  // empty for a user end
        LinkId link = 0;
        SimUser* user = nullptr;
        bool operator<(const End& o) const {
            return std::tie(server, link, user) < std::tie(o.server, o.link, o.user);
        }
    };
    struct Pending {
        End to;
        std::string text;
        bool close = false;
    };

    void close_end(const End& e) {
        if (e.user) {
            e.user->open = false;
            return;
        }
        auto it = m_apps.find(e.server);
        if (it != m_apps.end() && !m_frozen.count(e.server)) apply(e.server, it->second->closed(e.link, now));
    }

    void apply(const std::string& server, Effects fx) {
        for (auto& line : fx.log) logs.push_back(server + ": " + line);
        bool frozen = m_frozen.count(server) != 0;
        for (auto& [link, text] : fx.send) {
            if (frozen) continue;
            auto it = m_conns.find(End{server, link, nullptr});
            if (it == m_conns.end()) continue;
            m_queue.push_back(Pending{it->second, *text, false});
        }
        for (LinkId link : fx.close) {
            auto it = m_conns.find(End{server, link, nullptr});
            if (it == m_conns.end()) continue;
            End other = it->second;
            m_conns.erase(it);
            m_conns.erase(other);
            m_queue.push_back(Pending{other, "", true});
            m_queue.push_back(Pending{End{server, link, nullptr}, "", true});
        }
        for (const Dial& d : fx.dial) {
            std::string target = d.to.text();
            auto it = m_apps.find(target);
            if (it == m_apps.end() || m_frozen.count(target)) {
                m_dial_failures.push_back({server, d.token});
                continue;
            }
            LinkId mine = m_next_link++, theirs = m_next_link++;
            End a{server, mine, nullptr}, b{target, theirs, nullptr};
            m_conns[a] = b;
            m_conns[b] = a;
            m_opens.push_back({target, theirs, std::nullopt});
            m_opens.push_back({server, mine, d.token});
        }
    }

    void run() {
        for (int guard = 0; guard < 1'000'000; ++guard) {
            if (!m_opens.empty()) {
                auto [server, link, token] = m_opens.front();
                m_opens.pop_front();
                if (m_apps.count(server)) apply(server, m_apps.at(server)->opened(link, token, now));
                continue;
            }
            if (!m_dial_failures.empty()) {
                auto [server, token] = m_dial_failures.front();
                m_dial_failures.pop_front();
                if (m_apps.count(server)) apply(server, m_apps.at(server)->dial_failed(token, now));
                continue;
            }
            if (m_queue.empty()) return;
            Pending p = std::move(m_queue.front());
            m_queue.pop_front();
            if (p.to.user) {
                if (p.close) {
                    p.to.user->open = false;
                } else if (auto e = parse_envelope(p.text)) {
                    p.to.user->inbox.push_back(*e);
                }
                continue;
            }
            auto it = m_apps.find(p.to.server);
            if (it == m_apps.end() || m_frozen.count(p.to.server)) continue;
            if (p.close)
                apply(p.to.server, it->second->closed(p.to.link, now));
            else
                apply(p.to.server, it->second->message(p.to.link, p.text, now));
        }
    }

    std::map<std::string, std::unique_ptr<App>> m_apps;
    std::set<std::string> m_frozen;
    std::map<End, End> m_conns;
    std::vector<std::unique_ptr<SimUser>> m_users;
    std::deque<Pending> m_queue;
    std::deque<std::tuple<std::string, LinkId, std::optional<std::uint64_t>>> m_opens;
    std::deque<std::pair<std::string, std::uint64_t>> m_dial_failures;
    LinkId m_next_link = 1;
};

}  // namespace msglab::socp::test
