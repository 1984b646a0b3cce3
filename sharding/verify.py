"""`python -m sharding.verify MANIFEST...`: re-hash every shard against its manifest; exit 1 on a mismatch."""

import sys

from sharding.manifest import main

if __name__ == "__main__":
    sys.exit(main())
