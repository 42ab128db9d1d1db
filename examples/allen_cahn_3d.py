"""3D Allen-Cahn with Dirichlet boundaries (jnp.pad, 7-point stencil) with solve_ivp and stiffasd.

    python examples/allen_cahn_3d.py --N 12 --plot allen_cahn.png

A diffuse ball shrinks by mean curvature inside a cube whose faces are held at u = -1
(stiffasd.problems.allen_cahn_3d). The 7-point Laplacian makes the system stiff; its pattern
needs a handful of colors whatever N is.
"""

from _common import main

from stiffasd.problems import allen_cahn_3d

if __name__ == "__main__":
    main(allen_cahn_3d, __doc__, "N", 12)
