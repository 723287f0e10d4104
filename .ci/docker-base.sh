#!/usr/bin/env bash
# .ci/docker-base.sh OUT: the base image for examples/container/ when no registry can be reached, as a
# root file system tarball OUT/rootfs.tar for `docker import`. The Dockerfiles' real bases
# (python:3.12-slim, python:3.12-alpine, public.ecr.aws/lambda/python:3.12) need a registry; Debian's package
# mirror is reachable where they are not, so this is Debian 12 (minbase) with its python3 (3.11) and pip,
# made to behave like the Docker Hub Python images where the Dockerfiles depend on it: `pip install` into
# the system Python is allowed (Debian marks it EXTERNALLY-MANAGED, PEP 668), and `python3`/`pip` are on
# PATH. The host's own certificate authorities (/usr/local/share/ca-certificates, for example a TLS proxy's on
# the way out) are trusted in the image too, so that `pip install` in a build reaches PyPI where the host
# does; .ci/run keys its cache on them. Documentation, man pages, locales and apt's package lists are
# dropped: no one reads them in a test.
set -euo pipefail
out=$1
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
command -v debootstrap > /dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap > /dev/null; }
root="$out/rootfs"
debootstrap --variant=minbase --include=python3,python3-pip bookworm "$root" "$mirror"
rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates > /dev/null 2>&1
fi
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/locale/*
tar -C "$root" --numeric-owner -cf "$out/rootfs.tar" .
rm -rf "$root"
