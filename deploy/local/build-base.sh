#!/usr/bin/env bash
# Build the base image from Debian's packages when no image registry is reachable (this machine's
# case): debootstrap a minimal bookworm with Python 3.11 and import it. It stands in for the official
# python:3.11-slim-bookworm that the Dockerfile names by default. Usage: build-base.sh IMAGE WORKDIR
set -euo pipefail
image=${1:?image name}
work=${2:?work dir}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
root="$work/rootfs"
rm -rf "$root"
mkdir -p "$work"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }
# What a slim image leaves out: package lists, caches, docs, man pages, other locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/tmp/* \
  "$root"/var/log/*.log
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$image"
rm -rf "$root"
docker image inspect --format '{{.Size}}' "$image" | awk -v i="$image" '{printf "base image %s: %.0f MB\n", i, $1/1e6}'
