from . import errors
from ._core import __version__, Pool, Page, owner_self
