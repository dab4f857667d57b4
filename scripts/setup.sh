#!/usr/bin/env bash
# Installs what orc's build, tests and benchmarks need on Debian, when it is
# missing: LLVM 19 development files (tier 1), the LLVM 19 tools used as
# peers and as a source of test inputs (clang-19, lli-19, llvm-jitlink-19),
# gcc/g++ for the linker's C and C++ tests, and gdb for the debugger tests
# (tests/debugger.rs). Safe to run repeatedly.
set -euo pipefail

packages=(llvm-19-dev libpolly-19-dev llvm-19 clang-19 gcc g++ gdb zlib1g-dev libzstd-dev libbz2-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "orc setup: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  runner=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  runner=(sudo)
else
  cat >&2 <<MSG
orc setup: these Debian packages are missing and this user cannot install them:
  ${missing[*]}
Run as root (or with sudo):
  apt-get update && apt-get install -y ${missing[*]}
then run this command again.
MSG
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${runner[@]}" apt-get update -qq || ! "${runner[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; then
  cat >&2 <<MSG
orc setup: apt-get could not install: ${missing[*]}
LLVM 19 comes from Debian's own archive (bookworm: llvm-19-dev 1:19.1.x). Check
network access to deb.debian.org and that /etc/apt/sources.list names bookworm
(or newer), then run this command again.
MSG
  exit 1
fi
echo "orc setup: done" >&2
