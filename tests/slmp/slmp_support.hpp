// Helpers for the SLMP tests: raw loopback clients with time limits, the
// original capture, and the independent Python peer (child processes come
// from child_process.hpp).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it
#include <boost/asio.hpp>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/crypto.hpp"
#include "child_process.hpp"
#include "support.hpp"

namespace msglab::test {

// A P-384 key, an RSA key and a compressed P-256 key, made with openssl.
inline const std::string kP384Pem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEDqqYDIKQDmZ3oJwmMquo00kRE1jI1YDp\n"
    "JvJSppNv4UxOI9lufBMYeYT8fFaKCmkoUBdCRHs8sJk/f1N+StaOlvZyrYb/o7Bv\n"
    "kShjpOK8Z//vgh2uQbjZwDWI5ZdMtyfb\n"
    "-----END PUBLIC KEY-----\n";
inline const std::string kRsaPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDRrkbEco1bAcQ6wDLdOv2wgOTN\n"
    "eZirTU+2EZ1jHqcCmn6CH+zFcN3RPDJQx/8MnGnIXuXXU48nRpXTFNlNXbuQO1os\n"
    "UT9sogwUWg4taAcAZxNx8VMSJCS5qm/oEfh1TYBVAz9l3E8dfSgvc4NYnYjygHUn\n"
    "IvyEtJcE/Z6mlWYu2wIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
inline const std::string kCompressedP256Pem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACDo7YMNQgK8i1KpALepicizuvUMK4\n"
    "Ys3bwrguLQ+Cw6g=\n"
    "-----END PUBLIC KEY-----\n";
// A P-256 SPKI whose point is not on the curve, in the original layout.
inline std::string off_curve_pem() {
    Bytes der = unhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004");
    der.insert(der.end(), 64, 0x01);
    std::string b64 = crypto::base64_encode(der);
    return "-----BEGIN PUBLIC KEY-----\n" + b64.substr(0, 64) + "\n" + b64.substr(64) + "\n-----END PUBLIC KEY-----\n";
}

// A blocking loopback TCP client whose reads have time limits.
class RawClient {
public:
    explicit RawClient(std::uint16_t port) : m_socket(m_io) {
        m_socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
        m_socket.set_option(boost::asio::ip::tcp::no_delay(true));
    }
    void send(ByteView b) { boost::asio::write(m_socket, boost::asio::buffer(b.data(), b.size())); }
    // What arrived within `limit`: bytes, or an empty vector with closed()
    // set when the peer closed (or reset) the connection, or nullopt on
    // timeout.
    std::optional<Bytes> receive(std::chrono::milliseconds limit) {
        pollfd p{m_socket.native_handle(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(limit.count()));
        if (n <= 0) return std::nullopt;
        Bytes buf(16384);
        boost::system::error_code ec;
        std::size_t got = m_socket.read_some(boost::asio::buffer(buf), ec);
        if (ec) {
            m_closed = true;
            return Bytes{};
        }
        buf.resize(got);
        return buf;
    }
    // Reads (and drops) until the peer closes; false if it did not within `limit`.
    bool closed_within(std::chrono::milliseconds limit) {
        auto until = Steady::now() + limit;
        while (!m_closed) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now());
            if (left.count() <= 0) return false;
            receive(left);
        }
        return true;
    }
    bool closed() const { return m_closed; }
    void close() {
        boost::system::error_code ec;
        m_socket.close(ec);
    }

private:
    boost::asio::io_context m_io;
    boost::asio::ip::tcp::socket m_socket;
    bool m_closed = false;
};

// The original programs' capture (PROTOCOLS.md section 6.1), read in place.
inline std::optional<std::string> original_slmp_capture() {
    auto dir = captures_dir();
    if (!dir) return std::nullopt;
    auto p = *dir / "originals" / "slmp.pcap";
    if (!fs::exists(p)) return std::nullopt;
    return p.string();
}

// The independent SLMP peer (tests/slmp/slmp_peer.py) under Debian's Python.
inline std::string slmp_peer_script() { return std::string(MSGLAB_SLMP_TEST_DIR) + "/slmp_peer.py"; }

inline bool python_has_cryptography() {
    if (!fs::exists(kSystemPython)) return false;
    return run_command(std::string(kSystemPython) + " -c 'import cryptography' >/dev/null 2>&1").exit_code == 0;
}

}  // namespace msglab::test
