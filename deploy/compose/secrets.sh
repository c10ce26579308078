#!/bin/sh
# Generates the secrets compose.yaml mounts: one TLS pair and one token key for every chatd node
# (chatd's own generator: a first start in a scratch data directory), and a TURN secret.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
scratch=$(mktemp -d)
chatd --data-dir "$scratch" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 > "$scratch/banner" &
pid=$!
until grep -q '^certificate sha256 fingerprint' "$scratch/banner" 2>/dev/null; do sleep 0.2; done
kill -TERM "$pid" && wait "$pid"
cp "$scratch/tls-cert.pem" "$scratch/tls-key.pem" "$scratch/token.key" secrets/
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > secrets/turn.secret
chmod 600 secrets/*
grep '^certificate' "$scratch/banner"
rm -rf "$scratch"
