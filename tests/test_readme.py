"""The README's engine example runs as written (so the first code a user copies keeps working)."""

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_use_the_engine_example_runs():
    text = README.read_text()
    block = text[text.index("## Use the engine"):].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["g_hat"].shape == (64,) and float(namespace["value"]) > 0
