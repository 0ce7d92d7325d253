// Shared by the SOCP tests: the cached RSA test keys
// (tests/fixtures/socp/keys, made once with tools/socp-test-keys.sh), so no
// test waits for RSA-4096 key generation.
#pragma once

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/crypto.hpp"

namespace msglab::socp::test {

inline std::string key_path(const std::string& name) { return std::string(MSGLAB_SOCP_KEYS) + "/" + name + ".pem"; }

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// "server-a".."server-d", "user-1".."user-8" (RSA-4096), "weak-1", "weak-2"
// (RSA-1024). Parsed once per process.
inline const crypto::RsaPrivateKey& key(const std::string& name) {
    static std::mutex mutex;
    // Never freed: Botan's allocator may be gone before static destructors run.
    static auto& keys = *new std::map<std::string, crypto::RsaPrivateKey>();
    std::lock_guard<std::mutex> lock(mutex);
    auto it = keys.find(name);
    if (it == keys.end()) {
        auto k = crypto::RsaPrivateKey::from_pem(read_text(key_path(name)));
        if (!k) throw std::runtime_error("not an RSA private key: " + key_path(name));
        it = keys.emplace(name, std::move(*k)).first;
    }
    return it->second;
}

}  // namespace msglab::socp::test
