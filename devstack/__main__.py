"""`python -m devstack` (what `make run` runs): the whole app on loopback."""
from devstack.stack import main

if __name__ == "__main__":
    main()
