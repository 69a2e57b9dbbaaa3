"""Python client for dsrd, the dual self-reward service (API v1).

Standard library only.  ``Client`` covers every endpoint (``AsyncClient``
the same as coroutines); ``images`` builds token spans and image objects;
``trl`` adapts R_U and R_G to TRL reward functions; ``verl`` is a verl
``compute_score``.
"""

from . import images
from .aio import AsyncClient
from .client import (DEFAULT_URL, Client, generation_item, png_label,
                     understanding_item)
from .errors import DsrAPIError, DsrConnectionError, DsrError

__version__ = "0.2.0"

__all__ = ["Client", "AsyncClient", "DEFAULT_URL", "DsrError", "DsrAPIError", "DsrConnectionError",
           "images", "understanding_item", "generation_item", "png_label", "__version__"]
