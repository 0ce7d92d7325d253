// msglab fuzz's readers of libFuzzer and sanitizer output, on text in the
// exact formats clang-14's runtime prints, and its child-process runner.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "cli/fuzz_campaign.hpp"
#include "support.hpp"

using namespace msglab::cli::fuzz;

TEST_CASE("libFuzzer status lines in plain and fork mode", "[fuzz]") {
    Status s;
    REQUIRE(parse_status_line("#1293\tNEW    cov: 1519 ft: 5279 corp: 133/1774b lim: 18 exec/s: 4000 rss: 73Mb L: 18/18 "
                              "MS: 2 CopyPart-ChangeByte-",
                              s));
    CHECK(s.executions == 1293);
    CHECK(s.coverage == 1519);
    CHECK(s.features == 5279);
    CHECK(s.corpus == 133);
    CHECK(s.exec_per_sec == 4000);
    REQUIRE(parse_status_line(
        "#8960: cov: 3477 ft: 5238 corp: 143 exec/s 1975 oom/timeout/crash: 0/2/7 time: 3s job: 2 dft_time: 0", s));
    CHECK(s.executions == 8960);
    CHECK(s.coverage == 3477);
    CHECK(s.corpus == 143);
    CHECK(s.exec_per_sec == 1975);
    CHECK(s.timeouts == 2);
    CHECK(s.crashes == 7);
    Status before = s;
    CHECK_FALSE(parse_status_line("INFO: Seed: 1", s));
    CHECK_FALSE(parse_status_line("#0 0x55 in main foo.cc:1", s));  // a stack frame, not a status
    CHECK_FALSE(parse_status_line("", s));
    CHECK(s.executions == before.executions);
}

namespace {

const char* const kAsanReport = R"(INFO: Running with entropic power schedule (0xFF, 100).
==10671==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6250008a1900 at pc 0x55648ca415da bp 0x7ffef0f2da10 sp 0x7ffef0f2d1e0
WRITE of size 1 at 0x6250008a1900 thread T0
    #0 0x55648ca415d9 in __asan_memcpy (/work/main/build-fuzz/fuzzers/secmsg_session_fuzzer+0x12e5d9) (BuildId: c36d665f73e78a8fd7cdbd918b99180d2b30c913)
    #1 0x55648ca9ed6a in msglab::secmsg::Session::handle_packet(std::span<unsigned char const, 18446744073709551615ul>, msglab::secmsg::Output&) /work/main/reference/secmsg/session.cpp:129:9
    #2 0x55648ca9e1b2 in msglab::secmsg::Session::feed(std::span<unsigned char const, 18446744073709551615ul>) /work/main/reference/secmsg/session.cpp:112:9
    #3 0x55648ca7f0a1 in LLVMFuzzerTestOneInput /work/main/fuzzers/secmsg_session_fuzzer.cc:104:46
    #4 0x55648c9a6f33 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) (/work/main/build-fuzz/fuzzers/secmsg_session_fuzzer+0x56f33)
    #5 0x7f0d2e04624a in __libc_start_call_main csu/../sysdeps/nptl/libc_start_call_main.h:58:16

0x6250008a1900 is located 0 bytes to the right of 8192-byte region [0x62500089f900,0x6250008a1900)
allocated by thread T0 here:
    #0 0x55648ca7a6ad in operator new[](unsigned long) (/work/main/build-fuzz/fuzzers/secmsg_session_fuzzer+0x12a6ad)
    #1 0x55648ca9ec41 in msglab::secmsg::Session::handle_packet(std::span<unsigned char const, 18446744073709551615ul>, msglab::secmsg::Output&) /work/main/reference/secmsg/session.cpp:128:25

SUMMARY: AddressSanitizer: heap-buffer-overflow (/work/main/build-fuzz/fuzzers/secmsg_session_fuzzer+0x12e5d9) in __asan_memcpy
)";

}  // namespace

TEST_CASE("An ASan report gives the bug's kind and the project's frames", "[fuzz]") {
    CrashReport r = parse_crash_report(kAsanReport);
    CHECK(r.kind == "heap-buffer-overflow");
    CHECK(r.summary.find("AddressSanitizer: heap-buffer-overflow") != std::string::npos);
    CHECK(r.summary.find("WRITE of size 1") != std::string::npos);
    REQUIRE(r.frames.size() == 3);  // the allocation stack is not the crash's
    CHECK(r.frames[0] == "msglab::secmsg::Session::handle_packet session.cpp:129");
    CHECK(r.frames[1] == "msglab::secmsg::Session::feed session.cpp:112");
    CHECK(r.frames[2] == "LLVMFuzzerTestOneInput secmsg_session_fuzzer.cc:104");
    // Addresses and process ids differ between runs; the signature does not.
    std::string other = kAsanReport;
    other.replace(other.find("10671"), 5, "22222");
    other.replace(other.find("0x55648ca9ed6a"), 14, "0x11111111aaaa");
    CHECK(parse_crash_report(other).signature() == r.signature());
    // A different place is a different bug.
    std::string elsewhere = kAsanReport;
    elsewhere.replace(elsewhere.find("session.cpp:129:9"), 17, "session.cpp:140:3");
    CHECK(parse_crash_report(elsewhere).signature() != r.signature());
}

TEST_CASE("UBSan, invariant failures, timeouts and clean runs", "[fuzz]") {
    CrashReport ub = parse_crash_report(
        "/work/main/reference/core/bytes.cpp:40:12: runtime error: shift exponent 64 is too large for 64-bit type\n"
        "    #0 0x5555 in msglab::Reader::be64() /work/main/reference/core/bytes.cpp:40:12\n"
        "    #1 0x5556 in LLVMFuzzerTestOneInput /work/main/fuzzers/keylog_fuzzer.cc:12:3\n"
        "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior /work/main/reference/core/bytes.cpp:40:12 in\n");
    CHECK(ub.kind == "undefined-behavior");
    CHECK(ub.summary.find("shift exponent 64") != std::string::npos);
    REQUIRE_FALSE(ub.frames.empty());
    CHECK(ub.frames[0] == "msglab::Reader::be64 bytes.cpp:40");

    CrashReport inv = parse_crash_report(
        "fuzz invariant failed: back.ok() at /work/main/fuzzers/fernet_fuzzer.cc:18\n"
        "==1== ERROR: libFuzzer: deadly signal\n"
        "    #0 0x1 in __sanitizer_print_stack_trace (/x+0x1)\n"
        "    #1 0x2 in fuzzer::PrintStackTrace() (/x+0x2)\n"
        "    #5 0x3 in abort stdlib/abort.c:79:7\n"
        "    #6 0x4 in LLVMFuzzerTestOneInput /work/main/fuzzers/fernet_fuzzer.cc:18:5\n");
    CHECK(inv.kind == "invariant-failed");
    REQUIRE(inv.frames.size() == 1);
    CHECK(inv.frames[0] == "LLVMFuzzerTestOneInput fernet_fuzzer.cc:18");

    CrashReport slow = parse_crash_report("==7== ERROR: libFuzzer: timeout after 10 seconds\n");
    CHECK(slow.kind == "timeout");

    CHECK(parse_crash_report("INFO: Seed: 1\nExecuted x in 2 ms\n").empty());
}

TEST_CASE("Child processes: lines, environment, exit status and time limit", "[fuzz]") {
    std::vector<std::string> lines;
    int rc = run_process({"/bin/sh", "-c", "echo one; printf 'two\\rthree\\n'; echo \"$MSGLAB_X\" >&2; exit 3"},
                         {{"MSGLAB_X", "from env"}}, std::chrono::seconds(10),
                         [&](const std::string& l) { lines.push_back(l); });
    CHECK(rc == 3);
    CHECK(lines == std::vector<std::string>{"one", "two", "three", "from env"});

    bool timed_out = false;
    auto start = std::chrono::steady_clock::now();
    rc = run_process({"/bin/sh", "-c", "sleep 30 & sleep 30"}, {}, std::chrono::seconds(1), [](const std::string&) {},
                     &timed_out);
    CHECK(timed_out);
    CHECK(rc == 128 + 9);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));  // the group's children too

    CHECK(run_process({"/nonexistent/program"}, {}, std::chrono::seconds(5), [](const std::string&) {}) == 127);
    CHECK(shell_command({"a b", "c"}, {{"K", "v w"}}) == "K='v w' 'a b' c");
}

TEST_CASE("Artifacts are the crash, leak, timeout and oom files", "[fuzz]") {
    msglab::test::TempDir dir;
    for (const char* n : {"crash-01", "leak-02", "timeout-03", "oom-04", "slow-unit-05", "other"})
        std::ofstream(dir.path() / n) << "x";
    auto found = list_artifacts(dir.path().string());
    REQUIRE(found.size() == 4);
    CHECK(std::filesystem::path(found[0]).filename() == "crash-01");
    CHECK(list_artifacts((dir.path() / "missing").string()).empty());
}
