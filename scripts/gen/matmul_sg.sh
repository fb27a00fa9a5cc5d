#!/usr/bin/env bash
# Regenerates shaders/matmul_sg.wgsl: the hand-written header (scripts/gen/matmul_sg_header.wgsl)
# and two generated entry points, written out in full because Mesa does not unroll loops over
# private arrays (a looped tile runs ~4x slower on lavapipe).
#   matmul_sg:  32 x 12 per invocation (3 vec4 column chunks)
#   matmul_sg2: 32 x 8 per invocation (2 vec4 column chunks)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../shaders/matmul_sg.wgsl"
{
  cat "$here/matmul_sg_header.wgsl"
  echo "// ---- generated entry points: the code is unrolled by hand (Mesa does not unroll loops over"
  echo "// private arrays and the kernel would run ~4x slower); matmul_sg: 32 x 12, matmul_sg2: 32 x 8."
  echo
  python3 "$here/matmul_sg_entry.py" 3 matmul_sg
  echo
  python3 "$here/matmul_sg_entry.py" 2 matmul_sg2
} > "$out"
echo "wrote $out"
