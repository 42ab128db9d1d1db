"""Sparse linear algebra on fixed patterns: the matrices ``I - gamma J`` of an implicit solve
share ``J``'s pattern for the whole integration, so everything structural is done once.

* orderings (`nested_dissection`, `choose_ordering`): METIS nested dissection or reverse
  Cuthill-McKee, dense rows and columns last;
* `FixedPatternLU`: the host engine, SuperLU's numeric phase on a pre-permuted matrix (used by
  `stiffasd.scipy` directly);
* `DirectLU`: that engine inside jit through a host callback (`stiffasd.diffrax`);
* `JaxLU`: a multifrontal sparse LU compiled into JAX (symbolic analysis once per pattern,
  `analyze`; numeric factorization and solves as a static program of batched dense operations):
  jit, vmap, grad, CPU and GPU;
* `Krylov`: restarted GMRES with a block-Jacobi preconditioner, pure JAX;
* `AutoLU`: `JaxLU` on accelerators and for small systems on a CPU, `DirectLU` otherwise.
"""

from .analysis import MultifrontalPlan as MultifrontalPlan
from .analysis import Relaxation as Relaxation
from .analysis import analyze as analyze
from .auto import AutoLU as AutoLU
from .callback import DirectLU as DirectLU
from .callback import FactorCache as FactorCache
from .callback import factor_cache as factor_cache
from .jaxlu import JaxLU as JaxLU
from .jaxlu import blas_threads as blas_threads
from .krylov import Krylov as Krylov
from .ordering import choose_ordering as choose_ordering
from .ordering import nested_dissection as nested_dissection
from .structure import with_diagonal as with_diagonal
from .superlu import MAX_PANEL_SIZE as MAX_PANEL_SIZE
from .superlu import ORDERINGS as ORDERINGS
from .superlu import PANEL_SIZE as PANEL_SIZE
from .superlu import FixedPatternLU as FixedPatternLU

__all__ = [
    "AutoLU",
    "DirectLU",
    "JaxLU",
    "blas_threads",
    "analyze",
    "MultifrontalPlan",
    "Relaxation",
    "FactorCache",
    "factor_cache",
    "Krylov",
    "choose_ordering",
    "nested_dissection",
    "with_diagonal",
    "FixedPatternLU",
    "ORDERINGS",
    "PANEL_SIZE",
    "MAX_PANEL_SIZE",
]
