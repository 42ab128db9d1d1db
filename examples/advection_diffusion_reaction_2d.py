"""2D advection-diffusion-reaction with upwinding (jnp.where) with solve_ivp and stiffasd.

    python examples/advection_diffusion_reaction_2d.py --N 40 --plot adr.png

A burning blob carried by a rotating flow (stiffasd.problems.advection_diffusion_reaction_2d).
The upwind differences are chosen per cell with jnp.where on the constant velocity field, so
sparsity detection keeps only the upwind neighbour of the advection term.
"""

from _common import main

from stiffasd.problems import advection_diffusion_reaction_2d

if __name__ == "__main__":
    main(advection_diffusion_reaction_2d, __doc__, "N", 40)
