"""2D Gray-Scott reaction-diffusion (Pearson's pattern formation) with solve_ivp and stiffasd.

    python examples/gray_scott_2d.py --N 32 --plot gray_scott.png

Two species on a periodic grid written with jnp.roll (stiffasd.problems.gray_scott_2d); spots
grow from a perturbed square over a long time span, which an implicit solver covers in large
steps once its Jacobians are cheap.
"""

from _common import main

from stiffasd.problems import gray_scott_2d

if __name__ == "__main__":
    main(gray_scott_2d, __doc__, "N", 32)
