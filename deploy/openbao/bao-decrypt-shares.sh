#!/usr/bin/env bash
# ExecStartPre of bao-unseal.service: decrypt the three unseal shares this host may use into DIR
# (a private tmpfs made by systemd's RuntimeDirectory, removed after the run). Each share is kept
# at /etc/neanelu/unseal/keyN.gpg, encrypted to the host's unseal key (a GPG key on the host's
# smartcard/TPM-backed agent); the plaintext never touches a disk.
set -euo pipefail
dir=${1:?usage: bao-decrypt-shares.sh DIR}
src=${BAO_SHARES_DIR:-/etc/neanelu/unseal}
umask 077
for n in 1 2 3; do
  gpg --batch --quiet --decrypt --output "$dir/key$n" "$src/key$n.gpg"
done
