"""Robertson's stiff kinetics per cell (jax.vmap) coupled by diffusion, with solve_ivp and stiffasd.

    python examples/robertson_diffusion_2d.py --N 16 --plot robertson.png

The rates are written once for one cell and mapped over the grid with jax.vmap
(stiffasd.problems.robertson_diffusion_2d); the Jacobian has 3x3 reaction blocks on the
diagonal plus the diffusion stencil of each species.
"""

from _common import main

from stiffasd.problems import robertson_diffusion_2d

if __name__ == "__main__":
    main(robertson_diffusion_2d, __doc__, "N", 16)
