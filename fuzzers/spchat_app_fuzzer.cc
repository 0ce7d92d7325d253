// SP-SimpleChat's server logic (the sans-I/O App: nicks, rooms, chat relay,
// file relay) driven through several connections by any sequence of events.
// Every frame goes through the connection's FrameReader, bounded as the
// server bounds it, then to App; what App answers is checked after every
// event.
//
// The first byte chooses the plants (bit i: kPlants[i]), so every
// combination of the five is reachable. A plant's own invariant is checked
// only while it is off, unless MSGLAB_FUZZ_PLANTS names it (`msglab fuzz
// --plant`): then a run with it on must break that invariant, which is how a
// campaign finds the planted flaw.
//
// Then at most 64 records, one opcode byte (% 12) and its operands:
//   0  open a connection
//   1  close connection c                      (1 byte)
//   2  HELLO from c: nick n                    (2 bytes: c, n)
//   3  JOIN from c: room r, password p         (3 bytes)
//   4  MSG from c: room r, text t              (3 bytes)
//   5  WHO from c: room r                      (2 bytes)
//   6  LEAVE, QUIT, PING or an unknown type    (2 bytes: c, which)
//   7  FILE_START / FILE_CHUNK / FILE_END from c (5 bytes: c, type % 3;
//      from & 7: own nick, as typed, kNicks[from >> 3], none, a number,
//      "server"; to & 7: an open connection's nick (the (to >> 3)th),
//      kRooms[to >> 3], a nick as typed, none, ""; id & 7: good, too short,
//      a number, no payload object)
//   8  a frame of raw bytes from c             (c, be16 n, n % 4096 bytes)
//   9  raw bytes on c's stream                 (c, be16 n, n % 4096 bytes)
//   10 a length prefix on c's stream           (c, be16 x; over the bound when x & 1)
//   11 the connections App asked to close are closed
// Connections App asked to close send nothing more (as the server stops
// reading them) until they are closed.
//
// Invariants (always): every frame App sends goes to an open connection, is
// one BE32-framed JSON object that parse() reads, in ASCII; a user's MSG is
// never echoed to its sender; WHO_LIST goes to a member of that room; no two
// open connections hold one nick; App counts the open connections. Per plant
// (while off): spchat.nick-squat, App holds no more nicks than open
// connections with a nick, and none once all are closed; spchat.join-no-acl,
// a JOIN to a room created with a password (or configured with one, or with
// a member list) yields INFO only with that password (only to a member);
// spchat.spoofed-from, a relayed FILE_* frame's "from" (strip, lower) is the
// sender's nick; spchat.magic-reply, no MSG from "server" carries the hidden
// reply; spchat.unbounded-frame, App never gets a frame over its bound, and a
// length over it is refused at once.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "fuzz_common.hpp"
#include "spchat/app.hpp"
#include "spchat/wire.hpp"

using namespace msglab;
using namespace msglab::spchat;

namespace {

const char* const kPlants[] = {plant::join_no_acl, plant::magic_reply, plant::nick_squat, plant::unbounded_frame,
                               plant::spoofed_from};
// Bit i of the plants byte: kPlants[i].
namespace bit {
enum { join_no_acl, magic_reply, nick_squat, unbounded_frame, spoofed_from };
}
constexpr int kPlantCount = 5;

const char* const kNicks[] = {"alice", "bob", "carol", "Alice", " bob\t", "server", "SERVER ",
                              "a-very-long-nickname-over-16", "", "dave"};
const char* const kRooms[] = {"lobby", "room1", "vault", "staff", "Room1", "", "a-room-name-longer-than-24-bytes",
                              "secret", "alice", "bob"};
const char* const kPasswords[] = {"hunter2", "pw1", "", "a password longer than thirty-two bytes"};
const char* const kTexts[] = {"hi", "BACKDOOR", " backdoor\n",  "You found the secret backdoor!",
                              "",   "   ",      "h\xc3\xa9llo", "bAcKdOoR"};
const char* const kOtherTypes[] = {"LEAVE", "QUIT", "PING", "NOPE", "hello", "WHO_LIST", "INFO", "FILE_"};

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

struct Input {
    Reader r;
    std::uint8_t byte() { return r.u8(); }
    ByteView bytes(std::size_t n) { return r.bytes(std::min(n, r.remaining())); }
};

struct Conn {
    FrameReader reader;
    bool closing = false;  // App asked to close it: it sends nothing more
};

struct Harness {
    std::uint8_t on = 0, hunted = 0;
    AppConfig cfg;
    std::optional<App> app;
    std::map<ConnId, Conn> open;                     // opened and not yet closed (closing ones too)
    std::map<std::string, std::string> passwords;    // rooms that keep a password (while it is checked)
    ConnId next = 1;

    bool planted(int i) const { return on & (1u << i); }
    // A plant's invariant is checked while it is off, or when hunted.
    bool checked(int i) const { return !planted(i) || (hunted & (1u << i)); }

    ConnId pick(std::uint8_t b, bool writable) const {
        std::vector<ConnId> ids;
        for (const auto& [id, c] : open)
            if (!writable || !c.closing) ids.push_back(id);
        if (ids.empty()) return 0;
        return ids[b % ids.size()];
    }

    // What every Effects must satisfy; `sender` made it with a frame (0: not
    // a frame). True when an INFO went to the sender.
    bool check(const Effects& fx, ConnId sender, const std::optional<std::string>& sender_nick) {
        bool info = false;
        const Bytes* last = nullptr;  // a broadcast shares one encoding: read it once
        std::optional<Json> m;
        for (const auto& [to, bytes] : fx.send) {
            FUZZ_CHECK(open.count(to) == 1);
            FUZZ_CHECK(bytes && bytes->size() >= 4);
            if (bytes.get() != last) {
                last = bytes.get();
                const Bytes& b = *bytes;
                const std::uint64_t n =
                    (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) | (std::uint64_t{b[2]} << 8) | b[3];
                FUZZ_CHECK(n == b.size() - 4);
                for (std::size_t i = 4; i < b.size(); ++i) FUZZ_CHECK(b[i] < 0x80);  // json.dumps' ensure_ascii
                m = parse(text(ByteView(b).subspan(4)));
                FUZZ_CHECK(m.has_value());
            }
            const std::string type = (*m)["type"].get<std::string>();
            auto nick = string_field(*m, "nick");
            auto t = string_field(*m, "text");
            if (type == "MSG") {
                auto room = string_field(*m, "room");
                FUZZ_CHECK(nick && room && t);
                if (to == sender) FUZZ_CHECK(*nick == "server");  // no echo of one's own MSG
                if (*nick != "server") FUZZ_CHECK(sender != 0 && sender_nick && *nick == *sender_nick);
                if (to != sender) {
                    // Relayed to the room's members only.
                    auto members = app->members(*room);
                    auto them = app->nick_of(to);
                    FUZZ_CHECK(them && std::find(members.begin(), members.end(), *them) != members.end());
                }
                if (checked(bit::magic_reply)) FUZZ_CHECK(!(*nick == "server" && *t == spchat::kMagicReply));
            }
            if (type.rfind("FILE_", 0) == 0) {
                FUZZ_CHECK(sender != 0);
                if (checked(bit::spoofed_from))
                    FUZZ_CHECK(sender_nick && lower(strip(string_field(*m, "from").value_or(""))) == *sender_nick);
            }
            if (type == "WHO_LIST") {
                FUZZ_CHECK(to == sender);
                auto room = string_field(*m, "room");
                FUZZ_CHECK(room);
                auto members = app->members(*room);
                auto me = app->nick_of(to);
                FUZZ_CHECK(me && std::find(members.begin(), members.end(), *me) != members.end());
                FUZZ_CHECK((*m)["members"].is_array() && (*m)["members"].size() == members.size());
            }
            if (type == "PONG" || type == "INFO" || type == "ERROR") FUZZ_CHECK(to == sender);
            if (type == "INFO") info = true;
        }
        for (ConnId c : fx.close) {
            FUZZ_CHECK(open.count(c) == 1);
            open[c].closing = true;
        }
        return info;
    }

    void check_state() {
        FUZZ_CHECK(app->connections() == open.size());
        std::set<std::string> nicks;
        std::size_t with_nick = 0;
        for (const auto& [id, c] : open) {
            if (auto n = app->nick_of(id)) {
                FUZZ_CHECK(!n->empty() && nicks.insert(*n).second);  // one connection per nick
                FUZZ_CHECK(*n == lower(strip(*n)) && *n != "server" && n->size() <= cfg.max_nick_bytes);
                ++with_nick;
            }
        }
        if (checked(bit::nick_squat)) FUZZ_CHECK(app->nicks() == with_nick);
        FUZZ_CHECK(app->nicks() >= with_nick);
        FUZZ_CHECK(app->rooms() <= cfg.max_rooms);
        FUZZ_CHECK(app->max_frame() == (planted(bit::unbounded_frame) ? kMaxLengthPrefix : cfg.max_frame));
    }

    void closed(ConnId c) {
        auto it = open.find(c);
        if (it == open.end()) return;
        open.erase(it);
        check(app->closed(c), 0, std::nullopt);
        check_state();
    }

    // Bytes on c's stream, cut as the server cuts them.
    void push(ConnId c, ByteView bytes) {
        Conn& conn = open.at(c);
        if (conn.closing) return;
        conn.reader.push(bytes);
        std::string body;
        while (!open.at(c).closing) {
            auto st = open.at(c).reader.next(body);
            if (st == FrameReader::Status::need_more) {
                // A length over the bound is refused as soon as it is read.
                if (checked(bit::unbounded_frame) && open.at(c).reader.buffered() >= 4)
                    FUZZ_CHECK(open.at(c).reader.announced() <= cfg.max_frame);
                return;
            }
            if (st == FrameReader::Status::too_large) {
                FUZZ_CHECK(!planted(bit::unbounded_frame));  // any length is read under the plant
                FUZZ_CHECK(open.at(c).reader.announced() > cfg.max_frame);
                Effects fx = app->oversized(c, open.at(c).reader.announced());
                FUZZ_CHECK(std::find(fx.close.begin(), fx.close.end(), c) != fx.close.end());
                check(fx, c, app->nick_of(c));
                check_state();
                return;
            }
            if (checked(bit::unbounded_frame)) FUZZ_CHECK(body.size() <= cfg.max_frame);
            frame(c, body);
        }
    }

    void frame(ConnId c, const std::string& body) {
        const auto nick = app->nick_of(c);
        // A JOIN's room and password, to hold App to the rooms' rules.
        std::optional<std::string> room, password;
        bool existed = false;
        auto parsed = body.find("JOIN") != std::string::npos ? parse(body) : std::nullopt;
        const bool join = parsed && (*parsed)["type"] == "JOIN";
        if (join) {
            auto r = parsed->find("room");
            if (r == parsed->end())
                room = "lobby";
            else if (r->is_string())
                room = r->get<std::string>();
            password = string_field(*parsed, "password");
            if (room) existed = passwords.count(*room) || !app->members(*room).empty() || *room == "staff";
        }
        Effects fx = app->frame(c, body);
        const bool info = check(fx, c, nick);
        if (join && info && checked(bit::join_no_acl)) {
            FUZZ_CHECK(room.has_value() && nick.has_value());
            if (auto p = passwords.find(*room); p != passwords.end()) FUZZ_CHECK(password && *password == p->second);
            if (*room == "staff") FUZZ_CHECK(*nick == "alice" || *nick == "bob");
            if (!existed && password && !password->empty()) passwords[*room] = *password;
        }
        check_state();
    }

    void send(ConnId c, const Json& m) { push(c, client_frame(m)); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::uint8_t hunted = plants_from_env(kPlants, kPlantCount, "spchat");
    if (size == 0) return 0;
    Harness h;
    h.on = data[0] & ((1u << kPlantCount) - 1);
    h.hunted = hunted;
    for (int i = 0; i < kPlantCount; ++i)
        if (h.planted(i)) h.cfg.plants.enable(kPlants[i]);
    h.cfg.max_frame = 2048;
    h.cfg.max_nick_bytes = 16;
    h.cfg.max_room_bytes = 24;
    h.cfg.max_text_bytes = 512;
    h.cfg.max_rooms = 12;
    h.cfg.max_password_bytes = 32;
    h.cfg.rooms["vault"].password = "hunter2";
    h.cfg.rooms["staff"].members = std::set<std::string>{"alice", "bob"};
    h.app.emplace(h.cfg);
    if (h.checked(bit::join_no_acl)) h.passwords["vault"] = "hunter2";
    h.check_state();

    Input in{Reader(ByteView(data + 1, size - 1))};
    for (int steps = 0; in.r.remaining() > 0 && steps < 64; ++steps) {
        const std::uint8_t op = in.byte() % 12;
        if (op == 0) {
            if (h.open.size() >= 8) continue;
            const ConnId c = h.next++;
            h.open.emplace(c, Conn{FrameReader(h.app->max_frame())});
            h.app->opened(c);
            h.check_state();
            continue;
        }
        if (op == 1) {
            h.closed(h.pick(in.byte(), false));
            continue;
        }
        if (op == 11) {
            std::vector<ConnId> closing;
            for (const auto& [id, c] : h.open)
                if (c.closing) closing.push_back(id);
            for (ConnId c : closing) h.closed(c);
            continue;
        }
        const ConnId c = h.pick(in.byte(), true);
        Json m;
        switch (op) {
            case 2: {
                std::uint8_t n = in.byte();
                m["type"] = "HELLO";
                if (n & 0x80)
                    m["nickname"] = kNicks[n % 10];  // the unused library's key
                else if (n & 0x40)
                    m["nick"] = 42;
                else
                    m["nick"] = kNicks[n % 10];
                break;
            }
            case 3: {
                std::uint8_t r = in.byte(), p = in.byte();
                m["type"] = "JOIN";
                if (r & 0x80) {
                }  // no room: the lobby
                else if (r & 0x40)
                    m["room"] = Json::array({"room1"});
                else
                    m["room"] = kRooms[r % 10];
                if (p & 0x80) {
                }  // no password
                else if (p & 0x40)
                    m["password"] = 7;
                else
                    m["password"] = kPasswords[p % 4];
                break;
            }
            case 4: {
                std::uint8_t r = in.byte(), t = in.byte();
                m["type"] = "MSG";
                if (!(r & 0x80)) m["room"] = kRooms[r % 10];
                if (t & 0x80)
                    m["text"] = nullptr;
                else if (t & 0x40)
                    m["text"] = std::string(600, 'x');
                else if (t & 0x20)
                    m["text"] = 3;
                else
                    m["text"] = kTexts[t % 8];
                break;
            }
            case 5: {
                std::uint8_t r = in.byte();
                m["type"] = "WHO";
                if (!(r & 0x80)) m["room"] = kRooms[r % 10];
                break;
            }
            case 6:
                m["type"] = kOtherTypes[in.byte() % 8];
                break;
            case 7: {
                std::uint8_t t = in.byte(), from = in.byte(), to = in.byte(), id = in.byte();
                static const char* const types[] = {"FILE_START", "FILE_CHUNK", "FILE_END"};
                m["type"] = types[t % 3];
                auto own = c ? h.app->nick_of(c) : std::nullopt;
                switch (from & 7) {
                    case 1: m["from"] = "  " + upper(own.value_or("alice")) + " "; break;
                    case 2: m["from"] = kNicks[(from >> 3) % 10]; break;
                    case 3: break;
                    case 4: m["from"] = 5; break;
                    case 5: m["from"] = "server"; break;
                    default: m["from"] = own.value_or("alice");
                }
                switch (to & 7) {
                    case 1: m["to"] = kRooms[(to >> 3) % 10]; break;
                    case 2: m["to"] = " " + upper(kNicks[(to >> 3) % 10]) + " "; break;
                    case 3: break;
                    case 4: m["to"] = ""; break;
                    default: {
                        ConnId other = h.pick(to >> 3, false);
                        auto n = other ? h.app->nick_of(other) : std::nullopt;
                        m["to"] = n.value_or("nobody");
                    }
                }
                m["ts"] = 1700000000000ull;
                switch (id & 7) {
                    case 2: m["payload"] = {{"file_id", "short"}}; break;
                    case 3: m["payload"] = {{"file_id", 12345678}}; break;
                    case 4: m["payload"] = "not an object"; break;
                    default: m["payload"] = {{"file_id", "0f3c2a9e-7b1d-4c5e-9a8b-" + std::to_string(id)}};
                }
                if ((t & 0x10) && m["payload"].is_object()) m["payload"]["name"] = "../../x.txt";
                m["sig"] = "";
                break;
            }
            case 8: {
                ByteView body = in.bytes(in.r.be16() % 4096);
                if (c) {
                    Bytes f = frame(text(body));
                    h.push(c, f);
                }
                continue;
            }
            case 9: {
                ByteView raw = in.bytes(in.r.be16() % 4096);
                if (c) h.push(c, raw);
                continue;
            }
            case 10: {
                std::uint16_t x = in.r.be16();
                std::uint32_t n = (x & 1) ? static_cast<std::uint32_t>(h.cfg.max_frame + 1 + (x >> 1) * 65537u)
                                          : static_cast<std::uint32_t>((x >> 1) % h.cfg.max_frame);
                const std::uint8_t prefix[4] = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                                static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
                if (c) h.push(c, prefix);
                continue;
            }
        }
        if (c) h.send(c, m);
    }
    // Everyone leaves.
    std::vector<ConnId> all;
    for (const auto& [id, conn] : h.open) all.push_back(id);
    for (ConnId c : all) h.closed(c);
    FUZZ_CHECK(h.app->connections() == 0);
    if (h.checked(bit::nick_squat)) FUZZ_CHECK(h.app->nicks() == 0);
    // Only the configured rooms and those created with a password stay.
    if (!h.planted(bit::join_no_acl))
        FUZZ_CHECK(h.app->rooms() == h.passwords.size() + 1);
    else
        FUZZ_CHECK(h.app->rooms() == 2);
    return 0;
}
