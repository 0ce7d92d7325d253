#include "core/address.hpp"
#include "core/bytes.hpp"
#include "support.hpp"

using namespace msglab;

TEST_CASE("Reader reads big-endian integers and fields", "[bytes]") {
    Bytes data = unhex("01" "0203" "04050607" "08090a0b0c0d0e0f" "0003616263" "ff");
    Reader r(data);
    CHECK(r.u8() == 0x01);
    CHECK(r.be16() == 0x0203);
    CHECK(r.be32() == 0x04050607u);
    CHECK(r.be64() == 0x08090a0b0c0d0e0full);
    CHECK(to_string(r.prefixed(2, 16)) == "abc");
    CHECK(r.remaining() == 1);
    CHECK(r.u8() == 0xff);
    r.expect_end();
    CHECK(r.ok());
}

TEST_CASE("Reader stops at the first error and keeps its offset", "[bytes]") {
    Bytes data = unhex("0102");
    Reader r(data);
    CHECK(r.u8() == 1);
    CHECK(r.be32() == 0);  // only one byte left
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ParseErrc::truncated);
    CHECK(r.error().offset == 1);
    CHECK(r.u8() == 0);  // sticky: later reads give zeros, never out of bounds
    CHECK(r.bytes(1).empty());
    CHECK(r.error().offset == 1);
}

TEST_CASE("Reader bounds length prefixes before reading", "[bytes]") {
    Bytes data = unhex("00000100") ;  // claims 256 bytes, holds none
    Reader over(data);
    over.prefixed(4, 255);
    CHECK(over.error().code == ParseErrc::length_over_limit);
    CHECK(over.error().offset == 0);
    Reader short_(data);
    short_.prefixed(4, 1000);
    CHECK(short_.error().code == ParseErrc::truncated);
}

TEST_CASE("Reader reports trailing bytes", "[bytes]") {
    Bytes data = unhex("0102");
    Reader r(data);
    r.u8();
    r.expect_end();
    CHECK(r.error().code == ParseErrc::trailing_bytes);
    CHECK(r.error().to_string() == "trailing_bytes at offset 1: 1 bytes after the end");
}

TEST_CASE("Writer writes what Reader reads", "[bytes]") {
    Writer w;
    w.u8(7).be16(0xbeef).be32(0xdeadbeef).be64(1700000000).prefixed(1, as_bytes("hi")).bytes(as_bytes("!"));
    CHECK(hex(w.data()) == "07beefdeadbeef000000006553f10002686921");
    CHECK_THROWS_AS(Writer().prefixed(1, Bytes(256)), std::length_error);
}

TEST_CASE("hex and unhex are strict", "[bytes]") {
    CHECK(hex(unhex("00ffA0")) == "00ffa0");
    Bytes out;
    CHECK_FALSE(unhex("abc", out));
    CHECK_FALSE(unhex("zz", out));
    CHECK_THROWS_AS(unhex("0g"), std::invalid_argument);
}

TEST_CASE("host:port parsing", "[bytes]") {
    std::string err;
    auto a = parse_host_port("127.0.0.1:5000", std::nullopt, err);
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 5000);
    auto b = parse_host_port("[::1]:80", std::nullopt, err);
    REQUIRE(b);
    CHECK(b->host == "::1");
    CHECK(b->to_string() == "[::1]:80");
    auto c = parse_host_port("localhost", 5000, err);
    REQUIRE(c);
    CHECK(c->port == 5000);
    CHECK_FALSE(parse_host_port("localhost", std::nullopt, err));
    CHECK(err.find("missing port") != std::string::npos);
    CHECK_FALSE(parse_host_port("host:70000", 1, err));
    CHECK_FALSE(parse_host_port("host:12ab", 1, err));
    CHECK_FALSE(parse_host_port("::1:80", 1, err));
    CHECK_FALSE(parse_host_port("", 1, err));
}
