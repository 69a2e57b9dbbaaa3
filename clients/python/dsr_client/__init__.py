"""Python client for dsrd, the dual self-reward service (API v1).

Standard library only.  ``Client`` covers every endpoint; ``images`` builds
token spans and image objects; ``trl`` adapts R_U to a TRL reward function.
"""

from . import images
from .client import (DEFAULT_URL, Client, generation_item, png_label,
                     understanding_item)
from .errors import DsrAPIError, DsrConnectionError, DsrError

__version__ = "0.1.0"

__all__ = ["Client", "DEFAULT_URL", "DsrError", "DsrAPIError", "DsrConnectionError",
           "images", "understanding_item", "generation_item", "png_label", "__version__"]
