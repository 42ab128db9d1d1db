"""Jacobian sparsity detection by abstract interpretation of jaxprs with index sets."""

from ._api import jacobian_sparsity as jacobian_sparsity
from ._equation import Equation as Equation
from ._equation import conservative_rule as conservative_rule
from ._sets import IndexSets as IndexSets
from .hessian import hessian_sparsity as hessian_sparsity
from .interpreter import Context as Context
from .rules import register_rule as register_rule
from .rules import registered_primitives as registered_primitives
