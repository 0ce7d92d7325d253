// Cross-checks against an independent implementation: Debian's python3-cryptography, driven by
// tests/python/crosscheck.py under /usr/bin/python3.

#include "support.hpp"

#include "core/crypto.hpp"
#include "core/fernet.hpp"

namespace {

using msglab::Bytes;
using msglab::test::CommandResult;
using msglab::test::kSystemPython;
using msglab::test::run_command;
using msglab::test::shell_quote;

namespace crypto = msglab::crypto;
namespace fernet = msglab::fernet;
namespace fs = std::filesystem;

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

const fs::path& script() {
    static const fs::path p = fs::path(MSGLAB_TEST_PYTHON_DIR) / "crosscheck.py";
    return p;
}

// python3-cryptography is a declared dependency, so its absence fails the test rather than skipping it.
void require_python_cryptography() {
    INFO("the cross-checks need " << kSystemPython << " with Debian's python3-cryptography; run `make deps`");
    REQUIRE(fs::exists(kSystemPython));
    REQUIRE(fs::is_regular_file(script()));
    CommandResult r = run_command(shell_quote(kSystemPython) + " " + shell_quote(script().string()) + " check");
    INFO(kSystemPython << " cannot import cryptography (exit " << r.exit_code << ")");
    REQUIRE(r.exit_code == 0);
}

CommandResult python(const std::string& args) {
    return run_command(shell_quote(kSystemPython) + " " + shell_quote(script().string()) + " " + args);
}

}  // namespace

TEST_CASE("crosscheck: P-256 ECDH with python-cryptography", "[crosscheck]") {
    require_python_cryptography();
    msglab::test::TempDir dir;

    auto own = crypto::P256PrivateKey::generate(msglab::SystemRng::instance());
    const fs::path own_pem = dir / "msglab_pub.pem";
    msglab::test::write_file(own_pem, own.public_key().pem());

    CommandResult r = python("p256 " + shell_quote(own_pem.string()) + " " + shell_quote(dir.path().string()));
    INFO("python p256 exit " << r.exit_code << ", output: " << r.output);
    REQUIRE(r.exit_code == 0);

    const std::string peer_pem = msglab::test::read_file(dir / "python_pub.pem");
    INFO("python's public key:\n" << peer_pem);
    auto peer = crypto::P256PublicKey::from_pem(peer_pem);
    REQUIRE(peer);
    // The DER form of the same key must load to the same point.
    auto peer_der = crypto::P256PublicKey::from_spki_der(peer->spki_der());
    REQUIRE(peer_der);
    CHECK(peer_der->point() == peer->point());

    auto shared = own.agree(*peer);
    REQUIRE(shared);
    REQUIRE(shared->size() == 32);
    const std::string python_shared = trim(msglab::test::read_file(dir / "shared.hex"));
    CHECK(msglab::hex(*shared) == python_shared);
}

TEST_CASE("crosscheck: Fernet token made by msglab, read by python-cryptography", "[crosscheck][fernet]") {
    require_python_cryptography();
    const fernet::Key key = fernet::Key::generate(msglab::SystemRng::instance());
    const std::string plaintext = "msglab -> python: fernet cross-check, with 'quotes' & $symbols";
    const std::string token = fernet::encrypt(key, msglab::as_bytes(plaintext), msglab::SystemClock::instance(),
                                              msglab::SystemRng::instance());

    CommandResult r = python("fernet-verify " + shell_quote(key.to_base64()) + " " + shell_quote(token));
    INFO("token " << token << "; python exit " << r.exit_code);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output == plaintext);

    // A token under another key must be refused by python too, or the check above proves nothing.
    const fernet::Key other = fernet::Key::generate(msglab::SystemRng::instance());
    CommandResult bad = python("fernet-verify " + shell_quote(other.to_base64()) + " " + shell_quote(token) +
                               " 2>/dev/null");
    CHECK(bad.exit_code != 0);
}

TEST_CASE("crosscheck: Fernet token made by python-cryptography, read by msglab", "[crosscheck][fernet]") {
    require_python_cryptography();
    const fernet::Key key = fernet::Key::generate(msglab::SystemRng::instance());
    const std::string plaintext = "python -> msglab: fernet cross-check";

    CommandResult r = python("fernet-make " + shell_quote(key.to_base64()) + " " + shell_quote(plaintext));
    INFO("python exit " << r.exit_code << ", output: " << r.output);
    REQUIRE(r.exit_code == 0);
    const std::string token = trim(r.output);

    const std::uint64_t now = msglab::SystemClock::instance().unix_seconds();
    auto parsed = fernet::parse(token);
    REQUIRE(parsed.ok());
    CHECK(parsed->version == fernet::kVersion);
    CHECK(parsed->timestamp <= now + 1);
    CHECK(parsed->timestamp + 300 >= now);

    fernet::VerifyOptions opt;
    opt.ttl = 300;
    auto pt = fernet::decrypt(key, token, now, opt);
    INFO("msglab: " << (pt.ok() ? std::string("ok") : std::string(fernet::errc_name(pt.error().code)) + ": " +
                                                         pt.error().detail));
    REQUIRE(pt.ok());
    CHECK(msglab::to_string(*pt) == plaintext);
}
