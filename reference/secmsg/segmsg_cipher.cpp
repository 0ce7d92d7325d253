// See segmsg_cipher.hpp for why this file exists.
#include "secmsg/segmsg_cipher.hpp"

#include <stdexcept>

namespace msglab::secmsg {

namespace {

constexpr std::uint8_t xtime(std::uint8_t x) { return static_cast<std::uint8_t>((x << 1) ^ ((x & 0x80) ? 0x1b : 0)); }

constexpr std::uint8_t gmul(std::uint8_t a, std::uint8_t b) {
    std::uint8_t p = 0;
    for (int i = 0; i < 8; ++i) {
        if (b & 1) p ^= a;
        a = xtime(a);
        b >>= 1;
    }
    return p;
}

// The FIPS-197 S-box, computed rather than typed: multiplicative inverse in
// GF(2^8) followed by the affine transform.
struct SBoxes {
    std::array<std::uint8_t, 256> fwd{};
    std::array<std::uint8_t, 256> inv{};
    constexpr SBoxes() {
        // Inverses through exp/log tables with the generator 3.
        std::array<std::uint8_t, 256> exp{}, log{};
        std::uint8_t g = 1;
        for (int i = 0; i < 255; ++i) {
            exp[i] = g;
            log[g] = static_cast<std::uint8_t>(i);
            g = static_cast<std::uint8_t>(g ^ xtime(g));  // g * 3
        }
        for (int x = 0; x < 256; ++x) {
            std::uint8_t invx = x == 0 ? 0 : exp[(255 - log[x]) % 255];
            std::uint8_t s = invx;
            std::uint8_t r = invx;
            for (int i = 0; i < 4; ++i) {
                r = static_cast<std::uint8_t>((r << 1) | (r >> 7));
                s ^= r;
            }
            s ^= 0x63;
            fwd[x] = s;
            inv[s] = static_cast<std::uint8_t>(x);
        }
    }
};
constexpr SBoxes kBoxes{};
static_assert(kBoxes.fwd[0x00] == 0x63 && kBoxes.fwd[0x53] == 0xed, "S-box");

using State = std::array<std::uint8_t, 16>;  // column-major: s[r + 4c]

void add_round_key(State& s, const std::uint8_t* rk) {
    for (int i = 0; i < 16; ++i) s[i] ^= rk[i];
}

void shift_rows(State& s) {
    State t = s;
    for (int r = 1; r < 4; ++r)
        for (int c = 0; c < 4; ++c) s[r + 4 * c] = t[r + 4 * ((c + r) % 4)];
}

void inv_shift_rows(State& s) {
    State t = s;
    for (int r = 1; r < 4; ++r)
        for (int c = 0; c < 4; ++c) s[r + 4 * ((c + r) % 4)] = t[r + 4 * c];
}

// The quirk: each group mixed is {c, c+4, c+8, c+12}, a row of the
// column-major state, where FIPS-197 mixes the column {4c .. 4c+3}.
void mix_transposed(State& s) {
    for (int c = 0; c < 4; ++c) {
        std::uint8_t a0 = s[c], a1 = s[c + 4], a2 = s[c + 8], a3 = s[c + 12];
        s[c] = static_cast<std::uint8_t>(xtime(a0) ^ xtime(a1) ^ a1 ^ a2 ^ a3);
        s[c + 4] = static_cast<std::uint8_t>(a0 ^ xtime(a1) ^ xtime(a2) ^ a2 ^ a3);
        s[c + 8] = static_cast<std::uint8_t>(a0 ^ a1 ^ xtime(a2) ^ xtime(a3) ^ a3);
        s[c + 12] = static_cast<std::uint8_t>(xtime(a0) ^ a0 ^ a1 ^ a2 ^ xtime(a3));
    }
}

void inv_mix_transposed(State& s) {
    for (int c = 0; c < 4; ++c) {
        std::uint8_t a0 = s[c], a1 = s[c + 4], a2 = s[c + 8], a3 = s[c + 12];
        s[c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9);
        s[c + 4] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13);
        s[c + 8] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11);
        s[c + 12] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14);
    }
}

}  // namespace

SegmsgCipher::SegmsgCipher(ByteView key) {
    if (key.size() < 16) throw std::invalid_argument("SegMSG cipher needs at least 16 key bytes");
    // Standard AES-128 key expansion.
    std::copy(key.begin(), key.begin() + 16, m_round_keys.begin());
    std::uint8_t rcon = 1;
    for (int i = 16; i < 176; i += 4) {
        std::uint8_t t[4] = {m_round_keys[i - 4], m_round_keys[i - 3], m_round_keys[i - 2], m_round_keys[i - 1]};
        if (i % 16 == 0) {
            std::uint8_t first = t[0];
            t[0] = static_cast<std::uint8_t>(kBoxes.fwd[t[1]] ^ rcon);
            t[1] = kBoxes.fwd[t[2]];
            t[2] = kBoxes.fwd[t[3]];
            t[3] = kBoxes.fwd[first];
            rcon = xtime(rcon);
        }
        for (int j = 0; j < 4; ++j) m_round_keys[i + j] = m_round_keys[i - 16 + j] ^ t[j];
    }
}

SegmsgCipher::Block SegmsgCipher::encrypt_block(const Block& in) const {
    State s = in;
    add_round_key(s, &m_round_keys[0]);
    for (int round = 1; round <= 10; ++round) {
        for (auto& b : s) b = kBoxes.fwd[b];
        shift_rows(s);
        if (round != 10) mix_transposed(s);
        add_round_key(s, &m_round_keys[16 * round]);
    }
    return s;
}

SegmsgCipher::Block SegmsgCipher::decrypt_block(const Block& in) const {
    State s = in;
    add_round_key(s, &m_round_keys[160]);
    for (int round = 9; round >= 0; --round) {
        inv_shift_rows(s);
        for (auto& b : s) b = kBoxes.inv[b];
        add_round_key(s, &m_round_keys[16 * round]);
        if (round != 0) inv_mix_transposed(s);
    }
    return s;
}

void SegmsgCipher::ctr_xor(std::uint8_t* data, std::size_t len) const {
    Block counter{};
    for (std::uint64_t i = 0; len > 0; ++i) {
        for (int b = 0; b < 8; ++b) counter[8 + b] = static_cast<std::uint8_t>(i >> (56 - 8 * b));
        Block ks = encrypt_block(counter);
        std::size_t n = len < 16 ? len : 16;
        for (std::size_t j = 0; j < n; ++j) data[j] ^= ks[j];
        data += n;
        len -= n;
    }
}

Bytes SegmsgCipher::ctr(ByteView data) const {
    Bytes out(data.begin(), data.end());
    ctr_xor(out.data(), out.size());
    return out;
}

}  // namespace msglab::secmsg
