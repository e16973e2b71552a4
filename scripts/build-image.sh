#!/usr/bin/env bash
# Build the Debian 12 systemd base image of the lab and test hosts with
# mmdebstrap, from this machine's own apt sources (so no mirror is named here),
# and `docker import` it under the tag given as $1. Any change to this file
# changes the tag bootstrap.sh asks for, so the image is rebuilt.
set -euo pipefail
tag=${1:?usage: build-image.sh TAG}
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list

root=$(mktemp -d /var/tmp/congvu-image.XXXXXX)
trap 'rm -rf "$root"' EXIT

mmdebstrap --quiet --variant=minbase --format=directory \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,sudo,gnupg \
  --customize-hook='rm -f "$1/etc/hostname"; : > "$1/etc/machine-id"' \
  bookworm "$root" "$sources"

# mmdebstrap empties /var/lib/apt/lists last; an mtime of "now" would make
# apt's cache_valid_time skip the first update inside the container.
touch -d 2000-01-01 "$root/var/lib/apt/lists"

tar -C "$root" -c . | /usr/bin/docker import \
  -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' - "$tag" >/dev/null
