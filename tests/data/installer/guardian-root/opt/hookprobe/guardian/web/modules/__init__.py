"""
Guardian Web Modules
Blueprint registration and module management
"""
from flask import Flask


def register_blueprints(app: Flask):
    """Register all module blueprints with the Flask app."""

    # Core module - Dashboard and base routes
    from .core import core_bp
    app.register_blueprint(core_bp)

    # VMs module - Home Assistant and OpenMediaVault VMs via virsh
    from .vms import vms_bp
    app.register_blueprint(vms_bp, url_prefix='/api/vms')
