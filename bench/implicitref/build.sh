#!/usr/bin/env bash
# build.sh SRC OUT compiles the CPU part of the `implicit` library (Ben
# Frederickson's ALS, https://github.com/benfred/implicit, tag v0.7.2) from
# a source checkout SRC into OUT, so that `PYTHONPATH=OUT python3 -c 'import
# implicit'` works without PyPI: its Cython modules are compiled one by one
# with Debian's cython3, g++ and OpenMP, linked against the same OpenBLAS
# (through SciPy's cython_blas) as NumPy. Needs: python3-numpy python3-scipy
# cython3 python3-dev g++ python3-threadpoolctl python3-tqdm (./setup.sh
# --implicit installs them). Nothing of the library is kept in this
# repository.
set -euo pipefail
src=${1:?usage: build.sh SRC OUT}
out=${2:?usage: build.sh SRC OUT}
py=/usr/bin/python3
rm -rf "$out"
mkdir -p "$out"
# The package's Python files as they are in the checkout.
(cd "$src" && find implicit -name '*.py' -o -name '*.pxd' -o -name '*.h' | grep -v '^implicit/gpu/.*\.pxd$' | cpio -pdm --quiet "$out")
inc="$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
npinc="$($py -c 'import numpy; print(numpy.get_include())')"
suffix="$($py -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
for pyx in implicit/cpu/_als implicit/cpu/bpr implicit/cpu/lmf implicit/cpu/topk implicit/_nearest_neighbours implicit/evaluation; do
	echo "compiling $pyx" >&2
	# (Debian's cython3 imports pythran, whose NumPy deprecation warnings are noise.)
	PYTHONWARNINGS=ignore::FutureWarning cython3 -3 --cplus -I "$src" -I "$src/implicit" -I "$src/implicit/cpu" "$src/$pyx.pyx" -o "$out/$pyx.cpp"
	g++ -O3 -march=native -shared -fPIC -fopenmp -std=c++11 -I "$inc" -I "$npinc" -I "$src" -I "$src/implicit" -I "$src/implicit/cpu" \
		"$out/$pyx.cpp" -o "$out/$pyx$suffix"
	rm "$out/$pyx.cpp"
done
# The GPU package is imported lazily; without CUDA it reports itself absent.
PYTHONPATH="$out" $py -c 'import implicit, implicit.cpu.als; print("implicit", implicit.__version__, "built")'
