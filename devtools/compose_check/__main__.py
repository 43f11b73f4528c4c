"""python -m devtools.compose_check"""

import sys

from devtools.compose_check.main import main

sys.exit(main())
