"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi run`."""

from api import create_app_or_exit

app = create_app_or_exit()
