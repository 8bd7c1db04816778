"""``python -m conformance.adapterkit``: serve the control API on a vendor's Transport (see the package)."""

import sys

from conformance.adapterkit import main

if __name__ == "__main__":
    sys.exit(main())
