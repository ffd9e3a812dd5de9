#!/usr/bin/env bash
# Checks (fast, with dpkg -s) and installs the Debian packages qat needs.
#   tools/install-deps.sh            build + test + demo + bench + fuzz dependencies (OpenMPI for
#                                    data-parallel training, cpp-httplib + nlohmann-json for bin/serve,
#                                    curl: the client the server tests drive it with)
#   tools/install-deps.sh --torch    also python3-torch (only tests/reference/ and the PyTorch bench use it)
#   tools/install-deps.sh --corpus   only the documentation packages of tools/corpus/debian-english.sh
#                                    (Debian 12 names; about 1 GB installed)
# Run by the Makefile before every build; it does nothing when everything is present.
# Not root and something missing: prints the exact apt-get line and fails.
set -eu

pkgs=(g++ make libopenblas-dev libdnnl-dev catch2 libsimde-dev clang libclang-rt-14-dev
      fortunes fortunes-min gnuplot-nox binutils
      libopenmpi-dev openmpi-bin libcpp-httplib-dev nlohmann-json3-dev curl)
if [ "${1:-}" = "--torch" ]; then pkgs+=(python3-torch python3-numpy); fi
if [ "${1:-}" = "--corpus" ]; then
  pkgs=(python3 linux-doc-6.1 python3.11-doc manpages manpages-dev perl-doc postgresql-doc-15 git-doc
        debian-reference-en debian-handbook python-django-doc gimp-help-en gnucash-docs sqlite3-doc apache2-doc
        python-scipy-doc rust-doc)
fi

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
