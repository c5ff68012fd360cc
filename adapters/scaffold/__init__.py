"""The adapter scaffold: ``yikatong adapter new NAME`` writes an installable adapter package from a template.

The package registers its adapter (and its sandbox) through entry points, so installing it is all the hub
needs to find it; its own tests run the conformance suite, which names every rule still failing until each
method is implemented.
"""

from adapters.scaffold.package import Scaffolded, ScaffoldError, package_names, scaffold

__all__ = ["ScaffoldError", "Scaffolded", "package_names", "scaffold"]
