"""The README's quick start runs as written."""

import re
import runpy
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_start_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python block"
    shutil.copytree(ROOT / "tests" / "data", tmp_path / "tests" / "data")
    script = tmp_path / "quick_start.py"
    script.write_text("\n".join(blocks))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "True" in out  # every ensemble member solved
    assert (tmp_path / "boehm.npz").is_file()
