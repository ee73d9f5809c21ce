"""Sphinx configuration of the trestfly documentation.

Build (offline, warnings are errors)::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The package itself, for a build from a checkout that was not pip-installed.
sys.path.insert(0, str(ROOT))

import trestfly  # noqa: E402

project = "trestfly"
author = "trestfly developers"
copyright = "trestfly developers, MIT licence"
release = trestfly.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]

# Nothing is fetched at build time: no intersphinx, no remote images.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}

napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Render "Attributes:" as fields of the class, so a dataclass field that autodoc also
# finds is not described twice.
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"trestfly {release}"
pygments_style = "friendly"
pygments_dark_style = "monokai"


def _napoleon_except_attributes(app: Any) -> None:
    """Let napoleon leave attribute, data and property docstrings alone.

    Napoleon reads the first line of an attribute's doc comment as ``type: text``, so
    ``#: Backoff factor in seconds: retry n waits ...`` would lose its first words to a
    "Type" field.  It does the same to a property's docstring (``Where the walk stands:
    pass it as ...``), whose type autodoc already shows from the annotation.  None of
    them has Google sections to parse anyway.
    """
    from sphinx.ext import napoleon

    listeners = app.events.listeners["autodoc-process-docstring"]
    for listener in list(listeners):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)

            def process(app: Any, what: str, name: str, obj: Any, options: Any, lines: Any) -> None:
                if what not in ("attribute", "data", "property"):
                    napoleon._process_docstring(app, what, name, obj, options, lines)

            app.connect("autodoc-process-docstring", process, priority=listener.priority)


def setup(app: Any) -> None:
    _napoleon_except_attributes(app)
