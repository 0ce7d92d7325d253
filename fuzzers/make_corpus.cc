// Writes the seed corpora in fuzzers/corpus/ from real captures and sessions:
// run by regenerate-corpus.sh. Usage: make_corpus OUT_DIR CAPTURE.pcap...
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "replay/extract.hpp"
#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "secmsg/session.hpp"

using namespace msglab;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, ByteView data) {
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                      static_cast<std::streamsize>(data.size()));
}

std::string name_of(ByteView data) { return hex(ByteView(crypto::sha256(data)).first(8)); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: make_corpus OUT_DIR [CAPTURE.pcap...]\n";
        return 2;
    }
    fs::path out = argv[1];
    // A real session between two msglab peers, written as a capture too.
    ManualClock clock(1700000000);
    DeterministicRng rng(7);
    secmsg::Session a(secmsg::Role::initiator, {}, clock, rng), b(secmsg::Role::responder, {}, clock, rng);
    b.start();
    std::vector<Bytes> packets;
    packets.push_back(a.start().packets.at(0));
    packets.push_back(b.feed(packets[0]).packets.at(0));
    a.feed(packets[1]);
    for (const char* t : {"hello", "a longer message with some words in it", ""}) {
        packets.push_back(a.send(as_bytes(t)));
        b.feed(packets.back());
        packets.push_back(b.send(as_bytes(t)));
        a.feed(packets.back());
    }
    fs::path gen = out / "generated-session.pcap";
    {
        fs::create_directories(out);
        replay::PcapWriter w(gen.string(), DLT_EN10MB);
        replay::SynthTcp tcp(0x7f000001, 40000, 0x7f000001, 5000);
        w.write(tcp.handshake_syn().frame, 1700000000, 0);
        w.write(tcp.handshake_syn_ack().frame, 1700000000, 0);
        for (std::size_t i = 0; i < packets.size(); ++i) w.write(tcp.data(i % 2 == 0, packets[i]).frame, 1700000000, 0);
    }
    for (const auto& p : packets) put(out / "secmsg_codec", name_of(p), p);

    std::vector<std::string> captures(argv + 2, argv + argc);
    captures.push_back(gen.string());
    for (const auto& c : captures) {
        auto bytes = [&] {
            std::ifstream in(c, std::ios::binary);
            return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        }();
        put(out / "pcap", name_of(bytes), bytes);
        for (const auto& m : replay::extract_file(c, Registry::builtin(), {}, nullptr))
            put(out / "secmsg_codec", name_of(m.bytes), m.bytes);
    }
    fs::remove(gen);

    auto key = *fernet::Key::from_base64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
    for (const char* t : {"hello", "", "0123456789abcdef0123456789abcdef"}) {
        std::string token = fernet::encrypt(key, as_bytes(t), 499162800, Bytes(16, 1));
        put(out / "fernet", name_of(as_bytes(token)), as_bytes(token));
    }
    std::string log = "# msglab key log\n" + format_keylog_line("SECMSG_MASTER_SECRET", Bytes(8, 1), Bytes(32, 2)) +
                      format_keylog_line("SECMSG_SHARED_SECRET", Bytes(8, 3), Bytes(256, 4)) + "junk line\n";
    put(out / "keylog", name_of(as_bytes(log)), as_bytes(log));

    // Session op sequences (see secmsg_session_fuzzer.cc): clean and planted.
    const std::vector<Bytes> sessions = {
        unhex("00" "00000510" "01000441" "04" "00" "05" "01" "0600010001"),
        unhex("02" "0000104f" "04" "00"),
        unhex("3e" "000010" "41" "0710" "0400"),  // every plant but recv-overflow, which campaigns must find
        unhex("00" "0780" "0781" "0783" "0710" "000003" "42"),
    };
    for (const auto& s : sessions) put(out / "secmsg_session", name_of(s), s);
    std::cout << "corpora written to " << out << "\n";
    return 0;
}
