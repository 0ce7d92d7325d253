// RSA keys for SOCP endpoints: key files, and a cache of named keys for the
// scenario checks (RSA-4096 key generation takes seconds; a check should not
// wait for it twice).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "core/clock.hpp"
#include "core/crypto.hpp"

namespace msglab::socp {

// Reads a PEM private key (PKCS#8, or PKCS#1 "RSA PRIVATE KEY"). Throws
// std::runtime_error naming the file and the problem.
crypto::RsaPrivateKey load_key_file(const std::string& path);
// Reads `path` when it exists; else makes a key of `bits` and writes it
// there (mode 0600), telling `progress` first. Throws std::runtime_error.
crypto::RsaPrivateKey load_or_make_key(const std::string& path, std::size_t bits, Rng& rng,
                                       const std::function<void(const std::string&)>& progress = {});
// $MSGLAB_SOCP_KEY_CACHE, else $XDG_CACHE_HOME/msglab/socp-keys, else
// ~/.cache/msglab/socp-keys, else a folder under the system's temp folder.
std::string key_cache_dir();
// The cached key `name` (a file name without ".pem": letters, digits, '-'),
// made with `bits` the first time. The tests point the cache at
// tests/fixtures/socp/keys, whose names are user-1..8, server-a..d (4096)
// and weak-1, weak-2 (1024).
crypto::RsaPrivateKey cached_key(const std::string& name, std::size_t bits, Rng& rng,
                                 const std::function<void(const std::string&)>& progress = {});

}  // namespace msglab::socp
