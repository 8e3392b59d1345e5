"""The README's and docs' Python snippets run as pasted.

Each page's ```python blocks run in order in one fresh interpreter, as a reader following
the page from the top would paste them, in an empty working directory that holds only
what the page says comes from elsewhere: the quickstart's run (a tiny one at the same
path), an image file `photo.png`. Non-code listings (signatures, outputs) are ```text.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.join("docs", name) for name in os.listdir(os.path.join(REPO, "docs")) if name.endswith(".md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

# Runs each block in one namespace and names the block that failed.
DRIVER = """
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for index, (line, code) in enumerate(blocks):
    try:
        exec(compile(code, f"{sys.argv[2]}:{line}", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"snippet {index + 1} (line {line} of {sys.argv[2]}) failed", file=sys.stderr)
        sys.exit(1)
"""


def snippets(page):
    """[(line, code)] of a page's ```python blocks."""
    text = open(os.path.join(REPO, page), encoding="utf-8").read()
    return [(text[:match.start()].count("\n") + 2, match.group(1)) for match in BLOCK.finditer(text)]


PAGES_WITH_SNIPPETS = [page for page in PAGES if snippets(page)]


def test_every_page_with_python_is_checked():
    assert "README.md" in PAGES_WITH_SNIPPETS
    assert {"docs/library.md", "docs/export.md"} <= set(PAGES_WITH_SNIPPETS)


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """A tiny run where the README's quickstart writes its own, exported."""
    from tests.helpers import graph_functions
    from training import fit
    from training.config import RunConfig
    from training.trainer import train

    root = tmp_path_factory.mktemp("quickstart")
    config = fit.parse_args(README_QUICKSTART_FLAGS)[0]
    tiny = RunConfig(**{**config.to_dict(), "output_dir": str(root), "train_size": 64,
                        "eval_size": 64, "epochs": 1})
    with graph_functions():
        train(tiny, quiet=True)
    return root / tiny.run_name, config.run_name


def _quickstart_flags():
    """The flags of the README's first command (`python -m training.fit ...`)."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    command = re.search(r"python -m training\.fit([^\n`]*)", readme).group(1)
    return command.split()


README_QUICKSTART_FLAGS = _quickstart_flags()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_SNIPPETS)
def test_snippets_run_as_pasted(page, quickstart_run, tmp_path):
    run_dir, run_name = quickstart_run
    work = tmp_path / "work"
    (work / "saved_models").mkdir(parents=True)
    shutil.copytree(run_dir, work / "saved_models" / run_name)
    pixels = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(work / "photo.png")
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps(snippets(page)))
    environment = dict(os.environ, KERAS_HOME=str(tmp_path / "keras-home"), MPLBACKEND="Agg",
                       PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", DRIVER, str(blocks), page], cwd=work, env=environment,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
