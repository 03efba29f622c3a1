"""Load a library of 10,000 generated prompts and search it (target: load under 1 s here).

Prints the load and search times, and beside them the floor: reading and json-parsing
the same files without validation, so the ratio shows what the schema costs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from workbench.core.library import Library, document_bytes
from workbench.core.models import FewShot, FewShotExample, Prompt

N = int(os.environ.get("BENCH_PROMPTS", "10000"))
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "review",
    "summary",
    "classify",
    "extract",
    "translate",
    "reason",
]


def generate(root: Path) -> None:
    folder = root / "prompts"
    folder.mkdir(parents=True)
    for i in range(N):
        word = WORDS[i % len(WORDS)]
        prompt = Prompt(
            id=f"p{i:05d}",
            name=f"{word.title()} prompt {i}",
            tags=[word, f"team{i % 7}"],
            system=f"You are assistant number {i}. " * 3,
            user_template="Input: {{ text }}\nTask: " + word,
            few_shot=FewShot(
                examples=[FewShotExample(input=f"example {j}", output=word) for j in range(3)]
            ),
        )
        (folder / f"{prompt.id}.json").write_bytes(document_bytes(prompt))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        generate(root)
        files = sorted((root / "prompts").iterdir())

        t0 = time.perf_counter()
        for path in files:
            json.loads(path.read_bytes())
        floor = time.perf_counter() - t0

        os.environ["WORKBENCH_CACHE_DIR"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        library = Library(root)  # first open: parses every file, writes the summary index
        cold = time.perf_counter() - t0
        assert len(library.prompts) == N and not library.problems

        t0 = time.perf_counter()
        library = Library(root)  # every later open: the index, no prompt file parsed
        load = time.perf_counter() - t0
        assert len(library.prompts) == N and not library.problems

        t0 = time.perf_counter()
        hits = library.search("review prompt", tags=["team3"])
        search = time.perf_counter() - t0

        print(f"prompts: {N}")
        print(f"raw read + json.loads (floor): {floor:.3f} s")
        print(f"Library() first open (cold):  {cold:.3f} s  (parses and validates every file)")
        print(
            f"Library() open (indexed):     {load:.3f} s  (target < 1 s; {load / floor:.2f}x floor)"
        )
        print(f"search 'review prompt' + tag: {search * 1000:.1f} ms ({len(hits)} hits)")
        t0 = time.perf_counter()
        for hit in hits:
            library.get_prompt(hit.id)
        print(f"load the {len(hits)} hits in full:  {(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
