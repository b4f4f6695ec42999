"""`python -m batchctl`: the same command line as the `batchctl` console script."""

from batchctl.cli import main

if __name__ == "__main__":
    main()
