#!/bin/bash -eu
# Builds msglab's fuzz targets into $OUT for ClusterFuzzLite or OSS-Fuzz, with
# their seed corpora and dictionaries. The build environment provides CC, CXX,
# CFLAGS, CXXFLAGS (sanitizers and coverage), LIB_FUZZING_ENGINE, SRC, WORK
# and OUT. Locally, without the image, the same script runs against the
# system's Botan when $SRC/botan is absent (see README, "Fuzzing").
src=${MSGLAB_SRC:-$SRC/msglab}
# The scenario target links the system's yaml-cpp, built against libstdc++
# while OSS-Fuzz compiles with libc++; it stays with the local campaigns.
targets="secmsg_codec secmsg_session slmp_codec slmp_session csmp_http csmp_ws csmp_calls spchat_frame spchat_files spchat_app
  socp_envelope socp_payload socp_app signal_ratchet signal_session signal_eio fernet keylog pcap"

# Botan 2, static, compiled with the same compiler and flags.
if [ -d "$SRC/botan" ]; then
  prefix=$WORK/botan
  if [ ! -f "$prefix/lib/pkgconfig/botan-2.pc" ]; then
    (cd "$SRC/botan" && python3 ./configure.py --cc=clang --cc-bin="$CXX" --cc-abi-flags="$CXXFLAGS" \
        --disable-shared-library --build-targets=static --without-documentation --without-os-feature=getrandom \
        --prefix="$prefix" && make -j"$(nproc)" && make install)
  fi
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
fi

build=$WORK/msglab-build
cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DMSGLAB_FUZZ=ON -DMSGLAB_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMSGLAB_BUILD_TESTS=OFF -DMSGLAB_BUILD_BENCH=OFF -DMSGLAB_BUILD_DISSECTOR=OFF
cmake --build "$build" --target $(for t in $targets; do printf '%s_fuzzer ' "$t"; done)

for t in $targets; do
  cp "$build/fuzzers/${t}_fuzzer" "$OUT/"
  rm -f "$OUT/${t}_fuzzer_seed_corpus.zip"
  (cd "$src/fuzzers/corpus/$t" && zip -q -j "$OUT/${t}_fuzzer_seed_corpus.zip" ./*)
  # Not every target has a dictionary (csmp_calls drives App with opcodes).
  if [ -f "$src/fuzzers/dicts/$t.dict" ]; then cp -L "$src/fuzzers/dicts/$t.dict" "$OUT/${t}_fuzzer.dict"; fi
done
