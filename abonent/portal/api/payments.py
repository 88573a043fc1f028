"""(filled by its area)"""

from . import router  # noqa: F401
