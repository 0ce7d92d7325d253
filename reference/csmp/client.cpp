#include "csmp/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cctype>

namespace msglab::csmp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until `done` or the deadline; false on the deadline.
bool run_until(asio::io_context& io, const bool& done, Clock::time_point deadline) {
    if (io.stopped()) io.restart();
    while (!done) {
        if (Clock::now() >= deadline) return false;
        if (io.run_one_until(deadline) == 0 && io.stopped()) io.restart();
    }
    return true;
}

std::string what(const beast::error_code& ec) { return ec.message(); }

void connect_stream(asio::io_context& io, beast::tcp_stream& stream, const ClientOptions& o) {
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (ec) throw ClientError("cannot resolve " + o.host + ": " + what(ec));
    bool done = false;
    stream.expires_after(o.timeout);
    stream.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) {
        ec = e;
        done = true;
    });
    if (!run_until(io, done, Clock::now() + o.timeout + std::chrono::seconds(1)) || ec)
        throw ClientError("cannot connect to " + o.host + ":" + std::to_string(o.port) + ": " +
                          (ec ? what(ec) : std::string("timed out")));
}

}  // namespace

std::string url_encode(const std::string& s) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

struct WsClient::Impl {
    asio::io_context io;
    std::optional<websocket::stream<beast::tcp_stream>> ws;
    beast::flat_buffer buffer;
    std::deque<std::string> inbox;
    bool reading = false;
    bool is_closed = false;
    std::string reason;

    void arm() {
        if (reading || is_closed) return;
        reading = true;
        ws->async_read(buffer, [this](beast::error_code ec, std::size_t) {
            reading = false;
            if (ec) {
                is_closed = true;
                reason = ec == websocket::error::closed
                             ? "closed by the server (code " + std::to_string(ws->reason().code) + ")"
                             : what(ec);
                return;
            }
            inbox.push_back(beast::buffers_to_string(buffer.data()));
            buffer.consume(buffer.size());
            arm();
        });
    }
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

WsClient::~WsClient() {
    try {
        close();
    } catch (...) {
    }
}

void WsClient::send(const std::string& text) {
    if (m_impl->is_closed) throw ClientError("the WebSocket is closed: " + m_impl->reason);
    bool done = false;
    beast::error_code ec;
    m_impl->ws->text(true);
    m_impl->ws->async_write(asio::buffer(text), [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    if (!run_until(m_impl->io, done, Clock::now() + std::chrono::seconds(10)) || ec)
        throw ClientError("cannot send on the WebSocket: " + (ec ? what(ec) : std::string("timed out")));
}

std::optional<std::string> WsClient::receive(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    m_impl->arm();
    // What has already arrived, even with no time to wait.
    if (m_impl->io.stopped()) m_impl->io.restart();
    m_impl->io.poll();
    bool ready = !m_impl->inbox.empty() || m_impl->is_closed;
    while (!ready && Clock::now() < deadline) {
        if (m_impl->io.stopped()) m_impl->io.restart();
        m_impl->io.run_one_until(deadline);
        ready = !m_impl->inbox.empty() || m_impl->is_closed;
    }
    if (m_impl->inbox.empty()) return std::nullopt;
    std::string m = std::move(m_impl->inbox.front());
    m_impl->inbox.pop_front();
    return m;
}

std::optional<Json> WsClient::receive_type(const std::string& type, std::chrono::milliseconds timeout,
                                           std::deque<Json>* skipped) {
    auto deadline = Clock::now() + timeout;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto m = receive(left);
        if (!m) return std::nullopt;
        Json j = Json::parse(*m, nullptr, false);
        if (j.is_object() && j.value("type", "") == type) return j;
        if (skipped && !j.is_discarded()) skipped->push_back(std::move(j));
    }
}

bool WsClient::closed() const { return m_impl->is_closed; }
std::string WsClient::close_reason() const { return m_impl->reason; }

void WsClient::close() {
    if (!m_impl || m_impl->is_closed || !m_impl->ws) return;
    bool done = false;
    m_impl->ws->async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
    run_until(m_impl->io, done, Clock::now() + std::chrono::seconds(2));
    m_impl->is_closed = true;
    if (m_impl->reason.empty()) m_impl->reason = "closed by us";
    beast::error_code ec;
    beast::get_lowest_layer(*m_impl->ws).socket().close(ec);
}

Client::Client(ClientOptions options) : m_options(std::move(options)) {}

HttpReply Client::request(const std::string& method, const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    connect_stream(io, stream, m_options);
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, m_options.host + ":" + std::to_string(m_options.port));
    req.set(http::field::user_agent, "msglab-csmp");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST") {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.keep_alive(false);
    req.prepare_payload();
    beast::error_code ec;
    bool done = false;
    stream.expires_after(m_options.timeout);
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    if (!run_until(io, done, Clock::now() + m_options.timeout + std::chrono::seconds(1)) || ec)
        throw ClientError(method + " " + target + ": cannot send: " + (ec ? what(ec) : "timed out"));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16u << 20);
    done = false;
    stream.expires_after(m_options.timeout);
    http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    if (!run_until(io, done, Clock::now() + m_options.timeout + std::chrono::seconds(1)) || ec)
        throw ClientError(method + " " + target + ": no answer: " + (ec ? what(ec) : "timed out"));
    auto res = parser.release();
    HttpReply r;
    r.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
    }
    r.body = res.body();
    return r;
}

std::string Client::handshake(const std::string& client_id) {
    Json body;
    body["client_id"] = client_id;
    auto r = request("POST", "/handshake/", body.dump());
    Json j = Json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || !j.contains("session_id") || !j["session_id"].is_string())
        throw ClientError("handshake refused: HTTP " + std::to_string(r.status) + " " + r.body);
    m_session = j["session_id"].get<std::string>();
    return m_session;
}

Json Client::history(const std::string& room, std::size_t limit) {
    auto r = request("GET", "/history/" + url_encode(room) + "?limit=" + std::to_string(limit), "",
                     {{"x-session-id", m_session}});
    Json j = Json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_array())
        throw ClientError("history of " + room + ": HTTP " + std::to_string(r.status) + " " + r.body);
    return j;
}

Json Client::call_history() {
    auto r = request("GET", "/call/history", "", {{"x-session-id", m_session}});
    Json j = Json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object()) throw ClientError("call history: HTTP " + std::to_string(r.status) + " " + r.body);
    return j;
}

std::unique_ptr<WsClient> Client::open(const std::string& target, int* refused_status,
                                       const std::map<std::string, std::string>& headers) {
    auto impl = std::make_unique<WsClient::Impl>();
    impl->ws.emplace(impl->io);
    connect_stream(impl->io, beast::get_lowest_layer(*impl->ws), m_options);
    websocket::permessage_deflate pmd;
    pmd.client_enable = m_options.deflate;
    impl->ws->set_option(pmd);
    impl->ws->read_message_max(m_options.max_message);
    impl->ws->set_option(websocket::stream_base::decorator([headers, agent = m_options.user_agent](websocket::request_type& req) {
        req.set(http::field::user_agent, agent);
        for (const auto& [k, v] : headers) req.set(k, v);
    }));
    websocket::response_type res;
    beast::error_code ec;
    bool done = false;
    beast::get_lowest_layer(*impl->ws).expires_after(m_options.timeout);
    impl->ws->async_handshake(res, m_options.host + ":" + std::to_string(m_options.port), target,
                              [&](beast::error_code e) {
                                  ec = e;
                                  done = true;
                              });
    if (!run_until(impl->io, done, Clock::now() + m_options.timeout + std::chrono::seconds(1)))
        throw ClientError("upgrade to " + target + ": timed out");
    if (ec) {
        int status = static_cast<int>(res.result_int());
        if (refused_status) *refused_status = status;
        throw ClientError("upgrade to " + target + " refused" +
                          (status ? ": HTTP " + std::to_string(status) : ": " + what(ec)));
    }
    beast::get_lowest_layer(*impl->ws).expires_never();
    return std::make_unique<WsClient>(std::move(impl));
}

std::unique_ptr<WsClient> Client::open_chat(const std::string& room) {
    return open("/ws/chat?session_id=" + url_encode(m_session) + "&room_id=" + url_encode(room));
}

std::unique_ptr<WsClient> Client::open_call() { return open("/ws/call?session_id=" + url_encode(m_session)); }

}  // namespace msglab::csmp
