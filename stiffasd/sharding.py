"""Running stiffasd on JAX's own distributed runtime: sharded Jacobians and sharded ensembles.

Two ways a stiff problem outgrows one device, and what this module does about each:

- **One large system.** `shard_jacobian` turns a prepared `SparseJacobian` into a
  `ShardedJacobian` whose values stay split over the devices of a mesh the way the state is.
  Detection and coloring stay on the host, once. The compressed passes run on the sharded state
  with the state's own shape (XLA partitions the user's right-hand side, so a stencil exchanges
  only halos), and the decompression is local: each nonzero is stored on the device that
  computed its compressed value (with column coloring, the device that owns the nonzero's row;
  with row coloring, its column), so it is a gather from the device's own block.
- **Many systems.** `shard_vmap` maps a function over a batch (parameter sets, initial states)
  whose batch axis is split over the devices: each process runs ``jax.jit(jax.vmap(fn))`` on
  its slice of the batch, split over its own devices, and the outputs form global arrays.
  Nothing crosses between processes while the solves run.

`collective_bytes` reads the collectives of a compiled program (its optimized HLO) and counts
the bytes one device sends, which is how the claim "only halos move" is checked.

Everything here runs unchanged in a multi-process program (``jax.distributed.initialize``): the
host-side arrays are built identically in every process and placed with
``jax.make_array_from_callback``, and results that span processes are gathered with
``jax.experimental.multihost_utils.process_allgather``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numba
import numpy as np
import scipy.sparse as sp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from .errors import ShapeError

__all__ = [
    "Collectives",
    "ShardedJacobian",
    "collective_bytes",
    "shard_jacobian",
    "shard_vmap",
]


# ---------------------------------------------------------------------------- JAX API in one place
def _shard_map(f: Callable, mesh: Any, in_specs: Any, out_specs: Any) -> Callable:
    """``jax.shard_map``: public from JAX 0.7 on (``jax.experimental.shard_map`` before), below
    the oldest JAX stiffasd supports; this is the one place that calls it."""
    return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs)


def _explicit_axes(mesh: Any) -> tuple:
    """The mesh axes of type Explicit (``jax.make_mesh``'s default)."""
    explicit = jax.sharding.AxisType.Explicit
    return tuple(a for a, t in zip(mesh.axis_names, mesh.axis_types, strict=True) if t == explicit)


def _auto_mesh(mesh: Any) -> Any:
    """The mesh with every axis of type Auto (XLA's automatic partitioning)."""
    if not _explicit_axes(mesh):
        return mesh
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    return jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)


def _put(arr: np.ndarray, sharding: Any) -> jax.Array:
    """A host array placed with ``sharding``; in a multi-process program every process passes
    the same global array and keeps only its own devices' blocks."""
    return jax.make_array_from_callback(arr.shape, sharding, lambda index: arr[index])


def _to_host(values: jax.Array) -> np.ndarray:
    """A (possibly multi-process) global array on the host of every process."""
    if getattr(values, "is_fully_addressable", True):
        return np.asarray(values)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(values, tiled=True))


def _spec_axes(spec: Any) -> list[str]:
    """The mesh axis names a PartitionSpec uses, in its order."""
    names: list[str] = []
    for entry in spec:
        if entry is None:
            continue
        for name in entry if isinstance(entry, tuple) else (entry,):
            names.append(name)
    return names


def _padded_spec(spec: Any, ndim: int) -> tuple:
    return tuple(spec) + (None,) * (ndim - len(tuple(spec)))


def _check_named(sharding: Any, name: str, call: str) -> NamedSharding:
    if not isinstance(sharding, NamedSharding):
        raise TypeError(
            f"{call}: {name} must be a jax.sharding.NamedSharding (a Mesh and a PartitionSpec), "
            f"got {type(sharding).__name__}. Build one with "
            "NamedSharding(jax.make_mesh((4,), ('x',)), PartitionSpec('x'))."
        )
    return sharding


def _check_divisible(sharding: NamedSharding, shape: tuple, name: str, call: str) -> None:
    spec = _padded_spec(sharding.spec, len(shape))
    if len(tuple(sharding.spec)) > len(shape):
        raise ShapeError(
            f"{call}: {name} has PartitionSpec {sharding.spec} with more entries than the array "
            f"has axes (shape {shape})."
        )
    sizes = dict(zip(sharding.mesh.axis_names, sharding.mesh.devices.shape, strict=True))
    for axis, entry in enumerate(spec):
        k = int(np.prod([sizes[a] for a in _spec_axes((entry,))])) if entry is not None else 1
        if shape[axis] % k:
            raise ShapeError(
                f"{call}: {name} splits axis {axis} of an array of shape {shape} into {k} "
                f"blocks, but {shape[axis]} is not a multiple of {k}. Choose a grid size "
                "divisible by the number of devices along that axis."
            )


# ---------------------------------------------------------------------------- sharded Jacobians
@numba.njit(cache=True)
def _block_layout(
    gather, m, n, ncol, own_out, loc_out, size_out, own_in, loc_in, size_in, nblocks, pad
):  # pragma: no cover - compiled
    """Where every nonzero goes in the sharded layout, in two passes over the nonzeros.

    Nonzero ``k`` reads the flat compressed buffer at ``gather[k]``: ``Bc[color, row]`` or
    ``Br[color, col]``. It is stored in the block of the device owning that row (column), at
    the position of that value in the device's own flat buffer ``[Bc block, Br block]``. Within
    a block the values from Bc come first, ordered by local row (then by k: the pattern's CSC
    order, so by column), then those from Br by local column: CSR and CSC blocks. A counting
    sort on that key, O(nnz + block sizes).

    Returns:
        ``(local, positions, counts)``: local flat index and pattern position (``k``) of every
        slot, shape ``(nblocks, width)`` (padding slots: ``local = pad``, ``positions = -1``),
        and the number of values per block.
    """
    nnz = gather.size
    span = max(size_out, size_in, 1)
    key = np.empty(nnz, dtype=np.int64)
    flat = np.empty(nnz, dtype=np.int64)
    counts = np.zeros(nblocks, dtype=np.int64)
    start = np.zeros(2 * nblocks * span + 1, dtype=np.int64)
    for k in range(nnz):
        g = gather[k]
        if g < ncol * m:
            color, at = g // m, g % m
            b, lp = own_out[at], loc_out[at]
            flat[k] = color * size_out + lp
            key[k] = 2 * b * span + lp
        else:
            h = g - ncol * m
            color, at = h // n, h % n
            b, lp = own_in[at], loc_in[at]
            flat[k] = ncol * size_out + color * size_in + lp
            key[k] = (2 * b + 1) * span + lp
        counts[b] += 1
        start[key[k] + 1] += 1
    for j in range(start.size - 1):
        start[j + 1] += start[j]
    width = max(counts.max(), 1) if nblocks else 1
    first = np.zeros(nblocks, dtype=np.int64)  # sorted position of each block's first value
    for b in range(1, nblocks):
        first[b] = first[b - 1] + counts[b - 1]
    local = np.full((nblocks, width), pad, dtype=np.int64)
    positions = np.full((nblocks, width), -1, dtype=np.int64)
    for k in range(nnz):
        r = start[key[k]]
        start[key[k]] += 1
        b = key[k] // (2 * span)
        local[b, r - first[b]] = flat[k]
        positions[b, r - first[b]] = k
    return local, positions, counts


class ShardedJacobian:
    """A prepared sparse Jacobian evaluated on a sharded state; its values stay sharded.

    Built by [`shard_jacobian`][stiffasd.sharding.shard_jacobian]. The values come as an array
    of shape ``(nblocks, width)`` split along its first axis over the mesh: block ``b`` lives on
    the device(s) holding block ``b`` of the state and holds the nonzeros whose compressed value
    that device computes, padded with zeros to the widest block. With column coloring
    (``mode="forward"``) a block is the device's own rows in CSR order; with row coloring
    (``mode="reverse"``) its own columns in CSC order.

    Attributes:
        jacobian: the prepared `SparseJacobian` (detection and coloring, done once on the host).
        sharding: the state's `NamedSharding`.
        out_sharding: the sharding of ``f``'s output (the rows).
        values_sharding: the sharding of the values array.
        positions: int64 ``(nblocks, width)``: each value's position in the pattern's CSC data
            order, ``-1`` in padding slots.
        counts: the number of nonzeros per block.
        local_compressed_size: the length of one device's flat compressed buffer (its blocks of
            ``Bc`` and ``Br``).
    """

    def __init__(self, jacobian: Any, sharding: Any, out_sharding: Any = None):
        call = "stiffasd.sharding.shard_jacobian"
        sj = jacobian
        if not hasattr(sj, "_passes"):
            raise TypeError(
                f"{call}: jacobian must be a SparseJacobian from stiffasd.prepare_jacobian, got "
                f"{type(sj).__name__}."
            )
        in_shape, out_shape = tuple(sj._in_shape), tuple(sj.out_shape)
        sharding = _check_named(sharding, "sharding", call)
        if out_sharding is None:
            if out_shape != in_shape:
                raise ShapeError(
                    f"{call}: f's output has shape {out_shape}, unlike the state {in_shape}, so "
                    "the rows cannot be split the way the state is; pass out_sharding= (a "
                    "NamedSharding on the same mesh for the output)."
                )
            out_sharding = sharding
        out_sharding = _check_named(out_sharding, "out_sharding", call)
        if out_sharding.mesh != sharding.mesh:
            raise ValueError(
                f"{call}: out_sharding must be on the state's mesh {sharding.mesh}, got "
                f"{out_sharding.mesh}."
            )
        _check_divisible(sharding, in_shape, "sharding", call)
        _check_divisible(out_sharding, out_shape, "out_sharding", call)
        if sj._gather is None:
            raise ValueError(
                f"{call}: the Jacobian's coloring decompresses by substitution, which reads "
                "compressed values from other devices; prepare it with mode='forward' or "
                "mode='reverse' (direct decompression)."
            )
        if sj.chunk_size is not None:
            raise ValueError(
                f"{call}: the Jacobian was prepared with chunk_size={sj.chunk_size}; a sharded "
                "Jacobian already splits the work over devices: prepare it without chunk_size."
            )
        self.jacobian = sj
        self.sharding, self.out_sharding = sharding, out_sharding
        mesh = sharding.mesh
        self.mesh = mesh
        used = set(_spec_axes(sharding.spec)) | set(_spec_axes(out_sharding.spec))
        self._block_axes = tuple(a for a in mesh.axis_names if a in used)
        self._in_spec = _padded_spec(sharding.spec, len(in_shape))
        self._out_spec = _padded_spec(out_sharding.spec, len(out_shape))
        self._values_spec = P(self._block_axes if self._block_axes else None)
        self.values_sharding = NamedSharding(mesh, self._values_spec)
        self._layout(in_shape, out_shape)
        self._compiled = jax.jit(self._data_from)
        self._device_consts: tuple | None = None

    # -- host-side layout, once -----------------------------------------------------------
    def _blocks(self, sharding: NamedSharding, shape: tuple, nblocks: int) -> tuple:
        """(owner, local position, block size) of every flat index of an array of ``shape``."""
        size = int(np.prod(shape))
        owner = np.full(size, -1, dtype=np.int64)
        local = np.zeros(size, dtype=np.int64)
        rows = self.values_sharding.devices_indices_map((nblocks, 1))
        blocks = sharding.devices_indices_map(shape)
        ids = np.arange(size, dtype=np.int64).reshape(shape)
        block_size = 0
        for dev, index in blocks.items():  # one iteration per device, not per element
            b = rows[dev][0].start or 0
            flat = ids[index].ravel()
            owner[flat] = b
            local[flat] = np.arange(flat.size)
            block_size = flat.size
        return owner, local, block_size

    def _layout(self, in_shape: tuple, out_shape: tuple) -> None:
        sj = self.jacobian
        m, n = sj.pattern.shape
        sizes = dict(zip(self.mesh.axis_names, self.mesh.devices.shape, strict=True))
        nblocks = int(np.prod([sizes[a] for a in self._block_axes])) if self._block_axes else 1
        own_out, loc_out, size_out = self._blocks(self.out_sharding, out_shape, nblocks)
        own_in, loc_in, size_in = self._blocks(self.sharding, in_shape, nblocks)
        ncol, nrow = sj._ncol, sj._nrow
        g = np.asarray(sj.coloring.gather, dtype=np.int64)
        local_size = ncol * size_out + nrow * size_in
        local, positions, counts = _block_layout(  # padding reads past the end: a zero
            g, m, n, ncol, own_out, loc_out, size_out, own_in, loc_in, size_in, nblocks, local_size
        )
        width = local.shape[1]
        dtype = np.int32 if local_size < 2**31 - 1 else np.int64
        idx = local.astype(dtype, copy=False)
        self._idx = idx
        self.positions = positions
        self.counts = counts
        self.nblocks, self.width = nblocks, width
        self.local_compressed_size = local_size

    @property
    def rows(self) -> np.ndarray:
        """The row of each stored value, shape ``(nblocks, width)``; ``-1`` in padding slots."""
        p = self.positions
        return np.where(p >= 0, self.jacobian.pattern.csc_indices[np.maximum(p, 0)], -1)

    @property
    def cols(self) -> np.ndarray:
        """The column of each stored value, shape ``(nblocks, width)``; ``-1`` in padding."""
        p = self.positions
        return np.where(p >= 0, self.jacobian.pattern.csc_cols[np.maximum(p, 0)], -1)

    def _consts(self) -> tuple:
        sj = self.jacobian
        col = row = None
        if sj.seeds != "constant":  # colors shaped and split like the state / the output
            if sj._ncol:
                col = _put(sj._col_colors.reshape(sj._in_shape), self.sharding)
            if sj._nrow:
                row = _put(sj._row_colors.reshape(sj.out_shape), self.out_sharding)
        return (col, row, _put(self._idx, self.values_sharding))

    # -- evaluation -----------------------------------------------------------------------
    def data(self, *args: Any) -> jax.Array:
        """The values at ``args`` (pure JAX; call it inside your own ``jax.jit``)."""
        return self._data_from(self._consts_cached(), *args)

    def data_jit(self, *args: Any) -> jax.Array:
        """`data`, jit-compiled once per input structure; the index arrays are placed on the
        devices once."""
        return self._compiled(self._consts_cached(), *args)

    def lower(self, *args: Any) -> Any:
        """The lowered program of `data_jit` (``.compile().as_text()`` is its optimized HLO; see
        `collective_bytes`)."""
        return self._compiled.lower(self._consts_cached(), *args)

    def _consts_cached(self) -> tuple:
        if self._device_consts is None:
            self._device_consts = self._consts()
        return self._device_consts

    def _data_from(self, consts: tuple, *args: Any) -> jax.Array:
        sj = self.jacobian
        mesh = self.mesh
        specs = []
        if sj._ncol:
            specs.append(P(None, *self._out_spec))
        if sj._nrow:
            specs.append(P(None, *self._in_spec))
        if not specs:
            return jnp.zeros((self.nblocks, self.width), sj._in_dtype)
        auto = _auto_mesh(mesh)

        def passes(consts: tuple, args: list) -> list:
            # XLA partitions f (and its derivatives) along the state's split: halos move
            args[sj.argnums] = jax.lax.with_sharding_constraint(
                args[sj.argnums], NamedSharding(auto, P(*self._in_spec))
            )
            blocks = [b for b in sj._passes(consts, args, shaped=True) if b is not None]
            return [
                jax.lax.with_sharding_constraint(b, NamedSharding(auto, s))
                for b, s in zip(blocks, specs, strict=True)
            ]

        explicit = _explicit_axes(mesh)
        if explicit:  # f is written for automatic partitioning: run it with those axes Auto
            passes = jax.sharding.auto_axes(
                passes, axes=explicit, out_sharding=[NamedSharding(mesh, s) for s in specs]
            )
        blocks = passes(consts, list(args))

        def local(idx, *parts):
            flat = parts[0].reshape(-1)
            if len(parts) > 1:
                flat = jnp.concatenate([p.reshape(-1) for p in parts])
            return flat.at[idx[0]].get(mode="fill", fill_value=0)[None]

        vspec = self._values_spec
        return _shard_map(local, mesh, (vspec, *specs), vspec)(consts[2], *blocks)

    # -- host-side conveniences -----------------------------------------------------------
    def to_pattern_order(self, values: Any) -> np.ndarray:
        """The values in the pattern's CSC order on the host (gathers every block: for checks
        and small problems)."""
        vals = _to_host(values)
        if vals.shape != self.positions.shape:
            raise ShapeError(
                f"ShardedJacobian.to_pattern_order: values must have shape "
                f"{self.positions.shape} (what data_jit returns), got {vals.shape}."
            )
        out = np.zeros(self.jacobian.pattern.nnz, dtype=vals.dtype)
        valid = self.positions >= 0
        out[self.positions[valid]] = vals[valid]
        return out

    def to_csc(self, values: Any) -> sp.csc_matrix:
        """The Jacobian as a `scipy.sparse.csc_matrix` on the host (gathers every block)."""
        sj = self.jacobian
        return sp.csc_matrix(
            (self.to_pattern_order(values), sj._csc_indices, sj._csc_indptr),
            shape=sj.pattern.shape,
        )

    def __repr__(self) -> str:
        m, n = self.jacobian.pattern.shape
        return (
            f"ShardedJacobian({m}x{n}, nnz={self.jacobian.pattern.nnz}, blocks={self.nblocks} "
            f"over mesh axes {self._block_axes}, width={self.width})"
        )


def shard_jacobian(jacobian: Any, sharding: Any, out_sharding: Any = None) -> ShardedJacobian:
    """Evaluate a prepared sparse Jacobian on a state split over the devices of a mesh.

    ```python
    mesh = jax.make_mesh((4,), ("x",))
    y = jax.device_put(y, NamedSharding(mesh, PartitionSpec("x")))  # (N, N, 2) grid, rows split
    sj = stiffasd.prepare_jacobian(rhs, y, mode="forward")  # detection + coloring, once
    jac = stiffasd.sharding.shard_jacobian(sj, y.sharding)
    values = jac.data_jit(y)  # (4, width), block d on device d: the nonzeros of its own rows
    ```

    The compressed passes run on the state in its own shape and sharding: XLA partitions ``f``
    (a stencil written with ``jnp.roll`` or slicing exchanges one halo per pass), and every
    compressed value stays on the device that computed it. Each nonzero is then stored on that
    device, so decompression is a local gather: nothing else moves.

    Args:
        jacobian: a `SparseJacobian` from `stiffasd.prepare_jacobian` (its coloring must
            decompress directly: ``mode="forward"`` or ``"reverse"``, or a symmetric or
            bidirectional coloring with direct decompression).
        sharding: the state's `jax.sharding.NamedSharding`; every split axis must divide evenly.
        out_sharding: the sharding of ``f``'s output; by default the state's (when ``f``
            returns an array of the state's shape).

    Returns:
        A `ShardedJacobian`.
    """
    return ShardedJacobian(jacobian, sharding, out_sharding)


# ---------------------------------------------------------------------------- collectives
_ITEMSIZE = {
    "pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4,
    "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
}  # fmt: skip
_KINDS = (
    "all-gather",
    "all-reduce",
    "all-to-all",
    "collective-broadcast",
    "collective-permute",
    "reduce-scatter",
)
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(.*\)\s+->\s+.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s+=\s+(\(.*?\)|\S+)\s+([a-z][\w\-]*)\((.*)$")
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")


def _array_bytes(type_text: str) -> list[int]:
    return [
        _ITEMSIZE.get(dt, 8) * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
        for dt, dims in _ARRAY.findall(type_text)
    ]


def _group_size(attrs: str, ndevices: int) -> int:
    m = re.search(r"replica_groups=\{\{([\d,]*)\}", attrs)
    if m:
        return len(m.group(1).split(","))
    m = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", attrs)
    if m:
        return int(m.group(2))
    m = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", attrs)
    if m:
        sizes = dict(re.findall(r"'([^']+)'=(\d+)", m.group(1)))
        return int(np.prod([int(sizes[a]) for a in re.findall(r"'([^']+)'", m.group(2))]))
    return ndevices


def _sent_bytes(kind: str, start: bool, type_text: str, attrs: str, ndevices: int) -> int:
    """Bytes one device sends for one collective (ring algorithms for the reductions)."""
    sizes = _array_bytes(type_text)
    if start:  # async pairs: the "-start" result holds (operand(s), output(s), contexts)
        if kind == "all-gather":
            sizes = sizes[len(sizes) // 2 :]
        elif kind == "collective-permute":
            sizes = sizes[:1]
    total = sum(sizes)
    g = max(_group_size(attrs, ndevices), 1)
    if kind == "collective-permute":
        return total if re.search(r"source_target_pairs=\{\{", attrs) else 0
    if kind == "all-gather":
        return total * (g - 1) // g
    if kind == "all-reduce":
        return 2 * total * (g - 1) // g
    if kind == "reduce-scatter":
        return total * (g - 1)
    if kind == "all-to-all":
        return total * (g - 1) // g
    return total  # collective-broadcast


@dataclass(frozen=True)
class Collectives:
    """The collectives of a compiled program and the bytes one device sends running it once.

    Attributes:
        bytes_sent: per kind (``"collective-permute"``, ``"all-gather"``, ``"all-reduce"``,
            ...), the bytes one device sends: a collective-permute sends its operand once; an
            all-gather over a group of ``g`` devices sends ``(g - 1) / g`` of its result; an
            all-reduce ``2 (g - 1) / g`` of its operand (ring algorithm); a reduce-scatter
            ``g - 1`` times its result; an all-to-all ``(g - 1) / g`` of its operand.
        counts: per kind, the number of executions (a collective inside a loop counts once per
            iteration).
        exact: False when a collective sits in a loop whose trip count XLA does not know (it
            was counted once).
    """

    bytes_sent: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    exact: bool = True

    @property
    def total(self) -> int:
        """Bytes one device sends, over all kinds."""
        return int(sum(self.bytes_sent.values()))


def collective_bytes(compiled: Any) -> Collectives:
    """Count the collectives of a compiled JAX program, from its optimized HLO.

    Args:
        compiled: ``jax.jit(f).lower(*args).compile()`` (or its ``.as_text()``).

    Returns:
        A `Collectives`: bytes one device sends and the number of collectives, per kind, for
        one run of the program (collectives in while loops are multiplied by the trip count).
    """
    text = compiled if isinstance(compiled, str) else getattr(compiled, "as_text", None)
    text = text() if callable(text) else text
    if not isinstance(text, str) or "HloModule" not in text:
        raise TypeError(
            "stiffasd.sharding.collective_bytes: expected a compiled JAX program "
            "(jax.jit(f).lower(*args).compile()) or its HLO text, got "
            f"{type(compiled).__name__}."
        )
    m = re.search(r"num_partitions=(\d+)", text)
    ndevices = int(m.group(1)) if m else 1
    own: dict[str, dict[str, list[int]]] = {}
    calls: dict[str, list[tuple[str, int | None, str]]] = {}
    entry = None
    current = None
    for line in text.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            current = header.group(1)
            own[current], calls[current] = {}, []
            if line.startswith("ENTRY"):
                entry = current
            continue
        inst = _INSTRUCTION.match(line) if current is not None else None
        if inst is None:
            continue
        type_text, op, attrs = inst.groups()
        base = op[: -len("-start")] if op.endswith("-start") else op
        if base in _KINDS:
            sent = _sent_bytes(base, op.endswith("-start"), type_text, attrs, ndevices)
            own[current].setdefault(base, []).append(sent)
        elif op == "while":
            body = re.search(r"body=%?([\w.\-]+)", attrs)
            cond = re.search(r"condition=%?([\w.\-]+)", attrs)
            trips = re.search(r'"known_trip_count":\{"n":"(\d+)"', attrs)
            n = int(trips.group(1)) if trips else None
            if body:
                calls[current].append((body.group(1), n, ""))
            if cond:  # the condition runs once more than the body
                calls[current].append((cond.group(1), None if n is None else n + 1, ""))
        elif op == "conditional":
            found = re.search(r"branch_computations=\{([^}]*)\}", attrs)
            names = re.findall(r"%?([\w.\-]+)", found.group(1)) if found else []
            names += re.findall(r"(?:true|false)_computation=%?([\w.\-]+)", attrs)
            for name in names:  # the costliest branch counts
                calls[current].append((name, 1, "branch"))
        else:
            for name in re.findall(r"(?:to_apply|calls)=%?([\w.\-]+)", attrs):
                calls[current].append((name, 1, ""))
    if entry is None:
        raise ValueError("stiffasd.sharding.collective_bytes: the HLO text has no ENTRY.")

    memo: dict[str, tuple[dict, dict, bool]] = {}

    def visit(name: str, depth: int = 0) -> tuple[dict, dict, bool]:
        if name in memo or name not in own or depth > 100:
            return memo.get(name, ({}, {}, True))
        nbytes = {k: sum(v) for k, v in own[name].items()}
        count = {k: len(v) for k, v in own[name].items()}
        exact = True
        branches: list[tuple[dict, dict, bool]] = []
        for callee, trips, how in calls[name]:
            b, c, e = visit(callee, depth + 1)
            if how == "branch":
                branches.append((b, c, e))
                continue
            mult = 1 if trips is None else trips
            exact &= e and (trips is not None or not b)
            for k in b:
                nbytes[k] = nbytes.get(k, 0) + mult * b[k]
                count[k] = count.get(k, 0) + mult * c[k]
        if branches:
            b, c, e = max(branches, key=lambda r: sum(r[0].values()))
            exact &= e
            for k in b:
                nbytes[k] = nbytes.get(k, 0) + b[k]
                count[k] = count.get(k, 0) + c[k]
        memo[name] = (nbytes, count, exact)
        return memo[name]

    nbytes, count, exact = visit(entry)
    return Collectives(dict(sorted(nbytes.items())), dict(sorted(count.items())), exact)


# ---------------------------------------------------------------------------- sharded ensembles
def shard_vmap(
    fn: Callable, mesh: Any = None, *, in_axes: int | None | Sequence[int | None] = 0
) -> Callable:
    """``jax.vmap(fn)`` with the batch split over the devices of a mesh, jit-compiled.

    ```python
    mesh = jax.make_mesh((4,), ("batch",))
    solve_all = stiffasd.sharding.shard_vmap(solve_one, mesh)  # solve_one(p) -> diffrax Solution
    sols = solve_all(params)  # params: (B, ...); each device solves B / 4 of them
    ```

    Block ``b`` of the batch (its items ``b * B / D`` to ``(b + 1) * B / D``, ``D`` devices)
    is solved by the ``b``-th device of the mesh (in the order of ``mesh.devices.flat``), and
    the outputs come back as `jax.Array` split the same way over the mesh.

    How it runs: every process compiles ``jax.jit(jax.vmap(fn))`` for its own devices, with its
    slice of the batch split over them, and XLA partitions the batch. Nothing crosses between
    processes: the outputs are assembled into global arrays from the blocks each device holds.
    Inside a process the devices share the loop conditions of ``fn``'s while loops, which
    ``jax.vmap`` turns into "any item still running" (an all-reduce of one byte per
    iteration, in the process's memory), so they iterate until the slowest item of the
    process's slice is done, as the items of a plain ``jax.vmap`` on one device do.
    (``jax.shard_map`` would free each device from the others, but diffrax's implicit solvers
    do not run inside it: their closure-converted functions and lineax's structure checks
    reject arrays whose sharding metadata differ from the example's, which is what a manual-axes
    body produces.)

    Args:
        fn: the function of one item (JAX-traceable; e.g. a `diffrax.diffeqsolve` with
            `stiffasd.diffrax.sparse(solver, linear_solver="gmres")`).
        mesh: a `jax.sharding.Mesh`; the batch is split over all its axes. Default: a 1D mesh
            of every device (of every process, under ``jax.distributed``).
        in_axes: ``0`` (every argument is batched along its first axis), ``None`` (broadcast),
            or one of those per positional argument, as for ``jax.vmap``.

    Returns:
        The mapped function. Its arguments are host arrays (in a multi-process program every
        process passes the same ones) or `jax.Array`; its outputs are `jax.Array` split over
        ``mesh`` along their first axis. Under ``jax.distributed`` gather them onto every host
        with ``jax.experimental.multihost_utils.process_allgather(out, tiled=True)``. A batch
        that does not divide evenly over the devices is padded with copies of its last item,
        whose results are dropped (single-process runs only: a multi-process run needs a batch
        divisible by the number of devices).
    """
    call = "stiffasd.sharding.shard_vmap"
    if not callable(fn):
        raise TypeError(f"{call}: fn must be callable, got {type(fn).__name__}.")
    if mesh is None:
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("batch",))
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(
            f"{call}: mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh((4,), ('batch',))), "
            f"got {type(mesh).__name__}."
        )
    mesh = _auto_mesh(mesh)
    devices = list(mesh.devices.flat)
    ndev = len(devices)
    me = jax.process_index()
    mine = [b for b, d in enumerate(devices) if d.process_index == me]
    local_mesh = jax.sharding.Mesh(np.asarray([devices[b] for b in mine]), ("batch",))
    local_batch = NamedSharding(local_mesh, P("batch"))
    local_replicated = NamedSharding(local_mesh, P())
    global_batch = NamedSharding(mesh, P(tuple(mesh.axis_names)))
    multiprocess = len(mine) < ndev
    compiled: dict[tuple, Callable] = {}

    def check_axes(nargs: int) -> tuple:
        spec = tuple(in_axes) if isinstance(in_axes, list | tuple) else (in_axes,) * nargs
        if len(spec) != nargs or any(a not in (0, None) for a in spec):
            raise ValueError(
                f"{call}: in_axes must be 0, None, or one of them per argument ({nargs} "
                f"arguments), got {in_axes!r}; move the batch axis to the front first."
            )
        return spec

    def local_blocks(a: Any, pad: int, size: int) -> jax.Array:
        """This process's blocks of a batched argument, split over its devices."""
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            if a.sharding != global_batch:
                a = jax.device_put(a, global_batch)
            shards = {s.device: s.data for s in a.addressable_shards}
            return jax.make_array_from_single_device_arrays(
                (len(mine) * size,) + a.shape[1:], local_batch, [shards[devices[b]] for b in mine]
            )
        if isinstance(a, jax.Array) and not pad and not multiprocess:
            return jax.device_put(a, local_batch)
        host = np.asarray(a)
        if pad:
            host = np.concatenate([host, np.repeat(host[-1:], pad, axis=0)])
        rows = np.concatenate([np.arange(b * size, (b + 1) * size) for b in mine])
        return _put(host[rows], local_batch)

    def broadcast(a: Any) -> jax.Array:
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            a = a.addressable_shards[0].data  # replicated: every device holds all of it
        return _put(np.asarray(a), local_replicated)

    def assemble(o: jax.Array, size: int) -> jax.Array:
        shards = {s.device: s.data for s in o.addressable_shards}
        return jax.make_array_from_single_device_arrays(
            (ndev * size,) + o.shape[1:], global_batch, [shards[devices[b]] for b in mine]
        )

    def mapped(*args: Any) -> Any:
        spec = check_axes(len(args))
        sizes = {
            int(np.shape(leaf)[0]) if np.ndim(leaf) else -1
            for a, ax in zip(args, spec, strict=True)
            if ax == 0
            for leaf in jax.tree.leaves(a)
        }
        if not sizes:
            raise ValueError(f"{call}: no argument is batched (in_axes={in_axes!r}).")
        if len(sizes) != 1 or -1 in sizes:
            raise ShapeError(
                f"{call}: the batched arguments must share the size of their first axis, got "
                f"sizes {sorted(sizes)} (-1: a scalar)."
            )
        (batch,) = sizes
        pad = (-batch) % ndev
        if pad and multiprocess:
            raise ShapeError(
                f"{call}: a batch of {batch} does not split evenly over the {ndev} devices of "
                f"a {jax.process_count()}-process run; pad it to a multiple of {ndev}."
            )
        size = (batch + pad) // ndev
        placed = tuple(
            jax.tree.map(lambda a: local_blocks(a, pad, size), a) if ax == 0
            else jax.tree.map(broadcast, a)
            for a, ax in zip(args, spec, strict=True)
        )  # fmt: skip
        if spec not in compiled:
            compiled[spec] = jax.jit(jax.vmap(fn, in_axes=spec), out_shardings=local_batch)
        out = compiled[spec](*placed)
        if multiprocess:
            return jax.tree.map(lambda o: assemble(o, size), out)
        return jax.tree.map(lambda o: o[:batch], out) if pad else out

    return mapped
