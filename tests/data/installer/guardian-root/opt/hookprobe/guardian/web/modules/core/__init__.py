"""Core module (test stand-in for Guardian's): the dashboard."""
from flask import Blueprint, render_template

core_bp = Blueprint('core', __name__)


@core_bp.route('/')
def index():
    return render_template('core/dashboard.html')
