#include "secmsg/segmsg_cipher.hpp"
#include "support.hpp"

using namespace msglab;
using msglab::secmsg::SegmsgCipher;

static SegmsgCipher::Block block(const Bytes& b) {
    SegmsgCipher::Block out{};
    REQUIRE(b.size() == 16);
    std::copy(b.begin(), b.end(), out.begin());
    return out;
}

TEST_CASE("SegMSG cipher: the original program's block and CTR vectors", "[cipher][vectors]") {
    auto dir = test::vectors_dir();
    if (!dir) MSGLAB_SKIP("vectors folder not found (set MSGLAB_VECTORS_DIR)");
    auto path = *dir / "secmsg" / "segmsg-cipher.json";
    if (!std::filesystem::exists(path)) MSGLAB_SKIP(path.string() + " not found");
    auto j = test::load_json(path);
    std::size_t ecb = 0, ctr = 0;
    for (const auto& v : j.at("ecb_block")) {
        SegmsgCipher c(test::hex_field(v, "key"));
        auto pt = block(test::hex_field(v, "plaintext"));
        auto ct = c.encrypt_block(pt);
        CHECK(hex(ct) == v.at("ciphertext").get<std::string>());
        // Not FIPS-197 AES: the transposed MixColumns changes every output.
        CHECK(hex(ct) != v.at("fips197_aes128_for_contrast").get<std::string>());
        CHECK(c.decrypt_block(ct) == pt);
        ++ecb;
    }
    for (const auto& v : j.at("ctr_vectors")) {
        SegmsgCipher c(test::hex_field(v, "key"));  // a 32-byte key is cut to 16, as the original does
        Bytes pt = test::hex_field(v, "plaintext_hex");
        CHECK(hex(c.ctr(pt)) == v.at("ciphertext").get<std::string>());
        CHECK(c.ctr(c.ctr(pt)) == pt);
        ++ctr;
    }
    CHECK(ecb == 3);
    CHECK(ctr == 2);
}

TEST_CASE("SegMSG cipher: PROTOCOLS.md 4.4 vector and key handling", "[cipher]") {
    SegmsgCipher c(unhex("2b7e151628aed2a6abf7158809cf4f3c"));
    CHECK(hex(c.encrypt_block(block(unhex("6bc1bee22e409f96e93d7e117393172a")))) ==
          "e61ebc8d01bd9ab6372e99bee32bd923");
    CHECK(hex(SegmsgCipher(unhex("408a9e14b19f44ef1a763548b07eae4f")).ctr(as_bytes("hello"))) == "e6379c2ab0");
    // Only the first 16 key bytes count.
    Bytes long_key = unhex("408a9e14b19f44ef1a763548b07eae4fd4dd3525b1595c9d103bca15310baa29");
    CHECK(hex(SegmsgCipher(long_key).ctr(as_bytes("hello"))) == "e6379c2ab0");
    CHECK_THROWS_AS(SegmsgCipher(Bytes(15)), std::invalid_argument);
    // The counter restarts for every message: the same keystream each time.
    Bytes zeros(40, 0);
    CHECK(c.ctr(zeros) == c.ctr(zeros));
    CHECK(ByteView(c.ctr(zeros)).first(16).size() == 16);
}
