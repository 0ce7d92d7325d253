// Feeds one 8193-byte REGULAR packet to a SecMsg session built with ASan.
// `planted` switches secmsg.recv-overflow on: ASan must report the one-byte
// heap overflow. `clean` must deliver the message and exit 0.
#include <cstring>
#include <iostream>

#include "secmsg/session.hpp"

using namespace msglab;
using namespace msglab::secmsg;

int main(int argc, char** argv) {
    if (argc != 2 || (std::strcmp(argv[1], "clean") != 0 && std::strcmp(argv[1], "planted") != 0)) {
        std::cerr << "usage: secmsg_overflow_probe clean|planted\n";
        return 2;
    }
    ManualClock clock;
    DeterministicRng rng(1);
    SessionConfig cb;
    if (std::strcmp(argv[1], "planted") == 0) cb.plants.enable(plant::recv_overflow);
    Session a(Role::initiator, {}, clock, rng), b(Role::responder, cb, clock, rng);
    b.start();
    auto resp = b.feed(a.start().packets.at(0));
    a.feed(resp.packets.at(0));
    std::string text(kOriginalRecvBytes + 1 - kOverheadBytes, 'A');
    Output out = b.feed(a.send(as_bytes(text)));
    if (out.events.size() == 1 && out.events[0].kind == Event::Kind::message && out.events[0].plaintext.size() == text.size()) {
        std::cout << "delivered " << text.size() << " bytes\n";
        return 0;
    }
    std::cout << "not delivered\n";
    return 1;
}
