#!/usr/bin/env bash
# Print the real path of a Python >= 3.12: PATH first, then pyenv's versions. Exit 1 if none.
ok='import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'
real='import sys; print(sys.executable)'
pyenv_v=$(ls "$HOME/.pyenv/versions" 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -V | head -1)
for c in python3 python3.12 python3.13 python; do
  p=$(command -v "$c" 2>/dev/null) || continue
  for env in "" "PYENV_VERSION=$pyenv_v"; do
    if env $env "$p" -c "$ok" >/dev/null 2>&1; then env $env "$p" -c "$real"; exit 0; fi
  done
done
for d in $(ls -d "$HOME"/.pyenv/versions/3.* 2>/dev/null | sort -V); do
  p="$d/bin/python3"
  [ -x "$p" ] && "$p" -c "$ok" >/dev/null 2>&1 && { "$p" -c "$real"; exit 0; }
done
exit 1
