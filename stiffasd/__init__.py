"""stiffasd: automatic sparse differentiation for stiff ODE and method-of-lines PDE solvers.

The public API, re-exported; nothing else lives here.
"""

from . import problems as problems
from ._hessian import SparseHessian as SparseHessian
from ._hessian import hessian as hessian
from ._hessian import prepare_hessian as prepare_hessian
from ._jacobian import SparseJacobian as SparseJacobian
from ._jacobian import jacobian as jacobian
from ._jacobian import prepare_jacobian as prepare_jacobian
from ._ode import OdeJacobian as OdeJacobian
from ._ode import jac as jac
from ._verify import verify_jacobian as verify_jacobian
from .coloring import ColoringResult as ColoringResult
from .coloring import check_coloring as check_coloring
from .coloring import color as color
from .detect import hessian_sparsity as hessian_sparsity
from .detect import jacobian_sparsity as jacobian_sparsity
from .detect import register_rule as register_rule
from .errors import BandwidthError as BandwidthError
from .errors import ConservativePatternWarning as ConservativePatternWarning
from .errors import InvalidColoringError as InvalidColoringError
from .errors import MissingDependencyError as MissingDependencyError
from .errors import NonFiniteError as NonFiniteError
from .errors import PatternMismatchError as PatternMismatchError
from .errors import PerformanceWarning as PerformanceWarning
from .errors import PrecisionError as PrecisionError
from .errors import PrecisionWarning as PrecisionWarning
from .errors import ShapeError as ShapeError
from .errors import StiffasdError as StiffasdError
from .errors import TracingError as TracingError
from .errors import UnsupportedPrimitiveError as UnsupportedPrimitiveError
from .pattern import SparsityPattern as SparsityPattern

__version__ = "0.1.0"
