#!/usr/bin/env bash
# setup.sh installs what the side-by-side harness needs beyond Go: a Python 3
# with NumPy (for ../../shared/tools/npals.py and the GEMM probe), from
# Debian's packages. The first python3 on PATH may be a separate build without
# NumPy, so the harness looks for one that imports it (see findPython).
set -euo pipefail

have_numpy() {
	for py in python3 /usr/bin/python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import numpy' >/dev/null 2>&1; then
			echo "numpy: $("$py" -c 'import numpy, sys; print(numpy.__version__, "via", sys.executable)')"
			return 0
		fi
	done
	return 1
}

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
packages=()
if ! have_numpy; then packages+=(python3 python3-numpy); fi
# Debian's NumPy links the generic libblas.so.3; without OpenBLAS behind it
# that is the reference BLAS (~1.5 GFLOP/s instead of ~110-170 for sgemm).
if ! readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null | grep -q openblas; then
	packages+=(libopenblas0-pthread)
fi
# --implicit: what implicitref/build.sh needs to compile the implicit library.
if [ "${1:-}" = "--implicit" ]; then
	packages+=(python3-scipy cython3 python3-dev g++ python3-threadpoolctl python3-tqdm cpio)
fi
if [ ${#packages[@]} -gt 0 ]; then
	$sudo_cmd apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${packages[@]}"
	have_numpy
fi
echo "BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
go version
