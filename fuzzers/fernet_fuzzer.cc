// Fernet token parsing and verification under a fixed key.
#include <string>

#include "core/fernet.hpp"
#include "fuzz_common.hpp"

using namespace msglab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto key = *fernet::Key::from_base64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
    std::string token(reinterpret_cast<const char*>(data), size);
    auto parsed = fernet::parse(token);
    auto result = fernet::decrypt(key, token, 499162801, {60, 60, true});
    if (result) FUZZ_CHECK(parsed.ok());
    // A token we make from the input as plaintext always verifies.
    std::string made = fernet::encrypt(key, ByteView(data, size), 499162800, Bytes(16, 7));
    auto back = fernet::decrypt(key, made, 499162800);
    FUZZ_CHECK(back.ok() && *back == Bytes(data, data + size));
    return 0;
}
