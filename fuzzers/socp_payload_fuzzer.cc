// SOCP's payload cryptography on any input: keys, base64url, transport and
// content signatures under a fixed fixture key, RSA-OAEP and group-key
// ciphertexts, and the UTF-8 splitter. The first byte chooses what the rest
// is:
//
//   s % 4 == 0  a key's text: decode_key; a key read is written both ways
//               (DER and PEM in base64url) and read back the same; and the
//               text as base64url: what decodes encodes (unpadded, URL-safe)
//               and decodes back to the same bytes
//   s % 4 == 1  a payload and its sig: be16 n, n bytes of JSON (an object,
//               nesting bounded), the rest the sig. verify_payload with the
//               public half of tests/fixtures/socp/keys/user-1.pem; a
//               canonical form that verifies verifies as content too; and
//               verify_content of the JSON's own bytes
//   s % 4 == 2  a ciphertext: s & 4, RSA-OAEP under weak-1.pem (1024 bits,
//               so that a run stays fast): what opens fits the key's block
//               and seals and opens again; else AES-GCM under a fixed group
//               key: what opens seals and opens again
//   s % 4 == 3  split_utf8: be16 max, then the text: the pieces join to the
//               text, none is empty or over the bound, and none splits a
//               UTF-8 sequence of valid text
#include <algorithm>
#include <string>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "csmp/wire.hpp"  // valid_utf8
#include "fuzz_common.hpp"
#include "socp/wire.hpp"

using namespace msglab;
using namespace msglab::socp;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Test keys only (tests/fixtures/socp/keys): public, never for anything else.
constexpr const char* kUser1Public =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAqh4CONGKK7UvwvJApYDC\n"
    "LDYfWjKutkApR5YVVcU1UrBER+/DvWU25jMEQoacKe3jHVoSSt6iQvyFAFRqKeos\n"
    "gLgk4OIUN4XUTuu2wG8MVQZDz1csd6vdTE4+lA9JJYgSi1YJ1TBof3jMsxIggVdF\n"
    "+GJcuwlr/svlJCIi/m768vD0DY2xOVz8Mo86lh0RVtqRB5hXQksAVWEmX+M3Gj4v\n"
    "MAU2m3Kn2jp6hD3PT54mt0l4VAyWV2jeIqYGm9lV6VGY4VXn5iesXqYewz5a4+hv\n"
    "cKxipJyWSfqTUAv28jr8W0rqdC+0YrD5Et80OsvOK36Pkh0dMJZUgg93BhJnbtZf\n"
    "BXToDsp5tvm3JEeuOLm5WqHPD7RO6eIEsf42XNkkauqJlbVVyGoUscjFW87WmI6K\n"
    "/X4+5AzBPgZsphWx7U6YyIOTjG5FwXUUrRpXODzih++kXbfvL5OG2AcsiEOVH73B\n"
    "ct6sCbn9KFxfVA3tup1yGLQHN0Oet1mVED/d2/bb37cDO41dXeiMGpVsaNAyFEur\n"
    "47nwqz+9lJ0Nk8Tzg6y34W3OqlvFjOrtKtPzfd9DF4hI9PUVXv0tMrD2zUXYAN7n\n"
    "F7jSiPm2yb5RRMr/2rTik9sye6EkMoLUQkgbxt65FTNE2LHj3LeXAZSun0ZIt06o\n"
    "SRHDL4VGki6iG34y4opIuMcCAwEAAQ==\n"
    "-----END PUBLIC KEY-----\n";
constexpr const char* kWeak1Private =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAJmEnX8HQVFvilfa\n"
    "lVCZfzh8YSqiVqC3xq3/nqbRlu8URVlPJ4+8B90ifv/bISOLW4+CMYFKl2S2/bhi\n"
    "9H5RnX3rIseKz08WxgVinu9T3V82OgVL7TOe5tChXcgcCHJoulveZUrI/LDtbzbb\n"
    "P6hBhJ5VpOin4/pp3uQiXR2NvzqXAgMBAAECgYBRxLQKw/eDg7ChKLjdLFT55i3v\n"
    "Ana3tgsqBHwhiIMnJpnlfuaohVN+8m/IoZPeFc0X/BWYMv2+VEWB35swaRJD+ygA\n"
    "97gTpGhd6bVmsiLJ5MzSxOClODvwiJV+ycl/uWs4Ci/PuZb8sVKAO/ybTasILRVg\n"
    "m1fvlzJXZ1Q0D2WrOQJBAMtmHAMdJK66HldBokEcgXNDbEYHfmqyNm+gNjHOkPZP\n"
    "en0p2fWIk1v/s16gjbe0jE2uWsph/MeeyIboyv9xGEUCQQDBOC1co5ke76Djk5Fp\n"
    "qZEPh6m1per/fxm5ii30HCNxtN/yXl9EGFiPB1kUUH2m+gryIjyDhpbqfvQwzV3F\n"
    "q3srAkA1VCVeD6MRiMzxtcyz46RxMylNRyO3F9i79baf4ngRjI8iB/oUrWVthqJh\n"
    "2hiuJNFwgJlfXMepExGihaDLzrw9AkAPiMm02f5Ui2V/Bn05ZoWgHwMY9Jb5JanW\n"
    "zfI13xFGcglTPh0gp2hvT2LtDC+d/hplLzV4SZjWj5BoYAp6+vdzAkEAheEBYLb5\n"
    "pvhTLQOxB5dm5DI1vUTWdel3HS8W95IMtfPZx+i51GMq+xBj74Ho/Q/p1EFVkla0\n"
    "iWRoccDkLALFEQ==\n"
    "-----END PRIVATE KEY-----\n";
// The group key make_corpus seals its public-channel seeds under.
constexpr std::uint8_t kGroupKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

const crypto::RsaPublicKey& user1() {
    static const crypto::RsaPublicKey key = *crypto::RsaPublicKey::from_pem(kUser1Public);
    return key;
}

const crypto::RsaPrivateKey& weak1() {
    static const crypto::RsaPrivateKey key = *crypto::RsaPrivateKey::from_pem(kWeak1Private);
    return key;
}

Rng& rng() {
    static DeterministicRng r(0x50c9);
    return r;
}

bool url_alphabet(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

// The deepest nesting of arrays and objects in JSON text (strings skipped).
std::size_t nesting(std::string_view s) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

void key_mode(ByteView rest) {
    std::string_view t = text(rest);
    if (auto raw = b64url_decode(t)) {
        std::string again = b64url(*raw);
        FUZZ_CHECK(url_alphabet(again));
        auto back = b64url_decode(again);
        FUZZ_CHECK(back && *back == *raw);
    }
    auto k = decode_key(t);
    if (!k) return;
    FUZZ_CHECK(k->key.bits() > 0);
    if (t.substr(0, 5) == "-----") FUZZ_CHECK(k->encoding == KeyEncoding::pem);
    const Bytes der = k->key.spki_der();
    for (KeyEncoding enc : {KeyEncoding::der, KeyEncoding::pem}) {
        std::string written = encode_key(k->key, enc);
        FUZZ_CHECK(url_alphabet(written));
        auto back = decode_key(written);
        FUZZ_CHECK(back && back->encoding == enc && back->key.spki_der() == der && back->key.bits() == k->key.bits());
    }
}

void signature_mode(ByteView rest) {
    Reader in(rest);
    std::size_t n = in.be16();
    ByteView json = in.bytes(std::min(n, in.remaining()));
    std::string_view sig = text(in.rest());
    if (nesting(text(json)) > 16) return;
    // Any bytes as content: a sig made over them verifies, others do not (no crash either way).
    (void)verify_content(user1(), text(json), sig);
    Json payload = Json::parse(text(json), nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) return;
    auto c = verify_payload(user1(), payload, sig);
    if (!c) return;
    FUZZ_CHECK(b64url_decode(sig));
    FUZZ_CHECK(verify_content(user1(), canonical(payload, *c), sig));
    // The same payload with one more key is another message.
    Json more = payload;
    more["\x7f" "added"] = 1;
    if (more != payload) FUZZ_CHECK(!verify_payload(user1(), more, sig));
}

void cipher_mode(std::uint8_t selector, ByteView rest) {
    std::string_view ct = text(rest);
    if (selector & 4) {
        auto plain = decrypt_with(weak1(), ct, rng());
        if (!plain) return;
        const auto pub = weak1().public_key();
        FUZZ_CHECK(plain->size() <= oaep_capacity(pub));
        auto sealed = encrypt_for(pub, *plain, rng());
        FUZZ_CHECK(sealed && url_alphabet(*sealed));
        auto back = decrypt_with(weak1(), *sealed, rng());
        FUZZ_CHECK(back && *back == *plain);
        return;
    }
    ByteView key(kGroupKey, sizeof kGroupKey);
    FUZZ_CHECK(!group_decrypt(key.first(16), ct));
    auto plain = group_decrypt(key, ct);
    if (!plain) return;
    std::string sealed = group_encrypt(key, *plain, rng());
    FUZZ_CHECK(url_alphabet(sealed));
    auto back = group_decrypt(key, sealed);
    FUZZ_CHECK(back && *back == *plain);
}

void split_mode(ByteView rest) {
    Reader in(rest);
    std::size_t max = in.be16();
    std::string_view t = text(in.rest());
    auto pieces = split_utf8(t, max);
    std::string joined;
    const bool valid = csmp::valid_utf8(as_bytes(t));
    for (const auto& p : pieces) {
        FUZZ_CHECK(!p.empty() && p.size() <= std::max<std::size_t>(max, 4));
        if (valid) FUZZ_CHECK(csmp::valid_utf8(as_bytes(p)));
        joined += p;
    }
    FUZZ_CHECK(joined == t);
    FUZZ_CHECK(pieces.empty() == t.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    switch (selector % 4) {
        case 0: key_mode(rest); break;
        case 1: signature_mode(rest); break;
        case 2: cipher_mode(selector, rest); break;
        case 3: split_mode(rest); break;
    }
    return 0;
}
