"""What a notebook shows, for a run: the trailing expression's value, figures, `display()`.

IPython compiles a cell's last statement on its own when it is an expression and shows its value;
so does this module (`run_cell`), with the code's own line numbers (the split is made on the
parsed tree, both parts keep their positions). A trailing `;` hides the value, as in IPython.
`plt.show()` and every figure still open when the code ends become `figure-N.png` in the output
folder, except figures the code saved itself (`savefig` marks them): matplotlib's backend in a
run is sandbox_backend (Agg, whose `show` is ours). `display(obj)` prints the text repr, or writes
a figure or a PIL image as a PNG file.
"""

from __future__ import annotations

import ast
import os
import sys

MAX_REPR_CHARS = 20_000
_SAVED = "_codeinterp_saved"


_current: Display | None = None


def show() -> None:
    """plt.show(): the open figures become files (before a run starts, e.g. a warm-up: closed)."""
    if _current is not None:
        _current.flush_figures()
    elif "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def mark_saved_figures() -> None:
    """Make Figure.savefig mark the figure, so it is not sent a second time (once per process):
    now when matplotlib.figure is loaded, else when the code imports it (whatever its backend)."""
    if "matplotlib.figure" in sys.modules:
        _patch_savefig(sys.modules["matplotlib.figure"].Figure)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


class _PatchOnImport:
    """Patches Figure.savefig right after matplotlib.figure is first imported."""

    def find_spec(self, name, path, target=None):
        if name != "matplotlib.figure":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        load = loader.exec_module

        def exec_module(module):
            load(module)
            _patch_savefig(module.Figure)

        loader.exec_module = exec_module
        return spec


def _patch_savefig(Figure) -> None:
    original = Figure.savefig
    if getattr(original, _SAVED, False):
        return

    def savefig(figure, *args, **kwargs):
        setattr(figure, _SAVED, True)
        return original(figure, *args, **kwargs)

    setattr(savefig, _SAVED, True)
    Figure.savefig = savefig


class Display:
    def __init__(self, output_dir: str) -> None:
        global _current
        self.output_dir = output_dir
        self.counters: dict[str, int] = {}
        _current = self
        mark_saved_figures()

    # The trailing expression

    def compile_cell(self, source: str, filename: str) -> tuple:
        """(the statements, the trailing expression or None), compiled with their positions."""
        tree = ast.parse(source, filename)
        last = tree.body[-1] if tree.body else None
        if not isinstance(last, ast.Expr) or _ends_with_semicolon(source, last):
            return compile(tree, filename, "exec", dont_inherit=True), None
        body = ast.Module(body=tree.body[:-1], type_ignores=[])
        expression = ast.Expression(last.value)
        return (
            compile(body, filename, "exec", dont_inherit=True),
            compile(expression, filename, "eval", dont_inherit=True),
        )

    def run_cell(self, cell: tuple, namespace: dict) -> None:
        statements, expression = cell
        exec(statements, namespace)
        if expression is not None:
            value = eval(expression, namespace)
            if value is not None:
                self.display(value)

    # display()

    def display(self, *values: object) -> None:
        for value in values:
            if self._is_figure(value):
                self._save_figure(value)
            elif _is_pil_image(value):
                value.save(self._new_path("image"), format="PNG")
            else:
                _write(capped_repr(value) + "\n")
        _write("")

    # Figures

    def flush_figures(self) -> None:
        """Save every open figure the code did not save itself, then close them all."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        for number in pyplot.get_fignums():
            figure = pyplot.figure(number)
            if not getattr(figure, _SAVED, False) and figure.axes:
                self._save_figure(figure)
        pyplot.close("all")

    def _is_figure(self, value: object) -> bool:
        figure_module = sys.modules.get("matplotlib.figure")
        return figure_module is not None and isinstance(value, figure_module.Figure)

    def _save_figure(self, figure) -> None:
        path = self._new_path("figure")
        figure.savefig(path, format="png", bbox_inches="tight")  # marks it saved

    def _new_path(self, stem: str) -> str:
        while True:
            number = self.counters[stem] = self.counters.get(stem, 0) + 1
            path = os.path.join(self.output_dir, f"{stem}-{number}.png")
            if not os.path.exists(path):
                return path


def _write(text: str) -> None:
    """To stdout, unless the code closed it: showing a value never fails the code."""
    try:
        if text:
            sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def capped_repr(value: object, limit: int = MAX_REPR_CHARS) -> str:
    """repr(), pandas' own (truncated by its display options); cut beyond `limit` characters."""
    text = repr(value)
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
    return text


def _is_pil_image(value: object) -> bool:
    image_module = sys.modules.get("PIL.Image")
    return image_module is not None and isinstance(value, image_module.Image)


def _ends_with_semicolon(source: str, node: ast.stmt) -> bool:
    lines = source.splitlines()
    if node.end_lineno is None or node.end_lineno > len(lines):
        return False
    rest = lines[node.end_lineno - 1][node.end_col_offset or 0 :]
    return rest.split("#", 1)[0].strip().startswith(";")
