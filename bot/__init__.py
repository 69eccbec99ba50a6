"""ESP / CPTS guidance bot for health professionals in Brittany and ARS Bretagne."""

import os

# The question answering multiplies one small matrix by one vector per question: BLAS threads
# only add wake-up latency (up to 20 ms on a busy 2-core machine, measured in docs/qa.md).
# Set before numpy is first imported; an operator's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
