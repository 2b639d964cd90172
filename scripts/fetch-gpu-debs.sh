#!/usr/bin/env bash
# On a Debian 12 CPU machine: downloads the Debian packages the GPU build needs into .gpu-debs/
# (.gitignore lists it; name it in the device call's carry).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-debs
cd .gpu-debs
apt-get download libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0 \
  libboost-filesystem1.74-dev libboost-filesystem1.74.0 libboost-system1.74-dev \
  libboost-system1.74.0 libsentencepiece-dev libsentencepiece0 libprotobuf-lite32 \
  nlohmann-json3-dev libgtest-dev googletest libutf8proc-dev libutf8proc2 libpcre2-dev \
  libpcre2-8-0 \
  libcurl4-openssl-dev libcurl4 libssl-dev libssl3 libssh2-1 libldap-2.5-0
# (Debian's libcurl4 needs libssh2 and OpenLDAP 2.5, which an Ubuntu 24.04 GPU machine lacks.)
