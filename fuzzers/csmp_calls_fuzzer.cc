// CSMP's server logic as a state machine (sans-I/O App: sessions, rooms, the
// call state machine, the history store in memory) driven by any sequence of
// events. Each record is one opcode byte and its operands:
//
//   0  handshake as identity i            (1 byte: i % 6)
//   1  open a call socket for session s   (1 byte)
//   2  open a chat socket for session s in room r (2 bytes)
//   3  close socket c                     (1 byte)
//   4  call event from socket c: a JSON object assembled from the next bytes
//      (type, to, call_id of a known call or made up, sdp / candidate)
//   5  raw text on socket c               (1 byte c, 1 byte n, n bytes)
//   6  time passes                        (1 byte: seconds * 4)
//   7  an HTTP request: route r with session s (2 bytes)
//
// Plants from MSGLAB_FUZZ_PLANTS (csmp.call-hijack, csmp.room-no-acl,
// csmp.session-fallback). Invariants, with no plant: every message goes to
// an open socket; a call event from an identity outside the call reaches no
// one but the sender; a refused upgrade opens nothing; the live calls and the
// sessions stay within their bounds.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "csmp/app.hpp"
#include "fuzz_common.hpp"

using namespace msglab;
using namespace msglab::csmp;

namespace {

const char* const kPlants[] = {plant::call_hijack, plant::room_no_acl, plant::session_fallback};
const char* const kNames[] = {"alice", "bob", "carol", "dave", "a_b", "x"};
const char* const kRooms[] = {"general", "room_alice_bob", "room_bob_carol", "room_a_b_x", "room1", "room_alice"};
const char* const kTypes[] = {"call:init", "call:offer", "call:answer", "call:ice", "call:end", "call:reject", "chat", "nope"};

struct Input {
    const std::uint8_t* p;
    std::size_t n;
    std::uint8_t byte() {
        if (!n) return 0;
        --n;
        return *p++;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::uint8_t mask = plants_from_env(kPlants, 3, "csmp");
    Input in{data, size};
    AppConfig cfg;
    cfg.max_sessions = 8;
    cfg.calls.max_live_calls = 6;
    cfg.calls.max_live_per_identity = 3;
    cfg.calls.ring_timeout_ms = 5000;
    cfg.chat_rate = 1000;
    cfg.chat_burst = 1000;
    for (int i = 0; i < 3; ++i)
        if (mask & (1u << i)) cfg.plants.enable(kPlants[i]);
    const bool clean = mask == 0;
    static DeterministicRng rng(7);
    HistoryStore store({":memory:", to_bytes("fuzzing secret, 16+ bytes"), false}, rng);
    App app(cfg, &store, rng);

    std::uint64_t now = 1'700'000'000'000'000ull;
    std::vector<std::string> sessions;                 // issued, in order
    std::map<ConnId, std::string> open;                // socket -> identity
    std::map<ConnId, bool> is_call;                    // socket -> call (else chat)
    std::set<std::string> call_ids;
    ConnId next = 1;

    auto check_effects = [&](const Effects& fx) {
        for (const auto& [c, text] : fx.send) {
            FUZZ_CHECK(open.count(c) == 1);
            Json j = Json::parse(text, nullptr, false);
            FUZZ_CHECK(j.is_object());
            if (j.contains("call_id") && j["call_id"].is_string()) call_ids.insert(j["call_id"].get<std::string>());
        }
        for (const auto& [c, code] : fx.close) {
            FUZZ_CHECK(open.count(c) == 1);
            (void)code;
        }
        for (const auto& [c, code] : fx.close) open.erase(c);
    };
    auto pick_session = [&](std::uint8_t b) -> std::string {
        if (sessions.empty() || (b & 0x80)) return "bogus-" + std::to_string(b & 7);
        return sessions[b % sessions.size()];
    };
    auto pick_conn = [&](std::uint8_t b) -> ConnId {
        if (open.empty()) return 0;
        auto it = open.begin();
        std::advance(it, b % open.size());
        return it->first;
    };

    for (int steps = 0; in.n && steps < 200; ++steps) {
        switch (in.byte() % 8) {
            case 0: {
                HttpRequest r;
                r.method = "POST";
                r.target = "/handshake/";
                r.body = std::string(R"({"client_id":")") + kNames[in.byte() % 6] + "\"}";
                auto res = app.http(r, now);
                if (res.status == 200) sessions.push_back(Json::parse(res.body)["session_id"].get<std::string>());
                FUZZ_CHECK(res.status == 200 || res.status == 503);
                break;
            }
            case 1: {
                std::string sid = pick_session(in.byte());
                Admission a = app.admit_call("/ws/call?session_id=" + sid, now);
                if (!a.ok) {
                    FUZZ_CHECK(a.refusal.status == 403);
                    break;
                }
                ConnId c = next++;
                open[c] = a.client_id;
                is_call[c] = true;
                check_effects(app.call_opened(c, a));
                break;
            }
            case 2: {
                std::string sid = pick_session(in.byte());
                std::string room = kRooms[in.byte() % 6];
                Admission a = app.admit_chat("/ws/chat?session_id=" + sid + "&room_id=" + room, now);
                if (!a.ok) break;
                if (clean) FUZZ_CHECK(app.room_member(a.client_id, room));
                ConnId c = next++;
                open[c] = a.client_id;
                is_call[c] = false;
                check_effects(app.chat_opened(c, a));
                break;
            }
            case 3: {
                ConnId c = pick_conn(in.byte());
                if (!c) break;
                bool call = is_call[c];
                open.erase(c);
                if (call)
                    check_effects(app.call_closed(c, now));
                else
                    app.chat_closed(c);
                break;
            }
            case 4: {
                ConnId c = pick_conn(in.byte());
                std::uint8_t t = in.byte(), who = in.byte(), id = in.byte();
                if (!c) break;
                Json j = Json::object();
                j["type"] = kTypes[t % 8];
                if (who & 0x40) j["to"] = kNames[who % 6];
                if (!(id & 0x80) && !call_ids.empty()) {
                    auto it = call_ids.begin();
                    std::advance(it, id % call_ids.size());
                    j["call_id"] = *it;
                } else if (id & 0x40) {
                    j["call_id"] = "made-up-" + std::to_string(id & 3);
                }
                if (t & 0x10) j["sdp"] = {{"type", "offer"}, {"sdp", "v=0"}};
                if (t & 0x20) j["candidate"] = {{"candidate", "c"}};
                std::string sender = open[c];
                const Call* before = j.contains("call_id") && j["call_id"].is_string()
                                         ? app.calls().find(j["call_id"].get<std::string>())
                                         : nullptr;
                bool outsider = before && before->ended_ms == 0 && sender != before->caller && sender != before->callee;
                Effects fx = is_call[c] ? app.call_text(c, j.dump(), now) : app.chat_text(c, j.dump(), now);
                if (clean && outsider && is_call[c] && j["type"] != "call:init")
                    for (const auto& [to, text] : fx.send) FUZZ_CHECK(to == c);  // an error to the sender only
                check_effects(fx);
                break;
            }
            case 5: {
                ConnId c = pick_conn(in.byte());
                std::size_t n = in.byte();
                std::string text;
                while (n-- && in.n) text.push_back(static_cast<char>(in.byte()));
                if (!c) break;
                check_effects(is_call[c] ? app.call_text(c, text, now) : app.chat_text(c, text, now));
                break;
            }
            case 6:
                now += std::uint64_t(in.byte()) * 250'000;
                check_effects(app.tick(now));
                break;
            case 7: {
                static const char* const routes[] = {"/history/general", "/history/room_alice_bob", "/call/history",
                                                     "/call/call/history", "/chat/send", "/nothing"};
                std::uint8_t r = in.byte();
                HttpRequest q;
                q.method = (r % 6) == 4 ? "POST" : "GET";
                q.target = routes[r % 6];
                q.body = R"({"message":"hi","room_id":"room_alice_bob"})";
                q.headers["x-session-id"] = pick_session(in.byte());
                auto res = app.http(q, now);
                FUZZ_CHECK(res.status != 500);  // the in-memory store does not fail
                break;
            }
        }
        FUZZ_CHECK(app.calls().live() <= cfg.calls.max_live_calls);
        FUZZ_CHECK(app.sessions() <= cfg.max_sessions);
    }
    return 0;
}
