#!/bin/sh
# Makes the RSA keys the SOCP tests use (tests/fixtures/socp/keys): RSA-4096
# key generation takes seconds, so the tests read these instead. Test keys
# only: they are public, never use them for anything else.
set -eu
dir=$(dirname "$0")/../tests/fixtures/socp/keys
mkdir -p "$dir"
for n in server-a server-b server-c server-d user-1 user-2 user-3 user-4 user-5 user-6 user-7 user-8; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$dir/$n.pem"
done
openssl rsa -traditional -in "$dir/user-1.pem" -out "$dir/user-1.pkcs1.pem"
for n in weak-1 weak-2; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$dir/$n.pem"
done
