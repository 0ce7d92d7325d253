// Injected time and randomness, so sessions, fuzzers and replays are deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/bytes.hpp"

namespace Botan {
class RandomNumberGenerator;
}

namespace msglab {

// Seconds since 1970 as ISO 8601 UTC ("2026-11-21T14:41:18Z"); the number itself when out of range.
std::string utc_text(std::uint64_t unix_seconds);

class Clock {
public:
    virtual ~Clock() = default;
    virtual std::uint64_t unix_seconds() const = 0;
};

class SystemClock final : public Clock {
public:
    std::uint64_t unix_seconds() const override;
    static SystemClock& instance();
};

// A clock that only moves when told; for tests and fuzzing.
class ManualClock final : public Clock {
public:
    explicit ManualClock(std::uint64_t start = 1700000000) : m_now(start) {}
    std::uint64_t unix_seconds() const override { return m_now; }
    void set(std::uint64_t t) { m_now = t; }
    void advance(std::uint64_t seconds) { m_now += seconds; }

private:
    std::uint64_t m_now;
};

class Rng {
public:
    virtual ~Rng() = default;
    virtual void fill(std::span<std::uint8_t> out) = 0;
    Bytes bytes(std::size_t n);
    std::uint64_t u64();
    // Uniform in [0, bound); bound > 0.
    std::uint64_t below(std::uint64_t bound);
    // The same generator seen through Botan's interface, for key generation.
    virtual Botan::RandomNumberGenerator& botan() = 0;
};

// A random (version 4) UUID in its text form, from `rng`.
std::string uuid4(Rng& rng);

// The operating system's generator.
class SystemRng final : public Rng {
public:
    SystemRng();
    ~SystemRng() override;
    void fill(std::span<std::uint8_t> out) override;
    Botan::RandomNumberGenerator& botan() override;
    static SystemRng& instance();

private:
    std::unique_ptr<Botan::RandomNumberGenerator> m_rng;
};

// ChaCha20 keyed from a 64-bit seed: the same seed gives the same stream.
// Never use it for real keys.
class DeterministicRng final : public Rng {
public:
    explicit DeterministicRng(std::uint64_t seed);
    ~DeterministicRng() override;
    void fill(std::span<std::uint8_t> out) override;
    Botan::RandomNumberGenerator& botan() override;

private:
    std::unique_ptr<Botan::RandomNumberGenerator> m_rng;
};

}  // namespace msglab
