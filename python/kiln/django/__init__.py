"""kiln for Django: add ``"kiln.django"`` to ``INSTALLED_APPS``.

- ``kiln.django.storage.KilnStorage``, the ``staticfiles`` storage backend: ``collectstatic``
  gathers every app's files and runs kiln over them into ``STATIC_ROOT``;
- ``{% load kiln %}``: ``kiln_url``, ``kiln_css``, ``kiln_js``, ``kiln_preload``,
  ``kiln_picture``, ``kiln_importmap``;
- ``kiln.django.jinja2.environment``, the same helpers for Django's Jinja2 backend;
- system checks ``kiln.W001`` (no build), ``kiln.W002`` (stale build), ``kiln.W003`` (a
  fingerprinting storage that would hash kiln's output again).

See docs/django.md.
"""
