"""matplotlib's backend in a run (MPLBACKEND=module://sandbox_backend): Agg, whose `plt.show()`
saves the open figures as files of the output folder (sandbox_display), as a notebook shows them.
"""

import sandbox_display
from matplotlib.backends.backend_agg import FigureCanvas  # noqa: F401 - the backend's canvas

sandbox_display.mark_saved_figures()


def show(*args, **kwargs) -> None:
    sandbox_display.show()
