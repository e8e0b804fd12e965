"""Blueprint registry, shaped like Guardian's web/modules/__init__.py: the
installer adds our module to MODULES (and removes Guardian's old `vms`)."""
import importlib

MODULES = [
    ("guardian_vms", "bp"),
]


def register_blueprints(app):
    for mod, attr in MODULES:
        app.register_blueprint(getattr(importlib.import_module(mod), attr))
