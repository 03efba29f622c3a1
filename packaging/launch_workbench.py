"""PyInstaller entry point of the bundle: the `workbench` console command (workbench.cli:main)."""

import multiprocessing

from workbench.cli import main

if __name__ == "__main__":
    # a frozen app must handle multiprocessing's re-executed children itself (torch may spawn)
    multiprocessing.freeze_support()
    raise SystemExit(main())
