// The published vectors of docs/vectors/signal: the checked-in files are
// what reference/signal/vectors.cpp writes (MSGLAB_UPDATE_VECTORS=1 rewrites
// them), and tests/signal/signal_vectors.py, written from PROTOCOLS.md on
// python3-cryptography, recomputes every value in them and fails on a
// corrupted copy.
#include <cstdlib>
#include <string>

#include "signal/vectors.hpp"
#include "tests/support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

const fs::path kDir = MSGLAB_SIGNAL_VECTORS_DIR;
const fs::path kScript = MSGLAB_SIGNAL_VECTORS_PY;

bool updating() {
    const char* v = std::getenv("MSGLAB_UPDATE_VECTORS");
    return v && std::string(v) == "1";
}

void compare_or_update(const fs::path& file, const std::string& generated) {
    if (updating()) {
        write_file(file, generated);
        WARN("rewrote " << file);
    }
    REQUIRE(fs::exists(file));
    // Byte for byte: the vectors are fixed by their seeds.
    CHECK(read_file(file) == generated);
}

std::string python_missing() {
    if (!fs::exists(kSystemPython)) return std::string("no ") + kSystemPython;
    auto r = run_command(std::string(kSystemPython) +
                         " -c 'import cryptography.hazmat.primitives.asymmetric.x25519' 2>&1");
    if (r.exit_code != 0) return "python3-cryptography is missing: " + r.output;
    return "";
}

CommandResult check(const fs::path& x3dh, const fs::path& ratchet) {
    return run_command(std::string(kSystemPython) + " " + shell_quote(kScript.string()) + " " +
                       shell_quote(x3dh.string()) + " " + shell_quote(ratchet.string()) + " 2>&1");
}

// Replaces the first occurrence of `from` (which must exist) after `anchor`.
std::string corrupt(std::string text, const std::string& anchor, const std::string& from, const std::string& to) {
    auto at = text.find(anchor);
    REQUIRE(at != std::string::npos);
    auto pos = text.find(from, at);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
    return text;
}

}  // namespace

TEST_CASE("signal vectors: x3dh.json is what the generator writes") {
    compare_or_update(kDir / "x3dh.json", signal::vectors::x3dh_json());
}

TEST_CASE("signal vectors: ratchet.json is what the generator writes") {
    compare_or_update(kDir / "ratchet.json", signal::vectors::ratchet_json());
}

TEST_CASE("signal vectors: the generator is deterministic and covers the conversation") {
    std::string r = signal::vectors::ratchet_json();
    CHECK(r == signal::vectors::ratchet_json());
    auto j = nlohmann::json::parse(r);
    int sends = 0, steps_a = 0, steps_b = 0, skipped = 0;
    for (const auto& s : j.at("steps")) {
        if (s.at("op") == "send") ++sends;
        if (s.at("op") != "deliver") continue;
        if (s.at("dh_step").get<bool>()) (s.at("to") == "alice" ? steps_a : steps_b) += 1;
        if (s.at("from_skipped").get<bool>()) ++skipped;
    }
    CHECK(sends >= 10);
    CHECK(steps_a >= 3);
    CHECK(steps_b >= 3);
    CHECK(skipped >= 3);
}

TEST_CASE("signal vectors: the independent Python check passes") {
    if (auto why = python_missing(); !why.empty()) MSGLAB_SKIP(why);
    auto r = check(kDir / "x3dh.json", kDir / "ratchet.json");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("ok:") != std::string::npos);
}

TEST_CASE("signal vectors: the Python check fails on corrupted copies") {
    if (auto why = python_missing(); !why.empty()) MSGLAB_SKIP(why);
    TempDir tmp;
    const std::string x3dh = read_file(kDir / "x3dh.json");
    const std::string ratchet = read_file(kDir / "ratchet.json");
    auto x = nlohmann::ordered_json::parse(x3dh);
    auto rj = nlohmann::ordered_json::parse(ratchet);

    struct Case {
        const char* what;
        std::string x3dh, ratchet;
        const char* expect;  // in the script's output
    };
    // One hex digit of the X3DH MAC, of a message key, of a cipher; the
    // pn/n table; a ratchet_msg's base64 n.
    auto flip = [](const std::string& hexs) {
        std::string s = hexs;
        s[0] = s[0] == '0' ? '1' : '0';
        return s;
    };
    const std::string hmac = x.at("x3dh").at("hmac").get<std::string>();
    const std::string mk = rj.at("steps").at(3).at("mk").get<std::string>();
    const std::string ct = rj.at("steps").at(0).at("cipher").get<std::string>();
    Case cases[] = {
        {"x3dh hmac", corrupt(x3dh, "\"x3dh\"", hmac, flip(hmac)), ratchet, "x3dh.hmac"},
        {"a delivered mk", x3dh, corrupt(ratchet, "\"op\": \"deliver\"", mk, flip(mk)), "steps[3]"},
        {"a cipher", x3dh, corrupt(ratchet, "\"steps\"", ct, flip(ct)), "steps[0]"},
        {"the counter table", x3dh, corrupt(ratchet, "\"counter_encoding\"", "\"0002\"", "\"02\""),
         "counter_encoding"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        REQUIRE((c.x3dh != x3dh || c.ratchet != ratchet));
        write_file(tmp / "x3dh.json", c.x3dh);
        write_file(tmp / "ratchet.json", c.ratchet);
        auto r = check(tmp / "x3dh.json", tmp / "ratchet.json");
        INFO(r.output);
        CHECK(r.exit_code != 0);
        CHECK(r.output.find("mismatch") != std::string::npos);
        CHECK(r.output.find(c.expect) != std::string::npos);
    }
}
