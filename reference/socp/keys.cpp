#include "socp/keys.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace msglab::socp {

namespace fs = std::filesystem;

crypto::RsaPrivateKey load_key_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read key file " + path);
    std::ostringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    if (text.size() > 64 * 1024) throw std::runtime_error(path + " is too large to be a key file");
    auto key = crypto::RsaPrivateKey::from_pem(text);
    if (!key) throw std::runtime_error(path + " is not a PEM RSA private key (PKCS#8 or PKCS#1)");
    return std::move(*key);
}

crypto::RsaPrivateKey load_or_make_key(const std::string& path, std::size_t bits, Rng& rng,
                                       const std::function<void(const std::string&)>& progress) {
    if (fs::exists(path)) return load_key_file(path);
    if (progress) progress("making an RSA-" + std::to_string(bits) + " key for " + path + " (takes a few seconds)");
    auto key = crypto::RsaPrivateKey::generate(rng, bits);
    std::error_code ec;
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    std::string tmp = path + ".tmp" + std::to_string(rng.u64() % 1000000);
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw std::runtime_error("cannot write key file " + path);
        ::chmod(tmp.c_str(), 0600);
        out << key.pem();
        if (!out) throw std::runtime_error("cannot write key file " + path);
    }
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw std::runtime_error("cannot write key file " + path);
    }
    return key;
}

std::string key_cache_dir() {
    if (const char* d = std::getenv("MSGLAB_SOCP_KEY_CACHE"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/msglab/socp-keys";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/msglab/socp-keys";
    return (fs::temp_directory_path() / "msglab-socp-keys").string();
}

crypto::RsaPrivateKey cached_key(const std::string& name, std::size_t bits, Rng& rng,
                                 const std::function<void(const std::string&)>& progress) {
    if (name.empty() || name.size() > 64) throw std::invalid_argument("bad cached key name");
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
            throw std::invalid_argument("bad cached key name " + name);
    std::string path = key_cache_dir() + "/" + name + ".pem";
    auto key = load_or_make_key(path, bits, rng, progress);
    if (key.public_key().bits() != bits)
        throw std::runtime_error(path + " holds an RSA-" + std::to_string(key.public_key().bits()) + " key, not " +
                                 std::to_string(bits));
    return key;
}

}  // namespace msglab::socp
