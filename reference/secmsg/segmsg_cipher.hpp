// The SegMSG block cipher: SecMsg's non-standard AES-128, and its CTR mode.
//
// This is the one hand-written cipher in msglab, and it exists only because
// wire compatibility demands it: the original SecMsg program ships its own
// AES whose MixColumns mixes the bytes {c, c+4, c+8, c+12} of the
// column-major state (a row) instead of {4c .. 4c+3} (a column). In effect
// MixColumns runs over the transposed state, so the output is not FIPS-197
// AES and no standard library can produce it (PROTOCOLS.md section 4.4).
// Everything else (S-box, key schedule, ShiftRows, AddRoundKey, ten rounds)
// is standard. Tested against vectors from the original program
// (shared/vectors/secmsg/segmsg-cipher.json). Never use it for anything but
// speaking SecMsg.
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.hpp"

namespace msglab::secmsg {

class SegmsgCipher {
public:
    using Block = std::array<std::uint8_t, 16>;

    // The original reads only the first 16 bytes of its key; so does this.
    // Throws std::invalid_argument for a key shorter than 16 bytes.
    explicit SegmsgCipher(ByteView key);

    Block encrypt_block(const Block& in) const;
    Block decrypt_block(const Block& in) const;

    // CTR as SecMsg uses it: counter block i = 8 zero bytes || BE64(i), i from
    // 0 for every message. Encryption and decryption are the same operation.
    void ctr_xor(std::uint8_t* data, std::size_t len) const;
    Bytes ctr(ByteView data) const;

private:
    std::array<std::uint8_t, 176> m_round_keys{};
};

}  // namespace msglab::secmsg
