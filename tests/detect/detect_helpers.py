"""Shared checks of the detection tests: dense AD references at random points."""

from __future__ import annotations

import jax
import numpy as np

from stiffasd.detect import jacobian_sparsity

DOMAINS = {
    "real": lambda rng, shape: rng.normal(size=shape),
    "pos": lambda rng, shape: rng.uniform(0.5, 2.0, size=shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, size=shape),
    "gt1": lambda rng, shape: rng.uniform(1.2, 3.0, size=shape),
    "prob": lambda rng, shape: rng.uniform(0.1, 0.9, size=shape),
}


def points(shape, domain="real", k=3, seed=0):
    rng = np.random.default_rng(seed)
    return [DOMAINS[domain](rng, shape) for _ in range(k)]


def dense_jacobian(f, x, mode="fwd"):
    """Dense Jacobian of f at x as an (out.size, x.size) array (complex parts split off)."""
    jf = jax.jacfwd if mode == "fwd" else jax.jacrev
    out = jax.eval_shape(f, x)
    J = np.asarray(jf(f)(x))
    return J.reshape(int(np.prod(out.shape, dtype=int)), x.size)


def observed(f, xs, mode="fwd"):
    """Union of the nonzeros of the dense Jacobians at the points xs (one jitted, vmapped call)."""
    if mode == "cols":  # one unbatched JVP per input element (primitives that do not vmap)
        nz = None
        for x in xs:
            cols = [
                np.asarray(jax.jvp(f, (x,), (e.reshape(x.shape),))[1]).ravel()
                for e in np.eye(x.size)
            ]
            J = np.stack(cols, axis=1) != 0
            nz = J if nz is None else nz | J
        return nz
    jf = jax.jacfwd if mode == "fwd" else jax.jacrev
    out = jax.eval_shape(f, xs[0])
    m = int(np.prod(out.shape, dtype=int))
    try:
        Js = np.asarray(jax.jit(jax.vmap(jf(f)))(np.stack(xs)))
    except ValueError:  # a few primitives do not batch under vmap of jacfwd
        Js = np.stack([np.asarray(jax.jit(jf(f))(x)) for x in xs])
    return (Js.reshape(len(xs), m, xs[0].size) != 0).any(axis=0)


def check(f, shape, domain="real", exact=True, mode="fwd", k=3, seed=0, **kw):
    """Assert pattern ⊇ observed nonzeros (soundness) and, if ``exact``, equality."""
    xs = points(shape, domain, k, seed)
    pat = jacobian_sparsity(f, xs[0], **kw).to_dense()
    nz = observed(f, xs, mode)
    assert pat.shape == nz.shape, (pat.shape, nz.shape)
    missing = np.argwhere(nz & ~pat)
    assert missing.size == 0, f"UNSOUND: pattern misses entries {missing[:10].tolist()}"
    if exact:
        extra = np.argwhere(pat & ~nz)
        assert extra.size == 0, f"not exact: {len(extra)} extra entries, e.g. {extra[:10].tolist()}"
    return pat, nz


def primitives_in(f, *args) -> set[str]:
    """Names of every primitive in the jaxpr of f (recursively into sub-jaxprs)."""
    names: set[str] = set()

    def walk(jx):
        for e in jx.eqns:
            names.add(e.primitive.name)
            for v in e.params.values():
                for u in v if isinstance(v, (tuple, list)) else (v,):
                    if hasattr(u, "eqns"):
                        walk(u)
                    elif hasattr(u, "jaxpr") and hasattr(u.jaxpr, "eqns"):
                        walk(u.jaxpr)

    walk(jax.make_jaxpr(f)(*args).jaxpr)
    return names
