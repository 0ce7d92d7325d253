#include "signal/client.hpp"

namespace msglab::signal {

bool ack_true(const Json& a) {
    if (!a.is_array() || a.empty()) return false;
    const Json& v = a[0];
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number_integer()) return v.get<long long>() != 0;
    if (v.is_number_float()) return v.get<double>() != 0;
    if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
    return false;
}

ChatClient::ChatClient(ClientOptions options, Identity identity, Rng& rng)
    : m_options(std::move(options)), m_chat(m_options.user, std::move(identity), m_options.chat, rng) {
    if (m_options.keylog_path) {
        m_keylog = std::make_unique<KeyLogWriter>(*m_options.keylog_path);
        m_chat.set_keylog([this](std::string_view label, ByteView id, ByteView secret) {
            m_keylog->write(label, id, secret);
        });
    }
    m_sio.on("x3dh_message", [this](const Json& args) -> Json {
        Incoming in;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            in = m_chat.receive_x3dh(args.is_array() && !args.empty() ? args[0] : Json());
        }
        ChatEvent e;
        e.name = "x3dh_message";
        e.from = in.from;
        e.detail = in.detail;
        e.kind = in.kind == Incoming::Kind::session ? ChatEvent::Kind::session : ChatEvent::Kind::refused;
        push(std::move(e));
        return Json::array({in.ack});
    });
    m_sio.on("ratchet_msg", [this](const Json& args) -> Json {
        Incoming in;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            in = m_chat.receive_ratchet(args.is_array() && !args.empty() ? args[0] : Json());
        }
        // Messages that waited for this one leave now, without waiting for
        // their acks (this runs on the io thread).
        for (auto& f : in.flush) {
            try {
                m_sio.emit("ratchet_msg", Json::array({f}));
            } catch (const SioError&) {
            }
        }
        if (in.kind != Incoming::Kind::opening) {
            ChatEvent e;
            e.name = "ratchet_msg";
            e.from = in.from;
            e.text = in.text;
            e.detail = in.detail;
            e.kind = in.kind == Incoming::Kind::message ? ChatEvent::Kind::message : ChatEvent::Kind::refused;
            push(std::move(e));
        }
        return Json::array({in.ack});
    });
    m_sio.on("*", [this](const Json& args) -> Json {
        ChatEvent e;
        e.kind = ChatEvent::Kind::event;
        if (args.is_array() && !args.empty() && args[0].is_string()) e.name = args[0].get<std::string>();
        Json rest = Json::array();
        if (args.is_array())
            for (std::size_t i = 1; i < args.size(); ++i) rest.push_back(args[i]);
        e.text = rest.dump();
        push(std::move(e));
        return Json();
    });
    m_sio.on_disconnect([this](const std::string& reason) {
        ChatEvent e;
        e.kind = ChatEvent::Kind::disconnected;
        e.detail = reason;
        push(std::move(e));
    });
}

ChatClient::~ChatClient() { close(); }

void ChatClient::push(ChatEvent e) {
    {
        std::lock_guard<std::mutex> lock(m_queue_mutex);
        if (m_queue.size() >= kMaxQueue) m_queue.pop_front();
        m_queue.push_back(std::move(e));
    }
    m_queue_cv.notify_all();
}

std::optional<ChatEvent> ChatClient::next(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(m_queue_mutex);
    if (!m_queue_cv.wait_for(lock, timeout, [&] { return !m_queue.empty(); })) return std::nullopt;
    auto e = std::move(m_queue.front());
    m_queue.pop_front();
    return e;
}

Json ChatClient::call(const std::string& event, const Json& args) {
    try {
        return m_sio.call(event, args, m_options.timeout);
    } catch (const SioError& e) {
        throw ClientError(event + ": " + e.what());
    }
}

void ChatClient::connect() {
    SioClientOptions o;
    o.transports = m_options.transports;
    o.connect_timeout = m_options.timeout;
    try {
        m_sio.connect(m_options.host, m_options.port, o);
    } catch (const SioError& e) {
        throw ClientError("cannot connect to " + m_options.host + ":" + std::to_string(m_options.port) + ": " +
                          e.what());
    }
    Json reg;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        reg = m_chat.register_event();
    }
    auto ack = call("register_user", Json::array({reg}));
    if (!ack_true(ack))
        throw ClientError("the server refused to register " + m_options.user + " (ack " + ack.dump() + ")");
}

void ChatClient::close() { m_sio.close(); }
bool ChatClient::connected() const { return m_sio.connected(); }

std::vector<std::string> ChatClient::users() {
    auto ack = call("request_users", Json::array());
    std::vector<std::string> out;
    if (ack.is_array() && !ack.empty() && ack[0].is_array())
        for (const auto& u : ack[0])
            if (u.is_string()) out.push_back(u.get<std::string>());
    return out;
}

void ChatClient::start(const std::string& peer) {
    Json q = Json::object();
    q["username"] = peer;
    auto bundle = call("request_prekey", Json::array({q}));
    Json x3dh;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        auto r = m_chat.initiate(peer, bundle);
        if (!r) throw ClientError(r.error());
        x3dh = *r;
    }
    auto ack = call("x3dh_message", Json::array({x3dh}));
    std::optional<Json> opening;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        opening = m_chat.x3dh_answered(peer, ack_true(ack));
    }
    if (!ack_true(ack)) throw ClientError("x3dh_message to " + peer + " was not accepted (ack " + ack.dump() + ")");
    if (opening) call("ratchet_msg", Json::array({*opening}));
}

Delivery ChatClient::send(const std::string& peer, const std::string& text) {
    Result<std::optional<Json>, std::string> r = unexpected(std::string());
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        r = m_chat.seal(peer, text);
    }
    if (!r) throw ClientError(r.error());
    if (!r->has_value()) return Delivery::queued;
    auto ack = call("ratchet_msg", Json::array({**r}));
    return ack_true(ack) ? Delivery::delivered : Delivery::refused;
}

bool ChatClient::has_session(const std::string& peer) {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_chat.has_session(peer);
}

// ---- Bot --------------------------------------------------------------------

Bot::Bot(BotOptions options, Identity identity, Rng& rng)
    : m_options(std::move(options)), m_client(m_options.client, std::move(identity), rng) {}

Bot::~Bot() { stop(); }

void Bot::log(const std::string& line) {
    if (m_options.on_log) m_options.on_log("bot " + m_client.user() + ": " + line);
}

void Bot::start() {
    m_client.connect();
    m_greeted.insert(m_client.user());
    m_thread = std::thread([this] { run(); });
}

void Bot::stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    m_client.close();
}

void Bot::run() {
    auto next_poll = std::chrono::steady_clock::now();
    while (!m_stop) {
        try {
            if (std::chrono::steady_clock::now() >= next_poll) {
                next_poll = std::chrono::steady_clock::now() + m_options.poll;
                auto now = std::chrono::steady_clock::now();
                for (const auto& u : m_client.users()) {
                    if (m_greeted.count(u) || m_stop) continue;
                    auto seen = m_seen.emplace(u, now).first->second;
                    if (now - seen < m_options.greet_after) continue;
                    m_greeted.insert(u);
                    try {
                        m_client.start(u);
                        m_client.send(u, "hello " + u + ", this is " + m_client.user());
                        log("greeted " + u);
                    } catch (const ClientError& e) {
                        log("no session with " + u + ": " + e.what());
                    }
                }
            }
            auto e = m_client.next(std::chrono::milliseconds(50));
            if (!e) continue;
            switch (e->kind) {
                case ChatEvent::Kind::message:
                    m_greeted.insert(e->from);
                    try {
                        auto d = m_client.send(e->from, "echo: " + e->text);
                        ++m_echoed;
                        if (d == Delivery::refused) log("echo to " + e->from + " refused");
                    } catch (const ClientError& err) {
                        log("cannot echo to " + e->from + ": " + err.what());
                    }
                    break;
                case ChatEvent::Kind::session:
                    m_greeted.insert(e->from);
                    log("session opened by " + e->from);
                    break;
                case ChatEvent::Kind::refused: log("refused: " + e->detail); break;
                case ChatEvent::Kind::disconnected:
                    log("disconnected: " + e->detail);
                    return;
                case ChatEvent::Kind::event: break;
            }
        } catch (const ClientError& e) {
            log(e.what());
            if (!m_client.connected()) return;
        }
    }
}

}  // namespace msglab::signal
