#!/bin/sh
# Test certificates for the HTTP/web tests, in directory $1 (created):
#   ca.pem / ca.key      a throw-away test CA
#   good.pem / good.key  signed by it for good.test, a.test, b.test, localhost, 127.0.0.1
#   wrong.pem / wrong.key signed by it for wrong.test only (a name mismatch for everything else)
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=Vantage Test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
leaf() {
    name=$1 san=$2
    openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" \
        -subj "/CN=$name" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" \
        >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}
leaf good "DNS:good.test,DNS:a.test,DNS:b.test,DNS:localhost,IP:127.0.0.1"
leaf wrong "DNS:wrong.test"
