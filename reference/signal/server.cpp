#include "signal/server.hpp"

#include <map>

namespace msglab::signal {

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    ServerOptions options;
    Directory directory;
    App app;
    std::unique_ptr<SioServer> sio;
    std::map<std::uint64_t, std::shared_ptr<SioAck>> acks;  // requests waiting for App's answer
    std::uint64_t next_request = 1;

    explicit Impl(ServerOptions o)
        : options(std::move(o)), directory(options.db_path), app(options.app, directory) {}

    void log(const std::string& line) {
        if (options.on_log) options.on_log(line);
    }

    void apply(std::vector<Action> actions) {
        for (auto& a : actions) {
            switch (a.kind) {
                case Action::Kind::ack: {
                    auto it = acks.find(a.request);
                    if (it == acks.end()) break;
                    it->second->reply(a.args);
                    acks.erase(it);
                    break;
                }
                case Action::Kind::emit: sio->emit(a.sid, a.event, a.args); break;
                case Action::Kind::relay: {
                    std::weak_ptr<Impl> weak = shared_from_this();
                    auto token = a.token;
                    sio->emit(
                        a.sid, a.event, a.args,
                        [weak, token](std::optional<Json> result) {
                            if (auto self = weak.lock()) self->apply(self->app.relay_answered(token, result));
                        },
                        options.relay_timeout);
                    break;
                }
                case Action::Kind::log: log(a.sid + ": " + a.text); break;
            }
        }
    }
};

Server::Server(boost::asio::io_context& io, ServerOptions options)
    : m_impl(std::make_shared<Impl>(std::move(options))) {
    std::weak_ptr<Impl> weak = m_impl;
    SioHandler h;
    h.on_connect = [weak](const std::string& sid, const std::string& remote) {
        if (auto self = weak.lock()) {
            self->app.connected(sid, remote);
            self->log(sid + ": connected from " + remote);
        }
    };
    h.on_event = [weak](const std::string& sid, const std::string& event, const Json& args,
                        std::shared_ptr<SioAck> ack) {
        auto self = weak.lock();
        if (!self) return;
        std::optional<std::uint64_t> request;
        if (ack) {
            request = self->next_request++;
            self->acks[*request] = ack;
        }
        auto actions = self->app.event(sid, event, args, request);
        bool relayed = false;
        for (const auto& a : actions) relayed = relayed || a.kind == Action::Kind::relay;
        self->apply(std::move(actions));
        // A request App answered nothing to (an event without a handler)
        // lets its ack go: the transport sends it empty. A relayed one waits
        // for the recipient (relay_answered always answers it).
        if (request && !relayed) self->acks.erase(*request);
    };
    h.on_disconnect = [weak](const std::string& sid, const std::string& reason) {
        if (auto self = weak.lock()) {
            self->log(sid + ": disconnected (" + reason + ")");
            self->apply(self->app.disconnected(sid));
        }
    };
    auto sio_options = m_impl->options.sio;
    sio_options.on_log = m_impl->options.on_log;
    m_impl->sio = std::make_unique<SioServer>(io, sio_options, std::move(h));
}

Server::~Server() {
    if (m_impl && m_impl->sio) m_impl->sio->stop();
}

std::uint16_t Server::port() const { return m_impl->sio->port(); }
void Server::start() { m_impl->sio->start(); }
void Server::stop() { m_impl->sio->stop(); }
App& Server::app() { return m_impl->app; }
Directory& Server::directory() { return m_impl->directory; }

}  // namespace msglab::signal
