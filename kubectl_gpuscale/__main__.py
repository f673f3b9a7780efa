"""`python -m kubectl_gpuscale`."""

from kubectl_gpuscale.cli import main

if __name__ == "__main__":
    main()
