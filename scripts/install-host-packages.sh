#!/usr/bin/env bash
# Debian packages the tests, the benchmark and the demo need: the kernel tools the plugin drives on a node
# (iptables, nftables, iproute2, util-linux's nsenter) and the real runtime of the end-to-end lab (containerd,
# runc, the reference CNI plugins, busybox-static + umoci for a local pause image), and gcc + libc6-dev for the
# image's static launcher and the bench's timer. Idempotent.
set -euo pipefail
packages=(iptables nftables iproute2 util-linux containerd runc containernetworking-plugins busybox-static umoci
  openssl conntrack ca-certificates netbase python3 gcc libc6-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
