#!/usr/bin/env bash
# Checks (fast, with dpkg -s) and installs the Debian packages qat needs.
#   tools/install-deps.sh            build + test + demo + bench + fuzz dependencies
#   tools/install-deps.sh --torch    also python3-torch (only tests/reference/ and the PyTorch bench use it)
# Run by the Makefile before every build; it does nothing when everything is present.
# Not root and something missing: prints the exact apt-get line and fails.
set -eu

pkgs=(g++ make libopenblas-dev libdnnl-dev catch2 libsimde-dev clang libclang-rt-14-dev
      fortunes fortunes-min gnuplot-nox binutils)
if [ "${1:-}" = "--torch" ]; then pkgs+=(python3-torch python3-numpy); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages; as root run: apt-get update && $line" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  apt-get update -q >&2
fi
$line >&2
