#!/usr/bin/env bash
# Regenerates the entry points of shaders/matmul_sg.wgsl. The hand-written part of the file
# (everything above the "generated entry points" marker) is kept as it is; below it come two
# entry points written out in full, because Mesa does not unroll loops over private arrays (a
# looped tile runs ~4x slower on lavapipe).
#   matmul_sg:  32 x 12 per invocation (3 vec4 column chunks)
#   matmul_sg2: 32 x 8 per invocation (2 vec4 column chunks)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../shaders/matmul_sg.wgsl"
marker="// ---- generated entry points"
grep -q "^$marker" "$out" || { echo "no '$marker' line in $out" >&2; exit 1; }
head=$(awk -v m="$marker" 'index($0, m) == 1 { exit } { print }' "$out")
{
  printf '%s\n\n' "$head"
  echo "$marker: the code is unrolled by hand (Mesa does not unroll loops over"
  echo "// private arrays and the kernel would run ~4x slower); matmul_sg: 32 x 12, matmul_sg2: 32 x 8."
  echo
  python3 "$here/matmul_sg_entry.py" 3 matmul_sg
  echo
  python3 "$here/matmul_sg_entry.py" 2 matmul_sg2
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
