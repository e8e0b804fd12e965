"""
VMs Module - Virtual Machine Management for Guardian
Supports Home Assistant and OpenMediaVault VMs via libvirt/QEMU-KVM
(test stand-in: the routes of Guardian's virsh-based blueprint, no virsh)
"""
from flask import Blueprint, jsonify

vms_bp = Blueprint('vms', __name__, template_folder='../../templates')


@vms_bp.route('/status')
def status():
    return jsonify({'enabled': False, 'installed': False, 'source': 'guardian-virsh'})
