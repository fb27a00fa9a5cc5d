#!/usr/bin/env bash
# Runs tests/kernels/matmul_f16.rs with the cooperative-matrix kernel ENABLED, on a CPU: Debian 12's
# Mesa 22 lavapipe has no VK_KHR_cooperative_matrix, Mesa 26 (Debian sid) has it with 8x8x8
# f16 -> f32 tiles, which `matmul_coop8` (the same generated code as NVIDIA's 16x16x16
# `matmul_coop`) uses. Nothing is installed: sid's Mesa, its libraries and its glibc are
# unpacked under $DIR (default /tmp/kiln-mesa-sid, ~300 MB) and the test binary runs through
# sid's dynamic loader, with the loader pointed at that lavapipe alone.
#   bash scripts/coop-lavapipe-check.sh            # the f16 tests (cooperative included)
#   bash scripts/coop-lavapipe-check.sh bench      # kiln bench --quick --filter matmul_f16
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-/tmp/kiln-mesa-sid}
L=$DIR/root/usr/lib/x86_64-linux-gnu
if [ ! -f "$L/libvulkan_lvp.so" ]; then
    mkdir -p "$DIR/lists/partial" "$DIR/debs" "$DIR/root"
    echo "deb http://deb.debian.org/debian sid main" >"$DIR/sources.list"
    o=(-oDir::State::Lists="$DIR/lists" -oDir::Etc::SourceList="$DIR/sources.list" -oDir::Etc::SourceParts=/nonexistent)
    apt-get "${o[@]}" update -q >/dev/null
    llvm=$(apt-cache "${o[@]}" show mesa-vulkan-drivers | grep -o 'libllvm[0-9]*' | sort -u | tail -1)
    cd "$DIR/debs"
    apt-get "${o[@]}" download mesa-vulkan-drivers "$llvm" libc6 libdisplay-info3 \
        libdrm-amdgpu1 libdrm2 libelf1t64 libexpat1 libgcc-s1 libpng16-16t64 libstdc++6 \
        libwayland-client0 libx11-xcb1 libx11-6 libxcb-dri3-0 libxcb-present0 libxcb-randr0 \
        libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb1 libxshmfence1 libzstd1 zlib1g \
        libvulkan1 libedit2 libffi8 libxml2-16 libz3-4 libbsd0 libmd0 libtinfo6 libxau6 \
        libxdmcp6 liblzma5 2>&1 | grep -v unsandboxed
    cd - >/dev/null
    for f in "$DIR"/debs/*.deb; do dpkg -x "$f" "$DIR/root"; done
fi
sed "s#\"library_path\": \"[^\"]*\"#\"library_path\": \"$L/libvulkan_lvp.so\"#" \
    "$DIR/root/usr/share/vulkan/icd.d/lvp_icd.json" >"$DIR/lvp.json"
export VK_ICD_FILENAMES=$DIR/lvp.json VK_DRIVER_FILES=$DIR/lvp.json KILN_BACKEND=vulkan KILN_EXPERIMENTAL_COOP=1
run() { "$L/ld-linux-x86-64.so.2" --library-path "$L" "$@"; }
if [ "${1:-test}" = bench ]; then
    cargo build --release --bin kiln
    run target/release/kiln bench --quick --filter matmul_f16
else
    bin=$(cargo test --release --test kernels --no-run 2>&1 | grep -o 'target/release/deps/kernels-[0-9a-f]*' | tail -1)
    run "$bin" matmul_f16:: --test-threads 1 --nocapture 2>&1 | grep -v XDG_RUNTIME
fi
