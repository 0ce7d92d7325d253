#include "core/clock.hpp"

#include <botan/chacha_rng.h>
#include <botan/system_rng.h>

#include <chrono>
#include <ctime>

namespace msglab {

std::string utc_text(std::uint64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    if (!gmtime_r(&tt, &tm)) return std::to_string(t);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::uint64_t SystemClock::unix_seconds() const {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
}

SystemClock& SystemClock::instance() {
    static SystemClock clock;
    return clock;
}

Bytes Rng::bytes(std::size_t n) {
    Bytes out(n);
    fill(out);
    return out;
}

std::uint64_t Rng::u64() {
    std::uint8_t b[8];
    fill(b);
    std::uint64_t v = 0;
    for (std::uint8_t x : b) v = v << 8 | x;
    return v;
}

std::uint64_t Rng::below(std::uint64_t bound) {
    // Rejection sampling avoids modulo bias.
    std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        std::uint64_t v = u64();
        if (v < limit) return v % bound;
    }
}

std::string uuid4(Rng& rng) {
    Bytes b = rng.bytes(16);
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
    std::string h = hex(b);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

SystemRng::SystemRng() : m_rng(std::make_unique<Botan::System_RNG>()) {}
SystemRng::~SystemRng() = default;
void SystemRng::fill(std::span<std::uint8_t> out) { m_rng->randomize(out.data(), out.size()); }
Botan::RandomNumberGenerator& SystemRng::botan() { return *m_rng; }
SystemRng& SystemRng::instance() {
    static SystemRng rng;
    return rng;
}

DeterministicRng::DeterministicRng(std::uint64_t seed) {
    Botan::secure_vector<std::uint8_t> key(32, 0);
    for (int i = 0; i < 8; ++i) key[i] = static_cast<std::uint8_t>(seed >> (56 - 8 * i));
    m_rng = std::make_unique<Botan::ChaCha_RNG>(key);
}
DeterministicRng::~DeterministicRng() = default;
void DeterministicRng::fill(std::span<std::uint8_t> out) { m_rng->randomize(out.data(), out.size()); }
Botan::RandomNumberGenerator& DeterministicRng::botan() { return *m_rng; }

}  // namespace msglab
