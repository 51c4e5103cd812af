"""Published models as architectures of mixpath spaces, with their published figures."""

from mixpath.models.published import PUBLISHED, PublishedModel, build_published, get_published

__all__ = ["PUBLISHED", "PublishedModel", "build_published", "get_published"]
