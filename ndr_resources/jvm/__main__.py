"""``python -m ndr_resources.jvm [TARGET]``: rebuild the shipped jar from ``src/``."""

import sys
from pathlib import Path

from ndr_resources.jvm import JAR, build_jar

print(f"wrote {build_jar(Path(sys.argv[1]) if len(sys.argv) > 1 else JAR)}")
