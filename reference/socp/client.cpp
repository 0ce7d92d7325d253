#include "socp/client.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "csmp/client.hpp"
#include "socp/server.hpp"  // now_ms

namespace msglab::socp {

namespace fs = std::filesystem;

namespace {

ByteView bytes_of(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
std::string text_of(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

bool valid_utf8_text(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        if (n == 1 && c < 0x20 && c != '\n' && c != '\t') return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// A file name from the network reduced to a safe basename.
std::string safe_name(const std::string& name) {
    std::string base = name.substr(name.find_last_of("/\\") == std::string::npos ? 0 : name.find_last_of("/\\") + 1);
    std::string out;
    for (char c : base)
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
    while (!out.empty() && out.front() == '.') out.erase(out.begin());
    if (out.empty()) out = "file";
    if (out.size() > 200) out.resize(200);
    return out;
}

}  // namespace

Client::Client(ClientOptions options, crypto::RsaPrivateKey key, Rng& rng)
    : m_options(std::move(options)), m_key(std::move(key)), m_rng(rng) {
    m_pub_text = encode_key(m_key.public_key(), m_options.key_encoding);
}

Client::~Client() = default;

std::int64_t Client::now() const { return now_ms(); }

void Client::open() {
    if (m_ws) return;
    csmp::ClientOptions o;
    o.host = m_options.host;
    o.port = m_options.port;
    o.timeout = m_options.timeout;
    o.deflate = m_options.deflate;
    o.user_agent = "msglab-socp";
    o.max_message = Limits{}.max_message;
    try {
        m_ws = csmp::Client(o).open("/");
    } catch (const csmp::ClientError& e) {
        throw ClientError(std::string("cannot reach ") + m_options.host + ":" + std::to_string(m_options.port) + ": " +
                          e.what());
    }
}

void Client::login() {
    if (m_options.user.empty()) throw ClientError("no user id");
    open();
    if (m_options.keylog)
        m_options.keylog->write("SOCP_PRIVATE_KEY", bytes_of(m_options.user), m_key.pkcs8_der());
    Envelope hello;
    hello.type = "USER_HELLO";
    hello.from = m_options.user;
    hello.to = m_options.user;  // as the cohort implementation does; servers ignore it
    hello.ts = now();
    Json meta = m_options.meta;
    hello.payload = Json{{"client", "msglab-socp"}, {"pubkey", m_pub_text}, {"enc_pubkey", m_pub_text}, {"meta", meta}};
    send_envelope(hello, true);
    auto deadline = std::chrono::steady_clock::now() + m_options.timeout;
    while (!m_logged_in && !m_login_error && std::chrono::steady_clock::now() < deadline) {
        if (closed()) break;
        pump(std::chrono::milliseconds(100));
    }
    if (m_login_error) throw ClientError("login refused: " + *m_login_error);
    if (!m_logged_in) throw ClientError(closed() ? "the server closed the connection during login" : "login timed out");
}

std::vector<std::string> Client::online() const {
    std::vector<std::string> out;
    for (const auto& [u, k] : m_directory) out.push_back(u);
    return out;
}

bool Client::wait_for_user(const std::string& user, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!knows(user) && std::chrono::steady_clock::now() < deadline && !closed()) pump(std::chrono::milliseconds(50));
    return knows(user);
}

bool Client::wait_for_group_key(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (m_group_keys.empty() && std::chrono::steady_clock::now() < deadline && !closed())
        pump(std::chrono::milliseconds(50));
    return !m_group_keys.empty();
}

std::optional<std::uint64_t> Client::group_version() const {
    if (m_group_keys.empty()) return std::nullopt;
    return m_group_keys.rbegin()->first;
}

void Client::send_envelope(Envelope e, bool sign) {
    if (!m_ws) throw ClientError("not connected");
    if (sign) e.sig = sign_payload(m_key, e.payload, m_rng);
    send_text(encode(e));
}

void Client::send_text(const std::string& text) {
    if (!m_ws) throw ClientError("not connected");
    try {
        m_ws->send(text);
    } catch (const csmp::ClientError& e) {
        throw ClientError(e.what());
    }
}

std::optional<std::string> Client::receive_text(std::chrono::milliseconds timeout) {
    if (!m_ws) return std::nullopt;
    return m_ws->receive(timeout);
}

bool Client::closed() const { return !m_ws || m_ws->closed(); }

std::string Client::close_reason() const { return m_ws ? m_ws->close_reason() : "not connected"; }

void Client::close() {
    if (!m_ws) return;
    try {
        if (!m_ws->closed()) {
            Envelope bye;
            bye.type = "CTRL_CLOSE";
            bye.from = m_options.user;
            bye.to = "*";
            bye.ts = now();
            m_ws->send(encode(bye));
        }
        m_ws->close();
    } catch (...) {
    }
}

void Client::tell(const std::string& to, std::string_view text) {
    auto it = m_directory.find(to);
    if (it == m_directory.end()) throw ClientError("unknown user " + to + " (not in /list)");
    auto key = decode_key(it->second);
    if (!key) throw ClientError("the directory's key for " + to + " cannot be read");
    std::size_t capacity = oaep_capacity(key->key);
    if (capacity == 0) throw ClientError("the key of " + to + " is too small for RSA-OAEP-SHA256");
    for (const std::string& piece : split_utf8(text, capacity)) {
        Envelope e;
        e.type = "MSG_DIRECT";
        e.from = m_options.user;
        e.to = to;
        e.ts = now();
        std::string ct = *encrypt_for(key->key, bytes_of(piece), m_rng);
        e.payload = Json{{"ciphertext", ct},
                         {"sender_pub", m_pub_text},
                         {"content_sig", sign_content(m_key, dm_content(ct, e.from, e.to, e.ts), m_rng)}};
        send_envelope(std::move(e), true);
    }
}

bool Client::all(std::string_view text) {
    Envelope e;
    e.type = "MSG_PUBLIC_CHANNEL";
    e.from = m_options.user;
    e.to = kPublicGroup;
    e.ts = now();
    std::string ct;
    bool encrypted = !m_group_keys.empty();
    if (encrypted) {
        // The newest key wrapped for everyone in the directory; else the newest.
        auto chosen = m_group_keys.rbegin();
        for (auto it = m_group_keys.rbegin(); it != m_group_keys.rend(); ++it) {
            const auto& members = m_group_members[it->first];
            bool covers = std::all_of(m_directory.begin(), m_directory.end(),
                                      [&](const auto& d) { return members.count(d.first) != 0; });
            if (covers) {
                chosen = it;
                break;
            }
        }
        auto& [version, keys] = *chosen;
        ct = group_encrypt(keys.back(), text, m_rng);
        e.payload["key_version"] = version;
    } else {
        ct = b64url(bytes_of(text));
    }
    e.payload["ciphertext"] = ct;
    e.payload["sender_pub"] = m_pub_text;
    e.payload["content_sig"] = sign_content(m_key, public_content(ct, e.from, e.ts), m_rng);
    send_envelope(std::move(e), true);
    return encrypted;
}

void Client::send_file(const std::string& to, const std::string& path,
                       const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
    bool is_public = to == kPublicGroup || to == "*";
    std::optional<DecodedKey> key;
    if (!is_public) {
        auto it = m_directory.find(to);
        if (it == m_directory.end()) throw ClientError("unknown user " + to + " (not in /list)");
        key = decode_key(it->second);
        if (!key || oaep_capacity(key->key) == 0) throw ClientError("the directory's key for " + to + " is unusable");
    } else if (m_group_keys.empty()) {
        throw ClientError("no public channel key yet: cannot send a file to the public channel");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ClientError("cannot read " + path);
    Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() > m_options.max_file)
        throw ClientError(path + " is over the file bound of " + std::to_string(m_options.max_file) + " bytes");
    std::string id = uuid4(m_rng);
    auto frame = [&](const char* type, Json payload) {
        Envelope e;
        e.type = type;
        e.from = m_options.user;
        e.to = is_public ? std::string(kPublicGroup) : to;
        e.ts = now();
        e.payload = std::move(payload);
        send_envelope(std::move(e), true);
    };
    std::string name = fs::path(path).filename().string();
    if (!valid_utf8_text(name)) name = "file";  // the name must be JSON text
    frame("FILE_START", Json{{"file_id", id},
                             {"name", name},
                             {"size", data.size()},
                             {"sha256", hex(crypto::sha256(data))},
                             {"mode", is_public ? "public" : "dm"}});
    std::size_t chunk = is_public ? 32 * 1024 : oaep_capacity(key->key);
    std::int64_t index = 0;
    for (std::size_t off = 0; off < data.size() || (off == 0 && data.empty()); off += chunk) {
        if (data.empty()) break;
        ByteView piece = ByteView(data).subspan(off, std::min(chunk, data.size() - off));
        std::string ct = is_public ? group_encrypt(m_group_keys.rbegin()->second.back(), text_of(piece), m_rng)
                                   : *encrypt_for(key->key, piece, m_rng);
        Json p{{"file_id", id}, {"index", index++}, {"ciphertext", ct}};
        if (is_public) p["key_version"] = m_group_keys.rbegin()->first;
        frame("FILE_CHUNK", std::move(p));
        if (progress) progress(off + piece.size(), data.size());
        pump(std::chrono::milliseconds(0));  // keep reading: the server's messages must not pile up
    }
    frame("FILE_END", Json{{"file_id", id}});
}

std::optional<Event> Client::next(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (m_events.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || closed()) {
            pump(std::chrono::milliseconds(0));
            break;
        }
        pump(left);
    }
    if (m_events.empty()) return std::nullopt;
    Event ev = std::move(m_events.front());
    m_events.pop_front();
    return ev;
}

void Client::pump(std::chrono::milliseconds timeout) {
    if (!m_ws) return;
    auto text = m_ws->receive(timeout);
    while (text) {
        handle(*text);
        text = m_ws->receive(std::chrono::milliseconds(0));
    }
}

void Client::handle(const std::string& text) {
    auto parsed = parse_envelope(text);
    if (!parsed) {
        push(Event{Event::Kind::error, "", "", "malformed message from the server: " + parsed.error()});
        return;
    }
    const Envelope& e = *parsed;
    const Json& p = e.payload;
    if (e.type == "ACK") {
        if (string_field(p, "msg_ref") == std::optional<std::string>("USER_HELLO")) {
            m_logged_in = true;
            m_directory[m_options.user] = m_pub_text;
        }
        Event ev{Event::Kind::ack, e.type, e.from, p.dump()};
        ev.ts = e.ts;
        push(std::move(ev));
        return;
    }
    if (e.type == "ERROR") {
        std::string what = string_field(p, "code").value_or("ERROR") + ": " + string_field(p, "detail").value_or("");
        if (!m_logged_in) m_login_error = what;
        push(Event{Event::Kind::error, e.type, e.from, what});
        return;
    }
    if (e.type == "USER_ADVERTISE") {
        auto uid = string_field(p, "user_id");
        auto meta = p.find("meta");
        std::optional<std::string> key_text;
        if (meta != p.end()) key_text = string_field(*meta, "pubkey");
        if (!uid) return;
        if (*uid == m_options.user) {
            m_logged_in = true;
            m_directory[*uid] = m_pub_text;
            return;
        }
        if (!key_text || !decode_key(*key_text)) return;
        bool is_new = !m_directory.count(*uid);
        m_directory[*uid] = *key_text;
        if (is_new) push(Event{Event::Kind::joined, e.type, *uid, string_field(p, "server_id").value_or("")});
        return;
    }
    if (e.type == "USER_REMOVE") {
        auto uid = string_field(p, "user_id");
        if (!uid || *uid == m_options.user) return;
        if (m_directory.erase(*uid)) push(Event{Event::Kind::left, e.type, *uid, ""});
        return;
    }
    if (e.type == "PUBLIC_CHANNEL_UPDATED") {
        auto version = int_field(p, "version");
        auto wraps = p.find("wraps");
        if (!version || *version < 0 || wraps == p.end() || !wraps->is_array()) return;
        for (const auto& w : *wraps)
            if (auto m = string_field(w, "member_id")) m_group_members[static_cast<std::uint64_t>(*version)].insert(*m);
        for (const auto& w : *wraps) {
            if (string_field(w, "member_id") != std::optional<std::string>(m_options.user)) continue;
            auto wrapped = string_field(w, "wrapped_key");
            if (!wrapped) continue;
            auto key = decrypt_with(m_key, *wrapped, m_rng);
            if (key && key->size() == 32) {
                auto& keys = m_group_keys[static_cast<std::uint64_t>(*version)];
                if (std::find(keys.begin(), keys.end(), *key) == keys.end()) keys.push_back(*key);
            }
        }
        return;
    }
    if (e.type == "USER_DELIVER" || e.type == "MSG_DIRECT") {
        Event ev;
        ev.kind = Event::Kind::direct;
        ev.type = e.type;
        ev.ts = e.ts;
        ev.from = string_field(p, "sender").value_or(e.from);
        auto ct = string_field(p, "ciphertext");
        auto plain = ct ? decrypt_with(m_key, *ct, m_rng) : std::nullopt;
        if (!plain) {
            push(Event{Event::Kind::error, e.type, ev.from, "a direct message from " + ev.from + " does not decrypt"});
            return;
        }
        ev.text = text_of(*plain);
        auto sender_pub = string_field(p, "sender_pub");
        auto sig = string_field(p, "content_sig");
        if (sender_pub && sig)
            if (auto k = decode_key(*sender_pub))
                ev.verified = verify_content(k->key, dm_content(*ct, ev.from, m_options.user, e.ts), *sig);
        auto known = m_directory.find(ev.from);
        if (known != m_directory.end() && sender_pub) {
            auto a = decode_key(known->second);
            auto b = decode_key(*sender_pub);
            ev.key_matches = a && b && a->key.spki_der() == b->key.spki_der();
        }
        push(std::move(ev));
        return;
    }
    if (e.type == "MSG_PUBLIC_CHANNEL") {
        if (e.from == m_options.user) return;
        Event ev;
        ev.kind = Event::Kind::public_message;
        ev.type = e.type;
        ev.from = e.from;
        ev.ts = e.ts;
        auto ct = string_field(p, "ciphertext");
        if (!ct) return;
        std::optional<std::string> plain;
        auto version = int_field(p, "key_version");
        for (const auto& [v, keys] : m_group_keys) {
            if (version && static_cast<std::uint64_t>(*version) != v) continue;
            for (const auto& k : keys)
                if (!plain) plain = group_decrypt(k, *ct);
        }
        if (!plain) {
            auto raw = b64url_decode(*ct);
            if (raw && valid_utf8_text(text_of(*raw))) {
                plain = text_of(*raw);
                ev.encrypted = false;
            }
        }
        if (!plain) {
            push(Event{Event::Kind::error, e.type, e.from, "a public message from " + e.from + " does not open"});
            return;
        }
        ev.text = *plain;
        auto sender_pub = string_field(p, "sender_pub");
        auto sig = string_field(p, "content_sig");
        if (sender_pub && sig)
            if (auto k = decode_key(*sender_pub)) ev.verified = verify_content(k->key, public_content(*ct, e.from, e.ts), *sig);
        auto known = m_directory.find(e.from);
        if (known != m_directory.end() && sender_pub) {
            auto a = decode_key(known->second);
            auto b = decode_key(*sender_pub);
            ev.key_matches = a && b && a->key.spki_der() == b->key.spki_der();
        }
        push(std::move(ev));
        return;
    }
    if (e.type == "FILE_START" || e.type == "FILE_CHUNK" || e.type == "FILE_END") return on_file(e);
    // Server-to-server frames a relaying server passes on (PUBLIC_CHANNEL_ADD, ...): nothing to do.
}

void Client::on_file(const Envelope& e) {
    if (e.from == m_options.user) return;
    auto id = string_field(e.payload, "file_id");
    if (!id || id->empty() || id->size() > 128) return;
    // The sender's frames are forwarded unchanged: its signature is checkable.
    bool sig_ok = false;
    auto known = m_directory.find(e.from);
    if (known != m_directory.end() && e.sig)
        if (auto k = decode_key(known->second)) sig_ok = verify_payload(k->key, e.payload, *e.sig).has_value();
    if (e.type == "FILE_START") {
        if (m_options.downloads.empty()) {
            push(Event{Event::Kind::error, e.type, e.from,
                       "file offer from " + e.from + " refused: no downloads folder (--downloads)"});
            return;
        }
        auto size = int_field(e.payload, "size");
        auto name = string_field(e.payload, "name");
        if (!size || *size < 0 || static_cast<std::uint64_t>(*size) > m_options.max_file || !name) {
            push(Event{Event::Kind::error, e.type, e.from, "file offer from " + e.from + " refused: bad or too large"});
            return;
        }
        if (m_files.size() >= 64) return;
        FileIn f;
        f.from = e.from;
        f.name = *name;
        f.size = static_cast<std::uint64_t>(*size);
        f.sha256 = string_field(e.payload, "sha256").value_or("");
        f.mode = string_field(e.payload, "mode").value_or("dm");
        f.verified = sig_ok;
        m_files[*id] = std::move(f);
        return;
    }
    auto it = m_files.find(*id);
    if (it == m_files.end() || it->second.from != e.from) return;
    FileIn& f = it->second;
    f.verified = f.verified && sig_ok;
    if (e.type == "FILE_CHUNK") {
        auto index = int_field(e.payload, "index");
        auto ct = string_field(e.payload, "ciphertext");
        if (!index || *index < 0 || !ct || f.chunks.count(*index)) return;
        std::optional<Bytes> plain;
        if (f.mode == "public") {
            for (const auto& [v, keys] : m_group_keys)
                for (const auto& k : keys)
                    if (!plain)
                        if (auto s = group_decrypt(k, *ct)) plain = Bytes(s->begin(), s->end());
        } else {
            plain = decrypt_with(m_key, *ct, m_rng);
        }
        if (!plain || f.received + plain->size() > f.size) {
            push(Event{Event::Kind::error, e.type, e.from, "file " + f.name + " from " + e.from + ": a bad chunk; dropped"});
            m_files.erase(it);
            return;
        }
        f.received += plain->size();
        f.chunks[*index] = std::move(*plain);
        return;
    }
    // FILE_END: check, then write under a name not yet taken.
    Bytes data;
    for (auto& [i, c] : f.chunks) data.insert(data.end(), c.begin(), c.end());
    std::string problem;
    if (data.size() != f.size)
        problem = "size " + std::to_string(data.size()) + " is not the announced " + std::to_string(f.size);
    else if (!f.sha256.empty() && hex(crypto::sha256(data)) != f.sha256)
        problem = "SHA-256 does not match";
    if (!problem.empty()) {
        push(Event{Event::Kind::error, e.type, e.from, "file " + f.name + " from " + e.from + ": " + problem + "; dropped"});
        m_files.erase(it);
        return;
    }
    std::error_code ec;
    fs::create_directories(m_options.downloads, ec);
    std::string base = safe_name(f.name);
    fs::path target = fs::path(m_options.downloads) / base;
    for (int n = 1; fs::exists(target) && n < 10'000; ++n)
        target = fs::path(m_options.downloads) / (fs::path(base).stem().string() + "." + std::to_string(n) +
                                                  fs::path(base).extension().string());
    fs::path part = target;
    part += ".part";
    {
        std::ofstream out(part, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        if (!out) {
            fs::remove(part, ec);
            push(Event{Event::Kind::error, e.type, e.from, "cannot write " + part.string()});
            m_files.erase(it);
            return;
        }
    }
    fs::rename(part, target, ec);
    Event ev{Event::Kind::file, e.type, e.from, target.string()};
    ev.verified = f.verified;
    ev.ts = e.ts;
    push(std::move(ev));
    m_files.erase(it);
}

}  // namespace msglab::socp
