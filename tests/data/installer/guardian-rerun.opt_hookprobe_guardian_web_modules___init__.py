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
    # guardian-vms: disabled: from .vms import vms_bp
    # guardian-vms: disabled: app.register_blueprint(vms_bp, url_prefix='/api/vms')
    # guardian-vms: begin (guardian-vm-setup: the Guardian VMs plug-in; --uninstall restores this file)
    from .guardian_vms import bp as guardian_vms_bp
    app.register_blueprint(guardian_vms_bp)
    # guardian-vms: end
