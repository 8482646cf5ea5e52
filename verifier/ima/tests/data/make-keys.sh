#!/bin/sh
# Regenerates the test keys, certificates and reference signatures of tests/signature.rs
# with the openssl CLI (OpenSSL 3). Test material only: the private keys are public here.
# The generated files are committed. Rerunning makes new keys: put the key ids this script
# prints last into RSA_ID, P256_ID and P384_ID in tests/signature.rs.
set -eu
cd "$(dirname "$0")"
days=36500

# A private key as PKCS#8 DER (genpkey alone writes the traditional format in DER).
genkey() {
    out=$1
    shift
    openssl genpkey "$@" | openssl pkcs8 -topk8 -nocrypt -outform DER -out "$out"
}

# RSA-2048: PKCS#8 DER private key, self-signed certificate (PEM) with the default
# subjectKeyIdentifier (SHA-1 of the public key bits).
genkey rsa2048.key.der -algorithm RSA -pkeyopt rsa_keygen_bits:2048
openssl req -x509 -new -key rsa2048.key.der -keyform DER -subj "/CN=Vigil IMA test RSA-2048" \
    -days $days -out rsa2048.crt.pem

# ECDSA P-256: only the public key (SPKI PEM), so its key id is the SHA-1 of the key bits.
genkey p256.key.der -algorithm EC -pkeyopt ec_paramgen_curve:P-256
openssl pkey -inform DER -in p256.key.der -pubout -out p256.pub.pem

# ECDSA P-384: self-signed certificate in DER, without a subjectKeyIdentifier.
genkey p384.key.der -algorithm EC -pkeyopt ec_paramgen_curve:P-384
openssl req -x509 -new -key p384.key.der -keyform DER -subj "/CN=Vigil IMA test P-384" \
    -addext subjectKeyIdentifier=none -days $days -outform DER -out p384.crt.der

# An RSA-3072 key whose certificate's subjectKeyIdentifier ends in the RSA-2048 key's id,
# and one with an explicit subjectKeyIdentifier (its id differs from the key bits' SHA-1).
rsa_id=$(openssl x509 -in rsa2048.crt.pem -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :\n' | tail -c 8 | tr 'A-F' 'a-f')
genkey rsa3072.key.der -algorithm RSA -pkeyopt rsa_keygen_bits:3072
openssl req -x509 -new -key rsa3072.key.der -keyform DER -subj "/CN=Vigil IMA test RSA-3072 same id" \
    -addext "subjectKeyIdentifier=00112233445566778899aabbccddeeff$rsa_id" -days $days -out rsa3072-same-id.crt.pem

# A subjectKeyIdentifier too short to give a key id.
openssl req -x509 -new -key rsa2048.key.der -keyform DER -subj "/CN=Vigil IMA test short SKID" \
    -addext subjectKeyIdentifier=0102 -days $days -out short-skid.crt.pem

# Two certificates in one PEM file.
openssl x509 -inform DER -in p384.crt.der -out p384.crt.pem
cat rsa2048.crt.pem p384.crt.pem > bundle.pem
rm p384.crt.pem

# Reference signatures made by openssl, not by the crates under test: the SHA-256 of
# "vigil ima test file\n", signed raw (as evmctl signs a file digest, version 2).
printf 'vigil ima test file\n' | openssl dgst -sha256 -binary > file.sha256
openssl pkeyutl -sign -inkey rsa2048.key.der -keyform DER -pkeyopt digest:sha256 \
    -in file.sha256 -out rsa2048-v2.sig
openssl pkeyutl -sign -inkey p256.key.der -keyform DER -pkeyopt digest:sha256 \
    -in file.sha256 -out p256-v2.sig

# Keys parse_keys must refuse: RSA-1024, Ed25519, P-521.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 | openssl pkey -pubout -out rsa1024.pub.pem
openssl genpkey -algorithm ED25519 | openssl pkey -pubout -out ed25519.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 | openssl pkey -pubout -out p521.pub.pem

# The key ids, computed by openssl: the subjectKeyIdentifier's tail, or SHA-1 of the key bits.
echo "RSA_ID  $rsa_id"
echo "P256_ID $(openssl pkey -pubin -in p256.pub.pem -outform DER | tail -c 65 | sha1sum | cut -c33-40)"
echo "P384_ID $(openssl x509 -inform DER -in p384.crt.der -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 97 | sha1sum | cut -c33-40)"
