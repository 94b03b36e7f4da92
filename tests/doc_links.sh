#!/usr/bin/env bash
# Every relative link in README.md and docs/*.md points to a file or folder of the repository
# (ctest: doc_links). Web links and in-page anchors are not checked, nor text inside code.
# Usage: doc_links.sh SOURCE_DIR
set -euo pipefail
cd "$1"
broken=0
# The file without code: fenced blocks, indented blocks and `inline code` (a lambda's "[](...)").
prose() {
  awk '/^ *```/ { fenced = !fenced; next } !fenced && !/^(    |\t)/' "$1" | sed -E 's/`[^`]*`//g'
}
while IFS= read -r file; do
  dir=$(dirname "$file")
  # [text](target) and ![alt](target); the target ends at ')' or a space (a title).
  while IFS= read -r target; do
    target=${target%%#*}
    [[ -z $target || $target == http://* || $target == https://* || $target == mailto:* ]] && continue
    if [[ ! -e $dir/$target ]]; then
      echo "broken link in $file: $target"
      broken=1
    fi
  done < <(prose "$file" | grep -o -E '\]\([^) ]+' | sed -E 's/^\]\(//')
  # A file named in the text ("see DESIGN.md") must exist too: beside the page or from the root.
  while IFS= read -r named; do
    if [[ ! -e $dir/$named && ! -e $named ]]; then
      echo "$file names a file that is not in the repository: $named"
      broken=1
    fi
  done < <(prose "$file" | sed -E 's/\]\([^)]*\)/]/g; s#https?://[^ )]*##g' | grep -o -E '[A-Za-z0-9_./-]+\.md\b' | sort -u)
done < <(ls README.md docs/*.md docs/*/*.md docs/*/*/*.md 2>/dev/null)
[[ $broken == 0 ]] || exit 1
echo "PASS: no broken relative links"
