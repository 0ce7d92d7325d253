// A fixed SLMP session between msglab's own client and server, the same in
// every process (a manual clock and a seeded generator): the SLMP fuzz
// targets key their stream codec with it and name its units in their inputs,
// and make_corpus writes it into their seeds.
#pragma once

#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "slmp/codec.hpp"
#include "slmp/session.hpp"

namespace msglab::fuzzing {

struct SlmpFixture {
    enum Unit {
        client_key,        // the client's PEM
        server_key,        // the server's PEM
        request,           // "token;msglab;Hello SLMP!" under the session key
        reply,             // "Message received: Hello SLMP!"
        wrong_key_token,   // the same request under another key
        bad_auth_request,  // a request whose token field is wrong
        other_client_key,  // a second client's PEM (a new exchange)
        unit_count
    };
    std::vector<Bytes> units;
    fernet::Key key;
    Bytes session_id;
    KeyLog keylog;  // the session's key, as an endpoint logs it
    std::uint64_t time = 1700000000;
};

inline const SlmpFixture& slmp_fixture() {
    static const SlmpFixture fixture = [] {
        SlmpFixture f;
        ManualClock clock(f.time);
        DeterministicRng rng(0x51a9);
        slmp::ClientSession client({}, clock, rng);
        slmp::ServerSession server({}, clock, rng);
        f.units.resize(SlmpFixture::unit_count);
        f.units[SlmpFixture::client_key] = client.start();
        slmp::Output keyed = server.feed(f.units[SlmpFixture::client_key]);
        f.units[SlmpFixture::server_key] = keyed.units.at(0);
        client.feed(f.units[SlmpFixture::server_key]);
        f.key = *client.key();
        f.session_id = client.session_id();
        f.units[SlmpFixture::request] = client.request("Hello SLMP!");
        f.units[SlmpFixture::reply] = server.feed(f.units[SlmpFixture::request]).units.at(0);
        auto other = *fernet::Key::from_bytes(Bytes(32, 0x5a));
        slmp::Request r{slmp::auth_token(client.config().user, client.config().secret), client.config().user,
                        "Hello SLMP!"};
        f.units[SlmpFixture::wrong_key_token] =
            to_bytes(fernet::encrypt(other, to_bytes(slmp::request_text(r)), f.time, Bytes(16, 0x11)));
        r.token = slmp::auth_token(r.user, "not the secret");
        f.units[SlmpFixture::bad_auth_request] = client.seal(to_bytes(slmp::request_text(r)));
        slmp::ClientSession second({}, clock, rng);
        f.units[SlmpFixture::other_client_key] = second.start();
        f.keylog.add({slmp::kKeyLogLabel, f.session_id, f.key.raw()});
        return f;
    }();
    return fixture;
}

}  // namespace msglab::fuzzing
