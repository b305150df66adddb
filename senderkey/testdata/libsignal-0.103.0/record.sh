#!/usr/bin/env bash
# Records the known answers in this folder with libsignal-client 0.103.0, through the interop
# peer of ../../../../shared/interop (run from this folder: ./record.sh /path/to/shared/interop/peer).
# Regenerating changes every key (libsignal draws them at random): do it only with a reason.
set -euo pipefail
peer=${1:?usage: record.sh PATH-TO-shared/interop/peer}
P() { "$peer" 0.103.0 "$@"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
group=3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b11
P init --state "$tmp/alice.json" --name alice >/dev/null
P init --state "$tmp/bob.json" --name bob >/dev/null
P group-distribution --state "$tmp/alice.json" --group "$group" > distribution.json
cp "$tmp/alice.json" alice.state.after-distribution.json
P group-process --state "$tmp/bob.json" --peer alice --distribution "$(jq -r .distribution distribution.json)" >/dev/null
cp "$tmp/bob.json" bob.state.after-process.json
# msg1..msg5: a short text, an empty plaintext, exactly one AES block, a long text, a last one.
P group-encrypt --state "$tmp/alice.json" --group "$group" --text "message 1 from alice" > msg1.json
P group-encrypt --state "$tmp/alice.json" --group "$group" --plaintext "" > msg2.json
P group-encrypt --state "$tmp/alice.json" --group "$group" --text "sixteen bytes!!!" > msg3.json
P group-encrypt --state "$tmp/alice.json" --group "$group" --text "$(printf 'long message %.0s' $(seq 1 40))" > msg4.json
P group-encrypt --state "$tmp/alice.json" --group "$group" --text "message 5 from alice" > msg5.json
cp "$tmp/alice.json" alice.state.after-msg5.json
# A member who joins late: Alice's distribution now stands at iteration 5.
P group-distribution --state "$tmp/alice.json" --group "$group" > distribution.late.json
# Bob decrypts out of order: msg3, msg1, msg5 (msg2 and msg4 stay skipped).
for m in 3 1 5; do P group-decrypt --state "$tmp/bob.json" --peer alice < msg$m.json > msg$m.plaintext.json; done
cp "$tmp/bob.json" bob.state.after-msg3-1-5.json
