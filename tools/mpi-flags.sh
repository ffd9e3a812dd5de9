#!/bin/sh
# mpicxx's flags for the one MPI unit (models/train/dist_mpi.cpp) and bin/train's link line:
#   tools/mpi-flags.sh compile   ->  -isystem <dirs> ... -DQAT_HAVE_MPI
#   tools/mpi-flags.sh link      ->  -L<dir> -lmpi ...
# Nothing without mpicxx (bin/train is then single-process). Called from the recipes, not when the
# Makefile is read: on a fresh machine OpenMPI is installed by tools/install-deps.sh (the `deps` step)
# after make has read the Makefile, and flags read before that would silently build without MPI.
command -v mpicxx >/dev/null 2>&1 || exit 0
case "${1:-}" in
  compile)
    for f in $(mpicxx --showme:compile); do
      case $f in -I*) printf '%s ' "-isystem ${f#-I}" ;; *) printf '%s ' "$f" ;; esac
    done
    echo -DQAT_HAVE_MPI ;;
  link) mpicxx --showme:link ;;
  *) echo "usage: $0 compile|link" >&2; exit 2 ;;
esac
