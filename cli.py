"""`python cli.py train ...` from a checkout: the same typer app as the `fastdqn` command."""

from fastdqn.cli import main

if __name__ == "__main__":
    main()
