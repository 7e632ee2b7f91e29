"""Approved-package auto-install: detection, the install step, the cache and its cleanup."""

from app.sandbox.packages.cache import CacheEntry, CleanupReport, PackageCache
from app.sandbox.packages.catalog import PackageCatalog
from app.sandbox.packages.installer import PackageInstaller, PackagePlan

__all__ = [
    "CacheEntry",
    "CleanupReport",
    "PackageCache",
    "PackageCatalog",
    "PackageInstaller",
    "PackagePlan",
]
