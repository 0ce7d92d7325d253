#include "signal/vectors.hpp"

#include <stdexcept>
#include <vector>

#include "core/clock.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"

namespace msglab::signal::vectors {

namespace {

// Fixed seeds: changing one changes every published byte.
constexpr std::uint64_t kIdentitySeed = 0x5167'0001;
constexpr std::uint64_t kRatchetSeed = 0x5167'0002;

std::string hx(ByteView b) { return hex(b); }

struct Session {
    Identity alice, bob;
    X3dhInitiation init;
    X3dhAcceptance accept;
};

Session make_session() {
    DeterministicRng rng(kIdentitySeed);
    Session s;
    s.alice = Identity::generate(rng);
    s.bob = Identity::generate(rng);
    auto init = x3dh_initiate(s.alice, s.bob.bundle(), rng);
    if (!init) throw std::logic_error("signal vectors: X3DH failed");
    s.init = std::move(*init);
    auto accept = x3dh_respond(s.bob, s.alice.ik.public_key, s.init.ek.public_key, s.init.cipher, s.init.mac);
    if (!accept || accept->sk != s.init.sk || !accept->expected_plaintext)
        throw std::logic_error("signal vectors: the responder did not accept the X3DH message");
    s.accept = std::move(*accept);
    return s;
}

Json identity_json(const std::string& name, const Identity& id) {
    Json j = Json::object();
    j["username"] = name;
    j["ik_private"] = hx(id.ik.private_key);
    j["ik_public"] = hx(id.ik.public_key);
    j["sik_seed"] = hx(id.sik.seed);
    j["sik_public"] = hx(id.sik.public_key);
    j["spk_private"] = hx(id.spk.private_key);
    j["spk_public"] = hx(id.spk.public_key);
    j["spk_sig"] = hx(id.spk_sig);
    return j;
}

Json counter_table() {
    Json t = Json::array();
    for (std::uint64_t v : {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, 8ull, 255ull, 256ull, 1000ull}) {
        Json row = Json::object();
        row["value"] = v;
        row["bytes"] = hx(encode_counter(v));
        row["b64"] = crypto::base64_encode(encode_counter(v));
        t.push_back(std::move(row));
    }
    return t;
}

std::string dump(const Json& j) { return j.dump(2) + "\n"; }

Json opt_hex(const std::optional<Key32>& k) { return k ? Json(hx(*k)) : Json(nullptr); }

Json state_json(const RatchetState& s) {
    Json j = Json::object();
    j["dhs_private"] = hx(s.dhs.private_key);
    j["dhs_public"] = hx(s.dhs.public_key);
    j["dhr"] = opt_hex(s.dhr);
    j["rk"] = hx(s.rk);
    j["cks"] = opt_hex(s.cks);
    j["ckr"] = opt_hex(s.ckr);
    j["ns"] = s.ns;
    j["nr"] = s.nr;
    j["pn"] = s.pn;
    Json skipped = Json::array();
    for (const auto& k : s.skipped) {
        Json e = Json::object();
        e["dh"] = hx(k.dh);
        e["n"] = k.n;
        e["mk"] = hx(k.mk);
        skipped.push_back(std::move(e));
    }
    j["skipped"] = std::move(skipped);
    return j;
}

Json keys_json(const Key32& mk, const PayloadKeys& k) {
    Json j = Json::object();
    j["mk"] = hx(mk);
    j["enc_key"] = hx(k.enc_key);
    j["auth_key"] = hx(k.auth_key);
    j["iv"] = hx(k.iv);
    return j;
}

}  // namespace

std::string x3dh_json() {
    Session s = make_session();
    Json j = Json::object();
    j["description"] =
        "Signal-style chat X3DH (PROTOCOLS.md 5.4, 5.5): alice initiates towards bob. Binary values in hex "
        "unless named b64; ad is ASCII text.";
    Json sk_vector = Json::object();
    Key32 two;
    two.fill(0x02);
    sk_vector["dh1"] = hx(two);
    sk_vector["dh2"] = hx(two);
    sk_vector["dh3"] = hx(two);
    sk_vector["sk"] = hx(x3dh_secret(two, two, two));
    j["sk_test_vector"] = std::move(sk_vector);
    j["alice"] = identity_json("alice", s.alice);
    j["bob"] = identity_json("bob", s.bob);
    j["register_user_alice"] = register_user_json(register_user("alice", s.alice));
    j["register_user_bob"] = register_user_json(register_user("bob", s.bob));
    j["bundle_bob"] = bundle_json(s.bob.bundle());

    Json x = Json::object();
    x["ek_private"] = hx(s.init.ek.private_key);
    x["ek_public"] = hx(s.init.ek.public_key);
    x["dh1"] = hx(s.init.dh1);
    x["dh2"] = hx(s.init.dh2);
    x["dh3"] = hx(s.init.dh3);
    x["sk"] = hx(s.init.sk);
    x["ad"] = to_string(s.init.ad);
    x["enc_key"] = hx(s.init.keys.enc_key);
    x["auth_key"] = hx(s.init.keys.auth_key);
    x["iv"] = hx(s.init.keys.iv);
    x["plaintext"] = std::string(kChatStart);
    x["padded_plaintext"] = hx(pkcs7_pad32(as_bytes(kChatStart)));
    x["padded_ad"] = hx(pkcs7_pad32(s.init.ad));
    x["cipher"] = hx(s.init.cipher);
    x["hmac"] = hx(s.init.mac);
    j["x3dh"] = std::move(x);
    j["x3dh_message"] = x3dh_message_json(x3dh_message("bob", "alice", s.alice.ik.public_key, s.init));
    Json keylog = Json::object();
    keylog["label"] = kKeylogX3dhSk;
    keylog["id"] = hx(keylog_x3dh_id(s.init.ek.public_key));
    keylog["secret"] = hx(s.init.sk);
    j["keylog"] = std::move(keylog);
    return dump(j);
}

std::string ratchet_json() {
    Session s = make_session();
    DeterministicRng rng(kRatchetSeed);
    auto alice = Ratchet::initiator(s.init.sk, s.bob.spk.public_key, s.init.ad, rng);
    if (!alice) throw std::logic_error("signal vectors: initiator failed");
    Ratchet bob = Ratchet::responder(s.accept.sk, s.bob.spk, s.accept.ad, rng);

    Json j = Json::object();
    j["description"] =
        "Signal-style chat Double Ratchet (PROTOCOLS.md 5.6) after the X3DH of x3dh.json: alice is the initiator, "
        "bob the responder. steps run in order; a deliver step names the send step whose message it delivers. "
        "Binary values in hex unless named b64.";
    j["max_skip"] = kMaxSkip;
    j["counter_encoding"] = counter_table();
    Json init = Json::object();
    init["sk"] = hx(s.init.sk);
    init["ad"] = to_string(s.init.ad);
    init["spk_b_private"] = hx(s.bob.spk.private_key);
    init["spk_b_public"] = hx(s.bob.spk.public_key);
    init["alice"] = state_json(alice->state());
    init["bob"] = state_json(bob.state());
    j["initial"] = std::move(init);

    // (sender, plaintext) for a send; the send's step number for a delivery.
    struct Op {
        char kind;  // 's' send, 'd' deliver
        char who;   // 'a' or 'b' (sender for 's')
        const char* text;
        int message;  // for 'd': index into the sends
    };
    const std::vector<Op> script = {
        {'s', 'a', "hi", 0},
        {'s', 'a', "are you there?", 0},
        {'s', 'a', "", 0},                                     // an empty message: one block of padding
        {'d', 'b', nullptr, 0},                                // bob's first DH step
        {'d', 'b', nullptr, 2},                                // skips message 1
        {'s', 'b', "yes", 0},
        {'s', 'b', "exactly thirty-two bytes of text", 0},     // a full block of padding
        {'d', 'a', nullptr, 4},                                // alice's first DH step, skips 3
        {'d', 'b', nullptr, 1},                                // from bob's skipped keys
        {'s', 'a', "Gr\u00fc\u00dfe \u2713 caf\u00e9", 0},     // UTF-8
        {'d', 'a', nullptr, 3},                                // from alice's skipped keys
        {'d', 'b', nullptr, 5},                                // bob's second DH step
        {'s', 'b', "one", 0},
        {'s', 'b', "two", 0},
        {'s', 'b', "three: a message longer than one 32-byte block of AES-CBC input", 0},
        {'d', 'a', nullptr, 8},                                // alice's second DH step, skips 6 and 7
        {'s', 'a', "got three", 0},
        {'d', 'b', nullptr, 9},                                // bob's third DH step
        {'d', 'a', nullptr, 6},                                // skipped
        {'d', 'a', nullptr, 7},                                // skipped
        {'s', 'b', "and one and two?", 0},
        {'d', 'a', nullptr, 10},                               // alice's third DH step
        {'s', 'a', "yes, all of them", 0},
        {'d', 'b', nullptr, 11},                               // bob's fourth DH step
        {'s', 'a', "this one arrives late", 0},
        {'s', 'b', "ok", 0},
        {'d', 'a', nullptr, 13},                               // alice's fourth DH step
        {'s', 'a', "after the step", 0},
        {'d', 'b', nullptr, 14},                               // bob's fifth DH step skips 12 through pn
        {'d', 'b', nullptr, 12},                               // from the key stored at that step
    };

    struct SentMessage {
        RatchetMessage message;
        char sender;
        std::string plaintext;
    };
    std::vector<SentMessage> sent;
    Json steps = Json::array();
    for (const Op& op : script) {
        Json step = Json::object();
        if (op.kind == 's') {
            Ratchet& r = op.who == 'a' ? *alice : bob;
            const char* from = op.who == 'a' ? "alice" : "bob";
            const char* to = op.who == 'a' ? "bob" : "alice";
            RatchetState before = r.state();
            auto sealed = r.encrypt(as_bytes(op.text));
            if (!sealed) throw std::logic_error("signal vectors: a send failed");
            const RatchetMessage& m = sealed->message;
            step["op"] = "send";
            step["message"] = sent.size();
            step["from"] = from;
            step["plaintext"] = op.text;
            step["dhs_private"] = hx(before.dhs.private_key);
            step["dhs_public"] = hx(before.dhs.public_key);
            step["rk"] = hx(before.rk);
            step["cks_before"] = hx(*before.cks);
            step["cks_after"] = hx(*r.state().cks);
            Json keys = keys_json(sealed->mk, sealed->keys);
            for (auto& [k, v] : keys.items()) step[k] = v;
            Json header = Json::object();
            header["dh"] = hx(m.header.dh);
            header["pn"] = m.header.pn;
            header["n"] = m.header.n;
            header["pn_bytes"] = hx(m.header.pn_bytes);
            header["n_bytes"] = hx(m.header.n_bytes);
            step["header"] = std::move(header);
            step["padded_plaintext"] = hx(pkcs7_pad32(as_bytes(op.text)));
            step["mac_prefix"] = hx(mac_prefix(before.ad, m.header));
            step["cipher"] = hx(m.cipher);
            step["hmac"] = hx(m.hmac);
            step["ratchet_msg"] = ratchet_msg_json(ratchet_msg(to, from, m));
            Json keylog = Json::object();
            keylog["label"] = kKeylogMessageKey;
            keylog["id"] = hx(keylog_id(m.header.dh, m.header.n));
            keylog["secret"] = hx(sealed->mk);
            step["keylog"] = std::move(keylog);
            sent.push_back({m, op.who, op.text});
        } else {
            const SentMessage& m = sent.at(static_cast<std::size_t>(op.message));
            Ratchet& r = m.sender == 'a' ? bob : *alice;
            RatchetState before = r.state();
            Decrypted d = r.decrypt(m.message);
            if (!d.ok() || to_string(d.plaintext) != m.plaintext)
                throw std::logic_error("signal vectors: a delivery failed");
            step["op"] = "deliver";
            step["message"] = op.message;
            step["to"] = m.sender == 'a' ? "bob" : "alice";
            step["dh_step"] = d.dh_step;
            step["from_skipped"] = d.from_skipped;
            step["mk"] = hx(*d.mk);
            step["plaintext"] = m.plaintext;
            step["before"] = state_json(before);
            step["after"] = state_json(r.state());
        }
        steps.push_back(std::move(step));
    }
    j["steps"] = std::move(steps);
    return dump(j);
}

}  // namespace msglab::signal::vectors
