"""1D premixed flame (one-step Arrhenius chemistry) with solve_ivp and stiffasd.

    python examples/flame_1d.py --N 400 --plot flame.png

A flame front ignited at the burnt left end runs to the right (stiffasd.problems.flame_1d). The
high activation energy switches the source on sharply: the stiffness that makes combustion
codes implicit. The Jacobian is a band of width 3 in each species plus their coupling.
"""

from _common import main

from stiffasd.problems import flame_1d

if __name__ == "__main__":
    main(flame_1d, __doc__, "N", 400)
