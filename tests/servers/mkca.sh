#!/bin/sh
# Makes a throw-away test CA and leaf certificates signed by it, with the openssl CLI.
#
#   mkca.sh DIR NAME [NAME...]
#
# Writes DIR/ca.pem and DIR/ca.key (created once, reused when present), and for each NAME
# DIR/NAME.pem and DIR/NAME.key (":", "*" and "/" become "_" in the file name): a leaf valid for
# 2 days whose subjectAltName is NAME (an IP address when NAME is an IPv4/IPv6 literal, else a
# DNS name; "*.x.test" makes a wildcard).
# A NAME of the form FILE=SAN1,SAN2 writes DIR/FILE.pem with several SANs, e.g.
#   mkca.sh /tmp/certs good=good.test,localhost,127.0.0.1 wrong.test
# The CA's common name is "Vantage Test CA", or $VT_CA_CN.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 DIR NAME [NAME...]   (NAME or FILE=SAN1,SAN2,...)" >&2
    exit 2
fi
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
if [ ! -s ca.pem ] || [ ! -s ca.key ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=${VT_CA_CN:-Vantage Test CA}" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
san_of() {
    out=
    old_ifs=$IFS
    IFS=,
    for n in $1; do
        case $n in
        *:* | [0-9]*.[0-9]*.[0-9]*.[0-9]*) entry="IP:$n" ;;
        *) entry="DNS:$n" ;;
        esac
        out=${out:+$out,}$entry
    done
    IFS=$old_ifs
    printf '%s' "$out"
}
for arg in "$@"; do
    case $arg in
    *=*) file=${arg%%=*} names=${arg#*=} ;;
    *) file=$(printf '%s' "$arg" | tr '*:/' '___') names=$arg ;;
    esac
    cn=${names%%,*}
    openssl req -newkey rsa:2048 -nodes -keyout "$file.key" -out "$file.csr" \
        -subj "/CN=$cn" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        "$(san_of "$names")" >"$file.ext"
    openssl x509 -req -in "$file.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$file.ext" -out "$file.pem" 2>/dev/null
    rm -f -- "$file.csr" "$file.ext"
done
