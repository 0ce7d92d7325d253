// msglab selftest and msglab audit.
#include <chrono>
#include <iostream>

#include "cli/cli.hpp"
#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/registry.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"
#include "secmsg/session.hpp"

namespace msglab::cli {

namespace {

struct Check {
    const char* name;
    std::function<bool()> run;
};

// Known answers from the standards (and, for SecMsg, from the original
// program), so a broken build or library is caught before any real work.
std::vector<Check> checks() {
    using namespace crypto;
    return {
        {"SHA-256 (FIPS 180-2 'abc')",
         [] {
             return hex(sha256(as_bytes("abc"))) ==
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
         }},
        {"HMAC-SHA256 (RFC 4231 case 2)",
         [] {
             return hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))) ==
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
         }},
        {"HKDF-SHA256 (RFC 5869 A.1)",
         [] {
             return hex(hkdf_sha256(unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                                    unhex("000102030405060708090a0b0c"), unhex("f0f1f2f3f4f5f6f7f8f9"), 42)) ==
                    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
         }},
        {"AES-128-CTR (SP 800-38A F.5.1)",
         [] {
             return hex(aes_ctr(unhex("2b7e151628aed2a6abf7158809cf4f3c"),
                                unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"),
                                unhex("6bc1bee22e409f96e93d7e117393172a"))) == "874d6191b620e3261bef6864990db6ce";
         }},
        {"X25519 (RFC 7748 6.1)",
         [] {
             X25519Key priv;
             Bytes a = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
             std::copy(a.begin(), a.end(), priv.begin());
             return hex(x25519_public(priv)) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
         }},
        {"Ed25519 (RFC 8032 test 1)",
         [] {
             auto kp = ed25519_from_seed(unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
             auto sig = ed25519_sign(kp, {});
             return hex(kp.public_key) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" &&
                    hex(sig) ==
                        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
                        "9b46bd25bf5f0595bbe24655141438e7a100b" &&
                    ed25519_verify(kp.public_key, {}, sig);
         }},
        {"P-256 ECDH agreement",
         [] {
             DeterministicRng rng(1);
             auto a = P256PrivateKey::generate(rng), b = P256PrivateKey::generate(rng);
             auto pem = a.public_key().pem();
             auto parsed = P256PublicKey::from_pem(pem);
             return parsed && a.agree(b.public_key()) == b.agree(*parsed);
         }},
        {"DH group 14 agreement",
         [] {
             DeterministicRng rng(2);
             auto a = dh14::generate(rng), b = dh14::generate(rng);
             return dh14::public_value_ok(a.public_value) &&
                    dh14::agree(a.private_exponent, b.public_value) == dh14::agree(b.private_exponent, a.public_value);
         }},
        {"RSA OAEP and PSS round trip (1024-bit)",
         [] {
             DeterministicRng rng(3);
             auto key = RsaPrivateKey::generate(rng, 1024);
             auto ct = key.public_key().oaep_encrypt(as_bytes("msglab"), rng);
             auto pt = key.oaep_decrypt(ct, rng);
             auto sig = key.pss_sign(as_bytes("msglab"), rng);
             return pt && to_string(*pt) == "msglab" && key.public_key().pss_verify(as_bytes("msglab"), sig, 32);
         }},
        {"Fernet (spec generate.json)",
         [] {
             auto key = fernet::Key::from_base64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
             Bytes iv(16);
             for (int i = 0; i < 16; ++i) iv[i] = static_cast<std::uint8_t>(i);
             return key && fernet::encrypt(*key, as_bytes("hello"), 499162800, iv) ==
                               "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR6"
                               "4jVmpU4IwqDA==";
         }},
        {"SegMSG block cipher (original program's vector)",
         [] {
             secmsg::SegmsgCipher c(unhex("2b7e151628aed2a6abf7158809cf4f3c"));
             secmsg::SegmsgCipher::Block in{};
             Bytes b = unhex("6bc1bee22e409f96e93d7e117393172a");
             std::copy(b.begin(), b.end(), in.begin());
             auto out = c.encrypt_block(in);
             return hex(out) == "e61ebc8d01bd9ab6372e99bee32bd923" && c.decrypt_block(out) == in;
         }},
        {"SecMsg packet (PROTOCOLS.md 4.4 example)",
         [] {
             Bytes z(256, 0);
             z.back() = 1;
             auto keys = secmsg::Keys::from_shared_secret(z);
             auto wire = secmsg::serialize(secmsg::seal_regular(keys, as_bytes("hello"), 1700000000));
             return hex(wire) ==
                    "5365674d534701000000052cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824000000006"
                    "553f100e6379c2ab0ebb9a11013d5c997e5c59a7e1adac4a121524636758c2646832733c5502b3c99";
         }},
        {"SecMsg sessions: handshake and a message each way",
         [] {
             ManualClock clock;
             DeterministicRng rng(4);
             secmsg::Session a(secmsg::Role::initiator, {}, clock, rng), b(secmsg::Role::responder, {}, clock, rng);
             b.start();
             auto req = a.start();
             auto resp = b.feed(req.packets.at(0));
             a.feed(resp.packets.at(0));
             auto got_b = b.feed(a.send(as_bytes("ping")));
             auto got_a = a.feed(b.send(as_bytes("pong")));
             return a.established() && b.established() && a.session_id() == b.session_id() &&
                    got_b.events.size() == 1 && to_string(got_b.events[0].plaintext) == "ping" &&
                    got_a.events.size() == 1 && to_string(got_a.events[0].plaintext) == "pong";
         }},
    };
}

}  // namespace

int run_checks(bool quiet) {
    int failed = 0, total = 0;
    for (const auto& c : checks()) {
        ++total;
        bool ok = false;
        std::string error;
        try {
            ok = c.run();
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!ok) ++failed;
        if (!quiet || !ok)
            std::cout << (ok ? "  ok    " : "  FAIL  ") << c.name << (error.empty() ? "" : " (" + error + ")")
                      << "\n";
    }
    std::cout << "selftest: " << total - failed << " passed, " << failed << " failed\n";
    return failed == 0 ? kOk : kFailure;
}


int cmd_selftest(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("quiet,q", "print only failures and the summary");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "[--quiet]",
                       "Runs known-answer checks of every primitive in the crypto core (from the standards)\n"
                       "and of the protocol codecs (from the original programs). Exit 1 on any failure.",
                       opts, pos, args, vm))
        return kOk;
    return run_checks(vm.count("quiet") != 0);
}

}  // namespace msglab::cli
