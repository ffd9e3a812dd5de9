#!/usr/bin/env bash
# Builds a plain-English text corpus (>= 100 MB, UTF-8) from Debian documentation packages, for tokenizer
# benchmarks (bin/bench tokenizer) and training studies on text other than fortunes.
#   tools/corpus/debian-english.sh OUT_DIR
# Installs the packages first (tools/install-deps.sh --corpus: root, or the apt-get line to run). Writes
# one file per source, documents separated by lines holding only "%" (so `bin/train --data OUT_DIR`
# reads one document per page), and OUT_DIR/.MANIFEST (package versions, sizes and sha256 of each file; hidden, so that
# `--data OUT_DIR`, which skips hidden entries, does not train on it).
# Markup is stripped by tools/corpus/to_text.py (python3 stdlib). Deterministic: the same package
# versions give the same bytes (files are read in sorted order; nothing depends on the date or host).
# Sources are listed in SOURCES below: prose documentation only; never fortunes. docs/CORPORA.md.
set -euo pipefail

out=${1:?usage: tools/corpus/debian-english.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
"$here/../install-deps.sh" --corpus

# name | Debian package | format | extended regex on the package's file list (dpkg -L)
SOURCES=(
  "linux-doc|linux-doc-6.1|rst|^/usr/share/doc/linux-doc-6.1/Documentation/.*\.rst\.gz$"
  "python-doc|python3.11-doc|rst|^/usr/share/doc/python3\.11/html/_sources/.*\.rst\.txt$"
  "manpages|manpages|roff|^/usr/share/man/man[1-8]/.*\.gz$"
  "manpages-dev|manpages-dev|roff|^/usr/share/man/man[1-8]/.*\.gz$"
  "perl-doc|perl-doc|pod|^/usr/share/perl/[^/]*/pod/.*\.pod$"
  "postgresql-doc|postgresql-doc-15|html|^/usr/share/doc/postgresql-doc-15/html/.*\.html$"
  "git-doc|git-doc|asciidoc|^/usr/share/doc/git-doc/[^/]*\.txt$"
  "debian-reference|debian-reference-en|html|^/usr/share/debian-reference/.*\.en\.html$"
  "debian-handbook|debian-handbook|html|^/usr/share/doc/debian-handbook/html/en-US/.*\.html$"
  "django-doc|python-django-doc|html|^/usr/share/doc/python-django-doc/html/.*\.html$"
  "gimp-help|gimp-help-en|html|^/usr/share/gimp/2\.0/help/en/.*\.html$"
  "gnucash-doc|gnucash-docs|html|^/usr/share/doc/gnucash-docs/gnucash-(guide|help)-en/.*\.html$"
  "sqlite-doc|sqlite3-doc|html|^/usr/share/doc/sqlite3/.*\.html$"
  "apache-doc|apache2-doc|html|^/usr/share/doc/apache2-doc/manual/en/.*\.html$"
  "scipy-doc|python-scipy-doc|html|^/usr/share/doc/python-scipy-doc/html/.*\.html$"
  "rust-books|rust-doc|html|^/usr/share/doc/rust-doc/html/(book|reference|nomicon|rust-by-example|edition-guide|embedded-book|unstable-book)/.*\.html$"
  "rust-std|rust-doc|html|^/usr/share/doc/rust-doc/html/std/.*\.html$"
)

python=/usr/bin/python3  # Debian's (tools/install-deps.sh --corpus), not whatever python3 is first on PATH
mkdir -p "$out"
manifest="$out/.MANIFEST"
{
  echo "# tools/corpus/debian-english.sh: one line per file: name package version format files bytes sha256"
  echo "# converter: tools/corpus/to_text.py run by $("$python" --version 2>&1) (python3 $(dpkg-query -W -f='${Version}' python3))"
} > "$manifest.tmp"
export LC_ALL=C  # sort order independent of the locale
for src in "${SOURCES[@]}"; do
  IFS='|' read -r name pkg fmt pattern <<< "$src"
  version=$(dpkg-query -W -f='${Version}' "$pkg")
  # Regular files only (dpkg -L also lists directories and the targets of symlinks it ships).
  list=$(dpkg -L "$pkg" | grep -E "$pattern" | while read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$f"; fi; done | sort)
  n=$(printf '%s\n' "$list" | grep -c . || true)
  printf '%s\n' "$list" | "$python" "$here/to_text.py" "$fmt" "$out/$name.txt.tmp"
  mv "$out/$name.txt.tmp" "$out/$name.txt"
  bytes=$(stat -c %s "$out/$name.txt")
  sum=$(sha256sum "$out/$name.txt" | cut -d' ' -f1)
  echo "$name $pkg $version $fmt $n $bytes $sum" >> "$manifest.tmp"
done
mv "$manifest.tmp" "$manifest"
total=$(cat "$out"/*.txt | wc -c)
echo "debian-english: $total bytes in $out (see $manifest)"
